"""Keeping training graphs trainable: patching the gradient subgraph.

A graph saved after ``optimizer.minimize`` already holds the gradient of the
*old* loss, and its ``Apply*`` ops read it; guarding only the forward graph
changes nothing in training.  graphfix patches the gradient locally
(architecture.md, strategy 2): gradient functions are local, so when a rule
replaces the forward *region* R (a few ops computing tensor T from inputs
X1..Xk) by a guarded subgraph R', only the gradient scopes of R's ops
(``<prefix>/<op>_grad/…``) are stale.  For each gradient prefix we

1. find the upstream gradient U (dL/dT) those scopes read,
2. find which of their outputs carried dL/dXi (by re-deriving the old
   scopes' gradient in a scratch graph and matching the tensor names),
3. differentiate R' for the same U in the scratch graph, splice the new
   gradient ops in, and point the consumers of each old dL/dXi at the new one,
4. drop the old scopes.

Everything downstream (AddN aggregation, gradients of other ops, clipping,
loss scaling, summaries, the optimizer's ``Apply*`` ops, the train op) is
untouched and stays valid by the chain rule, and gradients where the guard
does not fire are computed by the very same kernels as before.  The cost
grows with the size of the change, not of the model.
"""
from __future__ import annotations

import dataclasses

from graphfix.analysis.dtypes import FLOAT_TYPES
from graphfix.analysis.gradpath import gated, spliced_prefix
from graphfix.core.errors import FixError  # noqa: F401  (raised here; callers catch it)
from graphfix.core.ir import input_ref, parse_input, tensor_name
from graphfix.patch.scratch import (
    Builder,
    check_names_free,
    export_nodes,
    new_scratch_graph,
    output_types,
    v1_control_flow,
)


def _region_inputs(ir, region: list[str]) -> list[tuple[str, int]]:
    rs = set(region)
    seen = []
    for r in region:
        for t in ir.inputs(r):
            if t[0] not in rs and t not in seen:
                seen.append(t)
    return seen


def topo_order(ir, region: list[str]) -> list[str]:
    rs = set(region)
    done: list[str] = []
    pending = list(region)
    while pending:
        progressed = False
        for r in list(pending):
            if all(src not in rs or src in done for src, _ in ir.inputs(r)):
                done.append(r)
                pending.remove(r)
                progressed = True
        if not progressed:
            raise FixError("region has a cycle")
    return done


def stale_scopes(ir, facts, region: list[str]) -> dict[str, list[str]]:
    """For each gradient scope, the nodes of it that differentiate ``region``
    (plus the aggregations that sum their outputs): what a replacement of the
    region makes stale."""
    scopes = facts.grad_scopes
    stale: dict[str, list[str]] = {}
    for gp in scopes.prefixes:
        nodes = [n for r in region for n in scopes.scope(gp, r)]
        if nodes:
            stale[gp] = nodes
    for gp in stale:
        stale[gp] += _aggregations(ir, scopes, gp, set(stale[gp]))
    return stale


def patch_region(ir, facts, *, code: str, anchor: str, region: list[str], output, build) -> list[str]:
    """Replace the ``output`` tensor(s) of ``region`` by ``build(builder)`` and patch gradients.

    ``output`` is one ``(node, index)`` or a list of them; ``build`` receives
    a :class:`Builder` (inside the name scope ``<anchor>/graphfix/<code>``)
    and returns the replacement ``tf.Tensor`` (or a list, one per output).
    Region nodes still read by others after the rewrite stay in the graph.
    The gradient is patched locally: each stale gradient scope is replaced by
    the gradient of the guard (a region inside a while loop is handled by
    :func:`graphfix.patch.regenerate.replace_region_in_loop` instead; the
    choice is :func:`graphfix.patch.region.replace_region`'s).
    Returns the names of the nodes added.
    """
    outputs = [output] if isinstance(output, tuple) else list(output)
    scope = _free_scope(ir, f"{anchor}/graphfix/{code}")
    region = topo_order(ir, region)
    stale = stale_scopes(ir, facts, region)
    inputs = _region_inputs(ir, region)
    built = _build(ir, facts.grad_scopes, stale, inputs, outputs, scope, build)
    # Map every stale gradient output read from outside to the input it is the gradient for.
    all_stale = {n for nodes in stale.values() for n in nodes}
    rewires: list[tuple[tuple[str, int], tuple[str, int]]] = []
    for gp, nodes in stale.items():
        outs = _stale_outputs(ir, set(nodes), all_stale | set(region))
        mapping = _map_old_gradients(ir, facts.grad_scopes, region, outputs, built.float_inputs, gp, outs,
                                     all_stale)
        for old in outs:
            rewires.append((old, built.new_grads[gp][mapping[old]]))
    return _splice(ir, facts, code=code, anchor=anchor, scope=scope, region=region, inputs=inputs,
                   outputs=outputs, all_stale=all_stale, built=built, rewires=rewires)


