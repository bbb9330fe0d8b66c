"""Bad input, through the CLI as a build pipeline runs it (issue #7).

Every kind of bad input gets exit status 2, exactly one line
``graphfix: error: …`` on stderr naming the problem (never a traceback, never
the "internal error" fallback, never a hang), and no new or changed file.

Most cases run the CLI in this process (``run_cli``: ``cli.main`` with stdout
and stderr captured down to the file descriptors, and a timeout), which is
the code a user's process runs from argument parsing to the exit status.  One
case of each kind also runs as a real ``python cli.py`` process (``REAL``):
reading, parsing, the graph's structure, the command line, the output path,
an op TensorFlow does not know, a file too big to parse — so that what only a
whole process shows (the interpreter's exit, TensorFlow's native start-up
output on fd 2) stays tested for every kind.
"""
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from google.protobuf import text_format

from graphfix.core.tfimport import protos
from tests.helpers import EXAMPLES, ROOT, cli, run_cli, write

DETECTION = os.path.join(EXAMPLES, "detection.pb")
HANG = 120  # seconds: a run that takes longer than this is a hang


def _graph_def(path=DETECTION):
    gd = protos().graph_pb2.GraphDef()
    gd.ParseFromString(open(path, "rb").read())
    return gd


def _node(gd, name):
    return next(n for n in gd.node if n.name == name)


def _mutated(fn, path=DETECTION) -> bytes:
    gd = _graph_def(path)
    fn(gd)
    return gd.SerializeToString()


def _snapshot(directory):
    """{relative path: bytes (None for a directory)} of everything under ``directory``."""
    res = {}
    for root, dirs, files in os.walk(directory):
        for d in dirs:
            res[os.path.relpath(os.path.join(root, d), directory)] = None
        for f in files:
            p = os.path.join(root, f)
            res[os.path.relpath(p, directory)] = open(p, "rb").read() if os.path.getsize(p) < 2**24 else \
                ("big", os.path.getsize(p))
    return res


