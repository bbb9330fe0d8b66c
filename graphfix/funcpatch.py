"""Repairing hazards inside TF2 functional control flow.

A graph built with control flow v2 keeps the branches of ``If``/``StatelessIf``,
the cond and body of ``While``/``StatelessWhile`` and the callees of
``PartitionedCall``/``StatefulPartitionedCall`` as ``FunctionDef``s in its
library.  :func:`repair_functions`

1. analyses every function the forward graph calls (recursively: a cond
   inside a while body is repaired first and the body then calls the
   repaired branch) as a graph of its own (:mod:`graphfix.funcgraph`), with
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
   exactly what the guarded body needs.  Locally (:func:`_regenerate_local`):
   ``tf.gradients`` of the op's outputs w.r.t. its inputs, the upstream
   gradients standing in as placeholders, builds the same ``<op>_grad``
   scope as the full call did; it replaces the old scope under its names.
   Where that cannot be matched, the whole gradient of the loss is
   regenerated (:func:`_regenerate`).  Either way the ``Apply*`` ops,
   clipping and the train op read the new gradient unchanged; the old
   gradient functions are dropped from the library, and the functions
   TensorFlow made get deterministic names.

If the regeneration fails, nothing is changed and the findings stay unfixed
with the reason.
"""
from __future__ import annotations

import contextlib
import re
import weakref

from graphfix.errors import GraphfixError
from graphfix.ir import GraphIR, parse_input

_TMP = "_graphfix_fnregen"


def _calls(nodedef):
    """``(attr key, index or None, function name)`` for every function ``nodedef`` calls through an attr."""
    for key in sorted(nodedef.attr):
        v = nodedef.attr[key]
        if v.HasField("func") and v.func.name:
            yield key, None, v.func.name
        elif v.HasField("list"):
            for i, f in enumerate(v.list.func):
                yield key, i, f.name


def _set_call(nodedef, key, index, name):
    if index is None:
        nodedef.attr[key].func.name = name
    else:
        nodedef.attr[key].list.func[index].name = name


def _callees(nodedef, library):
    res = [name for _, _, name in _calls(nodedef)]
    if nodedef.op in library:
        res.append(nodedef.op)
    return res


def reachable(nodes, library) -> set[str]:
    """Names of the library functions ``nodes`` call, transitively."""
    seen: set[str] = set()
    todo = [c for n in nodes for c in _callees(n, library)]
    while todo:
        name = todo.pop()
        if name in seen or name not in library:
            continue
        seen.add(name)
        todo.extend(c for n in library[name].node_def for c in _callees(n, library))
    return seen


def call_sites(graph_def) -> dict[str, list[str]]:
    """Function name -> the top-level nodes whose call reaches it (directly or
    through functions calling functions)."""
    lib = {f.signature.name: f for f in graph_def.library.function}
    res: dict[str, list[str]] = {}
    if not lib:
        return res
    for n in graph_def.node:
        seen: set[str] = set()
        todo = list(_callees(n, lib))
        while todo:
            fn = todo.pop()
            if fn in seen or fn not in lib:
                continue
            seen.add(fn)
            todo.extend(c for m in lib[fn].node_def for c in _callees(m, lib))
            todo.extend(_bases(fn, lib))  # the function the op was built with, before tf.gradients
        for fn in sorted(seen):
            res.setdefault(fn, []).append(n.name)
    return res


def _bases(fn: str, lib) -> list[str]:
    """Library functions ``fn`` may have been rewritten from by ``tf.gradients``."""
    res = []
    cand = fn
    while cand.endswith(_SUFFIX):
        cand = cand[: -len(_SUFFIX)]
        res.append(cand)
    m = re.match(r"^__forward_(.+)_\d+$", fn)
    if m:
        pat = re.compile("^__inference_" + re.escape(m.group(1)) + r"_\d+$")
        res.extend(name for name in lib if pat.match(name))
    return res


