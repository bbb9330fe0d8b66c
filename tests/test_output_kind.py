"""Output keeps its input's kind (issue #10).

A GraphDef stays a GraphDef, a MetaGraphDef a MetaGraphDef and a SavedModel a
SavedModel whatever OUT's extension; only ``--to graphdef|metagraph``
converts, and the report names what a conversion drops.  Encoding:
``.pbtxt``/``.txt``/``.prototxt`` write text, ``.pb``/``.meta``/``.graphdef``
binary, any other extension (or none) the input's encoding.  Every kind x
encoding x extension combination round-trips with nothing lost, rewritten or
not; the issue's case — a *text* MetaGraphDef named ``.pb`` rewritten to
``fixed.pb`` — loads with ``import_meta_graph``.
"""
import os

import pytest
from google.protobuf import text_format

import graphfix
from tests.helpers import cli, run_cli
from tests.test_meta_saved_model import _saved_model, batch, detection

OUT_NAMES = ["fixed.pb", "fixed.pbtxt", "fixed.meta", "fixed.txt", "fixed", "fixed.graph"]
SOURCES = ["graphdef.pb", "graphdef_text.pbtxt", "graphdef_text_named.pb", "meta.meta", "meta_text.pbtxt",
           "metrics_export_meta_graph.pb"]  # the last: a TEXT MetaGraphDef named .pb (TensorFlow's test data)


def _expect_text(out_name, input_text):
    ext = os.path.splitext(out_name)[1]
    return True if ext in (".pbtxt", ".txt") else False if ext in (".pb", ".meta") else input_text


