"""A newcomer's first hour (issue #14), through the real command line: closed
pipes, --debug anywhere, -V, colour and the spinner on a terminal (and plain
text everywhere else), --diff=stat, short reprs, Report.render, one version,
timing that names the TensorFlow import.

What only a whole process shows (a terminal, a closed pipe, the TensorFlow
import's time, argv handling before ``main``) runs ``python cli.py``; where a
command's output is the point it runs ``cli.main`` in this process
(``run_cli``), which spares a TensorFlow import per rewrite."""
import fcntl
import importlib.metadata
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import pytest

from tests.helpers import EXAMPLES, ROOT, cli, run_cli

DETECTION = os.path.join(EXAMPLES, "detection.pb")
CLEAN = os.path.join(EXAMPLES, "clean.pb")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env(extra=None, drop=("NO_COLOR", "FORCE_COLOR")):
    e = {k: v for k, v in os.environ.items() if k not in drop}
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    e["TERM"] = "xterm-256color"
    e.update(extra or {})
    return e


def on_terminal(*args, env=None, which="stdout", timeout=300):
    """Run ``python cli.py ARGS`` with ``which`` (stdout, stderr, or "both",
    each on its own pseudo-terminal) on a terminal and the rest on a pipe.
    Returns (rc, stdout bytes, stderr bytes)."""
    names = ("stdout", "stderr") if which == "both" else (which,)
    ptys = {n: pty.openpty() for n in names}
    for master, _ in ptys.values():  # a wide terminal: rich cuts lines at its width
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **{n: ptys[n][1] for n in names}}
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), *map(str, args)], env=_env(env), **streams)
    got = {"stdout": [], "stderr": []}
    fds = {}
    for n in names:
        os.close(ptys[n][1])
        fds[ptys[n][0]] = n
    for n in ("stdout", "stderr"):
        if n not in names:
            fds[getattr(p, n).fileno()] = n
    while fds:
        ready, _, _ = select.select(list(fds), [], [], timeout)
        if not ready:
            p.kill()
            raise TimeoutError(args)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed its terminal
                data = b""
            if data:
                got[fds[fd]].append(data)
            else:
                del fds[fd]
    p.wait(timeout=timeout)
    for n in names:
        os.close(ptys[n][0])
    return p.returncode, *(b"".join(got[n]).replace(b"\r\n", b"\n") for n in ("stdout", "stderr"))


def no_rich_dir(tmp_path):
    """A directory that, first on PYTHONPATH, makes ``import rich`` fail (as on
    an install without it)."""
    d = tmp_path / "norich" / "rich"
    d.mkdir(parents=True)
    (d / "__init__.py").write_text("raise ImportError('rich is not installed here')\n")
    return str(d.parent)


# ------------------------------------------------------------------ pipes, flags

@pytest.mark.parametrize("args", [["rules"], ["explain", "GF003"], ["check", DETECTION, "--format", "json"]])
def test_closed_pipe_ends_quietly(args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (head) is gone before graphfix writes a byte
    try:
        r = subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), *args], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, env=_env(), timeout=300)
    finally:
        os.close(write_end)
    assert r.stderr == ""  # no "BrokenPipeError", no "Exception ignored"
    assert r.returncode == 141  # 128 + SIGPIPE, as a Unix tool killed by it


def test_pipe_into_head_prints_the_head_and_nothing_else():
    for cmd in (f"{sys.executable} cli.py explain GF003 | head -5", f"{sys.executable} cli.py rules | head -1"):
        r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, env=_env(), timeout=300)
        full = subprocess.run(["bash", "-c", cmd.split(" | ")[0]], cwd=ROOT, capture_output=True, text=True,
                              env=_env(), timeout=300)
        n = int(cmd.rsplit("-", 1)[1])
        assert r.stdout.splitlines() == full.stdout.splitlines()[:n]
        assert r.stderr == "" and r.returncode == 0