@dataclasses.dataclass
class _Built:
    """A guard and its gradients, built in a scratch graph."""

    builder: Builder
    outs: list[tuple[str, int]]        # the replacement of each output
    float_inputs: list[tuple[str, int]]  # the region's float inputs (what the gradients are for)
    new_grads: dict[str, dict[tuple[str, int], tuple[str, int]]]  # gradient scope -> input -> its gradient
    extra_map: dict[str, tuple[str, int]]  # scratch placeholder -> the graph's upstream gradient it stands for
    upstreams: list[list]


def _build(ir, scopes, stale, inputs, outputs, scope: str, build) -> _Built:
    """Build the guard and, for each stale gradient scope, its gradient
    w.r.t. the region's float inputs (fed that scope's upstream gradients)."""
    graph = new_scratch_graph()
    extra_map: dict[str, tuple[str, int]] = {}
    new_grads: dict[str, dict[tuple[str, int], tuple[str, int]]] = {}
    upstreams: list[list] = []
    with graph.as_default(), v1_control_flow():
        b = Builder(ir, graph)
        tf = b.tf
        with graph.name_scope(scope + "/"):
            built = build(b)
        new_outs = list(built) if isinstance(built, (list, tuple)) else [built]
        if len(new_outs) != len(outputs):
            raise FixError("internal: the guard built a different number of outputs")
        float_inputs = [t for t in inputs if output_types(ir.node(t[0]))[t[1]] in FLOAT_TYPES]
        extra_float = [t for t in b.inputs.values()
                       if t not in inputs and output_types(ir.node(t[0]))[t[1]] in FLOAT_TYPES]
        for k, gp in enumerate(sorted(stale)):
            ups = _upstream_gradients(ir, scopes, gp, stale[gp], outputs)
            upstreams.append(ups)
            ys, grad_ys = [], []
            for j, (out, up) in enumerate(zip(new_outs, ups)):
                if up is None:
                    continue
                with graph.name_scope(None):
                    u = tf.compat.v1.placeholder(out.dtype, name=f"graphfix_scratch_upstream_{k}_{j}")
                extra_map[u.op.name] = up
                ys.append(out)
                grad_ys.append(u)
            xs = [b.input(t) for t in float_inputs]
            with graph.name_scope(scope + "/"):
                name = "grad" if k == 0 else f"grad_{k}"
                if extra_float:
                    # The guard may read other float tensors only as predicates
                    # (no gradient may flow into them).
                    leaks = tf.compat.v1.gradients(ys, [b.input(t) for t in extra_float], grad_ys=grad_ys,
                                                   name=name + "_check")
                    for t, gr in zip(extra_float, leaks):
                        if gr is not None:
                            raise FixError(f"the guard differentiates through {tensor_name(*t)}, "
                                           "which the replaced ops did not read")
                grads = tf.compat.v1.gradients(ys, xs, grad_ys=grad_ys, name=name, gate_gradients=gated(stale[gp]),
                                               unconnected_gradients=tf.UnconnectedGradients.ZERO)
            new_grads[gp] = {t: (gr.op.name, gr.value_index) for t, gr in zip(float_inputs, grads)}
    return _Built(builder=b, outs=[(t.op.name, t.value_index) for t in new_outs], float_inputs=float_inputs,
                  new_grads=new_grads, extra_map=extra_map, upstreams=upstreams)


