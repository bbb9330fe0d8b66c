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

from graphfix.analysis.dtypes import FLOAT_TYPES
from graphfix.ir import tensor_name
from graphfix.scratch import Builder, check_names_free, export_nodes, new_scratch_graph, output_types, \
    v1_control_flow


class FixError(Exception):
    """A fix that cannot be applied safely; the finding stays unfixed with this note."""


def _region_inputs(ir, region: list[str]) -> list[tuple[str, int]]:
    rs = set(region)
    seen = []
    for r in region:
        for t in ir.inputs(r):
            if t[0] not in rs and t not in seen:
                seen.append(t)
    return seen


def _topo(ir, region: list[str]) -> list[str]:
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


def replace_region(ir, facts, *, code: str, anchor: str, region: list[str], output: tuple[str, int],
                   build) -> list[str]:
    """Replace tensor ``output`` of ``region`` by ``build(builder)`` and patch gradients.

    ``build`` receives a :class:`Builder` (inside the name scope
    ``<anchor>/graphfix/<code>``) and returns the replacement ``tf.Tensor``.
    Returns the names of the nodes added.
    """
    scope = f"{anchor}/graphfix/{code}"
    scopes = facts.grad_scopes
    region = _topo(ir, region)
    stale: dict[str, list[str]] = {}
    for gp in scopes.prefixes:
        nodes = [n for r in region for n in scopes.scope(gp, r)]
        if nodes:
            stale[gp] = nodes
    if stale and anchor in facts.in_loop:
        raise FixError("gradient patching inside a while-loop frame is not supported yet")
    all_stale = {n for nodes in stale.values() for n in nodes}
    inputs = _region_inputs(ir, region)

    graph = new_scratch_graph()
    tf = None
    extra_map: dict[str, tuple[str, int]] = {}
    new_grads: dict[str, dict[tuple[str, int], tuple[str, int]]] = {}
    with graph.as_default(), v1_control_flow():
        b = Builder(ir, graph)
        tf = b.tf
        with graph.name_scope(scope + "/"):
            new_out = build(b)
        float_inputs = [t for t in inputs if output_types(ir.node(t[0]))[t[1]] in FLOAT_TYPES]
        for t in b.inputs.values():
            if t not in inputs and output_types(ir.node(t[0]))[t[1]] in FLOAT_TYPES and stale:
                raise FixError(f"the guard reads {tensor_name(*t)}, which the replaced ops did not")
        for k, gp in enumerate(sorted(stale)):
            upstream = _upstream_gradient(ir, scopes, stale[gp])
            with graph.name_scope(None):
                u = tf.compat.v1.placeholder(new_out.dtype, name=f"graphfix_scratch_upstream_{k}")
            extra_map[u.op.name] = upstream
            xs = [b.input(t) for t in float_inputs]
            with graph.name_scope(scope + "/"):
                grads = tf.compat.v1.gradients(new_out, xs, grad_ys=u, name="grad" if k == 0 else f"grad_{k}",
                                               unconnected_gradients=tf.UnconnectedGradients.ZERO)
            new_grads[gp] = {t: (gr.op.name, gr.value_index) for t, gr in zip(float_inputs, grads)}
    out_tensor = (new_out.op.name, new_out.value_index)

    # Map every stale gradient output read from outside to the input it is the gradient for.
    rewires: list[tuple[tuple[str, int], tuple[str, int]]] = []
    for gp, nodes in stale.items():
        outs = _stale_outputs(ir, set(nodes), all_stale | set(region))
        mapping = _map_old_gradients(ir, region, output, float_inputs, gp, outs)
        for old in outs:
            rewires.append((old, new_grads[gp][mapping[old]]))

    anchor_node = ir.node(anchor)
    coloc = anchor_node.attr["_class"] if "_class" in anchor_node.attr else None
    nodes = export_nodes(b, extra_map, device=anchor_node.device, colocation=coloc)
    check_names_free(ir, nodes)
    ir.add_nodes(nodes, after=anchor)
    new_names = {n.name for n in nodes}
    ir.replace_uses(output, out_tensor, exclude=set(region) | all_stale | new_names)
    for old, new in rewires:
        ir.replace_uses(old, new, exclude=all_stale)
    for r in region:
        ir.replace_control_uses(r, out_tensor[0], exclude=set(region) | all_stale)
    ir.remove_dead(set(region) | all_stale)
    added = [n.name for n in nodes]
    if output[0] not in ir and out_tensor[1] == output[1] == 0:
        # The guarded value keeps the original tensor name, so fetches,
        # collections, summaries and signatures that name it still work.
        ir.rename(out_tensor[0], output[0])
        added = [output[0] if a == out_tensor[0] else a for a in added]
    return added


def _upstream_gradient(ir, scopes, nodes: list[str]) -> tuple[str, int]:
    """dL/dT: the one tensor the stale scopes read from elsewhere in the gradient graph."""
    inside = set(nodes)
    found = []
    for n in nodes:
        for t in ir.inputs(n):
            if t[0] not in inside and scopes.is_gradient_node(t[0]) and t not in found:
                found.append(t)
    if len(found) != 1:
        raise FixError(f"cannot identify the upstream gradient of the replaced ops ({len(found)} candidates)")
    return found[0]


def _stale_outputs(ir, nodes: set[str], removed: set[str]) -> list[tuple[str, int]]:
    outs = []
    for n in sorted(nodes, key=ir.order.__getitem__):
        for dst, pos in ir.consumers(n):
            if dst in removed:
                continue
            src = ir.node(dst).input[pos]
            t = (n, int(src.rsplit(":", 1)[1]) if ":" in src and src.rsplit(":", 1)[1].isdigit() else 0)
            if t not in outs:
                outs.append(t)
    return outs


def _map_old_gradients(ir, region, output, float_inputs, gp, outs):
    """Which region input each stale gradient output is the gradient for.

    Re-derives the old gradient in a scratch graph: the region's ops recreated
    under their own names and ``tf.gradients`` called under the same prefix
    reproduce the old scope's tensor names, with and without gating.
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
                    made[r] = b.clone(r, ins, op_name=r)
                t_out = made[output[0]][output[1]]
                u = tf.compat.v1.placeholder(t_out.dtype, name="graphfix_scratch_upstream")
                xs = [b.input(t) for t in float_inputs]
                grads = tf.compat.v1.gradients(t_out, xs, grad_ys=u, name=gp, gate_gradients=gate)
        except (ValueError, TypeError, LookupError) as e:
            raise FixError(f"cannot re-derive the old gradient: {e}") from None
        mapping = {}
        for t, gr in zip(float_inputs, grads):
            if gr is None:
                continue
            key = (gr.op.name, gr.value_index)
            if key in want:
                mapping[key] = t
        if set(mapping) == want:
            return mapping
    if len(want) == 1 and len(float_inputs) == 1:
        return {outs[0]: float_inputs[0]}
    raise FixError("cannot match the old gradient subgraph to the replaced ops "
                   f"(outputs {sorted(tensor_name(*o) for o in outs)})")
