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
import zlib

import numpy as np

from graphfix import feeds as feeds_mod
from graphfix.errors import GraphfixError
from graphfix.ir import GraphIR, split_tensor, tensor_name

VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp")
APPLY_PREFIXES = ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply")
RTOL, ATOL = 1e-5, 1e-6
_CONTEXT_KEYS = ("while_context", "cond_context")


class RunError(Exception):
    """TensorFlow refused to run the graph on a feed (shape mismatch, CheckNumerics, …)."""


# ------------------------------------------------------------------ discovery

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
    import networkx as nx

    ir = GraphIR(model.graph_def, copy=False)
    applies = [n for n in ir.names() if ir.op(n).startswith(APPLY_PREFIXES)]
    if not applies:
        return []
    after = set(applies)
    for a in applies:
        after |= nx.descendants(ir.g, a)
    return [n for n in ir.names() if n in after and not ir.has_consumers(n) and _is_update(ir.op(n))]


def _is_update(op: str) -> bool:
    """Ops a train op is made of (a group NoOp, the step increment, an apply), not reads or summaries."""
    return op == "NoOp" or op.startswith(("Assign", "ResourceScatter", "Scatter") + APPLY_PREFIXES)


def _relevant_placeholders(model, findings, phs):
    import networkx as nx

    ir = GraphIR(model.graph_def, copy=False)
    anc: set[str] = set()
    sites = None
    for f in findings:
        nodes = [f.node] if f.node in ir else []
        fn = (f.data or {}).get("function")
        if not nodes and fn:  # inside a function body: the ops that call it (directly or nested)
            if sites is None:
                from graphfix.funclib import call_sites

                sites = call_sites(model.graph_def)
            nodes = sites.get(fn, [])
        for n in nodes:
            anc.add(n)
            anc |= nx.ancestors(ir.g, n)
    return [p for p in phs if split_tensor(p.name)[0] in anc]


# ------------------------------------------------------------------ running

def _prepared(model):
    """(graph_def or meta_graph copy for import, use_meta): devices cleared so a
    graph placed on absent GPUs runs here, unseeded random ops given a fixed
    seed so both graphs draw the same numbers."""
    meta = model.meta_graph
    use_meta = meta is not None and any(k in meta.collection_def for k in _CONTEXT_KEYS)
    if use_meta:
        msg = type(meta)()
        msg.CopyFrom(meta)
        gd = msg.graph_def
    else:
        msg = type(model.graph_def)()
        msg.CopyFrom(model.graph_def)
        gd = msg
    for n in gd.node:
        n.device = ""
        if "seed" in n.attr and "seed2" in n.attr and n.attr["seed"].i == 0 and n.attr["seed2"].i == 0:
            n.attr["seed"].i = 87654321
            n.attr["seed2"].i = zlib.crc32(n.name.encode()) & 0x7FFFFFFF
    return msg, use_meta


