"""``rewrite`` checks its own work before it writes (issue #10).

A finding is reported ``[fixed]`` only when it is gone from the fixed graph,
forward (the rules' matching no longer finds it) and on its gradient path (the
stale gradient scopes are gone and every scope of a replaced or created op
describes the op now in the graph).  These tests break the gradient patch on
purpose and check that ``rewrite`` refuses to call the finding fixed, exits 1,
and that ``graphfix verify`` agrees the result is broken; ``rewrite --verify``
reports which check failed, and then no finding is ``[fixed]``.
"""
import json

import pytest

import graphfix
import graphfix.patch.gradients as gradients
from graphfix.analysis.gradpath import GradScopes
from tests.corpus import shared as build
from tests.helpers import cli, run_cli

CASE = "chained_manual_softmax_log_abs_sgd"


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    p = tmp_path_factory.mktemp("selfcheck") / "softmax.pb"
    p.write_bytes(build(CASE).graph_def.SerializeToString(deterministic=True))
    return p


def _rewrite_in_process(capsys, *args):
    import cli as cli_module

    code = cli_module.main(["rewrite", *map(str, args)])
    return code, capsys.readouterr()


def test_intact_patch_is_fixed_and_verified(src, tmp_path, capsys):
    out = tmp_path / "fixed.pb"
    code, io = _rewrite_in_process(capsys, src, out, "--unsafe-fixes", "--verify")
    assert code == 0, io.out + io.err
    assert "[not fixed]" not in io.out and io.out.count("[fixed]") >= 3
    assert "verify: OK" in io.out
    report = graphfix.rewrite(graphfix.load(src), unsafe_fixes=True)[1]
    assert report.remaining == 0 and "selfcheck" in report.timing_ms


def test_unwired_gradient_patch_is_not_fixed(src, tmp_path, capsys, monkeypatch):
    """Break the patch: the new gradient is built but nothing is rewired to it,
    so the optimizer keeps reading the old gradient scope."""
    monkeypatch.setattr(gradients, "_stale_outputs", lambda ir, nodes, removed: [])
    out = tmp_path / "broken.pb"
    code, io = _rewrite_in_process(capsys, src, out, "--unsafe-fixes", "--format", "json")
    assert code == 1
    report = json.loads(io.out)
    broken = [f for f in report["findings"] if not f["fixed"]]
    assert broken and report["summary"]["remaining"] == len(broken)
    assert all("not fixed: the old gradient" in f["note"] and "still in the graph" in f["note"] for f in broken)
    assert any("ApplyGradientDescent" in f["note"] for f in broken)  # names who still reads it
    monkeypatch.undo()
    r = run_cli("verify", src, out)  # an independent judge agrees: the result does not hold
    assert r.returncode == 1 and "verify: FAILED" in r.stdout, r.stdout + r.stderr


def test_skipped_gradient_scope_is_not_fixed(src, tmp_path, capsys, monkeypatch):
    """Break the patch the way issue 10 saw it: the gradient scope of the op a
    rule replaces is not found, so no gradient is patched at all."""
    monkeypatch.setattr(GradScopes, "scope", lambda self, prefix, fwd: [])
    code, io = _rewrite_in_process(capsys, src, tmp_path / "broken.pb", "--unsafe-fixes")
    assert code == 1
    bad = [ln for ln in io.out.splitlines() if "[not fixed]" in ln]
    assert bad and all("differentiates an op that is no longer in the graph" in ln for ln in bad), io.out
    assert "[fixed]" not in io.out.replace("[not fixed]", "")  # every fix here needed its gradient patched


def test_verify_failure_leaves_no_finding_fixed(src, tmp_path, capsys, monkeypatch):
    """No finding is reported [fixed] in a graph whose verify fails; the report
    says which check failed."""
    monkeypatch.setattr(gradients, "_stale_outputs", lambda ir, nodes, removed: [])
    code, io = _rewrite_in_process(capsys, src, tmp_path / "broken.pb", "--unsafe-fixes", "--verify")
    assert code == 1
    assert "verify: FAILED: trigger feeds: the fixed graph is not finite" in io.out, io.out
    assert "[fixed]" not in io.out.replace("[not fixed]", ""), io.out
    code, io = _rewrite_in_process(capsys, src, tmp_path / "broken.pb", "--unsafe-fixes", "--verify",
                                   "--format", "json")
    report = json.loads(io.out)
    assert report["verify"]["ok"] is False and report["verify"]["failed"]
    assert report["summary"]["fixed"] == 0


def test_forward_rematch_is_not_fixed(src, tmp_path, capsys, monkeypatch):
    """A fix that leaves the hazard in place (here: every guard replaced by a
    plain copy of the op) is found again by the rules' matching: not fixed."""
    from graphfix.engine.guards import clone_with
    from graphfix.engine.passes import Rule

    original = Rule.replace_node

    def no_guard(self, ctx, node, build, region=None, output=None):
        return original(self, ctx, node, lambda b: clone_with(b, node, {})[0])

    monkeypatch.setattr(Rule, "replace_node", no_guard)
    code, io = _rewrite_in_process(capsys, src, tmp_path / "same.pb", "--unsafe-fixes", "--format", "json")
    assert code == 1
    findings = json.loads(io.out)["findings"]
    assert findings and not any(f["fixed"] for f in findings), findings
    assert any(" still matches " in f["note"] for f in findings), findings


def test_verify_flag_needs_one_model(tmp_path):
    r = cli("rewrite", "--out-dir", tmp_path / "o", tmp_path, "--verify")
    assert r.returncode == 2 and r.stderr.startswith("graphfix: error: --verify works on one model")