@pytest.mark.parametrize("position", ["before", "after"])
def test_debug_before_or_after_the_subcommand(tmp_path, position):
    for cmd in (["rules"], ["explain", "GF001"]):
        argv = ["--debug", *cmd] if position == "before" else [*cmd, "--debug"]
        r = cli(*argv)
        assert r.returncode == 0 and "GF001" in r.stdout, r.stderr
    missing = tmp_path / "missing.pb"
    argv = ["--debug", "check", missing] if position == "before" else ["check", missing, "--debug"]
    r = cli(*argv)
    assert r.returncode == 2
    assert "Traceback (most recent call last)" in r.stderr  # --debug shows it ...
    assert r.stderr.splitlines()[-1].startswith("graphfix: error: ") and "no such file" in r.stderr
    r = cli("check", missing)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1  # ... and only then


def test_version_flags_and_one_version_everywhere():
    import graphfix

    installed = importlib.metadata.version("graphfix")
    assert graphfix.__version__ == installed
    for flag in ("-V", "--version"):
        r = cli(flag)
        assert r.returncode == 0 and r.stdout == f"graphfix {installed}\n"
    r = cli("check", DETECTION, "--format", "json")
    assert json.loads(r.stdout)["version"] == installed
    assert graphfix.check(graphfix.load(DETECTION)).version == installed