def forward_functions(ir, scopes) -> set[str]:
    """The functions :func:`repair_functions` analyses: those the forward
    graph calls (for an op ``tf.gradients`` rewrote, the functions it was
    built with), transitively; gradient functions are left out.  No
    TensorFlow import (``check`` uses it)."""
    lib = {f.signature.name: f for f in ir.library.function} if ir.library is not None else {}
    roots = []
    for name in ir.names():
        if scopes.is_gradient_node(name):
            continue
        nd = ir.node(name)
        base = _baseline(nd, lib, ir, scopes)
        roots.extend(base[0].values() if base is not None else _callees(nd, lib))
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        fn = todo.pop()
        if fn in seen or fn not in lib:
            continue
        seen.add(fn)
        todo.extend(c for n in lib[fn].node_def for c in _callees(n, lib))
    return seen


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
        from graphfix.funcgraph import to_function_def, to_graph_def
        from graphfix.passes import Context, run

        fdef = self.lib[fn]
        try:
            gd, sinks = to_graph_def(fdef, self.lib)
        except GraphfixError:
            return None  # a body this reader cannot follow is left alone
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
                    n.op = new
                    nested = True
        ir = GraphIR(gd, copy=False)
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
    version = ir.version
    keep = {k: v for k, v in vars(ir).items() if k in ("meta_graph", "regen_names", "regen_contexts")}
    GraphIR.__init__(ir, final, copy=False)
    ir.__dict__.update(keep)
    ir.version = version + 1
    ir.changed = True
    return findings


def _apply(ir, facts, gd, work, changed_sites, meta):
    new_gd = type(gd)()
    new_gd.CopyFrom(gd)
    new_gd.library.function.extend(work.new)
    for i, n in enumerate(new_gd.node):
        if n.name in changed_sites:
            new_gd.node[i].CopyFrom(changed_sites[n.name])
    # the gradient prefixes whose loss reads a changed call site
    import networkx as nx

    prefixes = []
    for gp, loss in facts.seeds:
        node = parse_input(loss)[0]
        anc = nx.ancestors(ir.g, node) | {node}
        if any(s in anc for s in changed_sites) and gp not in prefixes:
            prefixes.append(gp)
    mine = {f.signature.name for f in work.new}
    result = new_gd
    if prefixes:
        try:  # only the gradient scopes of the repaired ops (cost grows with the change)
            result = _regenerate_local(new_gd, facts, prefixes, sorted(changed_sites), mine)
        except Exception:  # noqa: BLE001 — fall back to the whole gradient of the loss
            result = _regenerate(new_gd, facts, prefixes, meta, mine)
    _prune_library(result, gd)
    return result


_IF_OPS = ("If", "StatelessIf")
_WHILE_OPS = ("While", "StatelessWhile")
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
_SUFFIX = "_rewritten"


def _baseline(nd, lib, ir, scopes):
    """For a forward ``If``/``While`` that ``tf.gradients`` rewrote (branches
    or body renamed ``*_rewritten`` with intermediates or accumulators added
    as extra outputs and loop variables): ``({attr: original function}, k)``
    with ``k`` the number of original outputs, when the original functions
    are still in the library and only gradient nodes read the extra outputs.
    The repair then starts from the op as the user built it, and the
    regenerated gradient adds exactly the intermediates the guarded body
    needs, as TensorFlow does.  None otherwise."""
    if nd.op in _CALL_OPS:
        return _baseline_call(nd, lib, ir, scopes)
    keys = ("then_branch", "else_branch") if nd.op in _IF_OPS else ("cond", "body") if nd.op in _WHILE_OPS else ()
    if not keys or any(key not in nd.attr or not nd.attr[key].func.name for key in keys):
        return None
    names = {}
    for key in keys:
        fn = cand = nd.attr[key].func.name
        while cand.endswith(_SUFFIX) and cand[: -len(_SUFFIX)] in lib:
            cand = cand[: -len(_SUFFIX)]
        names[key] = cand if fn in lib else None
    if any(v is None for v in names.values()) or all(names[k] == nd.attr[k].func.name for k in keys):
        return None
    data_inputs = [s for s in nd.input if not s.startswith("^")]
    if nd.op in _IF_OPS:
        outs = {len(lib[names[k]].signature.output_arg) for k in keys}
        ins = {len(lib[names[k]].signature.input_arg) for k in keys}
        if len(outs) != 1 or ins != {len(data_inputs) - 1}:
            return None
        k = outs.pop()
    else:
        body, cond = lib[names["body"]].signature, lib[names["cond"]].signature
        k = len(body.input_arg)
        if len(body.output_arg) != k or len(cond.input_arg) != k or k > len(data_inputs):
            return None
    if k >= len(nd.attr["Tout" if nd.op in _IF_OPS else "T"].list.type):
        return None
    if not _only_gradients_read(nd, k, ir, scopes):
        return None
    return names, k


