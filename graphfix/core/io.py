"""Reading and writing graphs: binary and text GraphDef, MetaGraphDef, SavedModel v1.

The format is sniffed from the content (the extension only breaks ties).
Every write is atomic: the bytes go to a temporary file in the target
directory, which then replaces the target with ``os.replace``; a failed run
leaves no partial file and an existing output untouched.
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import socket
import stat
import tempfile

from google.protobuf import text_format, unknown_fields

from graphfix.core.errors import GraphfixError
from graphfix.core.model import Model
from graphfix.core.tfimport import protos

PROTOBUF_LIMIT = 2**31 - 1
_NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")
_OP_NAME = re.compile(r"^[A-Za-z0-9_>.]+$")
_TEXT_START = re.compile(rb"^\s*(#|node\s*[{<]|versions\s*[{<]|library\s*[{<]|meta_info_def|graph_def|"
                         rb"saver_def|collection_def|signature_def|asset_file_def|object_graph_def|"
                         rb"saved_model_schema_version|meta_graphs|versions\s*:|debug_info)")


def load(path: str, keep_bytes: bool = True) -> Model:
    """Load a graph from ``path``: a ``.pb``/``.pbtxt`` GraphDef, a ``.meta``
    MetaGraphDef, or a SavedModel directory (or its ``saved_model.pb``).

    The model keeps the file's bytes so that it is written back
    byte-identical when nothing changed; ``keep_bytes=False`` lets them go
    once parsed (a ``check`` never writes the model; an unchanged model is
    then written as protobuf serializes it)."""
    model = _load(path)
    if not keep_bytes:
        model.raw = None
    return model


def _load(path) -> Model:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise GraphfixError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        return _load_saved_model_dir(path)
    raw = _read(path)
    if os.path.basename(path) in ("saved_model.pb", "saved_model.pbtxt"):
        model = _parse_saved_model(raw, path, text=path.endswith(".pbtxt"))
        if model is not None:
            return model
    return _parse(raw, path)


def _read(path: str) -> bytes:
    """The bytes of regular file ``path``, refusing (without reading) what cannot be a graph."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise GraphfixError(f"{path}: cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise GraphfixError(f"{path}: not a regular file (a device, pipe or socket); save the graph to a file first")
    if st.st_size > PROTOBUF_LIMIT:
        raise GraphfixError(
            f"{path}: {st.st_size} bytes is over protobuf's 2 GB message limit, so no TensorFlow tool can read it "
            "as one message; export the graph without its weights as a .meta (tf.compat.v1.train.export_meta_graph)"
            " or a SavedModel, whose variables stay in checkpoint files")
    try:
        with open(path, "rb") as f:
            raw = f.read(PROTOBUF_LIMIT + 1)
    except OSError as e:
        raise GraphfixError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(raw) > PROTOBUF_LIMIT:
        raise GraphfixError(f"{path}: over protobuf's 2 GB message limit (it grew while being read)")
    if not raw.strip():
        raise GraphfixError(f"{path}: empty file")
    return raw


