"""`--format github`: GitHub Actions workflow-command annotations, escaped the
way the runner unescapes them."""
import os
import re

import pytest
from google.protobuf import text_format

import cli as cli_main
import graphfix
from graphfix.core.findings import Finding
from graphfix.render.github import annotations, command, escape_data, escape_property
from graphfix.render.report import Report
from tests.helpers import EXAMPLES, ROOT, cli

DETECTION = os.path.join(EXAMPLES, "detection.pb")
CLEAN = os.path.join(EXAMPLES, "clean.pb")
ONLY = ("--select", "GF001")
_CMD = re.compile(r"^::(?P<kind>[a-z]+)(?: (?P<props>[^:]*))?::(?P<msg>.*)$")


def parse(line: str):
    """Parse a workflow command as the runner does (ActionCommand.TryParse + unescaping)."""
    m = _CMD.match(line)
    assert m, line

    def unescape(s, prop):
        s = s.replace("%0D", "\r").replace("%0A", "\n")
        if prop:
            s = s.replace("%3A", ":").replace("%2C", ",")
        return s.replace("%25", "%")

    props = {}
    for kv in (m["props"] or "").split(","):
        if kv:
            k, _, v = kv.partition("=")
            props[k] = unescape(v, True)
    return m["kind"], props, unescape(m["msg"], False)


def test_escaping_follows_the_runner():
    assert escape_data("100% a\r\nb: c, d") == "100%25 a%0D%0Ab: c, d"
    assert escape_property("100% a\r\nb: c, d") == "100%25 a%0D%0Ab%3A c%2C d"
    assert escape_data("%0A") == "%250A"  # a literal "%0A" must not become a newline
    line = command("error", "x\ny %", file="a,b:c.pb", line=3, title="GF001 empty-reduction", col=None)
    assert line == "::error file=a%2Cb%3Ac.pb,line=3,title=GF001 empty-reduction::x%0Ay %25"
    assert "\n" not in line
    assert parse(line) == ("error", {"file": "a,b:c.pb", "line": "3", "title": "GF001 empty-reduction"}, "x\ny %")


def test_awkward_messages_round_trip():
    f = Finding(code="GF001", rule="empty-reduction", node="scope/a,b:c", op="Mean",
                message="50% of rows\nare empty: NaN, always", fixed=False)
    g = Finding(code="GF001", rule="empty-reduction", node="n", op="Mean", message="m", fixed=True, guard="where")
    rep = Report(input="dir, with: odd%chars/model.pb", format="GraphDef", nodes=3, losses=[], findings=[f, g],
                 timing_ms={})
    first, second = annotations([rep], "rewrite")
    kind, props, msg = parse(first)
    assert kind == "error" and props["file"] == "dir, with: odd%chars/model.pb"
    assert props["title"] == "GF001 empty-reduction"
    assert msg == "scope/a,b:c: 50% of rows\nare empty: NaN, always"
    kind, props, msg = parse(second)
    assert kind == "notice" and msg == "n: m [fixed: where guard]"


def test_check_github_one_error_per_finding():
    r = cli("check", "examples/detection.pb", *ONLY, "--format", "github", cwd=ROOT)
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("::error file=examples/detection.pb,title=GF001 empty-reduction::loss/Mean_1: ")
    kind, props, msg = parse(lines[0])
    assert msg.startswith("loss/Mean_1: mean over loss/boolean_mask/GatherV2") and "NaN" in msg


def test_clean_graph_prints_no_annotation():
    r = cli("check", CLEAN, *ONLY, "--format", "github")
    assert r.returncode == 0 and r.stdout == ""


def test_rewrite_github_notices_for_fixed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc = cli_main.main(["rewrite", "examples/detection.pb", str(tmp_path / "out.pb"), *ONLY, "--format", "github"])
    out = capsys.readouterr().out
    assert rc == 0
    kind, props, msg = parse(out.strip())
    assert kind == "notice" and props == {"file": "examples/detection.pb", "title": "GF001 empty-reduction"}
    assert msg.endswith("[fixed: cond guard]")


def test_text_graph_annotation_has_lines_and_workspace_relative_path(tmp_path, capsys, monkeypatch):
    ws = tmp_path / "ws"
    (ws / "models").mkdir(parents=True)
    src = ws / "models" / "det.pbtxt"
    src.write_text(text_format.MessageToString(graphfix.load(DETECTION).graph_def))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(ws))
    monkeypatch.chdir(tmp_path)
    rc = cli_main.main(["check", str(src), *ONLY, "--format", "github"])
    assert rc == 1
    kind, props, _ = parse(capsys.readouterr().out.strip())
    assert props["file"] == "models/det.pbtxt"
    lines = src.read_text().splitlines()
    assert lines[int(props["line"]) - 1] == "node {" and lines[int(props["line"])] == '  name: "loss/Mean_1"'
    assert int(props["endLine"]) > int(props["line"])


@pytest.mark.parametrize("fmt", ["sarif", "github"])
def test_new_formats_are_offered_by_check_and_rewrite(fmt):
    parser = cli_main.build_parser()
    for argv in (["check", "x.pb"], ["rewrite", "x.pb", "y.pb"]):
        assert parser.parse_args([*argv, "--format", fmt]).format == fmt
