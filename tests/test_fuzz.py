"""Fuzzing graphfix with mutated graphs (issue #7).

Valid graphs (the examples and every golden input) are mutated — nodes
deleted, duplicated or renamed, inputs rewired to other nodes and outputs,
attrs removed or corrupted, op types changed, bytes truncated or flipped —
and graphfix must either

* succeed (exit 0 or 1) with a complete output that TensorFlow imports
  whenever it imports the input (an input TensorFlow already rejects may be
  passed through, but must not be made worse), or
* exit 2 with exactly one ``graphfix: error: …`` line and no output file;

never the "internal error" fallback (that is a bug to fix at its root), never
a hang, never a partial or temp file.  Hypothesis runs derandomised (the same
examples every run) and bounded: about 260 examples in total, well under a
minute and a half on two cores.
"""
import contextlib
import glob
import io
import os
import random
import re
import signal
import subprocess
import sys

import pytest
from google.protobuf import text_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
from graphfix.core.tfimport import protos
from tests.helpers import EXAMPLES, ROOT

SEED_PATHS = [os.path.join(EXAMPLES, "detection.pb"), os.path.join(EXAMPLES, "clean.pb")] + \
    sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "*", "*", "input.pbtxt")))
HANG_SECONDS = 60

SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])


def _load_seed(path):
    gd = protos().graph_pb2.GraphDef()
    data = open(path, "rb").read()
    if path.endswith(".pbtxt"):
        text_format.Parse(data.decode(), gd)
    else:
        gd.ParseFromString(data)
    return gd


SEEDS = [_load_seed(p) for p in SEED_PATHS]
OPS = sorted({n.op for gd in SEEDS for n in gd.node}) + [
    "MyCustomOp", "Mean", "Sum", "Identity", "NoOp", "Where", "GatherV2", "DynamicPartition", "Const",
    "Placeholder", "NextIteration", "Enter", "Exit", "Merge", "Switch", "Size", "Shape", "RealDiv"]
DTYPES = [1, 2, 3, 7, 9, 10, 19, 20, 101, 0, 999]


class Hang(BaseException):
    """Raised by the watchdog alarm (a BaseException, so graphfix's handlers cannot swallow it)."""