def _parse(raw: bytes, path: str) -> Model:
    text = _looks_like_text(raw)
    p = protos()
    ext = os.path.splitext(path)[1].lower()
    order = [("graph_def", p.graph_pb2.GraphDef), ("meta_graph", p.meta_graph_pb2.MetaGraphDef),
             ("saved_model", p.saved_model_pb2.SavedModel)]
    if ext == ".meta":
        order.insert(0, order.pop(1))
    if text:
        return _parse_text(raw, path, order)
    errors = []
    rejected = None  # why a message that parsed cleanly (no unknown fields) is still no graph
    for kind, cls in order:
        msg = cls()
        try:
            msg.ParseFromString(raw)
        except Exception as e:  # protobuf raises DecodeError (and others on garbage)
            errors.append(f"{kind}: {e}")
            continue
        model = _wrap(kind, msg, raw, path, text=False)
        if model is not None:
            return model
        if rejected is None and not _has_unknown_fields(msg):
            rejected = _reject_reason(kind, msg)
    if raw.lstrip()[:1] in (b"{", b"["):
        raise GraphfixError(f"{path}: looks like JSON, not a TensorFlow graph (GraphDef, MetaGraphDef or SavedModel)")
    if _is_text(raw):  # say what is wrong with it as text
        return _parse_text(raw, path, order, sniffed=False)
    vague = [cls for kind, cls in order if f"{kind}: Error parsing message" in errors]  # protobuf 4.x: no cause
    if any("MaxDepth" in e for e in errors) or any(_nested_too_deep(raw, cls.DESCRIPTOR) for cls in vague):
        raise GraphfixError(f"{path}: messages nested too deeply to parse (corrupt or hostile file)")
    for kind, cls in order:
        cut = _truncated(raw, cls)
        if cut:
            raise GraphfixError(f"{path}: truncated {_KIND_NAME[kind]}: {cut}")
    if rejected:
        raise GraphfixError(f"{path}: {rejected}")
    raise GraphfixError(f"{path}: not a TensorFlow graph: cannot parse it as a GraphDef, MetaGraphDef or SavedModel"
                        " (truncated or not a protobuf file?)")


def _parse_text(raw: bytes, path: str, order, sniffed: bool = True) -> Model:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise GraphfixError(f"{path}: not a valid text GraphDef/MetaGraphDef: not UTF-8 text") from None
    best = None  # the parse error that got furthest into the file: (line, column), message
    rejected = None
    for kind, cls in order:
        msg = cls()
        try:
            text_format.Parse(text, msg)
        except text_format.ParseError as e:
            pos = (e.GetLine() or 0, e.GetColumn() or 0)
            if best is None or pos > best[0]:
                best = (pos, (str(e).splitlines() or [type(e).__name__])[0])
            continue
        except RecursionError:
            raise GraphfixError(f"{path}: messages nested too deeply to parse (corrupt or hostile file)") from None
        model = _wrap(kind, msg, raw, path, text=True)
        if model is not None:
            return model
        rejected = rejected or _reject_reason(kind, msg)
    if rejected:
        raise GraphfixError(f"{path}: {rejected}")
    other = _other_text_message(text)
    if other:
        raise GraphfixError(f"{path}: is a text {other}, not a TensorFlow graph (GraphDef, MetaGraphDef or "
                            "SavedModel)")
    if not sniffed:
        raise GraphfixError(f"{path}: not a TensorFlow graph: a text file, but not a text GraphDef, MetaGraphDef "
                            f"or SavedModel ({best[1]})")
    raise GraphfixError(f"{path}: not a valid text GraphDef/MetaGraphDef: {best[1]}")


def _is_text(raw: bytes) -> bool:
    """UTF-8 without NUL or other binary control bytes (in the first 64 kB)."""
    head = raw[:65536]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the end
            return False
    return not any(b < 9 or 13 < b < 32 for b in head)


def _reject_reason(kind: str, msg) -> str | None:
    """Why a message that parsed is still not a graph graphfix can work on."""
    graph = {"graph_def": msg, "meta_graph": getattr(msg, "graph_def", None)}.get(kind)
    if kind == "saved_model":
        if not msg.meta_graphs:
            return "the SavedModel has no MetaGraphs"
        graph = msg.meta_graphs[_pick_meta_graph(msg)].graph_def
    if graph is None:
        return None
    if not graph.node:
        return "the graph has no nodes"
    for i, node in enumerate(graph.node):
        if not node.op or not _OP_NAME.match(node.op):
            return f"node #{i} ({node.name!r}) has an invalid op name {node.op!r}"
        if not _NODE_NAME.match(node.name):
            return f"node #{i} has an invalid name {node.name!r}"
    return None


