"""Repairing hazards inside TF2 functional control flow.

A graph built with control flow v2 keeps the branches of ``If``/``StatelessIf``,
the cond and body of ``While``/``StatelessWhile`` and the callees of
``PartitionedCall``/``StatefulPartitionedCall`` as ``FunctionDef``s in its
library.  :func:`repair_functions`

1. analyses every function the forward graph calls (recursively: a cond
   inside a while body is repaired first and the body then calls the
   repaired branch) as a graph of its own (:mod:`graphfix.patch.funcgraph`), with
   its return values as the losses, and runs the selected rules on it
   through the ordinary pass manager, always with ``where`` guards (a v1
   ``Switch``/``Merge`` cond cannot be differentiated inside a function);
2. writes each changed body back under a **new** function name with the same
   signature (so another call site of a shared function is not changed under
   it, and ``Tout``/``T``/``output_types``/``_output_shapes`` of every call
   site stay valid), and points the forward call sites at it; functions the
   rules leave alone stay byte-identical;
3. regenerates the gradients (architecture.md): for every ``tf.gradients``
   prefix whose loss depends on a changed call site, TensorFlow
   differentiates the op again in a scratch ``tf.Graph``, rebuilding the
   branch/body ``FuncGraph``s from the new FunctionDefs as ``cond_v2``/
   ``while_v2`` do for any imported op.  The op is first put back as the user
   built it (branches/body named without ``_rewritten``, the intermediates and
   accumulators ``tf.gradients`` added dropped), so the new gradient adds
   exactly what the guarded body needs.  Locally (:func:`graphfix.patch.funcgrad.regenerate_local`):
   ``tf.gradients`` of the op's outputs w.r.t. its inputs, the upstream
   gradients standing in as placeholders, builds the same ``<op>_grad``
   scope as the full call did; it replaces the old scope under its names.
   Where that cannot be matched, the whole gradient of the loss is
   regenerated (:func:`graphfix.patch.funcgrad.regenerate`).  Either way the ``Apply*`` ops,
   clipping and the train op read the new gradient unchanged; the old
   gradient functions are dropped from the library, and the functions
   TensorFlow made get deterministic names.

If the regeneration fails, nothing is changed and the findings stay unfixed
with the reason.
"""
from __future__ import annotations

from graphfix.analysis import Facts
from graphfix.analysis.absval import join
from graphfix.analysis.funclib import (
    _IF_OPS,
    _WHILE_OPS,
    _baseline,
    _calls,
    _prune_library,
    _set_call,
    _trimmed,
    boundary_values,
)
from graphfix.core.errors import GraphfixError
from graphfix.core.ir import GraphIR, parse_input
from graphfix.engine.passes import Context, run
from graphfix.patch import funcgrad
from graphfix.patch.funcgraph import to_function_def, to_graph_def


class _Functions:
    """Analyses and repairs library functions, each once (memoised by name)."""

    def __init__(self, library, rules, apply, unsafe_fixes, options):
        self.lib = {f.signature.name: f for f in library.function}
        self.rules = rules
        self.apply = apply
        self.unsafe_fixes = unsafe_fixes
        self.options = options
        self.memo: dict[str, str | None] = {}
        self.copies: dict[str, str] = {}
        self.values: dict[str, dict] = {}  # function -> argument -> its value at the call sites
        self.new: list = []  # new FunctionDefs, in the order made
        self.findings: list = []

    def _new_name(self, fn: str) -> str:
        name, k = f"{fn}_graphfix", 0
        while name in self.lib:
            k += 1
            name = f"{fn}_graphfix_{k}"
        return name

    def renamed_copy(self, fn: str) -> str:
        """An unchanged copy of ``fn`` under a new name."""
        if fn not in self.copies:
            new = type(self.lib[fn])()
            new.CopyFrom(self.lib[fn])
            new.signature.name = self.copies[fn] = self._new_name(fn)
            self.lib[new.signature.name] = new
            self.new.append(new)
        return self.copies[fn]

    def visit(self, fn: str) -> str | None:
        """The name of the repaired copy of ``fn`` (None: unchanged)."""
        if fn in self.memo:
            return self.memo[fn]
        self.memo[fn] = None  # a recursive call sees the function as it is
        fdef = self.lib[fn]
        try:
            gd, sinks = to_graph_def(fdef, self.lib)
        except GraphfixError:
            return None  # a body this reader cannot follow is left alone
        ir = GraphIR(gd, copy=False, arg_values=self.values.get(fn))
        if any(n.op in self.lib or any(True for _ in _calls(n)) for n in gd.node):
            # facts across the call boundary: the arguments of nested calls
            try:
                inner = boundary_values(ir, Facts(ir), None)
            except (KeyError, IndexError, ValueError):
                inner = {}
            for callee, args in inner.items():
                known = self.values.setdefault(callee, {})
                for a, v in args.items():
                    known[a] = join(known[a], v) if a in known else v
        nested = False
        for n in gd.node:
            calls = [(key, index, callee, self.visit(callee)) for key, index, callee in list(_calls(n))
                     if callee in self.lib]
            if any(new for *_, new in calls):
                nested = True
                for key, index, callee, new in calls:
                    if new:
                        _set_call(n, key, index, new)
                    elif n.op in _IF_OPS + _WHILE_OPS:
                        # the gradient will add "<name>_rewritten" copies of every
                        # function of this op: fresh names keep them from the old ones
                        _set_call(n, key, index, self.renamed_copy(callee))
            if n.op in self.lib:
                new = self.visit(n.op)
                if new:
                    ir.mutable(n.name).op = new  # through the IR: it caches each node's op
                    nested = True
        # every return value counts as a loss: a map_fn body returns its value
        # through a TensorList (a variant), and check does the same
        losses = [f"{s}:0" for s in sinks]
        ctx = Context(ir, losses=losses, guard="where", unsafe_fixes=self.unsafe_fixes, options=self.options)
        try:
            found, _ = run(ctx, self.rules, self.apply)
        except GraphfixError:
            raise
        except Exception:  # noqa: BLE001 — a body the analyses cannot read is skipped, never fatal
            return None
        for f in found:
            f.data = dict(f.data or {}, function=fn, function_node=f.node)
            f.node = f"{fn}/{f.node}"
            f.message = f"{f.message} (inside function {fn})"
            self.findings.append(f)
        if self.apply and (ir.changed or nested):
            name = self._new_name(fn)
            try:
                new = to_function_def(fdef, ir.to_graph_def(), sinks, name, self.lib)
            except GraphfixError as e:
                for f in found:
                    if f.fixed:
                        f.fixed, f.new_nodes, f.note = False, [], f"cannot write the repaired function back: {e}"
                return None
            self.lib[name] = new
            self.new.append(new)
            self.memo[fn] = name
            for f in found:
                f.data["function_fixed"] = name
        return self.memo[fn]


