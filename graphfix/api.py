"""The library API that the CLI and build pipelines call."""
from __future__ import annotations

import time
from collections import Counter

import rewrites
from graphfix.analysis.funclib import boundary_values, forward_functions
from graphfix.core import io
from graphfix.core.errors import GraphfixError
from graphfix.core.ir import GraphIR
from graphfix.core.model import Model
from graphfix.engine.funcpatch import repair_functions
from graphfix.engine.functions import check_functions
from graphfix.engine.passes import GUARDS, Context, run
from graphfix.patch.regenerate import sync_meta
from graphfix.render.report import Report


def load(path, keep_bytes: bool = True) -> Model:
    """Load a GraphDef (.pb/.pbtxt), MetaGraphDef (.meta) or SavedModel directory.

    ``keep_bytes=False`` drops the file's bytes once parsed, for a model that
    is only checked (they are what makes an unchanged model save byte-identical)."""
    return io.load(path, keep_bytes=keep_bytes)


def save(model: Model, path, to: str | None = None) -> list[str]:
    """Write ``model`` to ``path`` atomically (byte-identical when unchanged).

    The output keeps the input's kind (GraphDef, MetaGraphDef, SavedModel)
    whatever the extension, unless ``to`` is ``"graphdef"`` or ``"metagraph"``;
    ``.pbtxt`` writes text, ``.pb``/``.meta`` binary, other extensions the
    input's encoding.  Returns what a conversion left out (collections,
    saver_def, signatures, …), empty when nothing was lost."""
    return io.save(model, path, to=to)


def _rules(select, ignore):
    return rewrites.select(select, ignore)


def _run(model: Model, apply: bool, select=None, ignore=None, unsafe_fixes=False, guard="auto", losses=None,
         options=None):
    if guard not in GUARDS:
        raise GraphfixError(f"--guard must be one of {', '.join(GUARDS)}, not {guard!r}")
    timing = {}
    t0 = time.perf_counter()
    select = rewrites.requested(select)  # --select, else $GRAPHFIX_SELECT, else None: the default set
    rules = _rules(select, ignore)
    # the MetaGraphDef's while/cond contexts: gradients in loops are regenerated with them
    ir = GraphIR(model.graph_def, copy=apply, meta_graph=model.meta_graph)
    timing["ir"] = (time.perf_counter() - t0) * 1000
    ctx = Context(ir, losses=losses, guard=guard, unsafe_fixes=unsafe_fixes, options=options)
    found_losses = ctx.facts.losses
    t1 = time.perf_counter()
    findings, rule_times = run(ctx, rules, apply)
    if model.graph_def.library.function:  # TF2 functional control flow: bodies repaired under new names
        if apply:
            findings = findings + repair_functions(ir, ctx.facts, rules, apply, unsafe_fixes=unsafe_fixes,
                                                   options=options, meta=model.meta_graph)
        else:
            try:
                names = forward_functions(ir, ctx.facts.grad_scopes)
                values = boundary_values(ir, ctx.facts, ctx.facts.grad_scopes)
            except (KeyError, IndexError, ValueError):  # a malformed library: every reachable body, no facts
                names, values = None, {}
            findings = findings + check_functions(model.graph_def, rules, names, values)
    timing.update(rule_times)
    timing["rules"] = (time.perf_counter() - t1) * 1000 - timing.get("tensorflow_import", 0.0)
    report = Report(input=model.path, format=_format_name(model), nodes=model.node_count, losses=found_losses,
                    findings=findings, timing_ms=timing, opt_in=_opt_in_counts(ctx, select, ignore))
    return ir, report


def _opt_in_counts(ctx, select, ignore) -> dict[str, int]:
    """Without --select: what the opt-in rules would still report on the graph
    as it now is (after the default rules' fixes), per code, so that the
    report can say that ``--select ALL`` finds more.  Top-level graph only."""
    if select:
        return {}
    found, _ = run(ctx, rewrites.opt_in(ignore), apply=False)
    return dict(Counter(f.code for f in found))


def _format_name(model: Model) -> str:
    return {"graph_def": "GraphDef", "meta_graph": "MetaGraphDef", "saved_model": "SavedModel"}[model.kind] + \
        (" (text)" if model.text else "")


def check(model: Model, select=None, ignore=None, losses=None, options=None) -> Report:
    """Find hazards; change nothing.

    ``select``/``ignore``: rule codes, prefixes, names or ``"ALL"``; without
    ``select``, $GRAPHFIX_SELECT if set, else the default set, and the
    report's ``opt_in`` counts what the opt-in rules would add."""
    _, report = _run(model, apply=False, select=select, ignore=ignore, losses=losses, options=options)
    return report


def rewrite(model: Model, select=None, ignore=None, unsafe_fixes: bool = False, guard: str = "auto", losses=None,
            clear_devices: bool = False, options=None):
    """Find hazards and guard them.  Returns ``(fixed_model, report)``; the
    fixed model is ``model`` itself (byte-identical on save) when nothing changed.
    Rules are chosen as for :func:`check`."""
    t0 = time.perf_counter()
    ir, report = _run(model, apply=True, select=select, ignore=ignore, unsafe_fixes=unsafe_fixes, guard=guard,
                      losses=losses, options=options)
    fixed = model
    if ir.changed or clear_devices:
        gd = ir.to_graph_def()
        if gd is model.graph_def:  # never edit the caller's model in place
            gd = type(gd)()
            gd.CopyFrom(model.graph_def)
        if clear_devices:
            for n in gd.node:
                n.device = ""
            for f in gd.library.function:  # function bodies (TF2 control flow) are placed too
                for n in f.node_def:
                    n.device = ""
        fixed = model.with_graph_def(gd)
        if fixed.meta_graph is not None:  # keep the while/cond context collections in step with the graph
            sync_meta(fixed.meta_graph, ir, {n.name for n in model.graph_def.node})
    report.nodes_out = fixed.node_count
    report.timing_ms["rewrite"] = (time.perf_counter() - t0) * 1000
    return fixed, report

