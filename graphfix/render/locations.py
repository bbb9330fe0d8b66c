"""Where a finding is, for renderers that point into files (SARIF, GitHub
annotations): the artifact path to name, its URI, and — for text inputs — the
lines of a node's ``node { … }`` block.

Binary graphs have no lines; a finding in one is located by file plus node
name (a SARIF logical location).  Only text files below
:data:`MAX_SCAN_BYTES` are scanned for line numbers.
"""
from __future__ import annotations

import functools
import os
import re
import urllib.parse
import urllib.request

MAX_SCAN_BYTES = 64 * 2**20
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_NODE_OPEN = re.compile(r"^(\s*)node\s*[{<]\s*$")
_NAME = re.compile(r'^(\s*)name\s*:\s*"((?:[^"\\]|\\.)*)"\s*$')


def artifact_path(path: str) -> str:
    """The file a finding in ``path`` lives in: the path itself, or the
    ``saved_model.pb(txt)`` inside a SavedModel directory."""
    if os.path.isdir(path):
        for name in _SAVED_MODEL_FILES:
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
    return path


def display_path(path: str, root: str | None = None) -> str:
    """``path`` relative to ``root`` (default: the working directory) when it
    lies below it, with ``/`` separators; otherwise unchanged."""
    root = os.path.abspath(root or os.getcwd())
    if os.path.isabs(path):
        rel = os.path.relpath(path, root)
        if rel.startswith(os.pardir + os.sep) or rel == os.pardir or os.path.isabs(rel):
            return path.replace(os.sep, "/")
        path = rel
    return os.path.normpath(path).replace(os.sep, "/")


def artifact_location(path: str, base_id: str = "%SRCROOT%") -> dict:
    """A SARIF ``artifactLocation`` for ``path``: a URI relative to ``base_id``
    (the working directory) when ``path`` lies below it, else a ``file:`` URI."""
    shown = display_path(path)
    if os.path.isabs(shown) or shown.startswith("../") or shown == "..":
        uri = urllib.parse.urljoin("file:", urllib.request.pathname2url(os.path.abspath(path)))
        return {"uri": uri}
    return {"uri": urllib.parse.quote(shown), "uriBaseId": base_id}


def root_uri() -> str:
    """``file:`` URI of the working directory, ending in ``/``."""
    uri = urllib.parse.urljoin("file:", urllib.request.pathname2url(os.path.abspath(os.getcwd())))
    return uri if uri.endswith("/") else uri + "/"


def node_lines(path: str, is_text: bool) -> dict[str, tuple[int, int]]:
    """``{node name: (first line, last line)}`` (1-based) of every top-level
    ``node { … }`` block in a text graph file; ``{}`` for binary files."""
    if not is_text:
        return {}
    try:
        st = os.stat(path)
    except OSError:
        return {}
    return dict(_scan(path, st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _scan(path: str, size: int, mtime: int) -> tuple[tuple[str, tuple[int, int]], ...]:
    if size > MAX_SCAN_BYTES:
        return ()
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return ()
    found = {}
    i = 0
    while i < len(lines):
        m = _NODE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        indent = len(m.group(1))
        start = i
        name = None
        j = i + 1
        while j < len(lines):
            line = lines[j]
            stripped = line.strip()
            depth = len(line) - len(line.lstrip())
            if depth <= indent and stripped in ("}", ">"):
                break
            if name is None and depth == indent + 2:
                n = _NAME.match(line)
                if n:
                    name = n.group(2)
            j += 1
        if name is not None and name not in found:
            found[name] = (start + 1, min(j, len(lines) - 1) + 1)
        i = j + 1
    return tuple(found.items())