def assert_one_error(r, needle):
    """Exit 2 and exactly one line ``graphfix: error: …`` containing ``needle``."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and r.stderr.endswith("\n"), r.stderr
    line = lines[0]
    assert line.startswith("graphfix: error: "), line
    assert "internal error" not in line and "Traceback" not in r.stderr, line
    assert needle.lower() in line.lower(), (needle, line)
    return line


# ---------------------------------------------------------------- graphs

_CYCLE_NO_MEAN = """
node { name: 'x' op: 'Placeholder' attr { key: 'dtype' value { type: DT_FLOAT } } }
node { name: 'a' op: 'AddV2' input: 'x' input: 'b' attr { key: 'T' value { type: DT_FLOAT } } }
node { name: 'b' op: 'Identity' input: 'a' attr { key: 'T' value { type: DT_FLOAT } } }
node { name: 'loss' op: 'Square' input: 'b' attr { key: 'T' value { type: DT_FLOAT } } }
"""

_SELF_LOOP = """
node { name: 'x' op: 'Placeholder' attr { key: 'dtype' value { type: DT_FLOAT } } }
node { name: 'a' op: 'AddV2' input: 'x' input: 'a' attr { key: 'T' value { type: DT_FLOAT } } }
"""


def _cycle_in_detection(gd):
    # loss/Sum reads loss/Abs; make loss/Abs read loss/Sum: a cycle upstream of the hazard.
    abs_ = _node(gd, "loss/Abs")
    abs_.input[0] = "loss/Sum"


def _missing_input(gd):
    _node(gd, "loss/Abs").input[0] = "loss/no_such_node"


def _duplicate(gd):
    gd.node.add().CopyFrom(_node(gd, "loss/Abs"))


def _drop_attr(node, key):
    def fn(gd):
        del _node(gd, node).attr[key]
    return fn


def _set_op(node, op):
    def fn(gd):
        _node(gd, node).op = op
    return fn


def _one_input_div(gd):
    n = next(n for n in gd.node if n.op == "AddV2" and n.name == "loss/total")
    n.op = "RealDiv"
    del n.input[1]


def _mistyped_input(gd):
    # A float Abs reads the int32 axes of the hazardous Mean (which the guard
    # reads too): TensorFlow's importer rejects this.
    axes = _node(gd, "loss/Mean_1").input[1]
    n = gd.node.add(name="extra_abs", op="Abs")
    n.input.append(axes)
    n.attr["T"].type = 1


def _data_after_control(gd):
    n = _node(gd, "loss/Abs")
    n.input.insert(0, "^loss/Sum/reduction_indices")


def _deep_text(depth) -> bytes:
    value = "i: 1"
    for _ in range(depth):
        value = 'func { name: "f" attr { key: "k" value { ' + value + " } } }"
    return ('node { name: "a" op: "NoOp" attr { key: "x" value { ' + value + " } } }\n").encode()


def _deep_binary(depth) -> bytes:
    gd = protos().graph_pb2.GraphDef()
    av = gd.node.add(name="a", op="NoOp").attr["x"]
    for _ in range(depth):
        av = av.func.attr["k"]
    av.i = 1
    return gd.SerializeToString()


def _mean_axes_from_unknown_op(gd):
    mean = _node(gd, "loss/Mean_1")
    _node(gd, mean.input[1]).op = "MyCustomAxes"


# ---------------------------------------------------------------- cases
# Each case: (name, setup(tmp) -> argv, needle).  ``tmp`` holds the inputs;
# the output (when there is one) is tmp/"out.pb" unless the case says otherwise.

def _file(name, data):
    def setup(tmp):
        return ["rewrite", write(tmp / name, data), tmp / "out.pb"]
    return setup


def _check_file(name, data):
    def setup(tmp):
        return ["check", write(tmp / name, data)]
    return setup


def _dir_not_saved_model(tmp):
    d = tmp / "model_dir"
    d.mkdir()
    write(d / "variables.index", b"not a graph")
    return ["rewrite", d, tmp / "out_dir"]


def _corrupt_saved_model(tmp):
    d = tmp / "saved"
    d.mkdir()
    write(d / "saved_model.pb", random.Random(7).randbytes(4000))
    (d / "variables").mkdir()
    return ["rewrite", d, tmp / "saved_out"]


def _meta_bytes() -> bytes:
    meta = protos().meta_graph_pb2.MetaGraphDef()
    meta.meta_info_def.tags.append("serve")
    meta.graph_def.CopyFrom(_graph_def())
    return meta.SerializeToString()


def _truncated_saved_model(tmp):
    sm = protos().saved_model_pb2.SavedModel(saved_model_schema_version=1)
    sm.meta_graphs.add().ParseFromString(_meta_bytes())
    d = tmp / "saved_cut"
    d.mkdir()
    write(d / "saved_model.pb", sm.SerializeToString()[:-5000])
    return ["rewrite", d, tmp / "saved_out"]


def _big_saved_model(tmp):
    d = tmp / "saved_big"
    d.mkdir()
    with open(d / "saved_model.pb", "wb") as f:
        f.truncate(2**31 + 10)
    return ["rewrite", d, tmp / "saved_out"]


def _over_2gb(tmp):
    p = tmp / "huge.pb"
    with open(p, "wb") as f:  # sparse: nothing is written
        f.truncate(2**31 + 10)
    return ["rewrite", p, tmp / "out.pb"]


def _args(*argv):
    def setup(tmp):
        return [a.replace("{tmp}", str(tmp)) if isinstance(a, str) else a for a in argv]
    return setup


def _out(path):
    def setup(tmp):
        return ["rewrite", DETECTION, path(tmp)]
    return setup


def _report_over_input(tmp):
    inp = write(tmp / "model.pb", open(DETECTION, "rb").read())
    return ["rewrite", inp, tmp / "out.pb", "--report", inp]


def _report_over_output(tmp):
    return ["rewrite", DETECTION, tmp / "out.pb", "--report", tmp / "out.pb"]


def _parent_is_file(tmp):
    f = write(tmp / "plain_file", b"x")
    return ["rewrite", DETECTION, os.path.join(f, "out.pb")]


RND = random.Random(1234)
CASES = [
    ("empty file", _file("empty.pb", b""), "empty file"),
    ("whitespace only", _file("blank.pbtxt", b"  \n\t\n"), "empty file"),
    ("random bytes small", _file("random.pb", RND.randbytes(200)), "not a TensorFlow graph"),
    ("random bytes 5 MB", _file("random_big.pb", RND.randbytes(5 * 2**20)), "not a TensorFlow graph"),
    ("truncated GraphDef", _file("cut.pb", open(DETECTION, "rb").read()[:20000]),
     "truncated GraphDef: the file ends at byte 20000"),
    ("truncated GraphDef by 1 byte", _file("cut1.pb", open(DETECTION, "rb").read()[:-1]),
     "truncated GraphDef"),
    ("pbtxt syntax error", _file("syntax.pbtxt", b"node { name: 'a' op: 'Const' "), "not a valid text GraphDef"),
    ("pbtxt unknown field", _file("field.pbtxt", b"node { name: 'a' op: 'Const' colour: 3 }\n"), "colour"),
    ("text NodeDef", _file("node.pbtxt", b"name: 'a'\nop: 'Const'\n"), "is a text NodeDef"),
    ("text OpList", _file("ops.pbtxt", b"op {\n  name: 'Foo'\n  output_arg { name: 'y' type: DT_FLOAT }\n}\n"),
     "is a text OpList"),
    ("text GraphDef without nodes", _file("nonodes.pbtxt", b"versions { producer: 27 }\n"), "no nodes"),
    ("JSON", _file("model.json", b'{"node": [{"name": "a", "op": "Const"}]}'), "JSON"),
    ("plain text", _file("notes.txt", b"this is not a graph\n"), "a text file, but not a text GraphDef"),
    ("binary junk with text extension", _file("junk.pbtxt", b"\x00\x01\x02garbage\xff"), "not a TensorFlow graph"),
    ("text nested too deeply", _file("deep.pbtxt", _deep_text(3000)), "nested too deeply"),
    ("binary nested too deeply", _file("deep.pb", _deep_binary(200)), "nested too deeply"),
    ("missing input path", _args("rewrite", "{tmp}/nope.pb", "{tmp}/out.pb"), "no such file"),
    ("missing input path (check)", _args("check", "{tmp}/nope.pb"), "no such file"),
    ("input is a device", _args("check", "/dev/zero"), "not a regular file"),
    ("directory that is not a SavedModel", _dir_not_saved_model, "not a SavedModel"),
    ("corrupt SavedModel", _corrupt_saved_model, "corrupt SavedModel"),
    ("truncated SavedModel", _truncated_saved_model, "truncated SavedModel"),
    ("truncated .meta", _file("cut.meta", _meta_bytes()[:-2000]), "truncated MetaGraphDef"),
    ("garbage .meta", _file("model.meta", RND.randbytes(3000)), "not a TensorFlow graph"),
    ("input naming a missing node", _file("missing_input.pb", _mutated(_missing_input)),
     "'loss/no_such_node' names a missing node"),
    ("cycle upstream of a hazard (rewrite)", _file("cycle.pb", _mutated(_cycle_in_detection)), "cycle"),
    ("cycle upstream of a hazard (check)", _check_file("cycle.pb", _mutated(_cycle_in_detection)), "cycle"),
    ("cycle in a graph without a Mean (check)",
     _check_file("cycle2.pbtxt", _CYCLE_NO_MEAN.encode()), "cycle outside a while loop"),
    ("cycle in a graph without a Mean (rewrite)",
     _file("cycle2.pbtxt", _CYCLE_NO_MEAN.encode()), "cycle outside a while loop"),
    ("node reading its own output", _check_file("self.pbtxt", _SELF_LOOP.encode()), "reads its own output"),
    ("op with the wrong number of inputs", _check_file("div.pb", _mutated(_one_input_div)),
     "'loss/total' (RealDiv) has 1 data input(s), the op takes 2"),
    ("data input after a control input", _check_file("ctrl.pb", _mutated(_data_after_control)),
     "after a control input"),
    ("input of the wrong type where a guard reads it", _file("typed.pb", _mutated(_mistyped_input)),
     "'extra_abs' (Abs) input 0 ('loss/Const_1') is int32, but the op takes float"),
    ("duplicate node names", _file("dup.pb", _mutated(_duplicate)), "duplicate node name 'loss/Abs'"),
    ("Mean without T (check)", _check_file("noT.pb", _mutated(_drop_attr("loss/Mean_1", "T"))),
     "'loss/Mean_1' (Mean) has no type attr 'T'"),
    ("Mean without T (rewrite)", _file("noT.pb", _mutated(_drop_attr("loss/Mean_1", "T"))),
     "'loss/Mean_1' (Mean) has no type attr 'T'"),
    ("GatherV2 without Tparams (rewrite)",
     _file("noTparams.pb", _mutated(_drop_attr("loss/boolean_mask/GatherV2", "Tparams"))),
     "'loss/boolean_mask/GatherV2' (GatherV2) has no attr 'Tparams'"),
    ("unregistered op read by the guard",
     _file("custom_axes.pb", _mutated(_mean_axes_from_unknown_op)),
     "op 'MyCustomAxes' (node 'loss/Const_1') is not registered in this TensorFlow; load the library"),
    ("hazard downstream of an unregistered op",
     _file("custom_abs.pb", _mutated(_set_op("loss/Abs", "MyAbs"))),
     "op 'MyAbs' (node 'loss/Abs') is not registered in this TensorFlow; load the library that defines it"),
    ("output directory missing", _out(lambda t: t / "no_dir" / "out.pb"), "does not exist"),
    ("output path is a directory", _out(lambda t: t), "is a directory"),
    ("output parent is a regular file", _parent_is_file, "is not a directory"),
    ("output under /proc/self (root cannot write there)", _out(lambda t: "/proc/self/out.pb"), "not writable"),
    ("output is a device", _out(lambda t: "/dev/null"), "not a regular file"),
    ("--report naming the input graph", _report_over_input, "is also the graph"),
    ("--report naming the output graph", _report_over_output, "is also the graph"),
    ("--loss naming a missing tensor", _args("rewrite", DETECTION, "{tmp}/out.pb", "--loss", "no/such:0"),
     "--loss 'no/such:0': no such node"),
    ("--loss naming a missing tensor (check)", _args("check", DETECTION, "--loss", "nope"), "no such node"),
    ("--select naming an unknown rule", _args("rewrite", DETECTION, "{tmp}/out.pb", "--select", "GF999"),
     "unknown rule 'GF999'"),
    ("--ignore naming an unknown rule", _args("check", DETECTION, "--ignore", "bogus-rule"), "unknown rule"),
    ("unknown flag", _args("rewrite", DETECTION, "{tmp}/out.pb", "--frobnicate"), "unrecognized arguments"),
    ("bad --guard value", _args("rewrite", DETECTION, "{tmp}/out.pb", "--guard", "maybe"), "invalid choice"),
    ("no command", _args(), "no command given"),
    ("rewrite without OUT", _args("rewrite", DETECTION), "rewrite needs IN and OUT"),
    ("--op-library that does not exist", _args("rewrite", DETECTION, "{tmp}/out.pb", "--op-library",
                                               "{tmp}/nope.so"), "--op-library"),
    ("--op-library that is not a library", _args("rewrite", DETECTION, "{tmp}/out.pb", "--op-library",
                                                 DETECTION), "cannot load it"),
    ("graph over protobuf's 2 GB limit", _over_2gb, "2 GB message limit"),
    ("SavedModel over protobuf's 2 GB limit", _big_saved_model, "2 GB message limit"),
]


REAL = {"empty file", "truncated GraphDef", "text NodeDef", "truncated SavedModel", "input naming a missing node",
        "cycle upstream of a hazard (rewrite)", "op with the wrong number of inputs", "--loss naming a missing tensor",
        "unknown flag", "output under /proc/self (root cannot write there)", "hazard downstream of an unregistered op",
        "unregistered op read by the guard", "graph over protobuf's 2 GB limit"}


def test_real_process_cases_exist():
    assert REAL <= {c[0] for c in CASES}


@pytest.mark.parametrize("name,setup,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, name, setup, needle):
    argv = setup(tmp_path)
    before = _snapshot(tmp_path)
    t0 = time.monotonic()
    r = (cli if name in REAL else run_cli)(*argv, cwd=tmp_path, timeout=HANG)
    elapsed = time.monotonic() - t0
    assert_one_error(r, needle)
    assert _snapshot(tmp_path) == before  # no new, changed or temp file
    if "2 GB" in name:
        assert elapsed < 30  # refused from its size, not read
        assert "SavedModel" in r.stderr or ".meta" in r.stderr  # suggests the route that works


def test_2gb_message_suggests_meta_or_saved_model(tmp_path):
    argv = _over_2gb(tmp_path)
    line = assert_one_error(cli(*argv, timeout=HANG), "2 GB")
    assert ".meta" in line and "SavedModel" in line and "checkpoint" in line


@pytest.mark.parametrize("content", [b"", RND.randbytes(500), open(DETECTION, "rb").read()[:5000],
                                     b"node { name: 'a' op: "])
def test_existing_output_is_left_byte_identical(tmp_path, content):
    bad = write(tmp_path / "bad.pb", content)
    out = write(tmp_path / "out.pb", b"precious previous output \x00\x01")
    r = run_cli("rewrite", bad, out, timeout=HANG)
    assert_one_error(r, "")
    assert out.read_bytes() == b"precious previous output \x00\x01"
    assert sorted(os.listdir(tmp_path)) == ["bad.pb", "out.pb"]


@pytest.mark.parametrize("content", [b"", RND.randbytes(500), _mutated(_duplicate),
                                     _mutated(_drop_attr("loss/Mean_1", "T"))])
def test_output_equal_to_bad_input_leaves_the_input(tmp_path, content):
    bad = write(tmp_path / "model.pb", content)
    r = run_cli("rewrite", bad, bad, timeout=HANG)
    assert_one_error(r, "")
    assert bad.read_bytes() == content
    assert os.listdir(tmp_path) == ["model.pb"]


def test_check_still_reports_a_hazard_downstream_of_an_unregistered_op(tmp_path):
    """``check`` never needs TensorFlow, so an op it does not know is no error there."""
    p = write(tmp_path / "custom.pb", _mutated(_set_op("loss/Abs", "MyAbs")))
    r = run_cli("check", p, timeout=HANG)
    assert r.returncode == 1 and "GF001" in r.stdout and r.stderr == "", r.stderr


def test_clean_graph_with_an_unregistered_op_is_passed_through(tmp_path):
    """Nothing to fix, nothing for TensorFlow to build: the graph is written back as it was."""
    data = _mutated(_set_op("Relu", "MyRelu"), os.path.join(EXAMPLES, "clean.pb"))
    p = write(tmp_path / "custom.pb", data)
    r = run_cli("rewrite", p, tmp_path / "out.pb", timeout=HANG)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.pb").read_bytes() == data


DYNAMIC_PARTITION = os.path.join(ROOT, "tests", "golden", "GF001", "dynamic_partition_sgd", "input.pbtxt")


def _text_mutated(path, fn) -> bytes:
    gd = protos().graph_pb2.GraphDef()
    text_format.Parse(open(path).read(), gd)
    fn(gd)
    return text_format.MessageToString(gd).encode()


def test_absurd_num_partitions_neither_hangs_nor_exhausts_memory(tmp_path):
    """A size attr of 2**40 (corrupt or hostile) must not drive a loop or an allocation."""
    def bomb(gd):
        for n in gd.node:
            if n.op == "DynamicPartition":
                n.attr["num_partitions"].i = 2**40
    p = write(tmp_path / "dp.pbtxt", _text_mutated(DYNAMIC_PARTITION, bomb))
    r = cli("check", p, timeout=60)
    assert r.returncode == 1 and "GF001" in r.stdout, r.stderr  # check needs no more than the parts read
    r = cli("rewrite", p, tmp_path / "out.pbtxt", timeout=60)
    assert_one_error(r, "attr 'num_partitions' is 1099511627776")
    assert not (tmp_path / "out.pbtxt").exists()


def test_huge_splat_constant_is_not_expanded(tmp_path):
    """A Const of shape [2**31, 2**20] holding one value (a splat) is legal; the
    analyses must not expand it to 2**51 elements."""
    def bomb(gd):
        t = _node(gd, "loss/Sum/reduction_indices").attr["value"].tensor
        del t.tensor_shape.dim[:]
        t.tensor_shape.dim.add(size=2**31)
        t.tensor_shape.dim.add(size=2**20)
    p = write(tmp_path / "splat.pb", _mutated(bomb))
    for argv in (["check", p], ["rewrite", p, tmp_path / "out.pb"]):
        r = cli(*argv, timeout=60)
        assert r.returncode in (0, 1, 2) and "internal error" not in r.stderr and "Traceback" not in r.stderr


def test_output_over_2gb_is_refused_not_written(tmp_path, monkeypatch):
    """protobuf serialises a message over 2 GB, but nothing can parse it back:
    graphfix refuses to write such an output (simulated with a lower limit)."""
    import graphfix
    from graphfix.core import io
    from graphfix.core.errors import GraphfixError

    fixed, _ = graphfix.rewrite(graphfix.load(DETECTION))
    monkeypatch.setattr(io, "PROTOBUF_LIMIT", 1000)
    with pytest.raises(GraphfixError, match="over protobuf's 2 GB message limit"):
        graphfix.save(fixed, tmp_path / "out.pb")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- custom-op libraries

_OP_SOURCE = r"""
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
using namespace tensorflow;
REGISTER_OP("GraphfixTestAbs").Input("x: T").Output("y: T").Attr("T: {float, double}")
    .SetShapeFn([](shape_inference::InferenceContext* c) { c->set_output(0, c->input(0)); return absl::OkStatus(); });