def _other_text_message(text: str) -> str | None:
    """'NodeDef …' / 'OpList …' if ``text`` is that message instead of a graph."""
    p = protos()
    for cls, what in ((p.node_def_pb2.NodeDef, "NodeDef (a single node; a GraphDef holds nodes as `node { ... }`)"),
                      (p.op_def_pb2.OpList, "OpList (op definitions, not a graph)"),
                      (p.op_def_pb2.OpDef, "OpDef (an op definition, not a graph)")):
        msg = cls()
        try:
            text_format.Parse(text, msg)
        except (text_format.ParseError, RecursionError):
            continue
        if msg.ListFields():
            return what
    return None


def _looks_like_text(raw: bytes) -> bool:
    head = raw[:4096]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at 4096; retry shorter before deciding.
        try:
            head[:4000].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return bool(_TEXT_START.match(head))


def _wrap(kind: str, msg, raw: bytes, path: str, text: bool) -> Model | None:
    """A Model if ``msg`` really is a well-formed message of ``kind``, else None."""
    if _has_unknown_fields(msg):
        return None
    if kind == "graph_def":
        if not msg.node or not _nodes_ok(msg):
            return None
        return Model(kind=kind, text=text, graph_def=msg, path=path, raw=raw)
    if kind == "meta_graph":
        if not msg.HasField("graph_def") or not msg.graph_def.node or not _nodes_ok(msg.graph_def):
            return None
        if _has_unknown_fields(msg.graph_def):
            return None
        return Model(kind=kind, text=text, graph_def=msg.graph_def, meta_graph=msg, path=path, raw=raw)
    if kind == "saved_model":
        if not msg.meta_graphs:
            return None
        index = _pick_meta_graph(msg)
        meta = msg.meta_graphs[index]
        if not meta.graph_def.node or not _nodes_ok(meta.graph_def):
            return None
        return Model(kind=kind, text=text, graph_def=meta.graph_def, meta_graph=meta, saved_model=msg,
                     meta_index=index, path=path, raw=raw)
    return None


_MAX_NESTING = 100  # protobuf's (upb's) default limit: a message 101 levels below the root fails to parse