def test_verify_help_describes_original_and_fixed():
    r = cli("verify", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "ORIGINAL the model as it was" in text and "FIXED the repaired model" in text


# ------------------------------------------------------------------ colour

def test_findings_are_coloured_on_a_terminal():
    rc, out, err = on_terminal("check", DETECTION)
    assert rc == 1, err
    text = out.decode()
    assert "\x1b[1;31mGF001\x1b[0m" in text  # the rule code, bold red as in ruff
    assert f"\x1b[1m{DETECTION}\x1b[0m\x1b[36m:\x1b[0m" in text  # the path bold, ':' cyan
    assert "\x1b[36m[*]\x1b[0m" in text  # fixable mark
    plain = run_cli("check", DETECTION)
    assert ANSI.sub("", text) == plain.stdout  # same words, only styled


@pytest.mark.parametrize("how", ["NO_COLOR", "--no-color before", "--no-color after", "without rich"])
def test_plain_on_a_terminal_when_asked_or_without_rich(tmp_path, how):
    env, args = {}, ["check", DETECTION]
    if how == "NO_COLOR":
        env["NO_COLOR"] = "1"
    elif how == "--no-color before":
        args = ["--no-color", *args]
    elif how == "--no-color after":
        args = [*args, "--no-color"]
    else:
        env["PYTHONPATH"] = no_rich_dir(tmp_path)
    rc, out, err = on_terminal(*args, env=env)
    assert rc == 1, err
    assert b"\x1b[" not in out
    assert out.decode() == run_cli("check", DETECTION).stdout


# ------------------------------------------------------------------ one rewrite on a terminal

def test_rewrite_on_a_terminal_with_and_without_rich_and_off_it(tmp_path):
    # stdout and stderr each on a terminal: coloured report, a spinner while it works
    rc, out, err = on_terminal("rewrite", DETECTION, tmp_path / "a.pb", which="both")
    assert rc == 0, err
    assert "\x1b[1;32m[fixed]\x1b[0m" in out.decode()
    shown = ANSI.sub("", err.decode())
    assert "graphfix: repairing detection.pb (263 nodes)" in shown
    assert "263 nodes) (importing TensorFlow)" in shown  # where most of the seconds go
    assert "graphfix: writing a.pb" in shown
    assert err.startswith(b"\x1b[?25l") and err.rstrip().endswith(b"\x1b[2K")  # drawn, then cleared
    # without rich: plain text and no spinner, on the same terminals
    rc, out2, err2 = on_terminal("rewrite", DETECTION, tmp_path / "b.pb", which="both",
                                 env={"PYTHONPATH": no_rich_dir(tmp_path)})
    assert rc == 0 and err2 == b"" and b"\x1b[" not in out2
    # not a terminal (rich installed): plain, and nothing at all on stderr
    r = run_cli("rewrite", DETECTION, tmp_path / "c.pb")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == out2.decode() == ANSI.sub("", out.decode())
    assert "[fixed]" in r.stdout
    assert (tmp_path / "a.pb").read_bytes() == (tmp_path / "b.pb").read_bytes() == (tmp_path / "c.pb").read_bytes()


# ------------------------------------------------------------------ --diff=stat

def test_diff_stat_summarises_what_the_full_diff_shows(tmp_path):
    full = run_cli("rewrite", "--diff", DETECTION)  # a bare --diff never takes the path as its value
    out = tmp_path / "fixed.pb"
    stat = run_cli("rewrite", DETECTION, out, "--diff=stat")
    assert full.returncode == stat.returncode == 1
    head = full.stdout.splitlines()[0]
    # no OUT: the fixed side is labelled as such, never "model.pb -> model.pb"
    assert head.startswith(f"graphfix diff {DETECTION} -> {DETECTION} (fixed): ")
    counts = dict((k, int(n)) for n, k in re.findall(r"(\d+) (added|removed|rewired|changed)", head))
    # the header's numbers are those of the node blocks that follow
    kinds = re.findall(r"^# \S+ \((added|removed|rewired|changed)", full.stdout, re.M)
    assert counts == {k: kinds.count(k) for k in set(kinds)}
    lines = stat.stdout.splitlines()
    assert lines[0] == f"graphfix diff --stat {DETECTION} -> {out}"
    total = dict((k, int(n)) for n, k in re.findall(r"(\d+) (added|removed|rewired|changed)", lines[-1]))
    assert lines[-1].split()[0] == "total" and {k: v for k, v in total.items() if v} == counts
    finding = [ln for ln in lines[1:-1] if "GF001 loss/Mean_1" in ln]
    assert len(lines) == 3 and len(finding) == 1  # the whole change belongs to the one finding
    assert "--diff: no graph written." in stat.stderr and os.listdir(tmp_path) == []
    r = run_cli("rewrite", "--diff=stat", CLEAN)
    assert r.returncode == 0 and r.stdout == ""
    r = run_cli("rewrite", "--diff=words", DETECTION)
    assert r.returncode == 2 and "invalid choice" in r.stderr


# ------------------------------------------------------------------ library in a REPL

def _reprs(*paths):
    """What a REPL shows for each model: repr of the model, its rewrite, the
    reports and a finding, str(report) and the report's version."""
    import graphfix

    out = {}
    for path in paths:
        model = graphfix.load(path)
        fixed, report = graphfix.rewrite(model)
        check = graphfix.check(model)
        out[path] = {"model": repr(model), "fixed": repr(fixed), "report": repr(report), "check": repr(check),
                     "finding": repr(report.findings[0]), "str": str(report), "version": report.version}
    return out


def test_reprs_are_short(tf, tmp_path):
    from tests.test_meta_saved_model import _saved_model, detection

    meta, saved = str(tmp_path / "model.meta"), str(tmp_path / "model")
    with tf.Graph().as_default():
        detection(tf)
        tf.compat.v1.train.Saver()
        tf.compat.v1.train.export_meta_graph(meta)
    _saved_model(tf, saved)
    got = _reprs(DETECTION, meta, saved)  # in this process: a REPL is one too
    for path, kind in ((DETECTION, "GraphDef"), (meta, "MetaGraphDef"), (saved, "SavedModel")):
        d = got[path]
        for key in ("model", "fixed", "report", "check", "finding"):
            assert len(d[key]) < 300, d[key]
        assert d["finding"].startswith("<Finding GF001 ") and "fixed" in d["finding"]
        assert d["model"].startswith(f"<graphfix.Model {kind} ") and " nodes" in d["model"]
        assert "changed" in d["fixed"] and "changed" not in d["model"]
        assert d["report"].startswith("<Report rewrite ") and "1 fixed" in d["report"]
        assert d["check"].startswith("<Report check ") and "GF001" in d["check"]
        assert d["str"].startswith(path) and "[fixed]" in d["str"]  # print(report) is the text report
        assert d["version"] == importlib.metadata.version("graphfix")


def _same_report(fmt, a, b):
    if fmt == "json":  # equal but for the timings
        a, b = json.loads(a), json.loads(b)
        assert set(a.pop("timing_ms")) >= {"ir", "rules"} and set(b.pop("timing_ms")) >= {"ir", "rules"}
    assert a == b


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_report_render_matches_the_cli_check(fmt):
    import graphfix

    r = run_cli("check", DETECTION, "--format", fmt)
    assert r.returncode == 1
    report = graphfix.check(graphfix.load(DETECTION))
    _same_report(fmt, report.render(fmt), r.stdout)
    with pytest.raises(ValueError, match="unknown report format"):
        report.render("xml")


@pytest.mark.parametrize("fmt", ["text", "github"])  # json: the timing test below; sarif: tests/test_sarif
def test_report_render_matches_the_cli_rewrite(tmp_path, fmt):
    import graphfix

    out = tmp_path / "fixed.pb"
    r = run_cli("rewrite", DETECTION, out, "--format", fmt)
    assert r.returncode == 0
    fixed, report = graphfix.rewrite(graphfix.load(DETECTION))
    report.output = str(out)
    _same_report(fmt, report.render(fmt), r.stdout)
    summary = "Found 1 hazard (1 fixed, 0 remaining)."  # a rewrite's report renders as one
    assert summary in report.render("text") and summary not in report.render("text", mode="check")


# ------------------------------------------------------------------ timing

def test_timing_names_the_tensorflow_import_and_new_names_are_short(tmp_path):
    out = tmp_path / "fixed.pbtxt"
    r = cli("rewrite", DETECTION, out, "--format", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    # new gradient nodes do not repeat their scope (…/grad/<term>/graphfix/GF001/cond/… before)
    new = rep["findings"][0]["new_nodes"]
    assert [n for n in new if n.startswith("loss/Mean_1/graphfix/GF001/grad/cond/")]
    assert not [n for n in new if n.count("/graphfix/") > 1]
    names = re.findall(r'^  name: "([^"]+)"', out.read_text(), re.M)
    assert set(new) <= set(names) and not [n for n in names if n.count("/graphfix/") > 1]
    # the library's report renders the same JSON (Report.render)
    import graphfix

    report = graphfix.rewrite(graphfix.load(DETECTION))[1]
    report.output = str(out)
    _same_report("json", report.render("json"), r.stdout)
    t = rep["timing_ms"]
    # the first fix imports TensorFlow (seconds); that is not the rule's time
    assert t["tensorflow_import"] > 100
    assert t["GF001"] < t["tensorflow_import"]
    assert t["rules"] < t["tensorflow_import"] < t["rewrite"]
    r = cli("check", DETECTION, "--format", "json")
    assert "tensorflow_import" not in json.loads(r.stdout)["timing_ms"]  # check never imports it


# ------------------------------------------------------------------ verify wording

def test_verify_sentence_is_plain_english(tmp_path):
    import graphfix

    fixed = tmp_path / "fixed.pb"
    graphfix.save(graphfix.rewrite(graphfix.load(DETECTION))[0], str(fixed))
    r = run_cli("verify", DETECTION, fixed)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("normal feeds:"))
    assert re.search(r"agree on 1 loss, \d+ gradients?(, | and )", line), line
    assert "1 gradients" not in line and "1 applied gradients" not in line and "1 losses" not in line


# ------------------------------------------------------------------ batch mode: colour, --diff=stat

def _two_models(tmp_path):
    """models/: the detection example (one GF001 finding), a text copy of it, and a clean graph."""
    import shutil

    from google.protobuf import text_format

    import graphfix

    m = tmp_path / "models"
    m.mkdir()
    shutil.copy(DETECTION, m / "a.pb")
    (m / "b.pbtxt").write_text(text_format.MessageToString(graphfix.load(DETECTION).graph_def))
    shutil.copy(CLEAN, m / "clean.pb")
    return m


def _findings_part(text):
    """The finding lines of a batch text report (what comes before the table)."""
    return text.split("\n\n", 1)[0]


def test_batch_findings_are_coloured_on_a_terminal(tmp_path):
    models = _two_models(tmp_path)
    rc, out, err = on_terminal("check", models, "--no-cache")
    assert rc == 1, err
    text = out.decode()
    for name in ("a.pb", "b.pbtxt"):  # styled as a single model's findings are
        assert f"\x1b[1m{models / name}\x1b[0m\x1b[36m:\x1b[0m" in text
    assert text.count("\x1b[1;31mGF001\x1b[0m") == 2 and text.count("\x1b[36m[*]\x1b[0m") == 2
    plain = run_cli("check", models, "--no-cache", "--jobs", "1")
    assert plain.returncode == 1 and "\x1b[" not in plain.stdout
    assert _findings_part(ANSI.sub("", text)) == _findings_part(plain.stdout)  # same words, only styled
    single = on_terminal("check", models / "a.pb")[1].decode()
    assert single.splitlines()[0] == text.splitlines()[0]  # the same styling, byte for byte


@pytest.mark.parametrize("how", ["NO_COLOR", "--no-color"])
def test_batch_is_plain_on_a_terminal_when_asked(tmp_path, how):
    models = _two_models(tmp_path)
    env, args = ({"NO_COLOR": "1"}, []) if how == "NO_COLOR" else ({}, ["--no-color"])
    rc, out, err = on_terminal("check", models, "--no-cache", *args, env=env)
    assert rc == 1, err
    assert b"\x1b[" not in out  # neither the findings nor the table
    plain = run_cli("check", models, "--no-cache", "--jobs", "1")
    mask = re.compile(r"\d+\.\d\d")  # the seconds column
    assert mask.sub("S", out.decode()) == mask.sub("S", plain.stdout)


def test_batch_diff_stat_is_the_single_model_stat_per_model(tmp_path):
    import graphfix
    from graphfix.render.diff import diff_text

    models = _two_models(tmp_path)
    out = tmp_path / "out"
    r = run_cli("rewrite", "--out-dir", out, "--diff=stat", models, "--jobs", "1")
    assert r.returncode == 1, r.stderr
    assert not out.exists() and "\x1b[" not in r.stdout
    heads = [ln for ln in r.stdout.splitlines() if ln.startswith("graphfix diff")]
    assert heads == [f"graphfix diff --stat {models / n} -> {out / n}" for n in ("a.pb", "b.pbtxt")]
    assert "\n# " not in r.stdout and "@@" not in r.stdout  # no per-node diff
    # each model's part is what --diff=stat prints for that model alone
    want = ""
    for n in ("a.pb", "b.pbtxt"):
        model = graphfix.load(str(models / n))
        fixed, report = graphfix.rewrite(model)
        want += diff_text(model, fixed, str(models / n), str(out / n), "stat", report.findings)
    assert r.stdout == want
    lines = r.stdout.splitlines()
    assert len(lines) == 6 and lines[2].split()[0] == lines[5].split()[0] == "total"
    assert _table(r.stderr)[str(models / "a.pb")]["status"] == "would fix"
    assert _table(r.stderr)[str(models / "clean.pb")]["status"] == "clean"
    full = run_cli("rewrite", "--out-dir", out, "--diff", models / "clean.pb")  # bare --diff: the full diff
    assert full.returncode == 0 and full.stdout == "" and not out.exists()


def _table(text):
    from tests.test_batch import _table as table

    return table(text)