def _only_gradients_read(nd, k, ir, scopes) -> bool:
    return all(parse_input(ir.node(dst).input[pos])[1] < k or scopes.is_gradient_node(dst)
               for dst, pos in ir.consumers(nd.name))


def _baseline_call(nd, lib, ir, scopes):
    """A ``PartitionedCall`` of a function called from graph mode that
    ``tf.gradients`` rewrote into ``__forward_<fn>_<uid>`` (extra outputs for
    the ``__backward_`` function): the ``__inference_<fn>_<uid>`` function
    it was made from, and its number of outputs."""
    if "f" not in nd.attr or not nd.attr["f"].func.name:
        return None
    m = re.match(r"^__forward_(.+)_\d+$", nd.attr["f"].func.name)
    fwd = lib.get(nd.attr["f"].func.name)
    if m is None or fwd is None:
        return None
    pat = re.compile("^__inference_" + re.escape(m.group(1)) + r"_\d+$")
    cands = []
    for name, f in lib.items():
        sig = f.signature
        if pat.match(name) and len(sig.input_arg) == len(fwd.signature.input_arg) \
                and len(sig.output_arg) < len(fwd.signature.output_arg) \
                and [a.type for a in sig.output_arg] == [a.type for a in fwd.signature.output_arg][:len(sig.output_arg)]:
            cands.append(name)
    if len(cands) != 1:
        return None
    k = len(lib[cands[0]].signature.output_arg)
    if k != len(nd.attr["Tout"].list.type) and _only_gradients_read(nd, k, ir, scopes):
        return {"f": cands[0]}, k
    return None


def _trimmed(nd, names, k):
    """``nd`` calling ``names`` with only its first ``k`` outputs (and, for a
    while loop, loop variables)."""
    c = type(nd)()
    c.CopyFrom(nd)
    for key, fn in names.items():
        c.attr[key].func.name = fn
    if nd.op in _WHILE_OPS:
        data = [s for s in nd.input if not s.startswith("^")][:k]
        ctrl = [s for s in nd.input if s.startswith("^")]
        del c.input[:]
        c.input.extend(data + ctrl)
    for key, field in (("Tout", "type"), ("T", "type"), ("output_shapes", "shape"), ("_output_shapes", "shape")):
        if key in c.attr:
            values = list(getattr(c.attr[key].list, field))[:k]
            del getattr(c.attr[key].list, field)[:]
            getattr(c.attr[key].list, field).extend(values)
    if "_num_original_outputs" in c.attr:
        c.attr["_num_original_outputs"].i = k
    if "_read_only_resource_inputs" in c.attr:
        keep = [i for i in c.attr["_read_only_resource_inputs"].list.i if i < k]
        del c.attr["_read_only_resource_inputs"].list.i[:]
        c.attr["_read_only_resource_inputs"].list.i.extend(keep)
    return c


def _prune_library(result, original) -> None:
    """Drop the functions only the replaced call sites and gradients called."""
    lib = {f.signature.name: f for f in result.library.function}
    before = reachable(original.node, {f.signature.name: f for f in original.library.function})
    now = reachable(result.node, lib)
    drop = {name for name in lib if name not in now and (name in before or name not in
                                                          {f.signature.name for f in original.library.function})}
    if drop:
        keep = [f for f in result.library.function if f.signature.name not in drop]
        del result.library.function[:]
        result.library.function.extend(keep)


def _bump_uid(names) -> None:
    """Move TensorFlow's op uid counter past every number in the library's
    function names, so gradient functions made now (``<fn>_grad_<uid>``)
    cannot take a name the graph already uses."""
    from tensorflow.python.framework import ops

    top = max((int(m) for n in names for m in re.findall(r"\d+", n) if len(m) < 9), default=0)
    while ops.uid() <= top:
        pass