def _splice(ir, facts, *, code, anchor, scope, region, inputs, outputs, all_stale, built: _Built,
            rewires) -> list[str]:
    """Put the built guard and gradients into ``ir`` in place of the region and
    its stale gradient scopes; returns the names of the nodes added."""
    out_tensors = built.outs
    anchor_node = ir.node(anchor)
    coloc = anchor_node.attr["_class"] if "_class" in anchor_node.attr else None
    nodes = export_nodes(built.builder, built.extra_map, device=anchor_node.device, colocation=coloc)
    if anchor in facts.in_loop:
        _pin_to_frame(ir, facts, nodes, inputs)
    nodes = [n for n in nodes if not n.name.endswith("_check") and "_check/" not in n.name]
    renamed = _shorten_gradient_names(ir, nodes, scope)
    rewires = [(old, (renamed.get(new[0], new[0]), new[1])) for old, new in rewires]
    check_names_free(ir, nodes)
    ir.add_nodes(nodes, after=anchor)
    new_names = {n.name for n in nodes}
    for old_t, new_t in zip(outputs, out_tensors):
        ir.replace_uses(old_t, new_t, exclude=set(region) | all_stale | new_names)
    for old, new in rewires:
        ir.replace_uses(old, new, exclude=all_stale)
    # Control edges out of the old scopes (TF gates a gradient function's
    # constants on its upstream gradient) move to the new gradient.
    for n in sorted(all_stale, key=ir.order.__getitem__):
        outside = [c for c in ir.control_consumers(n) if c not in all_stale]
        if outside and rewires:
            target = next((new[0] for old, new in rewires if old[0] == n), rewires[0][1][0])
            ir.replace_control_uses(n, target, exclude=all_stale)
    for r in region:
        ir.replace_control_uses(r, out_tensors[0][0], exclude=set(region) | all_stale)
    moved = {old[0]: new[0] for old, new in rewires}
    moved.update({o[0]: n[0] for o, n in zip(outputs, out_tensors)})
    # The upstream-gradient Identity of an earlier splice (``…/grad/grad_ys_0``)
    # dies with the scope it fed when that scope is replaced in turn.
    feeders = {u[0] for ups in built.upstreams for u in ups if u is not None and ir.op(u[0]) == "Identity"
               and spliced_prefix(u[0]) is not None}
    ir.remove_dead(set(region) | all_stale | feeders |
                   {n.name for n in nodes if n.name.startswith(scope + "/grad")})
    added = [n.name for n in nodes if n.name in ir]
    for old_t, new_t in zip(outputs, out_tensors):
        if old_t[0] not in ir and new_t[1] == old_t[1] == 0:
            # The guarded value keeps the original tensor name, so fetches,
            # collections, summaries and signatures that name it still work.
            # Its spliced gradient scope keeps the scratch name; GradScopes
            # resolves it through this record (or, from a file, the anchor).
            ir.rename(new_t[0], old_t[0])
            ir.note_renamed(new_t[0], old_t[0])
            added = [old_t[0] if a == new_t[0] else a for a in added]
    # After the rename: a ``loc:@<output>`` kept by a surviving node names the
    # renamed guard again (before it, it would be pointed at a name that the
    # rename then removes).
    _fix_colocation(ir, moved)
    # what graphfix.engine.selfcheck checks afterwards (when the pass manager started a log)
    ir.log_edit({"code": code, "region": list(region), "outputs": [o[0] for o in outputs],
                 "stale": sorted(all_stale), "added": list(added)})
    return added


