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

from graphfix.analysis.absval import join
from graphfix.core.ir import parse_input

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
    return _closure([c for n in nodes for c in _callees(n, library)], library)


def _closure(roots, library, also=None) -> set[str]:
    """``roots`` and every library function they call, transitively (and
    whatever ``also(name)`` adds for each)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in library:
            continue
        seen.add(name)
        todo.extend(c for n in library[name].node_def for c in _callees(n, library))
        if also is not None:
            todo.extend(also(name))
    return seen


def call_sites(graph_def) -> dict[str, list[str]]:
    """Function name -> the top-level nodes whose call reaches it (directly or
    through functions calling functions)."""
    lib = {f.signature.name: f for f in graph_def.library.function}
    res: dict[str, list[str]] = {}
    if not lib:
        return res
    for n in graph_def.node:
        # with the function the op was built with, before tf.gradients rewrote it
        seen = _closure(_callees(n, lib), lib, also=lambda fn: _bases(fn, lib))
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
    return _closure(roots, lib)


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
                and [a.type for a in sig.output_arg] \
                == [a.type for a in fwd.signature.output_arg][:len(sig.output_arg)]:
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


def boundary_values(ir, facts, scopes) -> dict[str, dict[str, object]]:
    """Function -> argument -> the abstract value (numeric analysis) it has at
    the forward call sites, joined over them: an ``If``'s then branch sees its
    inputs under the predicate and the else branch under its negation
    (``tf.cond(tf.size(x) > 0, lambda: mean(x), …)`` sees ``x`` non-empty,
    ``tf.cond(n > 0, lambda: s / n, …)`` sees ``n`` positive); a ``While``'s
    loop-carried arguments are widened (the body runs on what earlier
    iterations made of them); a call sees its inputs as they are."""
    num = facts.numeric
    lib = {f.signature.name: f for f in ir.library.function} if ir.library is not None else {}
    values: dict[str, dict[str, object]] = {}
    for name in ir.names():
        if scopes is not None and scopes.is_gradient_node(name):
            continue
        nd = ir.node(name)
        base = _baseline(nd, lib, ir, scopes) if scopes is not None else None
        names = base[0] if base else None
        pred = parse_input(nd.input[0])[:2] if nd.op in _IF_OPS and nd.input else None
        then = ((names or {}).get("then_branch") or nd.attr["then_branch"].func.name) if pred else None
        for fn, pairs in arg_inputs(nd, lib, names):
            for a, t in pairs:
                if t[0] not in ir:
                    continue
                if pred is not None:
                    v = num.under(t, num.facts(pred, fn == then))
                elif nd.op in _WHILE_OPS:
                    v = num.merge_value(name, [num.value(t)], loop=True)
                else:
                    v = num.value(t)
                args = values.setdefault(fn, {})
                args[a] = join(args[a], v) if a in args else v
    return values