def _regenerate(gd, facts, prefixes, meta, mine=frozenset()):
    from graphfix.gradients import FixError
    from graphfix.regenerate import _colocated_outside, _grad_ys, _only_used_by, _trainable, VARIABLE_OPS
    from graphfix.tfimport import tf as _tf
    import networkx as nx

    tf = _tf()
    seeds = {}
    for gp, loss in facts.seeds:
        seeds.setdefault(gp, loss)
    members = facts.grad_scopes.members
    work = GraphIR(gd, copy=False)
    # The forward graph only: the old gradients of these prefixes and all that
    # reads them (the optimizer) stay out of the scratch graph.
    old = {n for n in members if any(n.startswith(gp + "/") for gp in prefixes)}
    drop = set(old)
    todo = list(old)
    while todo:  # everything downstream of the old gradients, in one sweep
        for succ in work.g.successors(todo.pop()):
            if succ not in drop:
                drop.add(succ)
                todo.append(succ)
    fwd = type(gd)()
    fwd.CopyFrom(gd)
    del fwd.node[:]
    fwd.node.extend(n for n in gd.node if n.name not in drop)
    g = tf.Graph()
    with g.as_default(), process_functions_kept():
        _bump_uid([f.signature.name for f in gd.library.function])
        tf.compat.v1.import_graph_def(fwd, name="")
        route_call_gradients(g, mine)
        trainable = _trainable(meta, work)
        renames = {}
        for gp in prefixes:
            new_prefix = gp + _TMP
            if g.unique_name(new_prefix, mark_as_used=False) != new_prefix:
                raise FixError(f"name {new_prefix!r} is taken")
            loss_name = _float_loss(work, g, seeds[gp], members)
            loss = g.get_tensor_by_name(loss_name)
            loss_node = loss_name.rsplit(":", 1)[0]
            anc = nx.ancestors(work.g, loss_node)
            xs_names = [n for n in work.names() if n in anc and work.op(n) in VARIABLE_OPS]
            if trainable:
                xs_names = [n for n in xs_names if n in trainable] or xs_names
            xs = [g.get_tensor_by_name(n + ":0") for n in xs_names]
            grad_ys = _grad_ys(work, gp)
            gy = [g.get_tensor_by_name(grad_ys)] if grad_ys else None
            gate = any("/tuple/control_dependency" in n for n in members if n.startswith(gp + "/"))
            coloc = any(_colocated_outside(work, n, gp) for n in members if n.startswith(gp + "/"))
            tf.compat.v1.gradients([loss], xs, grad_ys=gy, name=new_prefix, gate_gradients=gate,
                                   colocate_gradients_with_ops=coloc)
            renames[new_prefix] = gp
        exported = g.as_graph_def()
        shapes = {op.name: [t.shape.as_proto() for t in op.outputs] for op in g.get_operations()}
    return _splice(gd, work, exported, shapes, renames, mine)


