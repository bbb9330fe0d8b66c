"""Error types.  A :class:`GraphfixError` is a user-facing problem (bad input,
bad arguments, I/O): the CLI prints its message on one line and exits 2."""


class GraphfixError(Exception):
    """A problem with the user's input, arguments or files (exit status 2)."""


class FixError(Exception):
    """A fix that cannot be applied safely; the finding stays unfixed with this note."""


class UnsupportedOpError(GraphfixError):
    """An op graphfix must run or differentiate is not registered in this TensorFlow."""


def one_line(e: BaseException) -> str:
    """What the command line says about ``e``, on one line: a GraphfixError's
    own message; anything else is an internal error (``--debug`` shows its
    traceback)."""
    if isinstance(e, GraphfixError):
        msg = str(e)
    elif isinstance(e, MemoryError):
        msg = "out of memory"
    else:
        msg = f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)"
    return " ".join(msg.split())
