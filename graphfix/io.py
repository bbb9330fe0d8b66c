"""Reading and writing graphs: binary and text GraphDef, MetaGraphDef, SavedModel v1.

The format is sniffed from the content (the extension only breaks ties).
Every write is atomic: the bytes go to a temporary file in the target
directory, which then replaces the target with ``os.replace``; a failed run
leaves no partial file and an existing output untouched.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile

from graphfix.errors import GraphfixError
from graphfix.model import Model
from graphfix.tfimport import protos

PROTOBUF_LIMIT = 2**31 - 1
_NODE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")
_OP_NAME = re.compile(r"^[A-Za-z0-9_>.]+$")
_TEXT_START = re.compile(rb"^\s*(#|node\s*[{<]|versions\s*[{<]|library\s*[{<]|meta_info_def|graph_def|"
                         rb"saver_def|collection_def|signature_def|asset_file_def|object_graph_def|"
                         rb"saved_model_schema_version|meta_graphs|versions\s*:|debug_info)")


def load(path: str) -> Model:
    """Load a graph from ``path``: a ``.pb``/``.pbtxt`` GraphDef, a ``.meta``
    MetaGraphDef, or a SavedModel directory (or its ``saved_model.pb``)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise GraphfixError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        return _load_saved_model_dir(path)
    size = os.path.getsize(path)
    if size > PROTOBUF_LIMIT:
        raise GraphfixError(
            f"{path}: {size} bytes is over protobuf's 2 GB message limit; "
            "export the graph without its weights as a .meta or SavedModel (variables stay in checkpoint files)"
        )
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise GraphfixError(f"{path}: cannot read: {e.strerror or e}") from None
    if not raw.strip():
        raise GraphfixError(f"{path}: empty file")
    if os.path.basename(path) in ("saved_model.pb", "saved_model.pbtxt"):
        model = _parse_saved_model(raw, path, text=path.endswith(".pbtxt"))
        if model is not None:
            return model
    return _parse(raw, path)


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
    if raw.lstrip()[:1] in (b"{", b"["):
        raise GraphfixError(f"{path}: looks like JSON, not a TensorFlow graph (GraphDef, MetaGraphDef or SavedModel)")
    raise GraphfixError(f"{path}: not a TensorFlow graph: cannot parse it as a GraphDef, MetaGraphDef or SavedModel"
                        " (truncated or not a protobuf file?)")


def _parse_text(raw: bytes, path: str, order) -> Model:
    from google.protobuf import text_format

    first_error = None
    for kind, cls in order:
        msg = cls()
        try:
            text_format.Parse(raw.decode("utf-8"), msg)
        except (text_format.ParseError, UnicodeDecodeError) as e:
            if first_error is None:
                first_error = str(e).splitlines()[0] if str(e) else type(e).__name__
            continue
        model = _wrap(kind, msg, raw, path, text=True)
        if model is not None:
            return model
    raise GraphfixError(f"{path}: not a valid text GraphDef/MetaGraphDef: {first_error}")


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


def _has_unknown_fields(msg) -> bool:
    try:
        from google.protobuf import unknown_fields

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
            with open(file, "rb") as f:
                raw = f.read()
            if not raw.strip():
                raise GraphfixError(f"{file}: empty file")
            model = _parse_saved_model(raw, file, text)
            if model is None:
                raise GraphfixError(f"{file}: corrupt SavedModel: cannot parse saved_model.pb")
            model.path = path
            return model
    raise GraphfixError(f"{path}: is a directory but not a SavedModel (no saved_model.pb inside)")


def _parse_saved_model(raw: bytes, file: str, text: bool) -> Model | None:
    msg = protos().saved_model_pb2.SavedModel()
    try:
        if text:
            from google.protobuf import text_format

            text_format.Parse(raw.decode("utf-8"), msg)
        else:
            msg.ParseFromString(raw)
    except Exception:
        return None
    return _wrap("saved_model", msg, raw, file, text)


# ---------------------------------------------------------------- writing

def output_format(model: Model, out_path: str) -> tuple[str, bool]:
    """(kind, text) to write ``model`` to ``out_path``: the input's kind unless
    the output's extension names another."""
    ext = os.path.splitext(out_path)[1].lower()
    text = model.text
    if ext in (".pbtxt", ".txt", ".prototxt"):
        text = True
    elif ext in (".pb", ".meta", ".graphdef"):
        text = False
    kind = model.kind
    if ext == ".meta" and kind == "graph_def":
        kind = "meta_graph"
    elif ext in (".pb", ".pbtxt") and kind == "meta_graph" and not out_path.endswith("saved_model.pb"):
        kind = "graph_def"
    if model.kind == "saved_model" and os.path.isdir(model.path) and ext == "":
        kind = "saved_model"
    return kind, text


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
        from google.protobuf import text_format

        return text_format.MessageToString(msg).encode("utf-8")
    return msg.SerializeToString(deterministic=True)


def save(model: Model, path: str) -> None:
    """Write ``model`` to ``path`` atomically (a SavedModel as a directory)."""
    path = os.fspath(path)
    kind, text = output_format(model, path)
    if kind == "saved_model" and model.kind == "saved_model" and (os.path.isdir(model.path) or not
                                                                    os.path.splitext(path)[1]):
        _save_saved_model_dir(model, path)
        return
    atomic_write(path, serialize(model, kind, text))


def check_writable(path: str) -> None:
    """Raise a GraphfixError now if ``path`` cannot be written later."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise GraphfixError(f"{path}: output path is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise GraphfixError(f"{path}: output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise GraphfixError(f"{path}: output directory {parent} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise GraphfixError(f"{path}: output file is not writable")


def atomic_write(path: str, data: bytes) -> None:
    check_writable(path)
    parent = os.path.dirname(os.path.abspath(path))
    fd, tmp = None, None
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
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
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


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
    try:
        tmp = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(path) + ".")
    except OSError as e:
        raise GraphfixError(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        for sub in sorted(os.listdir(src_dir)):
            if sub in ("saved_model.pb", "saved_model.pbtxt"):
                continue
            s = os.path.join(src_dir, sub)
            (shutil.copytree if os.path.isdir(s) else shutil.copy2)(s, os.path.join(tmp, sub))
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
        if os.path.isdir(path):
            old = path + ".graphfix-old"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise GraphfixError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
