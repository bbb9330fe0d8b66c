"""Reading and writing every supported container; format sniffing; atomic writes."""
import os

import pytest
from google.protobuf import text_format

import graphfix
from graphfix.core import io
from graphfix.core.errors import GraphfixError
from tests.helpers import EXAMPLES, write

DETECTION = os.path.join(EXAMPLES, "detection.pb")


def test_binary_graphdef_roundtrip_is_byte_identical(tmp_path):
    model = graphfix.load(DETECTION)
    assert model.kind == "graph_def" and not model.text
    out = tmp_path / "same.pb"
    graphfix.save(model, out)
    assert out.read_bytes() == open(DETECTION, "rb").read()


def test_text_and_meta_are_sniffed_from_content_not_extension(tmp_path, tf):
    model = graphfix.load(DETECTION)
    text = text_format.MessageToString(model.graph_def).encode()
    p = write(tmp_path / "graph.bin", text)  # misleading extension
    m = graphfix.load(p)
    assert m.kind == "graph_def" and m.text and m.graph_def == model.graph_def

    meta = tf.compat.v1.MetaGraphDef()
    meta.graph_def.CopyFrom(model.graph_def)
    meta.collection_def["train_op"].node_list.value.append("train")
    p = write(tmp_path / "model.pb", meta.SerializeToString())  # a .meta saved as .pb
    m = graphfix.load(p)
    assert m.kind == "meta_graph" and m.graph_def == model.graph_def
    assert list(m.meta_graph.collection_def["train_op"].node_list.value) == ["train"]


def test_output_encoding_follows_extension_kind_does_not(tmp_path):
    """Issue #10: the extension picks text or binary; the kind changes only with
    ``to`` (tests/test_output_kind.py covers every combination)."""
    model = graphfix.load(DETECTION)
    graphfix.save(model, tmp_path / "g.pbtxt")
    back = graphfix.load(tmp_path / "g.pbtxt")
    assert back.text and back.graph_def == model.graph_def
    graphfix.save(model, tmp_path / "g.meta")
    back = graphfix.load(tmp_path / "g.meta")
    assert back.kind == "graph_def" and not back.text and back.graph_def == model.graph_def
    assert graphfix.save(model, tmp_path / "m.meta", to="metagraph") == []
    back = graphfix.load(tmp_path / "m.meta")
    assert back.kind == "meta_graph" and back.graph_def == model.graph_def


@pytest.mark.parametrize("content,message", [
    (b"", "empty file"),
    (b"   \n", "empty file"),
    (b'{"node": []}', "JSON"),
    (b"\x00\xff\x13garbage\x99" * 10, "not a TensorFlow graph"),
    (b"node { name: 'a' op: 'Const' ", "not a valid text"),
])
def test_bad_files_raise_one_clear_error(tmp_path, content, message):
    p = write(tmp_path / "bad.pb", content)
    with pytest.raises(GraphfixError, match=message):
        graphfix.load(p)


def test_truncated_graphdef_is_rejected(tmp_path):
    raw = open(DETECTION, "rb").read()
    p = write(tmp_path / "cut.pb", raw[: len(raw) // 2])
    with pytest.raises(GraphfixError):
        graphfix.load(p)


def test_atomic_write_leaves_existing_file_on_failure(tmp_path, monkeypatch):
    target = write(tmp_path / "out.pb", b"old contents")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(GraphfixError, match="No space left"):
        io.atomic_write(str(target), b"new contents")
    assert open(target, "rb").read() == b"old contents"
    assert os.listdir(tmp_path) == ["out.pb"]  # no temp file left behind