class GraphRunner:
    """One graph imported once, with fetches for the loss, gradients, applied
    gradients and variables, and a session that reruns from a given state."""

    def __init__(self, model, losses: list[str], train_ops: list[str], label: str):
        from graphfix.scratch import v1_control_flow
        from graphfix.tfimport import tf as _tf

        tf = self.tf = _tf()
        from tensorflow.python.framework import op_def_registry

        self.label = label
        self.notes: list[str] = []
        msg, use_meta = _prepared(model)
        g = self.graph = tf.Graph()
        with g.as_default(), v1_control_flow():
            try:
                if use_meta:
                    tf.compat.v1.train.import_meta_graph(msg, clear_devices=True)
                else:
                    tf.compat.v1.import_graph_def(msg, name="")
            except (ValueError, TypeError, KeyError, tf.errors.OpError) as e:
                raise GraphfixError(f"{label}: TensorFlow cannot import the graph: {_first_line(e)}") from None
            self.var_names = sorted(op.name for op in g.get_operations() if op.type in VARIABLE_OPS)
            self.var_t = [g.get_tensor_by_name(v + ":0") for v in self.var_names]
            self.readers, self.assigns, self.assign_ph = {}, {}, {}
            with g.name_scope("graphfix_verify"):
                for v, t in zip(self.var_names, self.var_t):
                    op = g.get_operation_by_name(v)
                    dtype = tf.as_dtype(op.get_attr("dtype"))
                    ph = tf.compat.v1.placeholder(dtype)
                    if t.dtype == tf.resource:
                        self.readers[v] = tf.raw_ops.ReadVariableOp(resource=t, dtype=dtype)
                        self.assigns[v] = tf.raw_ops.AssignVariableOp(resource=t, value=ph)
                    else:
                        self.readers[v] = tf.identity(t)
                        self.assigns[v] = tf.compat.v1.assign(t, ph, validate_shape=False)
                    self.assign_ph[v] = ph
            self.loss_t = {}
            for name in losses:
                try:
                    self.loss_t[name] = g.get_tensor_by_name(name)
                except (KeyError, ValueError):
                    raise GraphfixError(f"{label}: has no loss tensor {name!r}") from None
            self.grads = {}
            from graphfix.funcgrad import process_functions_kept, route_call_gradients

            route_call_gradients(g)  # imported function calls: differentiated as TensorFlow does in graph mode

            try:
                with g.name_scope("graphfix_verify"), process_functions_kept():
                    for name, lt in self.loss_t.items():
                        for v, gr in zip(self.var_names, tf.compat.v1.gradients(lt, self.var_t)):
                            if gr is None:
                                continue
                            if isinstance(gr, tf.IndexedSlices):
                                gr = tf.convert_to_tensor(gr)
                            self.grads[f"{name} / {v}"] = gr
            except Exception as e:  # noqa: BLE001 — e.g. v1 while loops imported without their contexts
                self.grads = {}
                self.notes.append(f"{label}: gradients w.r.t. the variables not compared (tf.gradients on the "
                                  f"imported graph fails: {_first_line(e)}); the applied gradients still are")
            self.applied = {}
            for op in g.get_operations():
                if op.type.startswith(APPLY_PREFIXES):
                    od = op_def_registry.get(op.type)
                    idx = next((i for i, a in enumerate(od.input_arg) if a.name in ("grad", "delta")), None)
                    if idx is not None:
                        self.applied[op.name] = op.inputs[idx]
            self.train = []
            for name in train_ops:
                try:
                    self.train.append(g.get_operation_by_name(name))
                except KeyError:
                    raise GraphfixError(f"{label}: has no train op {name!r}") from None
            self.init = self._init_op(use_meta)
            self.tables = [op for op in g.get_operations()
                           if op.type.startswith("InitializeTable") or op.type == "LookupTableImportV2"]
            self.feedable = {op.name + ":0" for op in g.get_operations()
                             if op.type in ("Placeholder", "PlaceholderWithDefault")}
        config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        self.sess = tf.compat.v1.Session(graph=g, config=config)
        if self.init is not None:
            self._run(self.init)
        if self.tables:  # lookup tables the loss may read; a SavedModel's asset files from its assets/
            try:
                self._run(self.tables, {g.get_tensor_by_name(k): v for k, v in _asset_feeds(model).items()})
            except (RunError, KeyError, ValueError) as e:
                self.notes.append(f"{label}: lookup tables not initialised: {e}")

    def _init_op(self, use_meta):
        tf, g = self.tf, self.graph
        if use_meta:
            vs = tf.compat.v1.global_variables() + tf.compat.v1.local_variables()
            if vs:
                return tf.compat.v1.variables_initializer(vs, name="graphfix_verify/init")
        try:
            return g.get_operation_by_name("init")
        except KeyError:
            pass
        assigns = [op for op in g.get_operations() if op.type in ("Assign", "AssignVariableOp")
                   and op.name.endswith("/Assign") and not op.name.startswith("graphfix_verify/")]
        if self.var_names and not assigns:
            raise GraphfixError(f"{self.label}: cannot initialise the variables: no 'init' op and no initial assigns")
        return tf.group(*assigns, name="graphfix_verify/init") if assigns else None

    def _run(self, fetches, feed=None):
        try:
            return self.sess.run(fetches, feed)
        except self.tf.errors.OpError as e:
            raise RunError(_first_line(e.message)) from None

    def state(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self._run(self.readers).items()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        ops, fd = [], {}
        for k, v in state.items():
            if k in self.assigns:
                ops.append(self.assigns[k])
                fd[self.assign_ph[k]] = v
        if ops:
            self._run(ops, fd)

    def execute(self, feed: dict[str, np.ndarray], state, steps: int = 1):
        from graphfix.verify import Execution

        self.set_state(state)
        g = self.graph
        fd = {g.get_tensor_by_name(k): v for k, v in feed.items() if k in self.feedable}
        loss_v, grad_v, applied_v = self._run([self.loss_t, self.grads, self.applied], fd)
        done = 0
        if self.train:
            for _ in range(steps):
                for op in self.train:
                    self._run(op, fd)
            done = steps
        var_v = self.state()
        return Execution(loss={k: np.asarray(v) for k, v in loss_v.items()},
                         grads={k: np.asarray(v) for k, v in grad_v.items()},
                         applied={k: _dense(v) for k, v in applied_v.items()}, variables=var_v, steps=done)

    def close(self):
        self.sess.close()


def _asset_feeds(model) -> dict[str, str]:
    """Asset tensor -> path of the file in the SavedModel's assets/ directory."""
    import os

    meta = model.meta_graph
    if model.kind != "saved_model" or meta is None:
        return {}
    assets = list(meta.asset_file_def)
    if "saved_model_assets" in meta.collection_def:  # the TF1 Builder keeps them in a collection
        from tensorflow.core.protobuf import meta_graph_pb2

        for any_ in meta.collection_def["saved_model_assets"].any_list.value:
            a = meta_graph_pb2.AssetFileDef()
            if any_.Unpack(a):
                assets.append(a)
    root = model.path if os.path.isdir(model.path) else os.path.dirname(model.path)
    return {a.tensor_info.name: os.path.join(root, "assets", a.filename) for a in assets if a.tensor_info.name}


def _dense(v):
    if hasattr(v, "values") and hasattr(v, "indices"):
        return np.asarray(v.values)
    return np.asarray(v)


def _first_line(e) -> str:
    """The informative line of an error (TensorFlow's start with "Graph execution error:")."""
    lines = [ln.strip() for ln in str(e).strip().splitlines()]
    skip = ("Graph execution error", "Detected at node", "Node:", "defined at", "[[", "File ", "Traceback")
    useful = [ln for ln in lines if ln and not ln.startswith(skip)]
    if useful:
        return useful[0]
    return lines[0] if lines and lines[0] else type(e).__name__


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
        from graphfix import __version__

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

def verify(original, fixed, feeds=None, losses=None, trials: int = 3, steps: int = 1) -> VerifyResult:
    """Run ``original`` and ``fixed`` (Models, or paths) and check the contract.

    ``feeds``: None (random normal feeds, ``trials`` of them), a path to an
    ``.npz`` file, or a dict placeholder name -> array.  ``losses``: loss
    tensor names (default: found in the original's gradient subgraph)."""
    import graphfix
    from graphfix.verify import compare

    if not hasattr(original, "graph_def"):
        original = graphfix.load(original)
    if not hasattr(fixed, "graph_def"):
        fixed = graphfix.load(fixed)
    if trials < 1:
        raise GraphfixError("--trials must be at least 1")
    report = graphfix.check(original, losses=losses)
    loss_names = list(report.losses)
    if not loss_names:
        raise GraphfixError(f"{original.path or 'original'}: no loss found; name it with --loss TENSOR")
    fixed_report = graphfix.check(fixed, losses=loss_names)
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

        # ---- normal feeds
        normal, accepted, first = [], [], None
        n_trials = 1 if given is not None else trials
        free = [p for p in phs if given is None or p.name not in given]  # placeholders verify draws
        plan_ok = None
        for trial in range(n_trials):
            ex_a = feed = None
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
                ex_a, plan_ok = ex, plan
                how = feeds_mod.describe_plan(plan)
                label = "--feeds" if given is not None and not free else \
                    f"{'--feeds + ' if given is not None else ''}random feed (seed {trial}{'; ' + how if how else ''})"
                break
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
        counts = {"loss": len(first.loss), "grads": len(first.grads), "applied": len(first.applied),
                  "variables": len(first.variables)}

        # ---- trigger feeds
        trigger = []
        relevant = _relevant_placeholders(original, report.findings, phs)
        for cand in feeds_mod.trigger_candidates(accepted[0], relevant):
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