@contextlib.contextmanager
def watchdog(seconds=HANG_SECONDS):
    def fire(signum, frame):
        raise Hang(f"graphfix ran for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_cli(argv):
    """``cli.main(argv)`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with watchdog(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def import_error(tf, graph_def_bytes):
    """None if TensorFlow imports the GraphDef, else its error message."""
    gd = tf.compat.v1.GraphDef()
    try:
        gd.ParseFromString(graph_def_bytes)
        with tf.Graph().as_default():
            tf.compat.v1.import_graph_def(gd, name="")
    except Exception as e:  # noqa: BLE001 — any rejection counts
        return f"{type(e).__name__}: {e}"
    return None


def _size_bomb(graph_def_bytes) -> bool:
    """True if a Const claims billions of elements: TensorFlow's importer would
    spend ages (and gigabytes) on it, so the import oracle is skipped."""
    import math

    gd = protos().graph_pb2.GraphDef()
    gd.ParseFromString(graph_def_bytes)
    return any(n.op == "Const" and math.prod(max(d.size, 0) for d in n.attr["value"].tensor.tensor_shape.dim) > 2**24
               for n in gd.node if "value" in n.attr)


def _as_binary(data: bytes, path: str) -> bytes | None:
    """The input as a binary GraphDef if graphfix would read it as one, else None."""
    p = protos()
    msg = p.meta_graph_pb2.MetaGraphDef() if path.endswith(".meta") else p.graph_pb2.GraphDef()
    try:
        if path.endswith(".pbtxt"):
            text_format.Parse(data.decode(), msg)
        else:
            msg.ParseFromString(data)
    except Exception:  # noqa: BLE001
        return None
    return (msg.graph_def if path.endswith(".meta") else msg).SerializeToString()


def assert_contract(tmp_path, data: bytes, ext: str, options, tf, stats):
    """Run check and rewrite on ``data`` and assert the reliability contract."""
    inp = tmp_path / f"input{ext}"
    inp.write_bytes(data)
    out = tmp_path / f"output{ext}"
    if out.exists():
        out.unlink()

    rc, stdout, stderr = run_cli(["check", inp, *options[:1]])  # --unsafe-fixes / --guard are rewrite-only
    _assert_exit(rc, stderr, "check")
    rc, stdout, stderr = run_cli(["rewrite", inp, out, *options])
    _assert_exit(rc, stderr, "rewrite")
    leftovers = sorted(set(os.listdir(tmp_path)) - {inp.name, out.name})
    assert leftovers == [], f"temp files left behind: {leftovers}"
    stats[rc] = stats.get(rc, 0) + 1
    if rc == 2:
        assert not out.exists(), "an error left an output file"
        return
    assert out.exists(), "exit status 0/1 but no output"
    produced = out.read_bytes()
    if produced == data:
        return  # passed through unchanged: graphfix made nothing worse
    binary_in = _as_binary(data, str(inp))
    binary_out = _as_binary(produced, str(out))
    assert binary_out is not None, "the output does not parse as a GraphDef (partial or corrupt)"
    if binary_in is None or _size_bomb(binary_in) or _size_bomb(binary_out):
        stats["import_oracle_skipped"] = stats.get("import_oracle_skipped", 0) + 1
        return
    err_in = import_error(tf, binary_in)
    err_out = import_error(tf, binary_out)
    if err_in is None:
        assert err_out is None, f"graphfix broke an importable graph: {err_out}"
    else:
        stats["input_rejected_by_tf"] = stats.get("input_rejected_by_tf", 0) + 1
        # TensorFlow names the first problem it meets: the same one, maybe now at the guard's copy
        # of the node, or another one the input already had — but none in what graphfix built.
        assert err_out is None or _problem(err_out) == _problem(err_in) or "/graphfix/" not in err_out, \
            f"input rejected by TensorFlow ({err_in}); output rejected for what graphfix built: {err_out}"


def _problem(import_error_message: str) -> str:
    """An import error without the node it names."""
    return re.sub(r"\s*for '\{\{node .*", "", import_error_message, flags=re.S)


def _assert_exit(rc, stderr, what):
    assert rc in (0, 1, 2), f"{what}: exit status {rc}"
    assert "internal error" not in stderr and "Traceback" not in stderr, f"{what}: {stderr}"
    if rc == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("graphfix: error: "), f"{what}: {stderr!r}"


# ---------------------------------------------------------------- mutations

def _rand_attr(rng, av):
    kind = rng.randrange(7)
    if kind == 0:
        av.Clear()
    elif kind == 1:
        av.Clear()
        av.i = rng.choice([-1, 0, 1, 3, 2**40])
    elif kind == 2:
        av.Clear()
        av.type = rng.choice(DTYPES)
    elif kind == 3:
        av.Clear()
        av.list.i.extend([rng.randrange(-2, 5) for _ in range(rng.randrange(3))])
    elif kind == 4:
        av.Clear()
        dims = av.shape.dim
        for _ in range(rng.randrange(4)):
            dims.add(size=rng.choice([-5, -1, 0, 1, 7]))
    elif kind == 5:
        av.Clear()
        av.s = b"garbage"
    else:
        av.Clear()
        t = av.tensor
        t.dtype = rng.choice(DTYPES)
        t.tensor_shape.dim.add(size=rng.choice([0, 3, 2**31]))
        t.tensor_content = bytes(rng.randrange(256) for _ in range(rng.randrange(16)))


# Ops with the same inputs and attrs: swapping one for another keeps the graph valid.
FAMILIES = [
    ["Add", "AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum", "SquaredDifference", "Pow", "DivNoNan",
     "MulNoNan", "Xlogy", "Xdivy"],
    ["Neg", "Abs", "Square", "Sqrt", "Rsqrt", "Exp", "Log", "Log1p", "Sigmoid", "Tanh", "Relu", "Softplus",
     "Reciprocal", "Identity", "StopGradient", "ZerosLike", "OnesLike"],
    ["Sum", "Mean", "Max", "Min", "Prod", "EuclideanNorm"],
    ["Greater", "Less", "GreaterEqual", "LessEqual"],
    ["Select", "SelectV2"],
]
FAMILY_OF = {op: fam for fam in FAMILIES for op in fam}


def _tensor_types(gd):
    """{(node, output): dtype} for the nodes TensorFlow's registry can type."""
    from graphfix.patch.scratch import output_types

    res = {}
    for n in gd.node:
        try:
            for k, t in enumerate(output_types(n)):
                res[(n.name, k)] = t
        except Exception:  # noqa: BLE001 — mutated nodes may be untypable
            pass
    return res


def _consumers(gd, name):
    for n in gd.node:
        for k, s in enumerate(n.input):
            src = s.lstrip("^").rsplit(":", 1)[0] if ":" in s and s.rsplit(":", 1)[1].isdigit() else s.lstrip("^")
            if src == name:
                yield n, k


def mutate(gd, rng, n_mutations):
    """Apply ``n_mutations`` random structural mutations to GraphDef ``gd`` in place:
    kinds 0-8 mostly break the graph (graphfix must say how), 9-11 keep it
    valid (graphfix must handle the odd but legal graph)."""
    for _ in range(n_mutations):
        if not gd.node:
            return
        nodes = gd.node
        kind = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 10, 10, 10, 11, 11, 11, 12])
        i = rng.randrange(len(nodes))
        node = nodes[i]
        if kind == 12:  # a size bomb: a huge int attr (num_partitions, N, axis...) or splat Const shape
            ints = [(n, k) for n in nodes for k, v in n.attr.items() if v.WhichOneof("value") == "i"]
            consts = [n for n in nodes if n.op == "Const" and not n.attr["value"].tensor.tensor_content]
            if consts and (not ints or rng.random() < 0.5):
                t = rng.choice(consts).attr["value"].tensor
                del t.tensor_shape.dim[:]
                for _ in range(rng.randrange(1, 4)):
                    t.tensor_shape.dim.add(size=rng.choice([2**20, 2**31, 2**40]))
            elif ints:
                n, k = rng.choice(ints)
                n.attr[k].i = rng.choice([2**31, 2**40, -(2**40)])
            continue
        if kind == 9:  # bypass a node: its consumers read its first input instead, then delete it
            data = [s for s in node.input if not s.startswith("^")]
            if data:
                for consumer, k in list(_consumers(gd, node.name)):
                    consumer.input[k] = ("^" + data[0].split(":")[0]) if consumer.input[k].startswith("^") \
                        else data[0]
                del nodes[i]
            continue
        if kind == 10:  # swap the op for another of the same family
            fam = FAMILY_OF.get(node.op)
            if fam is None:
                candidates = [n for n in nodes if n.op in FAMILY_OF]
                if not candidates:
                    continue
                node = rng.choice(candidates)
                fam = FAMILY_OF[node.op]
            node.op = rng.choice(fam)
            continue
        if kind == 11:  # rewire a data input to another tensor of the same type
            types = _tensor_types(gd)
            data = [k for k, s in enumerate(node.input) if not s.startswith("^")]
            if not data:
                continue
            k = rng.choice(data)
            s = node.input[k]
            src, _, out = s.rpartition(":") if ":" in s else (s, "", "0")
            want = types.get((src, int(out) if out.isdigit() else 0))
            same = sorted(t for t, dt in types.items() if dt == want and t[0] != node.name)
            if want is None or not same:
                continue
            name, out = rng.choice(same)
            node.input[k] = name if out == 0 else f"{name}:{out}"
            continue
        if kind == 0:  # delete a node
            del nodes[i]
        elif kind == 1:  # duplicate a node (same name, or a fresh one)
            copy = nodes.add()
            copy.CopyFrom(node)
            if rng.random() < 0.5:
                copy.name = node.name + "_dup"
        elif kind in (2, 3):  # rewire an input to another node / output
            other = nodes[rng.randrange(len(nodes))].name
            out = rng.choice([0, 0, 0, 1, 2, 7])
            ref = other if out == 0 else f"{other}:{out}"
            if rng.random() < 0.15:
                ref = "^" + other
            if node.input:
                node.input[rng.randrange(len(node.input))] = ref
            else:
                node.input.append(ref)
        elif kind == 4:  # remove an attr
            if node.attr:
                del node.attr[rng.choice(sorted(node.attr))]
        elif kind == 5:  # corrupt an attr
            if node.attr:
                _rand_attr(rng, node.attr[rng.choice(sorted(node.attr))])
        elif kind == 6:  # change the op type
            node.op = rng.choice(OPS)
        elif kind == 7:  # drop or add an input
            if node.input and rng.random() < 0.6:
                del node.input[rng.randrange(len(node.input))]
            else:
                node.input.append(nodes[rng.randrange(len(nodes))].name)
        else:  # an attr a node of another op would have
            donor = nodes[rng.randrange(len(nodes))]
            for key in list(donor.attr)[:2]:
                node.attr[key].CopyFrom(donor.attr[key])


