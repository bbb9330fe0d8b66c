"""Batch mode: `check DIR_OR_GLOB…` and `rewrite --out-dir OUT DIR_OR_GLOB…`
over a tree of real models — walking, globbing, mirrored outputs, a failing
model that does not stop the others, the summary table, exit status, and a
progress bar only on a terminal."""
import json
import os
import pty
import shutil
import subprocess
import sys

import pytest
from google.protobuf import text_format

import cli as cli_main
import graphfix
from graphfix.cli import batch
from graphfix.core.tfimport import protos
from tests.helpers import EXAMPLES, ROOT

DETECTION = os.path.join(EXAMPLES, "detection.pb")
CLEAN = os.path.join(EXAMPLES, "clean.pb")
ONLY = ("--select", "GF001")
HEAD = ["model", "nodes", "found", "fixed", "remaining", "seconds", "status"]


def _tree(root):
    """models/ with a binary, a text, a SavedModel, a clean and a broken model, and things to skip."""
    m = root / "models"
    (m / "sub").mkdir(parents=True)
    (m / "sm" / "variables").mkdir(parents=True)
    (m / ".cache").mkdir()
    shutil.copy(DETECTION, m / "detection.pb")
    shutil.copy(CLEAN, m / "sub" / "clean.pb")
    gd = graphfix.load(DETECTION).graph_def
    (m / "sub" / "det.pbtxt").write_text(text_format.MessageToString(gd))
    saved = protos().saved_model_pb2.SavedModel()
    meta = saved.meta_graphs.add()
    meta.meta_info_def.tags.append("train")
    meta.graph_def.CopyFrom(gd)
    (m / "sm" / "saved_model.pb").write_bytes(saved.SerializeToString(deterministic=True))
    (m / "sm" / "variables" / "variables.index").write_bytes(b"not a graph")
    (m / "sub" / "broken.pb").write_bytes(b"\x08\x96\x01garbage")
    (m / "notes.txt").write_text("not a model")
    shutil.copy(DETECTION, m / ".cache" / "hidden.pb")
    return m


