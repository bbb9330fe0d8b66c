"""The command line's own machinery (``cli.py`` at the repository root is the
entry point): batch runs over many models (:mod:`.batch`, :mod:`.results`),
the result cache (:mod:`.cache`) and the forked worker pool (:mod:`.pool`,
:mod:`.preload`)."""
