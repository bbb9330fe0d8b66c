"""Error types.  A :class:`GraphfixError` is a user-facing problem (bad input,
bad arguments, I/O): the CLI prints its message on one line and exits 2."""


class GraphfixError(Exception):
    """A problem with the user's input, arguments or files (exit status 2)."""


class FixError(Exception):
    """A fix that cannot be applied safely; the finding stays unfixed with this note."""


class UnsupportedOpError(GraphfixError):
    """An op graphfix must run or differentiate is not registered in this TensorFlow."""
