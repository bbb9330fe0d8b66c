"""Every rule on the realistic corpus, executed in TensorFlow (issue #4's contract).

For each unsafe corpus graph: graphfix finds the expected codes (and nothing
outside codes + may_also_match), the rewrite keeps loss and gradients on the
normal feed (relative 1e-6; most are bit-identical), makes loss, gradients and
one train step finite on the triggering feed, and is idempotent.  Every safe
graph yields no finding and comes out byte-identical.
"""
import numpy as np
import pytest

import graphfix
import rewrites
from graphfix.core.model import Model
from tests.corpus import ALL_RULES, CASES, params, safe_cases, unsafe_cases
from tests.corpus import shared as build
from tests.corpus.runner import run_case

RTOL = 1e-6
DEFAULT = {r.code for r in rewrites.RULES if r.default}
# Cases whose every hazard belongs to an opt-in rule: the default set leaves them to --select.
OPT_IN_ONLY = [n for n in unsafe_cases() if not set(CASES[n].codes) & DEFAULT and not CASES[n].known_gap]


def _model(case):
    raw = case.graph_def.SerializeToString(deterministic=True)
    return Model(kind="graph_def", text=False, graph_def=case.graph_def, path=case.name, raw=raw)


def _assert_close(a, b, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, what
    np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-7 * max(1.0, float(np.max(np.abs(a), initial=0))),
                               err_msg=what)


def _finite(res):
    vals = [res["loss"], *res["grads"].values(), *res.get("variables", {}).values()]
    return all(np.all(np.isfinite(v)) for v in vals)


@pytest.mark.parametrize("name", params(unsafe_cases()))
def test_unsafe_case_is_repaired(name):
    case = build(name)
    checked = {f.code for f in graphfix.check(_model(case), select=ALL_RULES).findings}
    assert set(case.codes) <= checked <= set(case.codes) | set(case.may_also_match), checked
    fixed, report = graphfix.rewrite(_model(case), select=ALL_RULES)
    codes = {f.code for f in report.findings}
    assert set(case.codes) <= codes, report.findings
    assert codes <= set(case.codes) | set(case.may_also_match), report.findings
    unfixed = [f for f in report.findings if not f.fixed and f.safety == "safe"]
    assert not unfixed, unfixed
    if report.remaining:
        # Report-only hazards (GF008/GF009) remain: the triggering feed may hit
        # them too, so check the graph with their unsafe fixes applied as well.
        fixed, report = graphfix.rewrite(_model(case), select=ALL_RULES, unsafe_fixes=True)
        assert report.remaining == 0, report.findings

    steps = 1 if case.train_op else 0
    before = run_case(case, feeds="normal", steps=steps)
    after = run_case(case, fixed.graph_def, feeds="normal", steps=steps)
    _assert_close(before["loss"], after["loss"], "loss")
    for var in before["grads"]:
        _assert_close(before["grads"][var], after["grads"][var], f"grad {var}")
    for var in before.get("variables", {}):
        _assert_close(before["variables"][var], after["variables"][var], f"variable {var} after a step")

    trig = run_case(case, fixed.graph_def, feeds="trigger", steps=steps)
    assert _finite(trig), {k: v for k, v in trig["grads"].items() if not np.all(np.isfinite(v))}

    again, report2 = graphfix.rewrite(fixed, select=ALL_RULES, unsafe_fixes=True)
    assert report2.found == 0 and again is fixed, report2.findings


@pytest.mark.parametrize("name", safe_cases())
def test_safe_case_is_untouched(name):
    case = build(name)
    model = _model(case)
    fixed, report = graphfix.rewrite(model, select=ALL_RULES)
    assert report.found == 0, report.findings
    assert fixed is model and not fixed.changed


@pytest.mark.parametrize("name", OPT_IN_ONLY)
def test_default_rules_count_opt_in_hazards_without_fixing_them(name, default_rules):
    """Without --select, an opt-in rule's hazard is not reported or fixed, but
    the report counts it (``opt_in``) so the text can point to --select ALL."""
    case = build(name)
    model = _model(case)
    fixed, report = graphfix.rewrite(model)
    assert not {f.code for f in report.findings} & set(case.codes), report.findings
    assert set(case.codes) <= set(report.opt_in), report.opt_in
    assert "--select ALL includes them" in report.render("text")
    if not report.findings:
        assert fixed is model and not fixed.changed
    assert graphfix.check(model, select=list(case.codes)).opt_in == {}  # an explicit --select: no hint
