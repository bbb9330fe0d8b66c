"""What graphfix draws on a terminal: coloured findings and a progress indicator.

Colour is used only when the stream is a terminal and neither ``NO_COLOR``
(https://no-color.org, any non-empty value) nor ``--no-color`` says
otherwise; ``FORCE_COLOR`` (non-empty) turns it on for a non-terminal.  Styles
follow ruff's output: the path bold, ``:`` separators cyan, the rule code
bold red, ``[*]`` (fixable) cyan, ``[fixed]`` green.

`rich <https://github.com/Textualize/rich>`_ does the drawing when it is
installed (TensorFlow 2.16+ brings it in through Keras); without it graphfix
prints plain text and shows no spinner, so nothing here is required.
"""
from __future__ import annotations

import os
import sys

from graphfix.core import tfimport

try:  # optional (see above)
    from rich.console import Console
    from rich.text import Text
except ImportError:
    Console = Text = None

# Style of each kind of text segment (rich style strings).
STYLES = {
    "path": "bold",
    "sep": "cyan",
    "node": "",
    "code": "bold red",
    "fixable": "cyan",
    "fixed": "bold green",
    "not_fixed": "yellow",
    "unsafe": "yellow",
    "note": "dim",
    "clean": "green",
    "summary": "bold",
}


def rich_available() -> bool:
    """Whether ``rich`` is installed."""
    return Console is not None


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def color_wanted(stream, no_color: bool = False) -> bool:
    """Whether to style output on ``stream``: a terminal (or ``FORCE_COLOR``),
    no ``NO_COLOR`` and no ``--no-color``."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_terminal(stream) and os.environ.get("TERM") != "dumb"


def _console(stream, color: bool, terminal: bool | None = None):
    return Console(file=stream, force_terminal=color if terminal is None else terminal, no_color=not color,
                   highlight=False, soft_wrap=True, emoji=False, markup=False)


def write_segments(lines, stream, color: bool) -> None:
    """Write ``lines`` (each a list of ``(text, kind)`` segments) to ``stream``,
    styled when ``color`` and rich is available, else as plain text."""
    if not (color and rich_available()):
        stream.write("".join("".join(t for t, _ in line) + "\n" for line in lines))
        return
    console = _console(stream, True)
    for line in lines:
        console.print(Text.assemble(*((t, STYLES.get(k or "", "")) for t, k in line)))


class Activity:
    """A spinner with a message on ``stream`` (stderr) while a long step runs,
    shown only on a terminal with rich installed; cleared when done.

        with Activity("rewriting model.pb") as act:
            act.update("patching gradients")
    """

    def __init__(self, message: str, stream=None, enabled: bool | None = None, no_color: bool = False):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = is_terminal(self.stream) and os.environ.get("TERM") != "dumb"
        self.enabled = enabled and rich_available()
        self.message = message
        self.no_color = no_color
        self._status = None
        self._dup = None

    def __enter__(self) -> "Activity":
        if self.enabled:
            out = self.stream
            try:
                # Draw on a duplicate of the terminal's descriptor: graphfix.core.tfimport
                # points fd 2 at /dev/null while TensorFlow imports (to hide its C++
                # start-up chatter), and the spinner must keep turning meanwhile.
                out = self._dup = os.fdopen(os.dup(self.stream.fileno()), "w", encoding="utf-8")
            except (AttributeError, OSError, ValueError):
                self._dup = None
            console = _console(out, color_wanted(self.stream, self.no_color), terminal=True)
            self._status = console.status(self.message, spinner="dots")
            self._status.start()
            # The first fix imports TensorFlow (seconds): say so while it happens.
            tfimport.on_import = lambda: self.update(f"{self.message} (importing TensorFlow)")
        return self

    def update(self, message: str) -> None:
        self.message = message
        if self._status is not None:
            self._status.update(message)

    def __exit__(self, *exc) -> None:
        if self._status is not None:
            tfimport.on_import = None
            self._status.stop()
            self._status = None
        if self._dup is not None:
            try:
                self._dup.close()
            except OSError:
                pass
            self._dup = None