def _shorten_gradient_names(ir, nodes, scope: str) -> dict[str, str]:
    """Drop the repeated scope from new gradient node names, in place.

    ``tf.gradients`` names each op's gradient after the op's full name, so
    under ``<scope>/grad`` the guard's gradient nodes would be called
    ``<scope>/grad/<scope>/cond/Mean_grad/…``; they become
    ``<scope>/grad/cond/Mean_grad/…``.  Inputs and colocations follow.  Nothing
    is renamed if a short name is already taken.  Returns old -> new names."""
    inner = scope + "/"
    mapping = {}
    for n in nodes:
        head, sep, rest = n.name.partition("/" + inner)
        if sep and head.startswith(inner + "grad") and "/" not in head[len(inner):]:
            mapping[n.name] = f"{head}/{rest}"
    names = {n.name for n in nodes}
    if any(new in names or new in ir for new in mapping.values()) or len(set(mapping.values())) != len(mapping):
        return {}
    for n in nodes:
        n.name = mapping.get(n.name, n.name)
        refs = []
        for s in n.input:
            src, idx, ctrl = parse_input(s)
            if src in mapping:
                s = "^" + mapping[src] if ctrl else input_ref(mapping[src], idx)
            refs.append(s)
        del n.input[:]
        n.input.extend(refs)
        if "_class" in n.attr:
            locs = [b"loc:@" + mapping[c[5:].decode()].encode() if c[5:].decode() in mapping else c
                    for c in n.attr["_class"].list.s]
            del n.attr["_class"].list.s[:]
            n.attr["_class"].list.s.extend(locs)
    return mapping


def _free_scope(ir, scope: str) -> str:
    """``scope``, or ``scope_1``, ``scope_2``… if nodes already live under it."""
    name, k = scope, 0
    while ir.scope_in_use(name):
        k += 1
        name = f"{scope}_{k}"
    return name


def _fix_colocation(ir, moved: dict[str, str]) -> None:
    """Colocation constraints (``_class: loc:@X``) naming a removed node now
    name its replacement, or are dropped."""
    for name in ir.dangling_colocations():
        n = ir.node(name)
        if "_class" not in n.attr:
            continue
        locs = list(n.attr["_class"].list.s)
        new = []
        for loc in locs:
            target = loc.decode()[5:] if loc.startswith(b"loc:@") else None
            if target is not None and target not in ir:
                target = moved.get(target)
                if target is None or target not in ir:
                    continue
                loc = f"loc:@{target}".encode()
            if loc not in new:
                new.append(loc)
        if new != locs:
            ir.set_colocation(name, new)


def _aggregations(ir, scopes, gp: str, nodes: set[str]) -> list[str]:
    """Gradient aggregation nodes (``<prefix>/AddN``…) that only sum
    contributions from ``nodes``: they belong to the replaced region's
    gradient (several uses of one region op inside the region)."""
    added: list[str] = []
    grown = True
    while grown:
        grown = False
        cands = {dst for n in nodes for dst in ir.successors(n)
                 if dst not in nodes and dst.startswith(gp + "/") and "_grad/" not in dst[len(gp) + 1:]
                 and ir.op(dst) in ("AddN", "Add", "AddV2", "AccumulateNV2")}
        for c in sorted(cands):
            if all(src in nodes for src, _ in ir.inputs(c)):
                nodes.add(c)
                added.append(c)
                grown = True
    return added


def _upstream_gradients(ir, scopes, gp: str, nodes: list[str], outputs) -> list:
    """dL/dT for each region output T: the tensor its gradient scope reads from
    elsewhere in the gradient graph (None for an output no gradient reaches)."""
    inside = set(nodes)
    found: dict[str, list] = {}
    for n in nodes:
        for t in ir.inputs(n):
            if t[0] not in inside and scopes.is_gradient_node(t[0]):
                found.setdefault(n, [])
                if t not in found[n]:
                    found[n].append(t)
    everything = {t for ts in found.values() for t in ts}
    res = []
    for node, _ in outputs:
        cands = sorted({t for n, ts in found.items() if scopes.owner_of(n) == node for t in ts})
        if len(cands) > 1:
            raise FixError(f"cannot identify the upstream gradient of {node!r} ({len(cands)} candidates)")
        res.append(cands[0] if cands else None)
    if everything - {u for u in res if u is not None}:
        raise FixError("an op inside the replaced region also receives gradient from elsewhere")
    if all(u is None for u in res):
        raise FixError("cannot identify the upstream gradient of the replaced ops")
    return res


def _stale_outputs(ir, nodes: set[str], removed: set[str]) -> list[tuple[str, int]]:
    outs = []
    for n in sorted(nodes, key=ir.order.__getitem__):
        for dst, pos in ir.consumers(n):
            if dst in removed:
                continue
            t = (n, parse_input(ir.node(dst).input[pos])[1])
            if t not in outs:
                outs.append(t)
    return outs