def repair_functions(ir, facts, rules, apply, unsafe_fixes=False, options=None, meta=None) -> list:
    """Findings inside the functions the forward graph calls; with ``apply``,
    repaired as the module docstring says (``ir`` is replaced in place)."""
    gd = ir.to_graph_def()
    scopes = facts.grad_scopes
    sites = [n for n in ir.names() if not scopes.is_gradient_node(n)]
    work = _Functions(gd.library, rules, apply, unsafe_fixes, options)
    try:
        work.values = boundary_values(ir, facts, scopes)
    except (KeyError, IndexError, ValueError):  # a malformed call site: no facts cross it
        work.values = {}
    changed_sites: dict[str, object] = {}  # call site -> its new NodeDef
    for name in sites:
        nd = ir.node(name)
        base = _baseline(nd, work.lib, ir, scopes)
        if base is not None:
            names, k = base
            new_names = {key: work.visit(fn) for key, fn in names.items()}
            if any(new_names.values()):
                # every function of the op gets a fresh name: tf.gradients will
                # add "<name>_rewritten" copies, which must not meet the old ones
                new_names = {key: new or work.renamed_copy(names[key]) for key, new in new_names.items()}
                changed_sites[name] = _trimmed(nd, new_names, k)
            continue
        calls = []
        for key, index, callee in _calls(nd):
            if callee in work.lib:
                new = work.visit(callee)
                if new:
                    calls.append((key, index, new))
        if calls:
            c = type(nd)()
            c.CopyFrom(nd)
            for key, index, new in calls:
                _set_call(c, key, index, new)
            changed_sites[name] = c
        if nd.op in work.lib:
            work.visit(nd.op)  # a direct call: reported; repaired through a call attr only
    findings = work.findings
    if not apply or not changed_sites:
        for f in findings:
            if f.fixed and not changed_sites:
                f.fixed = False
        return findings
    try:
        final = _apply(ir, facts, gd, work, changed_sites, meta)
    except GraphfixError:
        raise
    except Exception as e:  # noqa: BLE001 — TensorFlow raises many kinds; the findings keep a note
        if type(e).__name__ == "FixError":
            msg = str(e)
        else:
            msg = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
        for f in findings:
            if f.fixed:
                f.fixed = False
                f.new_nodes = []
                f.note = f"cannot regenerate the gradient of the repaired function: {msg}"
        return findings
    ir.replace_graph(final)
    return findings


def _apply(ir, facts, gd, work, changed_sites, meta):
    new_gd = type(gd)()
    new_gd.CopyFrom(gd)
    new_gd.library.function.extend(work.new)
    for i, n in enumerate(new_gd.node):
        if n.name in changed_sites:
            new_gd.node[i].CopyFrom(changed_sites[n.name])
    # the gradient prefixes whose loss reads a changed call site
    prefixes = []
    for gp, loss in facts.seeds:
        node = parse_input(loss)[0]
        anc = ir.ancestors(node) | {node}
        if any(s in anc for s in changed_sites) and gp not in prefixes:
            prefixes.append(gp)
    mine = {f.signature.name for f in work.new}
    result = new_gd
    if prefixes:
        try:  # only the gradient scopes of the repaired ops (cost grows with the change)
            result = funcgrad.regenerate_local(new_gd, facts, prefixes, sorted(changed_sites), mine)
        except Exception:  # noqa: BLE001 — fall back to the whole gradient of the loss
            result = funcgrad.regenerate(new_gd, facts, prefixes, meta, mine)
    _prune_library(result, gd)
    return result