def _table(text):
    """{model: row dict} from the summary table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == HEAD)
    rows = {}
    for line in lines[start + 2:]:
        if line.startswith("--"):
            break
        cells = line.split()
        rows[cells[0]] = dict(zip(HEAD, [cells[0], *cells[1:6], " ".join(cells[6:])]))
    return rows


def _run(*args, cwd, tty=False, env=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", COLUMNS="100", **(env or {}))
    cmd = [sys.executable, os.path.join(ROOT, "cli.py"), *map(str, args)]
    if not tty:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    master, slave = pty.openpty()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=slave, text=True, cwd=cwd, env=env, timeout=600)
        os.close(slave)
        slave = None
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        p.stderr = b"".join(chunks).decode()
        return p
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)


def test_rewrite_out_dir_mirrors_tree_and_keeps_going(tmp_path):
    _tree(tmp_path)
    r = _run("rewrite", "--out-dir", "out", "models", *ONLY, cwd=tmp_path)
    assert r.returncode == 2, r.stderr  # one model failed
    out = tmp_path / "out"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["detection.pb", "sm/saved_model.pb", "sm/variables/variables.index",
                       "sub/clean.pb", "sub/det.pbtxt"]
    # a clean model is copied byte-identical; kinds are kept
    assert (out / "sub" / "clean.pb").read_bytes() == open(CLEAN, "rb").read()
    assert (out / "sub" / "det.pbtxt").read_text().startswith("node {")
    assert graphfix.load(str(out / "sm")).kind == "saved_model"
    # the failure: one line on stderr, named; the others went on
    errors = [line for line in r.stderr.splitlines() if line.startswith("graphfix: error: ")]
    assert errors == [errors[0]] and errors[0].startswith("graphfix: error: models/sub/broken.pb: ")
    rows = _table(r.stdout)
    assert list(rows) == ["models/detection.pb", "models/sm", "models/sub/broken.pb", "models/sub/clean.pb",
                          "models/sub/det.pbtxt"]
    assert rows["models/detection.pb"] == {"model": "models/detection.pb", "nodes": "263", "found": "1",
                                           "fixed": "1", "remaining": "0",
                                           "seconds": rows["models/detection.pb"]["seconds"], "status": "fixed"}
    assert rows["models/sub/broken.pb"]["status"] == "error" and rows["models/sub/broken.pb"]["nodes"] == "-"
    assert rows["models/sub/clean.pb"]["status"] == "clean"
    assert "models/sm:loss/Mean_1: GF001" in r.stdout and "[fixed]" in r.stdout
    assert "5 inputs: 1 clean, 3 fixed, 1 failed." in r.stdout
    # every repaired output checks clean (batch check over the output dir, exit 0)
    r = _run("check", "out", *ONLY, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(_table(r.stdout)) == {"out/detection.pb", "out/sm", "out/sub/clean.pb", "out/sub/det.pbtxt"}


def test_check_exit_status_over_all_models(tmp_path, capsys, monkeypatch):
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli_main.main(["check", "models/sub/clean.pb", "models/sm", *ONLY]) == 1  # findings in one
    assert cli_main.main(["check", "models/sub/clean.pb", "models/sub/clean.pb", *ONLY]) == 0  # deduplicated
    capsys.readouterr()
    assert cli_main.main(["check", "models", *ONLY]) == 2  # broken.pb
    cap = capsys.readouterr()
    assert "graphfix: error: models/sub/broken.pb: not a TensorFlow graph" in cap.err
    assert _table(cap.out)["models/sub/det.pbtxt"]["status"] == "findings"
    assert ".cache" not in cap.out and "notes.txt" not in cap.out and "variables" not in cap.out


def test_globs_are_expanded_by_graphfix(tmp_path, capsys, monkeypatch):
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli_main.main(["check", "models/**/*.pbtxt", "models/*.pb", *ONLY, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [m["input"] for m in data["models"]] == ["models/sub/det.pbtxt", "models/detection.pb"]
    assert data["summary"] == {"models": 2, "errors": 0, "found": 2, "fixed": 0, "remaining": 2}
    assert cli_main.main(["check", "models/*.nothing", "models/sub/clean.pb", *ONLY]) == 2
    cap = capsys.readouterr()
    assert "graphfix: error: models/*.nothing: no models match this pattern" in cap.err
    assert _table(cap.out)["models/sub/clean.pb"]["status"] == "clean"


def test_glob_outputs_are_relative_to_the_pattern_and_collisions_fail(tmp_path, capsys, monkeypatch):
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    shutil.copy(CLEAN, tmp_path / "clean.pb")
    # --jobs 1 (here and below): repaired in this process, which has TensorFlow loaded already, not
    # in pool workers that would each import it; the pool is tests/test_batch_parallel.py's subject
    rc = cli_main.main(["rewrite", "--out-dir", "o", "models/s*/*.pb", "clean.pb", *ONLY, "--jobs", "1"])
    cap = capsys.readouterr()
    assert rc == 2
    # relative to the pattern's fixed part (models/); a file argument by its name
    assert sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.pb")) == \
        ["clean.pb", "sm/saved_model.pb", "sub/clean.pb"]
    assert (tmp_path / "o" / "sm" / "variables" / "variables.index").exists()  # the SavedModel came whole
    # models/sub/broken.pb fails to load; clean.pb lands at o/clean.pb, no collision with o/sub/clean.pb
    assert cap.err.count("graphfix: error: ") == 1
    rc = cli_main.main(["rewrite", "--out-dir", "o2", "models/sub/clean.pb", "clean.pb", *ONLY, "--jobs", "1"])
    cap = capsys.readouterr()
    assert rc == 2 and "would overwrite the output of models/sub/clean.pb" in cap.err
    assert (tmp_path / "o2" / "clean.pb").read_bytes() == open(CLEAN, "rb").read()


def test_out_dir_inside_input_is_not_walked(tmp_path, capsys, monkeypatch):
    m = tmp_path / "models"
    m.mkdir()
    shutil.copy(CLEAN, m / "a.pb")
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert cli_main.main(["rewrite", "--out-dir", "models/fixed", "models", *ONLY]) == 0
        assert list(_table(capsys.readouterr().out)) == ["models/a.pb"]
    assert (m / "fixed" / "a.pb").exists() and not (m / "fixed" / "fixed").exists()


def test_batch_diff_writes_nothing(tmp_path, capsys, monkeypatch):
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    rc = cli_main.main(["rewrite", "--out-dir", "out", "--diff", "models/detection.pb", "models/sub/clean.pb",
                        *ONLY, "--jobs", "1"])  # in this process (see above)
    cap = capsys.readouterr()
    assert rc == 1 and not (tmp_path / "out").exists()
    assert cap.out.startswith("graphfix diff models/detection.pb -> out/detection.pb: ")
    assert _table(cap.err)["models/detection.pb"]["status"] == "would fix"


def test_machine_formats_keep_stdout_parseable(tmp_path, capsys, monkeypatch):
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    rc = cli_main.main(["check", "models/detection.pb", "models/sub", *ONLY, "--format", "github"])
    cap = capsys.readouterr()
    assert rc == 2
    assert all(line.startswith("::") for line in cap.out.splitlines())
    assert "::error file=models/sub/broken.pb,title=graphfix error::models/sub/broken.pb%3A" not in cap.out
    assert "::error file=models/sub/broken.pb,title=graphfix error::models/sub/broken.pb: " in cap.out
    assert _table(cap.err)  # the table went to stderr


def test_progress_bar_only_on_a_terminal(tmp_path):
    _tree(tmp_path)
    no_rich = tmp_path / "no_rich" / "rich"  # rich not installed: the plain bar
    no_rich.mkdir(parents=True)
    (no_rich / "__init__.py").write_text("raise ImportError('no rich here')\n")
    r = _run("check", "models/detection.pb", "models/sub/clean.pb", *ONLY, cwd=tmp_path, tty=True,
             env={"PYTHONPATH": str(no_rich.parent)})
    assert r.returncode == 1
    assert "\r[" in r.stderr and "] 1/2  " in r.stderr and "] 2/2  " in r.stderr and " models/s" in r.stderr
    assert "slowest models/" in r.stderr
    assert "\r" not in r.stdout
    r = _run("check", "models/detection.pb", "models/sub/clean.pb", *ONLY, cwd=tmp_path)
    assert r.returncode == 1 and "\r" not in r.stderr and r.stderr == ""


def test_single_model_commands_are_unchanged(tmp_path, capsys):
    out = tmp_path / "fixed.pb"
    assert cli_main.main(["rewrite", DETECTION, str(out), *ONLY]) == 0
    cap = capsys.readouterr()
    assert "model  " not in cap.out and "Found 1 hazard (1 fixed, 0 remaining)." in cap.out and cap.err == ""
    assert out.exists()
    assert cli_main.main(["check", CLEAN, *ONLY]) == 0
    assert "model  " not in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["rewrite", DETECTION], "rewrite needs IN and OUT"),
    (["rewrite", DETECTION, "a.pb", "b.pb"], "use --out-dir DIR"),
    (["rewrite", "--out-dir", "o", DETECTION, "--dot", "x.dot"], "--dot draws one model"),
    (["check", "no/such/dir/"], "no such file or directory"),
])
def test_usage_errors(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def test_expand_order_and_relative_paths(tmp_path, monkeypatch):
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    targets, errors = batch.expand(["models"])
    assert [(t.path, t.rel) for t in targets] == [
        ("models/detection.pb", "detection.pb"), ("models/sm", "sm"), ("models/sub/broken.pb", "sub/broken.pb"),
        ("models/sub/clean.pb", "sub/clean.pb"), ("models/sub/det.pbtxt", "sub/det.pbtxt")]
    # a SavedModel's saved_model.pb matched by a glob stands for its directory; duplicates are dropped
    targets, errors = batch.expand(["models/*/*.pb*", "models/sm", "models/*.pb", "missing.pb"])
    assert [(t.path, t.rel) for t in targets] == [
        ("models/sm", "sm"), ("models/sub/broken.pb", "sub/broken.pb"), ("models/sub/clean.pb", "sub/clean.pb"),
        ("models/sub/det.pbtxt", "sub/det.pbtxt"), ("models/detection.pb", "detection.pb")]
    assert errors == [("missing.pb", "no such file or directory")]
    assert batch.expand(["models", "models/*.pb"]) == (batch.expand(["models"])[0], [])  # all duplicates: fine
