"""The result cache of batch ``check`` runs (``--no-cache`` turns it off).

A model checked once is not checked again while nothing that decides its
report has changed.  The key is a hash of

* the model's content: the file's bytes, or for a SavedModel directory its
  ``saved_model.pb``/``.pbtxt`` and ``variables/variables.index``;
* the model's path as given (it is the report's ``input``, and its extension
  can decide how the bytes are read);
* graphfix's version and a hash of its own source files (an edited checkout
  is a different graphfix), and the installed TensorFlow's version;
* every option that changes results: ``--select``, ``--ignore``, ``--loss``,
  ``--stop-gradient``, ``--op-library`` (and ``--guard``/``--unsafe-fixes``
  where the command has them).

An entry holds the full report (graphfix.cli.results) and a checksum of it.  The
cache lives in ``$GRAPHFIX_CACHE_DIR``, else ``.graphfix_cache/`` in the
current directory, and is marked with a ``CACHEDIR.TAG`` (backup tools skip
it) and a ``.gitignore`` of ``*``.  Entries are written to a temporary file
in their final directory and renamed into place, so a reader — another run
sharing the cache — sees a whole entry or none.  An entry that does not
parse, fails its checksum, names another key or does not decode into a
report is ignored and overwritten with a fresh result.  A cache that cannot
be written (read-only, disk full) is skipped with one warning.
``graphfix clean`` deletes the directory, and only one that carries the tag.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile

from graphfix.core.errors import GraphfixError
from graphfix.core.version import __version__

ENV = "GRAPHFIX_CACHE_DIR"
DEFAULT_DIR = ".graphfix_cache"
LAYOUT = "v1"
_TAG_NAME = "CACHEDIR.TAG"
_TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
        "# This file is a cache directory tag created by graphfix (graphfix clean removes it).\n")
_MARK = "graphfix-result-cache"


def directory() -> str:
    """Where the cache lives: ``$GRAPHFIX_CACHE_DIR`` or ``./.graphfix_cache``."""
    return os.environ.get(ENV) or DEFAULT_DIR


def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(digest_size=20)
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()


def _file_hash(path: str) -> str:
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_hash(path: str) -> str | None:
    """A hash of what graphfix reads of the model at ``path``; None if unreadable."""
    try:
        if os.path.isdir(path):
            parts = []
            for name in ("saved_model.pb", "saved_model.pbtxt", os.path.join("variables", "variables.index")):
                file = os.path.join(path, name)
                if os.path.isfile(file):
                    parts.append(f"{name}={_file_hash(file)}")
            return _digest(b"dir", "\n".join(parts).encode()) if parts else None
        if not os.path.isfile(path):
            return None
        return _digest(b"file", _file_hash(path).encode())
    except OSError:
        return None


def _source_hash() -> str:
    """A hash of graphfix's and its rules' source files (found, not imported)."""
    parts = []
    for pkg in ("graphfix", "rewrites"):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            parts.append(pkg.encode())
            continue
        root = list(spec.submodule_search_locations)[0]
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(filenames):
                if f.endswith(".py"):
                    file = os.path.join(dirpath, f)
                    try:
                        with open(file, "rb") as fh:
                            parts.append(os.path.relpath(file, root).encode() + b"\0" + fh.read())
                    except OSError:
                        parts.append(file.encode())
    return _digest(*parts)


def _tf_version() -> str:
    """Which TensorFlow is installed, read from its distribution's directory name
    (``tensorflow_cpu-2.21.0.dist-info``) — importlib.metadata costs 40 ms."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return "none"
    pkg = list(spec.submodule_search_locations)[0]
    site = os.path.dirname(pkg)
    try:
        dists = sorted(n for n in os.listdir(site) if n.lower().startswith(("tensorflow", "tf_nightly"))
                       and n.endswith(".dist-info"))
    except OSError:
        dists = []
    if dists:
        return ",".join(dists)
    try:
        st = os.stat(os.path.join(pkg, "__init__.py"))
        return f"{pkg}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return pkg


class ResultCache:
    """Results of one command with one set of options, by model."""

    def __init__(self, root: str, options: dict, warn=None):
        self.root = root
        self.dir = os.path.join(root, LAYOUT)
        self.warn = warn
        self.salt = json.dumps({"graphfix": __version__, "source": _source_hash(), "tf": _tf_version(),
                                "options": options}, sort_keys=True, default=str)
        self.writable = True
        self.hits = self.misses = 0

    def key(self, path: str) -> str | None:
        """The entry's key for the model at ``path`` now (None: do not cache it)."""
        content = content_hash(path)
        if content is None:
            return None
        return _digest(self.salt.encode(), path.encode("utf-8", "surrogateescape"), content.encode())

    def _file(self, key: str) -> str:
        return os.path.join(self.dir, key[:2], key + ".json")

    def get(self, key: str) -> dict | None:
        """The stored result for ``key``, or None (absent, corrupt or foreign)."""
        try:
            with open(self._file(key), "rb") as f:
                entry = json.loads(f.read().decode("utf-8"))
            ok = (isinstance(entry, dict) and entry.get("cache") == _MARK and entry.get("key") == key
                  and isinstance(entry.get("result"), dict)
                  and entry.get("checksum") == _checksum(entry["result"]))
        except (OSError, ValueError):
            ok = False
        if not ok:
            self.misses += 1
            return None
        self.hits += 1
        return entry["result"]

    def put(self, key: str, result: dict) -> None:
        """Store ``result`` (plain JSON data) under ``key``, atomically."""
        if not self.writable:
            return
        entry = {"cache": _MARK, "key": key, "checksum": _checksum(result), "result": result}
        data = json.dumps(entry, sort_keys=True).encode("utf-8")
        target = self._file(key)
        tmp = None
        try:
            self._mark()
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would shut out other users sharing the cache
            os.replace(tmp, target)
            tmp = None
        except OSError as e:
            self.writable = False
            if self.warn:
                self.warn(f"cannot write the result cache {self.root}: {e.strerror or e}; going on without it")
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def _mark(self) -> None:
        """Create the cache directory with its tag and .gitignore (once)."""
        tag = os.path.join(self.root, _TAG_NAME)
        if os.path.isfile(tag):
            return
        os.makedirs(self.root, exist_ok=True)
        for name, text in ((_TAG_NAME, _TAG), (".gitignore", "# created by graphfix\n*\n")):
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, os.path.join(self.root, name))


def _checksum(result: dict) -> str:
    return _digest(json.dumps(result, sort_keys=True).encode("utf-8"))


def clean(root: str | None = None) -> str:
    """Delete the cache directory; returns what was done, in a few words."""
    root = root or directory()
    if not os.path.lexists(root):
        return f"no cache at {root}"
    if not os.path.isdir(root) or os.path.islink(root):
        raise GraphfixError(f"{root}: not a graphfix cache directory; not removing it")
    tag = os.path.join(root, _TAG_NAME)
    try:
        with open(tag, encoding="utf-8") as f:
            ours = "graphfix" in f.read()
    except OSError:
        ours = False
    if not ours:
        if os.listdir(root):
            raise GraphfixError(f"{root}: not a graphfix cache (no {_TAG_NAME} written by graphfix); "
                                "not removing it")
        os.rmdir(root)
        return f"removed {root}"
    try:
        shutil.rmtree(root)
    except OSError as e:
        raise GraphfixError(f"{root}: cannot remove the cache: {e.strerror or e}") from None
    return f"removed {root}"