def byte_mutate(data: bytes, rng) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0 and b:  # truncate
        return bytes(b[:rng.randrange(len(b))])
    if kind == 1 and b:  # flip bytes
        for _ in range(rng.randrange(1, 9)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind == 2 and b:  # overwrite a run with random bytes
        start = rng.randrange(len(b))
        for k in range(start, min(len(b), start + rng.randrange(1, 64))):
            b[k] = rng.randrange(256)
        return bytes(b)
    pos = rng.randrange(len(b) + 1)  # insert random bytes
    return bytes(b[:pos]) + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 32))) + bytes(b[pos:])


OPTIONS = st.sampled_from([[], ["--unsafe-fixes"], ["--unsafe-fixes", "--guard", "where"],
                           ["--unsafe-fixes", "--guard", "cond"]])


# ---------------------------------------------------------------- tests

@pytest.fixture(scope="module")
def fuzz_stats():
    stats = {}
    yield stats
    print(f"\nfuzz outcomes (exit status -> count): {dict(sorted(stats.items(), key=str))}")


@settings(max_examples=160, **SETTINGS)
@given(seed=st.integers(0, len(SEEDS) - 1), rng_seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4),
       text=st.booleans(), options=OPTIONS)
def test_fuzz_structural_mutations(tmp_path_factory, tf, fuzz_stats, seed, rng_seed, n, text, options):
    rng = random.Random(rng_seed)
    gd = type(SEEDS[seed])()
    gd.CopyFrom(SEEDS[seed])
    mutate(gd, rng, n)
    if text:
        data, ext = text_format.MessageToString(gd).encode(), ".pbtxt"
    else:
        data, ext = gd.SerializeToString(), ".pb"
    assert_contract(tmp_path_factory.mktemp("fuzz"), data, ext, options, tf, fuzz_stats)