def _regenerate_local(gd, facts, prefixes, sites, mine):
    """The gradient of each repaired op ``S`` alone: ``tf.gradients`` of its
    outputs with respect to its inputs, the upstream gradients standing in as
    placeholders, builds ``<tmp>/S_grad/…`` exactly as the full call built
    ``<prefix>/S_grad/…`` (same op, same gradient function, same gating);
    each stand-in is then mapped to the tensor the old scope read at the same
    node and input position, and the new scope replaces the old one under its
    name.  Anything unexpected raises, and the caller regenerates the whole
    gradient instead."""
    from graphfix.gradients import FixError
    from graphfix.regenerate import _colocated_outside
    from graphfix.tfimport import tf as _tf
    import networkx as nx

    tf = _tf()
    members = facts.grad_scopes.members
    work = GraphIR(gd, copy=False)
    jobs = []
    for gp in prefixes:
        for site in sites:
            old = [n for n in members if n.startswith(f"{gp}/{site}_grad/")]
            if old:
                jobs.append((gp, site))
    if not jobs:
        raise FixError("no gradient scope of the repaired ops")
    keep = set(sites)
    for site in sites:
        keep |= nx.ancestors(work.g, site)
    if keep & members:
        raise FixError("a repaired op reads a gradient")
    fwd = type(gd)()
    fwd.CopyFrom(gd)
    del fwd.node[:]
    fwd.node.extend(n for n in gd.node if n.name in keep)
    g = tf.Graph()
    with g.as_default(), process_functions_kept():
        _bump_uid([f.signature.name for f in gd.library.function])
        tf.compat.v1.import_graph_def(fwd, name="")
        route_call_gradients(g, mine)
        renames, tmps = {}, []
        for k, (gp, site) in enumerate(jobs):
            tmp = f"{gp}{_TMP}_{k}"
            if g.unique_name(tmp, mark_as_used=False) != tmp:
                raise FixError(f"name {tmp!r} is taken")
            op = g.get_operation_by_name(site)
            ys = [t for t in op.outputs if t.dtype.is_floating or t.dtype == tf.variant]
            with g.name_scope(None):
                gys = [tf.compat.v1.placeholder(t.dtype, t.shape, name=f"{tmp}_upstream_{j}") for j, t in enumerate(ys)]
            gate = any("/tuple/control_dependency" in n for n in members if n.startswith(gp + "/"))
            coloc = any(_colocated_outside(work, n, gp) for n in members if n.startswith(gp + "/"))
            tf.compat.v1.gradients(ys, list(op.inputs), grad_ys=gys, name=tmp, gate_gradients=gate,
                                   colocate_gradients_with_ops=coloc)
            renames[f"{tmp}/{site}_grad"] = f"{gp}/{site}_grad"
            tmps.append((tmp, f"{tmp}_upstream_"))
        exported = g.as_graph_def()
        shapes = {op.name: [t.shape.as_proto() for t in op.outputs] for op in g.get_operations()}

    # stand-ins: the upstream placeholders and whatever else the call made
    # outside the op's scope (zeros for outputs without a gradient)
    old_names = set(work.names())
    in_scope = tuple(p + "/" for p in renames)
    standins = {n.name for n in exported.node if n.name not in old_names and not n.name.startswith(in_scope)}
    if any(not any(n.startswith(t) for t, _ in tmps) and not any(n.startswith(u) for _, u in tmps)
           for n in standins):
        raise FixError("the scratch call made nodes outside its prefix")
    input_map: dict[str, tuple[str, int]] = {}
    for n in exported.node:
        for new_p, old_p in renames.items():
            if not n.name.startswith(new_p + "/"):
                continue
            old_n = old_p + n.name[len(new_p):]
            for pos, r in enumerate(n.input):
                src, idx, ctrl = parse_input(r)
                if src not in standins:
                    continue
                if ctrl or idx != 0 or old_n not in work or pos >= len(work.node(old_n).input):
                    raise FixError(f"cannot match the upstream gradient of {n.name}")
                osrc, oidx, octrl = parse_input(work.node(old_n).input[pos])
                if octrl or input_map.get(src, (osrc, oidx)) != (osrc, oidx):
                    raise FixError(f"cannot match the upstream gradient of {n.name}")
                input_map[src] = (osrc, oidx)
    drop = standins - set(input_map)
    exported_kept = type(exported)()
    exported_kept.CopyFrom(exported)
    del exported_kept.node[:]
    exported_kept.node.extend(n for n in exported.node if n.name not in drop)
    return _splice(gd, work, exported_kept, shapes, renames, mine, input_map)