def _nested_too_deep(raw: bytes, descriptor) -> bool:
    """Whether ``raw``, read as a ``descriptor`` message, nests messages deeper than protobuf parses.

    protobuf 5+ names the cause ("Exceeded upb_DecodeOptions_MaxDepth"); 4.x, which TensorFlow 2.15
    requires, says only "Error parsing message" for every failure.  So walk the wire format with the
    schema (no recursion, no allocation) and count; malformed data is simply not "too deep".
    """
    stack = [[descriptor, 0, len(raw)]]  # the open messages: [descriptor, next byte, end]
    try:
        while stack:
            frame = stack[-1]
            desc, pos, end = frame
            if pos >= end:
                if pos > end:
                    return False
                stack.pop()
                continue
            key, pos = _varint(raw, pos)
            wire = key & 7
            if wire == 0:
                pos = _varint(raw, pos)[1]
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                size, pos = _varint(raw, pos)
                field = desc.fields_by_number.get(key >> 3)
                if field is not None and field.message_type is not None:
                    if pos + size > end:
                        return False
                    frame[1] = pos + size
                    if len(stack) > _MAX_NESTING:
                        return True
                    stack.append([field.message_type, pos, pos + size])
                    continue
                pos += size
            else:  # groups: TensorFlow's protos have none
                return False
            frame[1] = pos
    except IndexError:  # a varint runs off the end
        return False
    return False


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = raw[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80 or shift > 63:
            return value, pos
        shift += 7


_KIND_NAME = {"graph_def": "GraphDef", "meta_graph": "MetaGraphDef", "saved_model": "SavedModel"}


def _truncated(raw: bytes, cls) -> str | None:
    """How ``raw`` is cut, if it is a well-formed ``cls`` message (each top-level
    field known and, if a message, parseable) up to a last field that runs past
    the end of the file: an interrupted copy or download."""
    fields = cls.DESCRIPTOR.fields_by_number
    pos, complete = 0, 0
    try:
        while pos < len(raw):
            key, pos = _varint(raw, pos)
            field = fields.get(key >> 3)
            if field is None or key & 7 not in (0, 2):
                return None
            if key & 7 == 0:
                pos = _varint(raw, pos)[1]
            else:
                size, pos = _varint(raw, pos)
                if pos + size > len(raw):
                    if not complete or field.message_type is None:
                        return None
                    return (f"the file ends at byte {len(raw)}, {pos + size - len(raw)} byte(s) short of the end of "
                            f"field {field.name!r} #{complete + 1} (an interrupted copy or download?)")
                if field.message_type is not None:
                    field.message_type._concrete_class().ParseFromString(raw[pos:pos + size])
                pos += size
            complete += 1
    except Exception:  # noqa: BLE001 — a varint off the end, a field that is not its message: not just cut
        return None
    return None


def _has_unknown_fields(msg) -> bool:
    try:
        return len(unknown_fields.UnknownFieldSet(msg)) > 0
    except Exception:  # older protobuf
        return bool(msg.UnknownFields()) if hasattr(msg, "UnknownFields") else False


def _nodes_ok(graph_def) -> bool:
    for node in graph_def.node:
        if not node.op or not _NODE_NAME.match(node.name) or not _OP_NAME.match(node.op):
            return False
    return True


def _pick_meta_graph(saved) -> int:
    """The MetaGraph to repair: the one tagged 'train', else 'serve', else the first."""
    for wanted in ("train", "serve"):
        for i, meta in enumerate(saved.meta_graphs):
            if wanted in meta.meta_info_def.tags:
                return i
    return 0


def _load_saved_model_dir(path: str) -> Model:
    for name, text in (("saved_model.pb", False), ("saved_model.pbtxt", True)):
        file = os.path.join(path, name)
        if os.path.isfile(file):
            raw = _read(file)
            model = _parse_saved_model(raw, file, text)
            if model is None:
                cut = None if text else _truncated(raw, protos().saved_model_pb2.SavedModel)
                raise GraphfixError(f"{file}: truncated SavedModel: {cut}" if cut else
                                    f"{file}: corrupt SavedModel: cannot parse saved_model.pb")
            model.path = path
            return model
    raise GraphfixError(f"{path}: is a directory but not a SavedModel (no saved_model.pb inside)")


def _parse_saved_model(raw: bytes, file: str, text: bool) -> Model | None:
    msg = protos().saved_model_pb2.SavedModel()
    try:
        if text:
            text_format.Parse(raw.decode("utf-8"), msg)
        else:
            msg.ParseFromString(raw)
    except Exception:
        return None
    return _wrap("saved_model", msg, raw, file, text)


# ---------------------------------------------------------------- writing

TEXT_EXTENSIONS = (".pbtxt", ".txt", ".prototxt")
BINARY_EXTENSIONS = (".pb", ".meta", ".graphdef")
CONVERSIONS = {"graphdef": "graph_def", "metagraph": "meta_graph"}


def output_format(model: Model, out_path: str, to: str | None = None) -> tuple[str, bool]:
    """(kind, text) to write ``model`` to ``out_path``.

    Kind: the input's — a GraphDef stays a GraphDef, a MetaGraphDef a
    MetaGraphDef, a SavedModel a SavedModel, whatever the extension — unless
    ``to`` (``graphdef`` or ``metagraph``) asks for a conversion.
    Encoding: ``.pbtxt``/``.txt``/``.prototxt`` write text, ``.pb``/``.meta``/
    ``.graphdef`` binary, any other extension (or none) the input's encoding.
    """
    if to is not None and to not in CONVERSIONS:
        raise GraphfixError(f"--to must be one of {', '.join(CONVERSIONS)}, not {to!r}")
    ext = os.path.splitext(out_path)[1].lower()
    text = model.text
    if ext in TEXT_EXTENSIONS:
        text = True
    elif ext in BINARY_EXTENSIONS:
        text = False
    kind = CONVERSIONS[to] if to else model.kind
    return kind, text


def dropped(model: Model, kind: str) -> list[str]:
    """What writing ``model`` as ``kind`` leaves out (empty when nothing is lost)."""
    what: list[str] = []
    if model.kind == "saved_model" and kind != "saved_model":
        others = len(model.saved_model.meta_graphs) - 1
        if others:
            what.append(f"{others} other MetaGraph{'s' if others != 1 else ''} of the SavedModel")
        if os.path.isdir(model.path):
            extra = sorted(n for n in os.listdir(model.path) if n not in ("saved_model.pb", "saved_model.pbtxt"))
            if extra:
                what.append(f"the SavedModel directory's {', '.join(extra)}")
    meta = model.meta_graph
    if meta is not None and kind == "graph_def":
        if meta.HasField("meta_info_def"):
            what.append("meta_info_def (tags, op list, versions)")
        if meta.collection_def:
            names = sorted(meta.collection_def)
            what.append(f"{len(names)} collection{'s' if len(names) != 1 else ''} ({', '.join(names[:6])}"
                        f"{', …' if len(names) > 6 else ''})")
        if meta.HasField("saver_def"):
            what.append("saver_def")
        if meta.signature_def:
            names = sorted(meta.signature_def)
            what.append(f"{len(names)} signature{'s' if len(names) != 1 else ''} ({', '.join(names[:6])})")
        if meta.asset_file_def:
            what.append(f"{len(meta.asset_file_def)} asset file def(s)")
        if meta.HasField("object_graph_def"):
            what.append("object_graph_def")
    return what


def serialize(model: Model, kind: str | None = None, text: bool | None = None) -> bytes:
    """The bytes of ``model`` as ``kind``; the input bytes when nothing changed."""
    kind = kind or model.kind
    text = model.text if text is None else text
    if not model.changed and model.raw is not None and kind == model.kind and text == model.text:
        return model.raw
    if kind == "graph_def":
        msg = model.graph_def
    elif kind == "meta_graph":
        if model.meta_graph is not None:
            msg = model.meta_graph
        else:
            msg = protos().meta_graph_pb2.MetaGraphDef()
            msg.graph_def.CopyFrom(model.graph_def)
    else:
        msg = model.saved_model
    if text:
        return text_format.MessageToString(msg).encode("utf-8")
    data = msg.SerializeToString(deterministic=True)
    if len(data) > PROTOBUF_LIMIT:  # protobuf writes it, but nothing can read it back
        raise GraphfixError(f"the output would be {len(data)} bytes, over protobuf's 2 GB message limit; "
                            "write a .meta or SavedModel without the weights (variables in checkpoint files)")
    return data


def save(model: Model, path: str, to: str | None = None) -> list[str]:
    """Write ``model`` to ``path`` atomically (a SavedModel loaded from a
    directory as a directory); ``to`` converts (see :func:`output_format`).
    Returns what the conversion left out (see :func:`dropped`)."""
    path = os.fspath(path)
    kind, text = output_format(model, path, to)
    if kind == "saved_model" and (os.path.isdir(model.path) or not os.path.splitext(path)[1]):
        _save_saved_model_dir(model, path)
        return []
    atomic_write(path, serialize(model, kind, text))
    return dropped(model, kind)


def check_writable(path: str) -> None:
    """Raise a GraphfixError now if ``path`` cannot be written later."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise GraphfixError(f"{path}: output path is a directory")
    if os.path.exists(path) and not os.path.isfile(path):  # never replace /dev/null & co. by a file
        raise GraphfixError(f"{path}: output path is not a regular file (a device, pipe or socket)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        if os.path.exists(parent):
            raise GraphfixError(f"{path}: {parent} is not a directory")
        raise GraphfixError(f"{path}: output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise GraphfixError(f"{path}: output directory {parent} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise GraphfixError(f"{path}: output file is not writable")


# Temporary files are hidden siblings of the target named after it, the host
# and the writing process: ``.<name>.graphfix-<host>-<pid>.<random>.tmp``.  An
# interrupted run (Ctrl-C, SIGTERM) removes its own; one killed outright
# (SIGKILL, power loss) cannot, so every write first removes those of the same
# target whose process is gone.
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.graphfix-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"  # a zombie is gone too
    except (OSError, IndexError):
        return True


def remove_stale_temps(path: str) -> list[str]:
    """Remove temp files/dirs left next to ``path`` by killed graphfix runs on this host."""
    parent = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path) + _HOST + "-"
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        full = os.path.join(parent, name)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
            removed.append(full)
        except OSError:
            pass
    return removed


def _mktemp(path: str, directory: bool = False):
    """A new temp directory (its path), or file (``(fd, path)``), next to ``path``."""
    parent = os.path.dirname(os.path.abspath(path))
    prefix = f"{_temp_prefix(path)}{_HOST}-{os.getpid()}."
    if directory:
        return tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".tmp")
    return tempfile.mkstemp(dir=parent, prefix=prefix, suffix=".tmp")


def _unlink_quietly(path: str | None) -> None:
    if path is None:
        return
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)
    except OSError:
        pass


def check_distinct(path: str, what: str, others) -> None:
    """Raise if ``path`` (written as ``what``) is one of ``others`` (the input or output graph)."""
    for other in others:
        if not other:
            continue
        try:
            same = os.path.samefile(path, other)
        except OSError:
            same = os.path.abspath(path) == os.path.abspath(other)
        if same:
            raise GraphfixError(f"{what} {path}: is also the graph {other}; write it to another file")


def atomic_write(path: str, data: bytes) -> None:
    check_writable(path)
    remove_stale_temps(path)
    fd, tmp = None, None
    try:
        fd, tmp = _mktemp(path)
        with os.fdopen(fd, "wb") as f:
            fd = None
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):
            try:
                os.chmod(tmp, os.stat(path).st_mode & 0o7777)
            except OSError:
                pass
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise GraphfixError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        if fd is not None:
            os.close(fd)
        _unlink_quietly(tmp)


def _exchange(a: str, b: str) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err))


def _save_saved_model_dir(model: Model, path: str) -> None:
    """Write a SavedModel directory: saved_model.pb plus the source's variables/ and assets/."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise GraphfixError(f"{path}: exists and is not a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise GraphfixError(f"{path}: output directory {parent} does not exist")
    src_dir = model.path if os.path.isdir(model.path) else os.path.dirname(model.path)
    name = "saved_model.pbtxt" if model.text else "saved_model.pb"
    data = serialize(model, "saved_model", model.text)
    if os.path.abspath(src_dir) == os.path.abspath(path):
        atomic_write(os.path.join(path, name), data)
        return
    remove_stale_temps(path)
    tmp = None
    try:
        tmp = _mktemp(path, directory=True)
        for sub in sorted(os.listdir(src_dir)):
            if sub in ("saved_model.pb", "saved_model.pbtxt"):
                continue
            s = os.path.join(src_dir, sub)
            (shutil.copytree if os.path.isdir(s) else shutil.copy2)(s, os.path.join(tmp, sub))
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
        if os.path.isdir(path):
            if _exchange(tmp, path):  # tmp now holds the old directory, removed below
                return
            old = _mktemp(path, directory=True)  # no atomic swap: two renames, old kept hidden meanwhile
            os.replace(path, old)
            os.replace(tmp, path)
            tmp = old
        else:
            os.replace(tmp, path)
            tmp = None
    except OSError as e:
        raise GraphfixError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        _unlink_quietly(tmp)