@settings(max_examples=90, **SETTINGS)
@given(seed=st.integers(0, len(SEEDS) - 1), rng_seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3),
       text=st.booleans(), options=OPTIONS)
def test_fuzz_byte_mutations(tmp_path_factory, tf, fuzz_stats, seed, rng_seed, n, text, options):
    rng = random.Random(rng_seed)
    gd = SEEDS[seed]
    data, ext = (text_format.MessageToString(gd).encode(), ".pbtxt") if text else (gd.SerializeToString(), ".pb")
    for _ in range(n):
        data = byte_mutate(data, rng)
    assert_contract(tmp_path_factory.mktemp("fuzz"), data, ext, options, tf, fuzz_stats)


@pytest.fixture(scope="module")
def loop_seeds(tf):
    """Training graphs with a v1 while loop (RNN), the hazard outside and inside
    the loop body, as MetaGraphDefs (their while contexts drive regeneration)."""
    from tests.test_control_flow import rnn

    return [rnn(tf, inside=False), rnn(tf, inside=True)]


@settings(max_examples=30, **SETTINGS)
@given(seed=st.integers(0, 1), rng_seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3), options=OPTIONS)
def test_fuzz_while_loop_graphs(tmp_path_factory, tf, loop_seeds, fuzz_stats, seed, rng_seed, n, options):
    rng = random.Random(rng_seed)
    meta = type(loop_seeds[seed])()
    meta.CopyFrom(loop_seeds[seed])
    mutate(meta.graph_def, rng, n)
    assert_contract(tmp_path_factory.mktemp("fuzz"), meta.SerializeToString(), ".meta", options, tf, fuzz_stats)


SUBPROCESS_CASES = [(seed, rng_seed) for seed, rng_seed in ((0, 11), (0, 12), (1, 13), (2, 14), (3, 15))]


@pytest.mark.parametrize("seed,rng_seed", SUBPROCESS_CASES)
def test_fuzz_through_the_real_cli(tmp_path, tf, seed, rng_seed):
    """A few mutated graphs through ``python cli.py`` itself: the one-line stderr
    contract also holds for what TensorFlow would print, and nothing hangs."""
    rng = random.Random(rng_seed)
    gd = type(SEEDS[seed])()
    gd.CopyFrom(SEEDS[seed % len(SEEDS)])
    mutate(gd, rng, 2)
    inp = tmp_path / "input.pb"
    inp.write_bytes(gd.SerializeToString())
    out = tmp_path / "output.pb"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), "rewrite", str(inp), str(out)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode in (0, 1, 2), r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    if r.returncode == 2:
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("graphfix: error: "), r.stderr
        assert not out.exists()
    else:
        assert r.stderr == "", r.stderr
        assert _as_binary(out.read_bytes(), str(out)) is not None
    assert sorted(os.listdir(tmp_path)) == sorted({"input.pb"} | ({"output.pb"} if out.exists() else set()))