def _splice(gd, work, exported, shapes, renames, mine, input_map=None):
    """``gd`` with the nodes the scratch graph ``exported`` added: every old
    node below an old prefix of ``renames`` (``{new prefix: old prefix}``) is
    replaced by its counterpart below the new prefix, which then takes the
    old name; what only the old nodes used goes too.  ``input_map`` names the
    real tensor each scratch placeholder stood for."""
    from graphfix.gradients import FixError
    from graphfix.regenerate import _only_used_by

    input_map = input_map or {}
    old_names = set(work.names())
    old_lib = {f.signature.name for f in gd.library.function}
    new_nodes = []
    for n in exported.node:
        if n.name in old_names or n.name in input_map:
            continue
        if any(parse_input(r)[0] in input_map for r in n.input):
            c = type(n)()
            c.CopyFrom(n)
            n = c
            refs = []
            for r in n.input:
                src, idx, ctrl = parse_input(r)
                if src in input_map:
                    real, ridx = input_map[src]
                    refs.append("^" + real if ctrl else (real if ridx == 0 else f"{real}:{ridx}"))
                else:
                    refs.append(r)
            del n.input[:]
            n.input.extend(refs)
        new_nodes.append(n)
    changed = {}
    for n in exported.node:
        if n.name not in old_names:
            continue
        o = work.node(n.name)
        diff = list(n.input) != list(o.input) or any(k in n.attr and n.attr[k] != o.attr[k] for k in o.attr)
        if diff:
            c = type(o)()
            c.CopyFrom(o)
            del c.input[:]
            c.input.extend(n.input)
            for k in n.attr:
                if k in o.attr or k in ("Tout", "T", "output_shapes", "_num_original_outputs"):
                    c.attr[k].CopyFrom(n.attr[k])
            if "_output_shapes" in o.attr:
                del c.attr["_output_shapes"].list.shape[:]
                c.attr["_output_shapes"].list.shape.extend(shapes[n.name])
            changed[n.name] = c
    full_gd = type(gd)()
    full_gd.CopyFrom(gd)
    del full_gd.node[:]
    full_gd.node.extend(changed.get(n.name, n) for n in gd.node)
    full_gd.node.extend(new_nodes)
    full_gd.library.function.extend(f for f in exported.library.function if f.signature.name not in old_lib)
    full = GraphIR(full_gd, copy=False)
    prefix_of = {}
    for gp_new, gp in renames.items():
        for n in full.names():
            if n.startswith(gp + "/"):
                prefix_of[n] = (gp, gp_new)
    old_grad = set(prefix_of)
    dead = _only_used_by(full, old_grad)
    for n in sorted(old_grad, key=full.order.__getitem__):
        gp, gp_new = prefix_of[n]
        for dst in [c for c, _ in full.consumers(n)] + full.control_consumers(n):
            if dst not in dead and gp_new + n[len(gp):] not in full:
                raise FixError(f"the regenerated gradient has no counterpart of {n} (read by {dst})")

    def rename(s: str) -> str:
        ctrl = s.startswith("^")
        body = s[1:] if ctrl else s
        for new_p, old_p in renames.items():
            if body.startswith(new_p + "/"):
                body = old_p + body[len(new_p):]
                break
        return ("^" if ctrl else "") + body

    final = type(gd)()
    final.CopyFrom(full_gd)
    del final.node[:]
    new_names = {n.name for n in new_nodes}
    placed = False
    first_old = next((n for n in full.names() if n in dead), None)
    renamed_new = []
    for n in new_nodes:
        c = type(n)()
        c.CopyFrom(n)
        c.name = rename(c.name)
        refs = [rename(s) for s in c.input]
        del c.input[:]
        c.input.extend(refs)
        if "_class" in c.attr:
            locs = [(b"loc:@" + rename(s.decode()[5:]).encode()) if s.startswith(b"loc:@") else s
                    for s in c.attr["_class"].list.s]
            del c.attr["_class"].list.s[:]
            c.attr["_class"].list.s.extend(locs)
        renamed_new.append(c)
    for name in full.names():
        if name in new_names:
            continue
        if name == first_old and not placed:
            final.node.extend(renamed_new)
            placed = True
        if name in dead:
            continue
        n = full.node(name)
        if any(s.lstrip("^") != rename(s).lstrip("^") for s in n.input):
            n = type(n)()
            n.CopyFrom(full.node(name))
            refs = [rename(s) for s in n.input]
            del n.input[:]
            n.input.extend(refs)
        final.node.add().CopyFrom(n)
    if not placed:
        final.node.extend(renamed_new)
    _canonical_grad_names(final, old_lib | set(mine))
    # TensorFlow lists a graph's functions in no fixed order: the old ones
    # keep theirs, the new ones follow sorted by name
    funcs = list(final.library.function)
    ordered = [f for f in funcs if f.signature.name in old_lib] + \
        sorted((f for f in funcs if f.signature.name not in old_lib), key=lambda f: f.signature.name)
    del final.library.function[:]
    final.library.function.extend(ordered)
    return final


@contextlib.contextmanager
def process_functions_kept():
    """TensorFlow registers the functions ``cond_v2``/``while_v2`` make while
    differentiating (``<fn>_rewritten``, ``<fn>_grad_<uid>``) in the
    process-wide eager context as long as the graph that made them lives, and
    refuses a second function of the same name with another body: the same
    imported graph differentiated twice in one process (a second repair,
    ``verify`` after ``rewrite``) would fail while the first scratch graph
    waits for the garbage collector.  Collecting first unregisters the
    functions of every scratch graph already dropped."""
    import gc

    gc.collect()
    yield