@pytest.fixture(scope="module")
def sources(tf, tmp_path_factory):
    d = tmp_path_factory.mktemp("sources")
    g = tf.Graph()
    with g.as_default():
        t = detection(tf)
        saver = tf.compat.v1.train.Saver()
        meta = tf.compat.v1.train.export_meta_graph(saver_def=saver.as_saver_def())
        sig = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(
            inputs={"features": t["x"]}, outputs={"scores": t["out"]})
    meta.signature_def["serving_default"].CopyFrom(sig)
    assert meta.collection_def and meta.HasField("saver_def")
    gd = meta.graph_def
    files = {
        "graphdef.pb": gd.SerializeToString(deterministic=True),
        "graphdef_text.pbtxt": text_format.MessageToString(gd).encode(),
        "graphdef_text_named.pb": text_format.MessageToString(gd).encode(),
        "meta.meta": meta.SerializeToString(deterministic=True),
        "meta_text.pbtxt": text_format.MessageToString(meta).encode(),
        "metrics_export_meta_graph.pb": text_format.MessageToString(meta).encode(),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    _saved_model(tf, d / "saved")
    return d


def _same_content(a, b):
    """Nothing lost: the whole message (graph and container) is equal."""
    assert a.kind == b.kind
    if a.kind == "graph_def":
        assert a.graph_def == b.graph_def
    elif a.kind == "meta_graph":
        assert a.meta_graph == b.meta_graph
    else:
        assert a.saved_model == b.saved_model


@pytest.mark.parametrize("out_name", OUT_NAMES)
@pytest.mark.parametrize("src", SOURCES)
@pytest.mark.parametrize("rewritten", [False, True], ids=["unchanged", "rewritten"])
def test_kind_kept_encoding_by_extension(sources, tmp_path, src, out_name, rewritten):
    model = graphfix.load(sources / src)
    assert model.kind == ("meta_graph" if src.startswith(("meta", "metrics")) else "graph_def")
    fixed = graphfix.rewrite(model)[0] if rewritten else model
    assert fixed.changed == rewritten
    out = tmp_path / out_name
    assert graphfix.save(fixed, out) == []
    back = graphfix.load(out)
    assert back.kind == model.kind, (src, out_name)
    assert back.text == _expect_text(out_name, model.text), (src, out_name)
    _same_content(fixed, back)
    if not rewritten and back.text == model.text:
        assert out.read_bytes() == (sources / src).read_bytes()  # unchanged: byte-identical


@pytest.mark.parametrize("out_name", ["fixed.pb", "fixed.pbtxt", "fixed", "fixed.meta"])
@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_saved_model_stays_a_saved_model(tf, sources, tmp_path, out_name, text):
    src = sources / "saved"
    if text:  # the same SavedModel with a text saved_model.pbtxt
        src = tmp_path / "saved_text"
        import shutil

        shutil.copytree(sources / "saved", src)
        model = graphfix.load(src)
        (src / "saved_model.pb").unlink()
        (src / "saved_model.pbtxt").write_text(text_format.MessageToString(model.saved_model))
    model = graphfix.load(src)
    assert model.kind == "saved_model" and model.text == text
    fixed, report = graphfix.rewrite(model)
    assert report.fixed >= 1
    out = tmp_path / out_name
    assert graphfix.save(fixed, out) == []
    assert out.is_dir() and (out / "variables").is_dir() and (out / "assets").is_dir()
    back = graphfix.load(out)
    assert back.kind == "saved_model" and back.text == text
    _same_content(fixed, back)


@pytest.mark.parametrize("src,to,lost", [
    ("meta.meta", "graphdef", ["meta_info_def", "collections", "saver_def", "1 signature (serving_default)"]),
    ("metrics_export_meta_graph.pb", "graphdef", ["collections", "saver_def", "signature"]),
    ("graphdef.pb", "metagraph", []),
    ("graphdef_text.pbtxt", "metagraph", []),
    ("meta.meta", "metagraph", []),
    ("graphdef.pb", "graphdef", []),
])
def test_conversion_names_what_it_drops(sources, tmp_path, src, to, lost):
    model = graphfix.load(sources / src)
    fixed, _ = graphfix.rewrite(model)
    out = tmp_path / "converted.pb"
    dropped = graphfix.save(fixed, out, to=to)
    back = graphfix.load(out)
    assert back.kind == {"graphdef": "graph_def", "metagraph": "meta_graph"}[to]
    assert back.graph_def == fixed.graph_def  # the graph itself is never lost
    assert all(any(word in d for d in dropped) for word in lost), dropped
    assert bool(dropped) == bool(lost), dropped
    if model.kind == "meta_graph" and to == "metagraph":
        assert back.meta_graph == fixed.meta_graph


def test_saved_model_to_metagraph_names_what_it_drops(sources, tmp_path):
    model = graphfix.load(sources / "saved")
    fixed, _ = graphfix.rewrite(model)
    dropped = graphfix.save(fixed, tmp_path / "serve.meta", to="metagraph")
    back = graphfix.load(tmp_path / "serve.meta")
    assert back.kind == "meta_graph" and back.meta_graph == fixed.meta_graph
    assert any("assets" in d and "variables" in d for d in dropped), dropped


def test_text_meta_graph_named_pb_stays_a_meta_graph(tf, sources, tmp_path):
    """The issue's case, through the CLI: TensorFlow's metrics_export_meta_graph.pb is
    a text MetaGraphDef; rewritten to fixed.pb it must stay one (binary now: .pb)."""
    src = sources / "metrics_export_meta_graph.pb"
    out = tmp_path / "fixed.pb"
    r = run_cli("rewrite", src, out, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert '"dropped"' not in r.stdout
    back = graphfix.load(out)
    assert back.kind == "meta_graph" and not back.text
    orig = graphfix.load(src).meta_graph
    assert sorted(back.meta_graph.collection_def) == sorted(orig.collection_def)
    assert back.meta_graph.saver_def == orig.saver_def
    assert back.meta_graph.signature_def == orig.signature_def
    g = tf.Graph()
    with g.as_default():
        tf.compat.v1.train.import_meta_graph(str(out))
        assert g.get_collection("train_op") and g.get_collection("trainable_variables")
        x, labels = batch(positive=False)  # the hazard's trigger: no positive anchor
        with tf.compat.v1.Session(graph=g) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            s.run(g.get_collection("train_op")[0], {"features:0": x, "labels:0": labels})
            import numpy as np

            assert all(np.all(np.isfinite(v)) for v in s.run(tf.compat.v1.global_variables()))


def test_cli_to_graphdef_reports_what_it_dropped(sources, tmp_path):
    out = tmp_path / "plain.pb"
    r = cli("rewrite", sources / "meta.meta", out, "--to", "graphdef")
    assert r.returncode == 0, r.stderr
    assert "converted; dropped" in r.stdout and "saver_def" in r.stdout and "collections" in r.stdout
    assert graphfix.load(out).kind == "graph_def"
    r = run_cli("rewrite", sources / "meta.meta", out, "--to", "savedmodel")
    assert r.returncode == 2 and r.stderr.startswith("graphfix: error:") and len(r.stderr.splitlines()) == 1