class GraphfixTestAbsOp : public OpKernel {
 public:
  explicit GraphfixTestAbsOp(OpKernelConstruction* c) : OpKernel(c) {}
  void Compute(OpKernelContext* c) override { c->set_output(0, c->input(0)); }
};
REGISTER_KERNEL_BUILDER(Name("GraphfixTestAbs").Device(DEVICE_CPU), GraphfixTestAbsOp);
"""


@pytest.fixture(scope="module")
def custom_op_library(tmp_path_factory, tf):
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler to build a custom-op library")
    d = tmp_path_factory.mktemp("custom_op")
    src = write(d / "op.cc", _OP_SOURCE.encode())
    # the flags of the TensorFlow the tests import (asked in this process: a
    # subprocess would pay a second TensorFlow import for two lines of text)
    flags = [" ".join(tf.sysconfig.get_compile_flags()), " ".join(tf.sysconfig.get_link_flags())]
    lib = d / "graphfix_test_op.so"
    r = subprocess.run(["g++", "-std=c++17", "-shared", "-fPIC", "-O0", "-w", str(src), "-o", str(lib),
                        *flags[-2].split(), *flags[-1].split()], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        pytest.skip(f"cannot build the custom-op library: {r.stderr[-500:]}")
    return lib


def test_op_library_makes_an_unregistered_op_known(tmp_path, custom_op_library, tf):
    p = write(tmp_path / "custom.pb", _mutated(_set_op("loss/Abs", "GraphfixTestAbs")))
    out = tmp_path / "out.pb"
    r = cli("rewrite", p, out, timeout=HANG)
    assert_one_error(r, "'GraphfixTestAbs'")
    assert "--op-library" in r.stderr and not out.exists()
    r = cli("rewrite", p, out, "--op-library", custom_op_library, timeout=HANG)
    assert r.returncode == 0, r.stderr
    assert "[fixed]" in r.stdout
    gd = protos().graph_pb2.GraphDef()
    gd.ParseFromString(out.read_bytes())
    assert _node(gd, "loss/Abs").op == "GraphfixTestAbs"


# ---------------------------------------------------------------- interrupts

def test_keyboard_interrupt_while_writing_leaves_no_temp_file(tmp_path, monkeypatch, capsys):
    import cli as cli_module

    out = write(tmp_path / "out.pb", b"previous")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    rc = cli_module.main(["rewrite", DETECTION, str(out)])
    assert rc == 130
    assert capsys.readouterr().err == "graphfix: error: interrupted\n"
    assert out.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.pb"]


def test_sigterm_while_writing_leaves_no_temp_file(tmp_path, monkeypatch, capsys):
    import cli as cli_module

    out = tmp_path / "out.pb"

    def terminated(fd):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs here
        raise AssertionError("SIGTERM was not delivered")

    old = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(os, "fsync", terminated)
    rc = cli_module.main(["rewrite", DETECTION, str(out)])
    assert rc == 128 + signal.SIGTERM
    assert capsys.readouterr().err == "graphfix: error: terminated\n"
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == old  # restored for the embedding program


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_run_leaves_no_temp_file(tmp_path, sig):
    """A cancelled CI job: the signal arrives at some point of a real run."""
    out = tmp_path / "out.pb"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for delay in (0.5, 1.5, 3.0):
        proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), "rewrite", DETECTION, str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=HANG)
        assert "Traceback" not in err, err
        if proc.returncode == 0:  # finished before the signal
            assert out.exists()
        elif proc.returncode == -sig:  # still starting the interpreter: nothing of graphfix ran yet
            assert err == ""
        else:
            assert proc.returncode in (130, 128 + sig), (proc.returncode, err)
            assert err.splitlines()[-1] in ("graphfix: error: interrupted", "graphfix: error: terminated"), err
        assert [n for n in os.listdir(tmp_path) if n != "out.pb"] == []
        if out.exists():
            out.unlink()
