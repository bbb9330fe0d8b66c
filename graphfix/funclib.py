"""The function library of a graph with TF2 functional control flow.

Which functions a node calls (through ``func`` attrs or as its op), which
functions the forward graph reaches, and — for an ``If``/``While``/call op
that ``tf.gradients`` rewrote (``<fn>_rewritten`` branches with
intermediates, ``__forward_<fn>_<uid>`` callees, accumulators added as loop
variables) — the functions it was built with and how to put the op back in
that form.  Protobuf only, no TensorFlow: ``check`` uses it.
"""
from __future__ import annotations

import re

from graphfix.ir import parse_input


_IF_OPS = ("If", "StatelessIf")
_WHILE_OPS = ("While", "StatelessWhile")
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
_SUFFIX = "_rewritten"


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


def arg_inputs(nd, lib, names=None) -> list[tuple[str, list[tuple[str, tuple[str, int]]]]]:
    """``[(function, [(argument, input tensor)])]`` for the functions ``nd``
    calls through its ``then_branch``/``else_branch``, ``cond``/``body`` or
    ``f`` attr (``names`` overrides them, e.g. the functions it was built with)."""
    data = [parse_input(s)[:2] for s in nd.input if not s.startswith("^")]
    if nd.op in _IF_OPS:
        keys, ins = ("then_branch", "else_branch"), data[1:]
    elif nd.op in _WHILE_OPS:
        keys, ins = ("cond", "body"), data
    elif nd.op in _CALL_OPS:
        keys, ins = ("f",), data
    else:
        return []
    res = []
    for key in keys:
        fn = (names or {}).get(key) or (nd.attr[key].func.name if key in nd.attr else "")
        if fn in lib:
            res.append((fn, [(a.name, t) for a, t in zip(lib[fn].signature.input_arg, ins)]))
    return res


def empty_test(facts):
    """``t -> bool``: may tensor ``(node, index)`` be empty, per ``facts``."""
    test = getattr(facts, "may_be_empty", None)
    if callable(test):
        return test
    empty = facts.empty
    return empty.__contains__


def boundary_seeds(ir, is_empty, scopes) -> dict[str, set[str]]:
    """Function -> its arguments that may be empty at some forward call site
    (``is_empty``: the caller's may-be-empty test, see :func:`empty_test`)."""
    lib = {f.signature.name: f for f in ir.library.function} if ir.library is not None else {}
    seeds: dict[str, set[str]] = {}
    for name in ir.names():
        if scopes is not None and scopes.is_gradient_node(name):
            continue
        nd = ir.node(name)
        base = _baseline(nd, lib, ir, scopes) if scopes is not None else None
        guarded = _then_guarded(ir, nd)
        names = base[0] if base else None
        for fn, pairs in arg_inputs(nd, lib, names):
            then = nd.op in _IF_OPS and fn == ((names or {}).get("then_branch") or nd.attr["then_branch"].func.name)
            hit = {a for a, t in pairs if is_empty(t) and not (then and t in guarded)}
            if hit:
                seeds.setdefault(fn, set()).update(hit)
    return seeds


def _then_guarded(ir, nd) -> set[tuple[str, int]]:
    """Inputs of an ``If`` whose predicate is ``size(input) > 0``: not empty
    in its then branch (``tf.cond(tf.size(x) > 0, lambda: mean(x), …)``)."""
    if nd.op not in _IF_OPS or not nd.input:
        return set()
    from graphfix.analysis.consts import const_scalar
    from graphfix.analysis.guards import size_source, strip

    pred = strip(ir, parse_input(nd.input[0])[:2])
    ins = ir.inputs(pred[0]) if pred[0] in ir else []
    if len(ins) != 2:
        return set()
    op, (a, b) = ir.op(pred[0]), ins
    if op in ("Greater", "NotEqual") and const_scalar(ir, b) == 0 or op == "GreaterEqual" and const_scalar(ir, b) == 1:
        checked = size_source(ir, a)
    elif op == "Less" and const_scalar(ir, a) == 0:
        checked = size_source(ir, b)
    else:
        return set()
    data = [parse_input(s)[:2] for s in nd.input[1:] if not s.startswith("^")]
    return {t for t in data if checked is not None and strip(ir, t) == checked}