def _map_old_gradients(ir, scopes, region, outputs, float_inputs, gp, outs, stale):
    """Which region input each stale gradient output is the gradient for.

    Re-derives the old gradient in a scratch graph: the region's ops recreated
    under their own names and ``tf.gradients`` called under the same prefix
    reproduce the old scope's tensor names, with and without gating.  An op
    whose scope graphfix spliced in earlier is recreated under the name it had
    when that scope was built (``Log/graphfix/GF006/Log``).
    """
    want = set(outs)
    if not want:
        return {}
    for gate in (False, True):
        graph = new_scratch_graph()
        try:
            with graph.as_default(), v1_control_flow():
                b = Builder(ir, graph)
                tf = b.tf
                made: dict[str, list] = {}
                for r in region:
                    ins = [made[s][i] if s in made else b.input((s, i)) for s, i in ir.inputs(r)]
                    made[r] = b.clone(r, ins, op_name=scopes.name_when_built(gp, r))
                ys = [made[o[0]][o[1]] for o in outputs
                      if any(_short(gp, n).startswith(_short(gp, f"{gp}/{scopes.name_when_built(gp, o[0])}_grad/"))
                             for n in stale)]
                us = [tf.compat.v1.placeholder(y.dtype, name=f"graphfix_scratch_upstream_{j}")
                      for j, y in enumerate(ys)]
                xs = [b.input(t) for t in float_inputs]
                grads = tf.compat.v1.gradients(ys, xs, grad_ys=us, name=gp, gate_gradients=gate)
        except (ValueError, TypeError, LookupError) as e:
            raise FixError(f"cannot re-derive the old gradient: {e}") from None
        mapping = {}
        for t, gr in zip(float_inputs, grads):
            if gr is None:
                continue
            for key in ((gr.op.name, gr.value_index), (_short(gp, gr.op.name), gr.value_index)):
                if key in want:
                    mapping[key] = t
        if set(mapping) == want:
            return mapping
    if len(want) == 1 and len(float_inputs) == 1:
        return {outs[0]: float_inputs[0]}
    mapping = _map_by_receivers(ir, scopes, outs, float_inputs, stale | set(region))
    if mapping is not None:
        return mapping
    raise FixError("cannot match the old gradient subgraph to the replaced ops "
                   f"(outputs {sorted(tensor_name(*o) for o in outs)})")


def _short(gp: str, name: str) -> str:
    """``<scope>/grad/<scope>/X_grad/…`` spelt relative to the splice's scope
    (``<scope>/grad/X_grad/…``), as a splice may name its gradient nodes."""
    scope = gp.rsplit("/", 1)[0]
    long = f"{gp}/{scope}/"
    return f"{gp}/{name[len(long):]}" if name.startswith(long) else name


def _map_by_receivers(ir, scopes, outs, float_inputs, removed):
    """The same mapping read from the graph instead of re-derived: dL/dX flows
    into the gradient scope of X's producer (see GradScopes.receivers).  Used
    when the names cannot be re-derived (a scope graphfix spliced in was built
    with static shapes its inputs no longer carry); None if ambiguous."""
    by_input = {t: scopes.receivers([t[0]]) for t in float_inputs}
    mapping = {}
    for o in outs:
        owners: set[str] = set()
        for dst, _ in ir.consumers(*o):
            if dst not in removed:
                owners |= scopes.owners_downstream(dst)
        cands = [t for t, recv in by_input.items() if owners and owners <= recv]
        if len(cands) != 1:
            return None
        mapping[o] = cands[0]
    return mapping


def _pin_to_frame(ir, facts, nodes, inputs) -> None:
    """New nodes without inputs (constants) inside a while-loop body must run
    in the loop's frame: TensorFlow rejects an op with "inputs from different
    frames" otherwise.  Like ``tf.constant`` built inside ``tf.while_loop``
    they get a control input from a node of the frame (here: the producer of
    a region input, which is in the anchor's frame)."""
    in_frame = next((t[0] for t in inputs if t[0] in facts.in_loop), None)
    if in_frame is None:
        raise FixError("cannot find a node of the while-loop frame to anchor the guard's constants to")
    for n in nodes:
        if not n.input:
            n.input.append("^" + in_frame)
