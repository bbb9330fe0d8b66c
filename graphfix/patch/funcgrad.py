"""Regenerating the gradient of repaired functional ops (see
:mod:`graphfix.engine.funcpatch`), in a scratch ``tf.Graph``.

:func:`regenerate_local` rebuilds only each repaired op's gradient scope;
:func:`regenerate` (the fallback) the whole gradient of the loss;
:func:`_splice` puts the result in place of the old gradient under the old
names.  :func:`route_call_gradients` differentiates function calls the way
TensorFlow does in graph mode, :func:`process_functions_kept` keeps
TensorFlow's process-wide function registry from refusing a second repair.
"""
from __future__ import annotations

import contextlib
import gc
import re
import weakref

from graphfix.analysis.funclib import _CALL_OPS, _calls, _set_call
from graphfix.analysis.gradpath import gated
from graphfix.core import tfimport
from graphfix.core.errors import FixError
from graphfix.core.ir import GraphIR, parse_input, without_nodes
from graphfix.core.tfimport import protos
from graphfix.core.tfimport import tf as _tf
from graphfix.patch.regenerate import (
    _colocated_outside,
    _renamed,
    _trainable,
    gradient_call,
    in_place_of,
    old_gradient,
    renamed_ref,
)

_TMP = "_graphfix_fnregen"
_UID_TAIL = re.compile(r"^(?P<stem>.+?)(?P<uids>(?:_\d+)+)$")
_CALL_GRAD = "GraphfixFunctionCallGrad"
_registered = []
_CALL_GRAD_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _bump_uid(names) -> None:
    """Move TensorFlow's op uid counter past every number in the library's
    function names, so gradient functions made now (``<fn>_grad_<uid>``)
    cannot take a name the graph already uses."""
    ops = tfimport.module("tensorflow.python.framework.ops")

    top = max((int(m) for n in names for m in re.findall(r"\d+", n) if len(m) < 9), default=0)
    while ops.uid() <= top:
        pass


def regenerate(gd, facts, prefixes, meta, mine=frozenset()):
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
        for succ in work.successors(todo.pop()):
            if succ not in drop:
                drop.add(succ)
                todo.append(succ)
    fwd = type(gd)()
    fwd.CopyFrom(gd)
    del fwd.node[:]
    fwd.node.extend(n for n in gd.node if n.name not in drop)
    g = tf.Graph()
    with g.as_default(), process_functions_kept(gd.library.function):
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
            xs, gy, gate, coloc = gradient_call(work, g, gp, loss_name, members, trainable)
            tf.compat.v1.gradients([loss], xs, grad_ys=gy, name=new_prefix, gate_gradients=gate,
                                   colocate_gradients_with_ops=coloc)
            renames[new_prefix] = gp
        exported = g.as_graph_def()
        shapes = {op.name: [t.shape.as_proto() for t in op.outputs] for op in g.get_operations()}
    return _splice(gd, work, exported, shapes, renames, mine)


def regenerate_local(gd, facts, prefixes, sites, mine):
    """The gradient of each repaired op ``S`` alone: ``tf.gradients`` of its
    outputs with respect to its inputs, the upstream gradients standing in as
    placeholders, builds ``<tmp>/S_grad/…`` exactly as the full call built
    ``<prefix>/S_grad/…`` (same op, same gradient function, same gating);
    each stand-in is then mapped to the tensor the old scope read at the same
    node and input position, and the new scope replaces the old one under its
    name.  Anything unexpected raises, and the caller regenerates the whole
    gradient instead."""
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
        keep |= work.ancestors(site)
    if keep & members:
        raise FixError("a repaired op reads a gradient")
    fwd = type(gd)()
    fwd.CopyFrom(gd)
    del fwd.node[:]
    fwd.node.extend(n for n in gd.node if n.name in keep)
    g = tf.Graph()
    with g.as_default(), process_functions_kept(gd.library.function):
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
            gate = gated(n for n in members if n.startswith(gp + "/"))
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
    full_gd = without_nodes(gd)
    full_gd.node.extend(changed.get(n.name, n) for n in gd.node)
    full_gd.node.extend(new_nodes)
    full_gd.library.function.extend(f for f in exported.library.function if f.signature.name not in old_lib)
    full = GraphIR(full_gd, copy=False)
    _, dead = old_gradient(full, renames)

    def inputs_renamed(n):
        if all(s.lstrip("^") == renamed_ref(s, renames).lstrip("^") for s in n.input):
            return n
        c = type(n)()
        c.CopyFrom(n)
        refs = [renamed_ref(s, renames) for s in c.input]
        del c.input[:]
        c.input.extend(refs)
        return c

    final = without_nodes(full_gd)
    new_names = {n.name for n in new_nodes}
    final.node.extend(in_place_of(full, dead, [_renamed(n, renames) for n in new_nodes],
                                  keep=lambda n: n not in new_names, fix=inputs_renamed))
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
def process_functions_kept(functions):
    """TensorFlow registers the functions ``cond_v2``/``while_v2`` make while
    differentiating (``<fn>_rewritten``, ``<fn>_grad_<uid>``) in the
    process-wide eager context as long as the graph that made them lives, and
    refuses a second function of the same name with another body: the same
    imported graph differentiated twice in one process (a second repair,
    ``verify`` after ``rewrite``) would fail while the first scratch graph
    waits for the garbage collector.  Collecting first unregisters the
    functions of every scratch graph already dropped.

    ``functions`` are the FunctionDefs of the graph about to be
    differentiated.  A graph without any has no functional control flow to
    differentiate, registers nothing and skips the collection, which costs
    0.1-0.3 s in a process holding many objects (a test run, a batch)."""
    if len(functions):
        gc.collect()
    yield


def _float_loss(work, g, seed: str, members) -> str:
    """The loss a gradient prefix was seeded with.  The seed analysis reads
    output 0 of the op whose gradient consumes the seed; for a ``While`` that
    is the loop counter.  Then the loss is the one float sink of the forward
    graph downstream of that op (a tensor only gradient nodes read)."""
    if g.get_tensor_by_name(seed).dtype.is_floating:
        return seed
    start = seed.rsplit(":", 1)[0]
    while work.op(start) in ("Identity", "Snapshot") and work.inputs(start):
        start = work.inputs(start)[0][0]
    cands = []
    for n in sorted(work.descendants(start), key=work.order.__getitem__):
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


def route_call_gradients(g, names=None) -> None:
    """Differentiate the calls of the repaired functions ``names`` as TensorFlow
    differentiates a function called from graph mode: the call is rewritten
    to a ``__forward_`` function exposing the intermediates, and a
    ``__backward_`` function is called on them (an imported call op would
    otherwise get a ``SymbolicGradient``, which needs C++ gradients that many
    ops lack).  Calls of one function share one forward/backward pair."""
    attr_value_pb2 = protos().attr_value_pb2
    ops = tfimport.module("tensorflow.python.framework.ops")

    if not _registered:
        ops.RegisterGradient(_CALL_GRAD)(_call_grad)
        _registered.append(True)
    for op in g.get_operations():
        if op.type in _CALL_OPS and (names is None or op.get_attr("f").name in names):
            op._set_attr("_gradient_op_type", attr_value_pb2.AttrValue(s=_CALL_GRAD.encode()))


def _call_grad(op, *grads):
    atomic_function = tfimport.module("tensorflow.python.eager.polymorphic_function.atomic_function")
    concrete_function = tfimport.module("tensorflow.python.eager.polymorphic_function.concrete_function")
    function_def_to_graph = tfimport.module("tensorflow.python.framework.function_def_to_graph")

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
