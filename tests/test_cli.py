"""The command line as a user runs it: exit codes, reports, bad input, determinism."""
import json
import os

import pytest

from tests.helpers import EXAMPLES, cli, run_cli, write

DETECTION = os.path.join(EXAMPLES, "detection.pb")
CLEAN = os.path.join(EXAMPLES, "clean.pb")


def test_check_exit_codes_and_json():
    r = cli("check", CLEAN)
    assert r.returncode == 0, r.stderr
    assert "clean" in r.stdout
    r = cli("check", DETECTION, "--format", "json")
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    assert rep["tool"] == "graphfix" and rep["summary"] == {"found": 1, "fixed": 0, "remaining": 1}
    f = rep["findings"][0]
    assert (f["code"], f["node"], f["op"], f["rule"]) == ("GF001", "loss/Mean_1", "Mean", "empty-reduction")
    assert rep["losses"] == ["loss/total:0"]


def test_check_does_not_import_tensorflow():
    r = cli("check", DETECTION, env={"PYTHONVERBOSE": ""})
    code = ("import sys, cli; rc = cli.main(['check', %r]); "
            "print('TF_IMPORTED' if 'tensorflow.python' in sys.modules else 'NO_TF')" % DETECTION)
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(EXAMPLES))
    assert "NO_TF" in out.stdout, out.stdout + out.stderr
    assert r.returncode == 1


def test_rewrite_clean_graph_is_byte_identical(tmp_path):
    out = tmp_path / "clean.out.pb"
    r = cli("rewrite", CLEAN, out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == open(CLEAN, "rb").read()


def test_rewrite_is_deterministic_and_idempotent(tmp_path):
    a, b, c = tmp_path / "a.pb", tmp_path / "b.pb", tmp_path / "c.pb"
    assert cli("rewrite", DETECTION, a).returncode == 0
    assert cli("rewrite", DETECTION, b, env={"PYTHONHASHSEED": "123"}).returncode == 0
    assert a.read_bytes() == b.read_bytes()
    r = run_cli("rewrite", a, c)  # idempotent: the process boundary is not the point here
    assert r.returncode == 0 and "clean" in r.stdout
    assert c.read_bytes() == a.read_bytes()


def test_rules_and_explain():
    r = cli("rules")
    assert r.returncode == 0 and "GF001" in r.stdout and "empty-reduction" in r.stdout
    r = cli("explain", "GF001")
    assert r.returncode == 0
    for section in ("What it does", "Why is this bad", "Example", "Fix", "Fix safety"):
        assert section in r.stdout


@pytest.mark.parametrize("content", [b"", b"\x08\x96\x01garbage", b"hello world, not a graph"])
def test_bad_input_exit_2_one_line_no_output(tmp_path, content):
    bad = write(tmp_path / "bad.pb", content)
    out = tmp_path / "out.pb"
    r = cli("rewrite", bad, out)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("graphfix: error: ")
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_bad_input_leaves_existing_output_untouched(tmp_path):
    bad = write(tmp_path / "bad.pb", b"")
    out = write(tmp_path / "out.pb", b"precious")
    r = cli("rewrite", bad, out)
    assert r.returncode == 2 and out.read_bytes() == b"precious"


@pytest.mark.parametrize("args,needle", [
    (["rewrite", "missing.pb", "out.pb"], "no such file"),
    (["check", DETECTION, "--select", "GF999"], "unknown rule"),
    (["check", DETECTION, "--loss", "no_such_node:0"], "no such node"),
    (["check", DETECTION, "--frobnicate"], "unrecognized arguments"),
    (["rewrite", DETECTION, "/nonexistent-dir/out.pb"], "does not exist"),
    (["explain", "GF999"], "unknown rule"),
])
def test_usage_errors(tmp_path, args, needle):
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


def test_report_file_and_select_ignore(tmp_path):
    rep = tmp_path / "report.json"
    out = tmp_path / "out.pb"
    r = run_cli("rewrite", DETECTION, out, "--format", "json", "--report", rep)
    assert r.returncode == 0, r.stderr
    data = json.loads(rep.read_text())
    assert data["summary"] == {"found": 1, "fixed": 1, "remaining": 0}
    assert data["findings"][0]["guard"] == "cond" and data["findings"][0]["new_nodes"]
    r = cli("check", DETECTION, "--ignore", "GF001")
    assert r.returncode == 0
