"""Killing graphfix while it writes a large output (issue #7).

graphfix writes to a hidden temp file next to the output and renames it over
the output (``os.replace``), so whenever the process dies the output path holds
either the file that was there before or the complete new output — never a
partial file.  A SIGKILL cannot be cleaned up after: its temp file
(``.<name>.graphfix-<host>-<pid>.<random>.tmp``, hidden) stays until the next
run writing the same output, which removes temp files of that output whose
process is gone.
"""
import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest
from google.protobuf import text_format

from graphfix.core.tfimport import protos
from tests.helpers import ROOT

BASE = os.path.join(ROOT, "tests", "golden", "GF001", "boolean_mask_forward", "input.pbtxt")
CONSTS, CONST_BYTES = 48, 2**20  # ~50 MB of weights
PREVIOUS = b"the previous output, which must survive any kill \x00\xff"


def _big_graph() -> bytes:
    """A boolean_mask mean (so there is a fix to write) plus ~50 MB of Const weights."""
    p = protos()
    gd = p.graph_pb2.GraphDef()
    text_format.Parse(open(BASE).read(), gd)
    rng = np.random.default_rng(0)
    for i in range(CONSTS):
        n = gd.node.add(name=f"weights/w{i}", op="Const")
        n.attr["dtype"].type = 1
        t = n.attr["value"].tensor
        t.dtype = 1
        t.tensor_shape.dim.add(size=CONST_BYTES // 4)
        t.tensor_content = rng.standard_normal(CONST_BYTES // 4, dtype=np.float32).tobytes()
    return gd.SerializeToString()


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    inp = d / "big.pb"
    inp.write_bytes(_big_graph())
    ref = d / "reference.pb"
    t0 = time.monotonic()
    r = _run(inp, ref).wait(timeout=600)
    assert r == 0
    return inp, ref.read_bytes(), time.monotonic() - t0


def _run(inp, out):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), "rewrite", str(inp), str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _temps(directory, name="out.pb"):
    return sorted(n for n in os.listdir(directory) if n.startswith(f".{name}.graphfix-") and n.endswith(".tmp"))


def _kill_at(proc, moment):
    """SIGKILL ``proc`` ``moment`` seconds after start (or when it ended)."""
    try:
        proc.wait(timeout=moment)
    except subprocess.TimeoutExpired:
        proc.kill()
    proc.wait(timeout=60)


def _kill_while_writing(proc, directory, delay):
    """SIGKILL ``proc`` ``delay`` seconds after its temp file appears: during the write."""
    deadline = time.monotonic() + 600
    while proc.poll() is None and not _temps(directory) and time.monotonic() < deadline:
        time.sleep(0.0005)
    time.sleep(delay)
    proc.kill()
    proc.wait(timeout=60)


def _assert_whole(out, reference):
    if out.exists():
        data = out.read_bytes()
        assert data in (PREVIOUS, reference), f"partial output: {len(data)} bytes"


def test_sigkill_never_leaves_a_partial_output(tmp_path, big):
    inp, reference, duration = big
    assert len(reference) > 40 * 2**20 and reference != inp.read_bytes()  # a real, large fix was written
    rng = random.Random(7)
    out = tmp_path / "out.pb"
    outcomes = []
    # Some kills at random moments of a whole run, some aimed at the write itself.
    plans = [("random", rng.uniform(0.2, 1.1) * duration) for _ in range(3)] + \
        [("writing", 0.0), ("writing", rng.uniform(0, 0.01)), ("writing", rng.uniform(0, 0.05))]
    for how, moment in plans:
        out.write_bytes(PREVIOUS)
        proc = _run(inp, out)
        if how == "random":
            _kill_at(proc, moment)
        else:
            _kill_while_writing(proc, tmp_path, moment)
        _assert_whole(out, reference)
        leftovers = set(os.listdir(tmp_path)) - {"out.pb"}
        assert all(n.startswith(".") for n in leftovers), leftovers  # only hidden temp files
        assert leftovers == set(_temps(tmp_path)), leftovers
        outcomes.append((how, proc.returncode, out.read_bytes() == reference, len(leftovers)))
    print(f"\nkills (plan, status, output complete, temp files left): {outcomes}")
    assert any(o[1] == -9 and o[3] for o in outcomes), "no kill landed during the write"

    # The next run removes the temp files the killed runs left and writes the output.
    assert _run(inp, out).wait(timeout=600) == 0
    assert out.read_bytes() == reference
    assert os.listdir(tmp_path) == ["out.pb"]


def test_stale_temp_files_of_live_processes_and_other_outputs_are_kept(tmp_path):
    """Only temp files of the same output whose process is gone are removed."""
    from graphfix.core import io

    host = io._HOST
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        names = {
            f".out.pb.graphfix-{host}-{dead.pid}.abc.tmp": False,  # same output, process gone: removed
            f".out.pb.graphfix-{host}-{live.pid}.abc.tmp": True,  # a run still writing: kept
            f".other.pb.graphfix-{host}-{dead.pid}.abc.tmp": True,  # another output: kept
            f".out.pb.graphfix-otherhost-{dead.pid}.abc.tmp": True,  # another machine's (NFS): kept
            ".out.pb.user-file.tmp": True,  # not ours: kept
        }
        for n in names:
            (tmp_path / n).write_bytes(b"x")
        os.mkdir(tmp_path / f".out.pb.graphfix-{host}-{dead.pid}.dir.tmp")  # a SavedModel temp dir
        io.atomic_write(str(tmp_path / "out.pb"), b"new")
        left = set(os.listdir(tmp_path))
        assert left == {n for n, keep in names.items() if keep} | {"out.pb"}
        assert (tmp_path / "out.pb").read_bytes() == b"new"
    finally:
        live.kill()
        live.wait()


def _saved_model_dir(path, graph_bytes):
    p = protos()
    sm = p.saved_model_pb2.SavedModel(saved_model_schema_version=1)
    meta = sm.meta_graphs.add()
    meta.meta_info_def.tags.append("serve")
    meta.graph_def.ParseFromString(graph_bytes)
    os.makedirs(path / "variables")
    (path / "variables" / "variables.index").write_bytes(b"index")
    (path / "saved_model.pb").write_bytes(sm.SerializeToString())


@pytest.mark.parametrize("atomic_swap", [True, False])
def test_saved_model_directory_replaced_whole(tmp_path, monkeypatch, atomic_swap):
    """An existing SavedModel output directory is swapped for the new one in one
    step (renameat2 RENAME_EXCHANGE; two renames where that is missing), and no
    hidden temp directory is left."""
    import graphfix
    from graphfix.core import io

    src, out = tmp_path / "src", tmp_path / "out"
    _saved_model_dir(src, open(os.path.join(ROOT, "examples", "detection.pb"), "rb").read())
    out.mkdir()
    (out / "saved_model.pb").write_bytes(b"old")
    (out / "stale.txt").write_bytes(b"from the previous export")
    if not atomic_swap:
        monkeypatch.setattr(io, "_exchange", lambda a, b: False)
    fixed, report = graphfix.rewrite(graphfix.load(str(src)))
    assert report.fixed == 1
    graphfix.save(fixed, str(out))
    assert sorted(os.listdir(out)) == ["saved_model.pb", "variables"]
    assert graphfix.load(str(out)).graph_def == fixed.graph_def
    assert sorted(os.listdir(tmp_path)) == ["out", "src"]
