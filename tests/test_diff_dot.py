"""`rewrite --diff` (print the graph change, write nothing) and `rewrite --dot`
(before/after pictures of each repaired term)."""
import os
import re
import shutil
import subprocess

import pytest

import cli as cli_main
import graphfix
from graphfix.render import dot as gdot
from graphfix.render.diff import compare, graph_diff
from tests.helpers import EXAMPLES, run_cli

DETECTION = os.path.join(EXAMPLES, "detection.pb")
CLEAN = os.path.join(EXAMPLES, "clean.pb")
ONLY = ("--select", "GF001")
MEAN_GRAD = "gradients/loss/Mean_1_grad"
RESHAPE = "gradients/loss/boolean_mask/GatherV2_grad/Reshape"


@pytest.fixture(scope="module")
def pair():
    model = graphfix.load(DETECTION)
    fixed, report = graphfix.rewrite(model, select=["GF001"])
    return model, fixed, report


def _headers(text):
    """[(kind, node)] from the '# node (kind…)' lines, in order."""
    return [(m[2].split(":")[0], m[1]) for m in re.finditer(r"^# (\S+) \(([^)]*)\)$", text, re.M)]


def test_diff_prints_and_writes_nothing(tmp_path):
    (tmp_path / "examples").mkdir()
    shutil.copy(DETECTION, tmp_path / "examples" / "detection.pb")
    r = run_cli("rewrite", "--diff", "examples/detection.pb", *ONLY, cwd=tmp_path)
    assert r.returncode == 1, r.stderr  # the graph would change
    out = r.stdout
    # no OUT: the fixed side is labelled as such, not "model.pb -> model.pb"
    assert out.startswith("graphfix diff examples/detection.pb -> examples/detection.pb (fixed): ")
    assert "48 added, 14 removed, 1 rewired, 1 changed" in out.splitlines()[0]
    # an added node: a whole block of '+' lines against /dev/null
    assert ("--- /dev/null\n+++ examples/detection.pb (fixed):loss/Mean_1/graphfix/GF001/nonempty\n@@ -0,0 +1,"
            in out)
    assert '+  op: "Greater"\n' in out
    # a removed node of the stale gradient scope
    assert f"--- examples/detection.pb:{MEAN_GRAD}/Tile\n+++ /dev/null\n" in out
    # the term, replaced by its guard under the same name
    assert "# loss/Mean_1 (changed: Mean -> Merge)" in out
    assert '-  op: "Mean"\n' in out and '+  op: "Merge"\n' in out
    # the gradient consumer, rewired to the guard's gradient
    assert f"# {RESHAPE} (rewired: input 0 {MEAN_GRAD}/truediv -> " in out
    assert f'-  input: "{MEAN_GRAD}/truediv"\n' in out
    # the report goes to stderr, and nothing is written anywhere
    assert "[fixed]" in r.stderr and "--diff: no graph written." in r.stderr
    assert [p.relative_to(tmp_path).as_posix() for p in sorted(tmp_path.rglob("*"))] == \
        ["examples", "examples/detection.pb"]


def test_diff_with_out_names_it_but_does_not_write_it(tmp_path, capsys):
    out = tmp_path / "fixed.pb"
    rc = cli_main.main(["rewrite", DETECTION, str(out), "--diff", *ONLY, "--format", "json"])
    cap = capsys.readouterr()
    assert rc == 1 and not out.exists() and os.listdir(tmp_path) == []
    assert f"+++ {out}:loss/Mean_1\n" in cap.out
    assert '"output"' not in cap.err and '"fixed": true' in cap.err  # JSON report on stderr, no output claimed


def test_diff_of_clean_graph_is_empty_and_exit_0(capsys):
    rc = cli_main.main(["rewrite", CLEAN, "--diff", *ONLY])
    cap = capsys.readouterr()
    assert rc == 0 and cap.out == ""


