"""``graphfix verify``: prove a rewrite keeps the graph trainable.

Runs ORIGINAL and FIXED side by side in TensorFlow (each imported once, one
session each, every run starting from the same variable values):

* **normal feeds** (seeded random data from the placeholders' dtypes and
  shapes, or ``--feeds FILE.npz``) on which the original is finite: the loss,
  ``tf.gradients`` of each loss w.r.t. every variable, the gradient each
  optimizer ``Apply*`` op reads, and every variable (slots, ``global_step``
  included) after one run of each train op must agree — the report gives the
  max abs/rel difference and whether they are bit-identical;
* **trigger feeds** derived from the original's findings (all-false masks,
  zero labels/lengths, saturated ±200 values on the placeholders a hazard
  depends on): the fixed graph's loss, gradients, applied gradients and
  variables after one train step must be finite.

``ok`` is true when both hold; the CLI exits 0 / 1 (and 2 on errors: no loss,
no usable normal feed, unreadable feeds file).
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from graphfix import api
from graphfix.analysis.funclib import call_sites
from graphfix.core.errors import GraphfixError
from graphfix.core.ir import GraphIR, split_tensor, tensor_name
from graphfix.core.optypes import APPLY_PREFIXES, is_apply
from graphfix.core.version import __version__
from graphfix.verification import feeds as feeds_mod
from graphfix.verification.compare import compare
from graphfix.verification.runner import GraphRunner, RunError

RTOL, ATOL = 1e-5, 1e-6
_CONTEXT_KEYS = ("while_context", "cond_context")


def find_train_ops(model) -> list[str]:
    """The train ops: the MetaGraph ``train_op`` collection, else every op
    nothing consumes that runs after an ``Apply*``/``ResourceApply*`` op."""
    meta = model.meta_graph
    names = {n.name for n in model.graph_def.node}
    if meta is not None and "train_op" in meta.collection_def:
        col = meta.collection_def["train_op"]
        vals = list(col.node_list.value) or [b.decode() for b in col.bytes_list.value]
        found = [v.split(":")[0].lstrip("^") for v in vals]
        found = [v for v in found if v in names]
        if found:
            return found
    ir = GraphIR(model.graph_def, copy=False)
    applies = [n for n in ir.names() if is_apply(ir.op(n))]
    if not applies:
        return []
    after = set(applies)
    for a in applies:
        after |= ir.descendants(a)
    return [n for n in ir.names() if n in after and not ir.has_consumers(n) and _is_update(ir.op(n))]


def _is_update(op: str) -> bool:
    """Ops a train op is made of (a group NoOp, the step increment, an apply), not reads or summaries."""
    return op == "NoOp" or op.startswith(("Assign", "ResourceScatter", "Scatter") + APPLY_PREFIXES)


def _relevant_placeholders(model, findings, phs):
    ir = GraphIR(model.graph_def, copy=False)
    anc: set[str] = set()
    sites = None
    for f in findings:
        nodes = [f.node] if f.node in ir else []
        fn = (f.data or {}).get("function")
        if not nodes and fn:  # inside a function body: the ops that call it (directly or nested)
            if sites is None:
                sites = call_sites(model.graph_def)
            nodes = sites.get(fn, [])
        for n in nodes:
            anc.add(n)
            anc |= ir.ancestors(n)
    return [p for p in phs if split_tensor(p.name)[0] in anc]


def _is_numeric_error(msg: str) -> bool:
    low = msg.lower()
    return "nan" in low.split() or "had nan" in low or "had inf" in low or "nan in summary" in low or \
        "inf values" in low or "nan values" in low


def nonfinite_parts(ex) -> list[str]:
    """Human-readable list of the non-finite values of an Execution."""
    parts = []
    for field, one, many in (("loss", "loss", "losses"), ("grads", "gradient", "gradients"),
                             ("applied", "applied gradient", "applied gradients"),
                             ("variables", "variable after the train step", "variables after the train step")):
        bad = [k for k, v in getattr(ex, field).items()
               if np.asarray(v).dtype.kind in "fc" and not np.all(np.isfinite(v))]
        if bad:
            parts.append(f"{len(bad)} {one if len(bad) == 1 else many}"
                         f" ({', '.join(bad[:3])}{', …' if len(bad) > 3 else ''})")
    return parts


# ------------------------------------------------------------------ result

@dataclasses.dataclass
class VerifyResult:
    original: str
    fixed: str
    losses: list[str]
    train_ops: list[str]
    placeholders: list[str]
    variables: int
    counts: dict[str, int]
    normal: list[dict]
    trigger: list[dict]
    findings: list[str]
    remaining: list[str]
    notes: list[str]
    rtol: float = RTOL
    atol: float = ATOL

    @property
    def normal_ok(self) -> bool:
        return bool(self.normal) and all(t["agree"] for t in self.normal)

    @property
    def trigger_ok(self) -> bool:
        return all(t["fixed_finite"] for t in self.trigger if not t.get("skipped"))

    @property
    def triggered(self) -> int:
        return sum(1 for t in self.trigger if t["original_triggers"])

    @property
    def ok(self) -> bool:
        return self.normal_ok and self.trigger_ok

    @property
    def bit_identical(self) -> bool:
        return bool(self.normal) and all(t["bit_identical"] for t in self.normal)

    def to_json(self) -> dict:
        return {
            "tool": "graphfix", "version": __version__, "command": "verify", "ok": self.ok,
            "original": self.original, "fixed": self.fixed, "losses": self.losses, "train_ops": self.train_ops,
            "placeholders": self.placeholders, "variables": self.variables, "compared": self.counts,
            "tolerance": {"rtol": self.rtol, "atol": self.atol},
            "normal": {"ok": self.normal_ok, "bit_identical": self.bit_identical,
                       "max_abs": max((t["max_abs"] for t in self.normal), default=0.0),
                       "max_rel": max((t["max_rel"] for t in self.normal), default=0.0),
                       "trials": self.normal},
            "trigger": {"ok": self.trigger_ok, "candidates": len(self.trigger), "triggered": self.triggered,
                        "skipped": sum(1 for t in self.trigger if t.get("skipped")), "feeds": self.trigger},
            "findings": self.findings, "remaining_in_fixed": self.remaining, "notes": self.notes,
        }

    def render(self, fmt: str = "text") -> str:
        """The result as ``graphfix verify`` prints it: ``"text"`` or ``"json"``."""
        if fmt == "json":
            return json.dumps(_json_safe(self.to_json()), indent=2) + "\n"
        c = self.counts
        lines = [f"original: {self.original}", f"fixed:    {self.fixed}",
                 f"losses: {', '.join(self.losses)}",
                 f"train ops: {', '.join(self.train_ops) or '(none: forward and gradients only)'}",
                 f"placeholders: {', '.join(self.placeholders) or '(none)'}"]
        what = _enumerate([_count(c["loss"], "loss", "losses"), _count(c["grads"], "gradient"),
                           _count(c["applied"], "gradient an optimizer applies", "gradients the optimizers apply"),
                           _count(c["variables"], "variable after one train step", "variables after one train step")])
        agree = sum(t["agree"] for t in self.normal)
        head = f"normal feeds: {agree}/{len(self.normal)} agree on {what}"
        if self.normal_ok:
            mx_a = max(t["max_abs"] for t in self.normal)
            mx_r = max(t["max_rel"] for t in self.normal)
            head += " — bit-identical" if self.bit_identical else \
                f" — within rtol={self.rtol:g}, atol={self.atol:g} (max abs diff {mx_a:.3g}, max rel diff {mx_r:.3g})"
        lines.append(head)
        for t in self.normal:
            if t["agree"]:
                detail = "bit-identical" if t["bit_identical"] else \
                    f"agree (max abs diff {t['max_abs']:.3g}, max rel diff {t['max_rel']:.3g})"
            else:
                detail = "MISMATCH: " + "; ".join(t["mismatched"][:4]) + (" …" if len(t["mismatched"]) > 4 else "")
            lines.append(f"  {t['feed']}: {detail}")
        if not self.trigger:
            lines.append("trigger feeds: none tried (no findings in the original graph)" if not self.findings
                         else "trigger feeds: none tried (no placeholder feeds the findings)")
        else:
            valid = [t for t in self.trigger if not t.get("skipped")]
            fin = sum(t["fixed_finite"] for t in valid)
            skipped = len(self.trigger) - len(valid)
            lines.append(f"trigger feeds: {self.triggered} of {len(self.trigger)} candidates make the original "
                         f"non-finite; the fixed graph is finite on {fin}/{len(valid)}"
                         + (f" ({skipped} skipped: the original fails on them, not valid inputs)" if skipped else ""))
            for t in self.trigger:
                orig = ("non-finite: " + "; ".join(t["original"])) if t["original_triggers"] and t["original"] \
                    else t.get("original_error") or "finite"
                if t.get("skipped"):
                    fixed = "skipped"
                elif t["fixed_finite"]:
                    fixed = "finite"
                else:
                    fixed = "NON-FINITE: " + "; ".join(t["fixed"] or [t.get("fixed_error", "")])
                lines.append(f"  {t['feed']}: original {orig} -> fixed {fixed}")
        if self.findings:
            lines.append(f"findings in the original: {len(self.findings)}; remaining in the fixed graph: "
                         f"{len(self.remaining)}")
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append("verify: OK" if self.ok else "verify: FAILED")
        return "\n".join(lines) + "\n"


def _json_safe(v):
    """inf/nan (a failed comparison) as strings: JSON has no such numbers."""
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


# ------------------------------------------------------------------ verify

def verify(original, fixed, feeds=None, losses=None, trials: int = 3, steps: int = 1, select=None,
           ignore=None) -> VerifyResult:
    """Run ``original`` and ``fixed`` (Models, or paths) and check the contract.

    ``feeds``: None (random normal feeds, ``trials`` of them), a path to an
    ``.npz`` file, or a dict placeholder name -> array.  ``losses``: loss
    tensor names (default: found in the original's gradient subgraph).
    ``select``/``ignore``: the rules whose findings give the hazards to
    trigger, as for the rewrite being verified (default: the default set)."""
    if not hasattr(original, "graph_def"):
        original = api.load(original)
    if not hasattr(fixed, "graph_def"):
        fixed = api.load(fixed)
    if trials < 1:
        raise GraphfixError("--trials must be at least 1")
    report = api.check(original, losses=losses, select=select, ignore=ignore)
    loss_names = list(report.losses)
    if not loss_names:
        raise GraphfixError(f"{original.path or 'original'}: no loss found; name it with --loss TENSOR")
    fixed_report = api.check(fixed, losses=loss_names, select=select, ignore=ignore)
    train_ops = find_train_ops(original)
    phs = feeds_mod.placeholders(original.graph_def)
    notes: list[str] = []

    given = None
    if isinstance(feeds, dict):
        given = {tensor_name(*split_tensor(k)): np.asarray(v) for k, v in feeds.items()}
    elif feeds is not None:
        given = feeds_mod.load_feeds(feeds, phs)

    a = GraphRunner(original, loss_names, train_ops, "original")
    try:
        b = GraphRunner(fixed, loss_names, train_ops, "fixed")
    except Exception:
        a.close()
        raise
    try:
        notes.extend(a.notes + b.notes)
        missing_vars = sorted(set(a.var_names) - set(b.var_names))
        if missing_vars:
            notes.append(f"variables missing from the fixed graph: {', '.join(missing_vars[:5])}")
        state0 = a.state()
        if b.var_names:
            b.set_state(state0)
        normal, accepted, first = _normal_runs(a, b, phs, given, trials, steps, state0, notes)
        counts = {"loss": len(first.loss), "grads": len(first.grads), "applied": len(first.applied),
                  "variables": len(first.variables)}
        relevant = _relevant_placeholders(original, report.findings, phs)
        trigger = _trigger_runs(a, b, feeds_mod.trigger_candidates(accepted[0], relevant), state0, steps)
        if report.findings and relevant and not any(t["original_triggers"] for t in trigger):
            notes.append(f"none of the {len(trigger)} trigger candidates makes the original non-finite, so the "
                         "repair is not exercised; pass triggering inputs with --feeds to check them")
    finally:
        a.close()
        b.close()
    return VerifyResult(
        original=original.path or "original", fixed=fixed.path or "fixed", losses=loss_names,
        train_ops=train_ops, placeholders=[p.describe() for p in phs], variables=len(a.var_names),
        counts=counts, normal=normal, trigger=trigger,
        findings=[f"{f.code} {f.node}" for f in report.findings],
        remaining=[f"{f.code} {f.node}" for f in fixed_report.findings], notes=notes)


def _first_normal(a, free, given, trial: int, plan_ok, state0, steps):
    """The first feed plan (from ``plan_ok`` on) on which the original runs
    and is finite: ``(execution, feed, plan, label, errors)``; execution None
    when every plan failed."""
    errors = []
    for plan in feeds_mod.normal_plans(free, plan_ok):
        feed = feeds_mod.normal_feed(free, seed=trial, plan=plan)
        if given is not None:
            feed.update(given)
        try:
            ex = a.execute(feed, state0, steps)
        except RunError as e:
            errors.append(f"original fails: {e}")
            continue
        bad = nonfinite_parts(ex)
        if bad:
            errors.append("original non-finite: " + "; ".join(bad))
            continue
        how = feeds_mod.describe_plan(plan)
        label = "--feeds" if given is not None and not free else \
            f"{'--feeds + ' if given is not None else ''}random feed (seed {trial}{'; ' + how if how else ''})"
        return ex, feed, plan, label, errors
    return None, None, plan_ok, "", errors


def _normal_runs(a, b, phs, given, trials: int, steps: int, state0, notes: list[str]):
    """Both graphs on normal feeds (``given``, else ``trials`` random ones on
    which the original is finite): ``(rows, feeds used, first execution)``."""
    normal, accepted, first = [], [], None
    free = [p for p in phs if given is None or p.name not in given]  # placeholders verify draws
    plan_ok = None
    for trial in range(1 if given is not None else trials):
        ex_a, feed, plan_ok, label, errors = _first_normal(a, free, given, trial, plan_ok, state0, steps)
        if ex_a is None:
            if given is not None:
                raise GraphfixError("the original graph is not finite or fails on --feeds, so they are not "
                                    f"normal feeds: {errors[-1] if errors else ''}")
            notes.append(f"random feed (seed {trial}) skipped: {errors[-1] if errors else ''}")
            continue
        accepted.append(feed)
        if first is None:
            first = ex_a
        try:
            ex_b = b.execute(feed, state0, steps)
        except RunError as e:
            normal.append({"feed": label, "agree": False, "bit_identical": False, "max_abs": float("inf"),
                           "max_rel": float("inf"), "mismatched": [f"fixed graph fails: {e}"]})
            continue
        cmp = compare(ex_a, ex_b, rtol=RTOL, atol=ATOL)
        normal.append({"feed": label, "agree": not cmp.mismatched, "bit_identical": cmp.bit_identical,
                       "max_abs": cmp.max_abs, "max_rel": cmp.max_rel, "mismatched": cmp.mismatched})
    if not accepted:
        raise GraphfixError("cannot make a normal feed: the original graph is not finite (or fails) on every "
                            f"random feed tried ({notes[-1].split(': ', 1)[-1] if notes else ''}); "
                            "pass one with --feeds FILE.npz")
    return normal, accepted, first


def _trigger_runs(a, b, candidates, state0, steps: int) -> list[dict]:
    """Both graphs on each trigger candidate: does the original go non-finite
    (the hazard fires), and does the fixed one stay finite?"""
    trigger = []
    for cand in candidates:
        entry = {"feed": cand.name, "original_triggers": False, "original": [], "fixed_finite": False,
                 "fixed": []}
        try:
            ex = a.execute(cand.feed, state0, steps)
            entry["original"] = nonfinite_parts(ex)
            entry["original_triggers"] = bool(entry["original"])
        except RunError as e:
            entry["original_error"] = f"fails: {e}"
            # CheckNumerics / a NaN histogram is the hazard firing; any other
            # error (an index -1 out of range, …) means the input is not valid.
            entry["original_triggers"] = _is_numeric_error(str(e))
            entry["skipped"] = not entry["original_triggers"]
        try:
            ex = b.execute(cand.feed, state0, steps)
            entry["fixed"] = nonfinite_parts(ex)
            entry["fixed_finite"] = not entry["fixed"]
        except RunError as e:
            entry["fixed_error"] = f"fails: {e}"
        trigger.append(entry)
    return trigger


def _count(n: int, singular: str, plural: str | None = None) -> str | None:
    """``1 loss``, ``3 losses``; ``None`` for 0 (left out of the sentence)."""
    if not n:
        return None
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _enumerate(parts) -> str:
    """``a, b and c`` of the parts that are not ``None``."""
    parts = [p for p in parts if p]
    if not parts:
        return "nothing"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