def _float_loss(work, g, seed: str, members) -> str:
    """The loss a gradient prefix was seeded with.  The seed analysis reads
    output 0 of the op whose gradient consumes the seed; for a ``While`` that
    is the loop counter.  Then the loss is the one float sink of the forward
    graph downstream of that op (a tensor only gradient nodes read)."""
    import networkx as nx
    from graphfix.gradients import FixError

    if g.get_tensor_by_name(seed).dtype.is_floating:
        return seed
    start = seed.rsplit(":", 1)[0]
    while work.op(start) in ("Identity", "Snapshot") and work.inputs(start):
        start = work.inputs(start)[0][0]
    cands = []
    for n in sorted(nx.descendants(work.g, start), key=work.order.__getitem__):
        if n in members or n not in g._nodes_by_name:
            continue
        op = g.get_operation_by_name(n)
        if not op.outputs or not op.outputs[0].dtype.is_floating or op.type.startswith(("Apply", "ResourceApply")):
            continue
        if all(c in members for c in work.successors(n)):
            cands.append(f"{n}:0")
    outside = [c for c in cands if not c.startswith(start + "/")]  # not the loop's own output Identities
    cands = outside if len(outside) == 1 else cands
    if len(cands) != 1:
        raise FixError(f"cannot tell which output of {start} is the loss of the gradient")
    return cands[0]


_UID_TAIL = re.compile(r"^(?P<stem>.+?)(?P<uids>(?:_\d+)+)$")


_CALL_GRAD = "GraphfixFunctionCallGrad"
_registered = []
_CALL_GRAD_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def route_call_gradients(g, names=None) -> None:
    """Differentiate the calls of the repaired functions ``names`` as TensorFlow
    differentiates a function called from graph mode: the call is rewritten
    to a ``__forward_`` function exposing the intermediates, and a
    ``__backward_`` function is called on them (an imported call op would
    otherwise get a ``SymbolicGradient``, which needs C++ gradients that many
    ops lack).  Calls of one function share one forward/backward pair."""
    from tensorflow.core.framework import attr_value_pb2
    from tensorflow.python.framework import ops

    if not _registered:
        ops.RegisterGradient(_CALL_GRAD)(_call_grad)
        _registered.append(True)
    for op in g.get_operations():
        if op.type in _CALL_OPS and (names is None or op.get_attr("f").name in names):
            op._set_attr("_gradient_op_type", attr_value_pb2.AttrValue(s=_CALL_GRAD.encode()))


def _call_grad(op, *grads):
    from tensorflow.python.eager.polymorphic_function import atomic_function, concrete_function
    from tensorflow.python.framework import function_def_to_graph

    name = op.get_attr("f").name
    cache = _CALL_GRAD_CACHE.setdefault(op.graph, {})
    if name not in cache:
        fdef = op.graph._get_function(name).cached_definition
        fg = function_def_to_graph.function_def_to_graph(fdef, input_shapes=[t.shape for t in op.inputs])
        stem = re.sub(r"^__inference_", "", name)
        fg.name = re.sub(r"_\d+(?=_graphfix)", "", stem)
        cache[name] = concrete_function._DelayedRewriteGradientFunctions(
            atomic_function.from_func_graph(name, fg, {}), None)
    return cache[name]._rewrite_forward_and_call_backward(op, *grads)


def _canonical_grad_names(gd, keep) -> None:
    """Rename the functions TensorFlow made now (``<fn>_grad_<uid>``,
    ``__forward_<fn>_<uid>``, ``__inference___backward_<fn>_<uid>_<uid>``:
    the uids depend on what the process built before) to ``<stem>_<k>`` with
    the smallest free ``k``, numbered in creation order: the output is the
    same whatever ran before in the process."""
    taken = {f.signature.name for f in gd.library.function}
    renames = {}
    new = []
    for f in gd.library.function:
        m = _UID_TAIL.match(f.signature.name)
        if f.signature.name not in keep and m:
            new.append((tuple(int(u) for u in m.group("uids")[1:].split("_")), m.group("stem"), f.signature.name))
    for _, stem, name in sorted(new):
        taken.discard(name)
    for _, stem, name in sorted(new):
        k = 0
        while f"{stem}_{k}" in taken:
            k += 1
        taken.add(f"{stem}_{k}")
        renames[name] = f"{stem}_{k}"
    if not renames:
        return

    def fix_node(n):
        for key, idx, callee in list(_calls(n)):
            if callee in renames:
                _set_call(n, key, idx, renames[callee])
        if n.op in renames:
            n.op = renames[n.op]

    for n in gd.node:
        fix_node(n)
    for f in gd.library.function:
        if f.signature.name in renames:
            f.signature.name = renames[f.signature.name]
        for n in f.node_def:
            fix_node(n)