def test_diff_is_complete_ordered_and_deterministic(pair):
    model, fixed, _ = pair
    text = graph_diff(model, fixed, "a.pb", "b.pb")
    assert text == graph_diff(graphfix.load(DETECTION), graphfix.rewrite(graphfix.load(DETECTION),
                                                                         select=["GF001"])[0], "a.pb", "b.pb")
    old = [n.name for n in model.graph_def.node]
    new = [n.name for n in fixed.graph_def.node]
    heads = _headers(text)
    assert {n for k, n in heads if k == "added"} == set(new) - set(old)
    assert {n for k, n in heads if k == "removed"} == set(old) - set(new)
    ch = compare(model, fixed)
    assert ch.rewired == [RESHAPE] and ch.changed == ["loss/Mean_1"]
    # graph order: nodes of the fixed graph in its order, removed ones where they stood in the original
    shown = [n for _, n in heads if n in new]
    assert shown == sorted(shown, key=new.index)
    removed = [n for k, n in heads if k == "removed"]
    assert removed == sorted(removed, key=old.index)
    assert graph_diff(model, model) == ""


def test_dot_shows_before_and_after(tmp_path, capsys):
    out, picture = tmp_path / "fixed.pb", tmp_path / "change.dot"
    rc = cli_main.main(["rewrite", DETECTION, str(out), *ONLY, "--dot", str(picture)])
    assert rc == 0 and out.exists()
    text = picture.read_text()
    assert text.startswith("digraph graphfix {") and text.rstrip().endswith("}")
    assert 'subgraph "cluster_1_before"' in text and 'subgraph "cluster_1_after"' in text
    assert 'label="GF001 loss/Mean_1 (cond) — before"' in text
    node = re.compile(r'^\s+"(\d)([ba]):([^"]+)" \[(.*)\];$', re.M)
    nodes = {(m[2], m[3]): m[4] for m in node.finditer(text)}
    # new nodes filled, removed ones dashed grey, the replaced term filled yellow
    assert 'fillcolor="#c8f7c5"' in nodes[("a", "loss/Mean_1/graphfix/GF001/nonempty")]
    assert ("a", f"{MEAN_GRAD}/Tile") not in nodes
    assert "dashed" in nodes[("b", f"{MEAN_GRAD}/Tile")]
    assert 'fillcolor="#fff2a8"' in nodes[("b", "loss/Mean_1")]
    # one ring of unchanged neighbours, grey; nothing farther
    assert 'color="#9a9a9a"' in nodes[("b", "loss/boolean_mask/GatherV2")]
    assert ("b", "loss/boolean_mask/Where") not in nodes
    # the rewired edge: blue in after, the old one red and dashed in before
    assert re.search(rf'"1b:{MEAN_GRAD}/truediv" -> "1b:{RESHAPE}" \[color="#c0392b", style="dashed"\]', text)
    assert re.search(rf'"1a:[^"]+" -> "1a:{RESHAPE}" \[color="#1f5fbf", penwidth="2"\]', text)
    assert text == gdot.render_dot(*_pair_again(), title=DETECTION)  # deterministic


def _pair_again():
    m = graphfix.load(DETECTION)
    f, r = graphfix.rewrite(m, select=["GF001"])
    return m, f, r.findings


def test_dot_for_unchanged_graph(tmp_path, capsys):
    picture = tmp_path / "none.dot"
    rc = cli_main.main(["rewrite", CLEAN, str(tmp_path / "o.pb"), *ONLY, "--dot", str(picture)])
    assert rc == 0 and "the graph is unchanged" in picture.read_text()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_dot_renders_svg_and_parses(tmp_path, pair):
    model, fixed, report = pair
    src = tmp_path / "p.dot"
    src.write_text(gdot.render_dot(model, fixed, report.findings))
    r = subprocess.run(["dot", "-Tcanon", str(src)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    svg = tmp_path / "p.svg"
    r = run_cli("rewrite", DETECTION, "--diff", *ONLY, "--dot", svg)
    assert r.returncode == 1, r.stderr
    data = svg.read_text()
    assert "<svg" in data and "loss/Mean_1/graphfix/GF001/nonempty" in data


def test_svg_without_graphviz_is_an_error_before_any_write(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gdot, "dot_program", lambda: None)
    out, svg = tmp_path / "o.pb", tmp_path / "p.svg"
    rc = cli_main.main(["rewrite", DETECTION, str(out), "--dot", str(svg)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Graphviz" in err
    assert not out.exists() and not svg.exists()
