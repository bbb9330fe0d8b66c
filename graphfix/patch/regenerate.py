"""Strategy 1 (architecture.md): regenerate a gradient with ``tf.gradients``.

The local patch (:mod:`graphfix.patch.gradients`) cannot rebuild the gradient of an
op inside a v1 ``tf.while_loop`` body: there the gradient is a second while
loop fed by stacks that the forward loop pushes intermediate values onto, and
the gradient of one op is spread over both loops.  When the model is a
MetaGraphDef or SavedModel it still carries the loops' ``WhileContextDef``
protos (collection ``while_context``), and TensorFlow can differentiate the
imported graph again.  For a hazard inside a loop :func:`replace_region_in_loop`

1. guards the forward region (``where`` guard, constants pinned to the frame)
   on a copy of the IR and adds the new nodes to the loop's context values;
2. imports that graph with its collections into a fresh ``tf.Graph``
   (``import_scoped_meta_graph``: the contexts are restored, no Saver added);
3. calls ``tf.gradients(loss, variables)`` again for every gradient prefix
   whose old scopes touch the region — same seed (``grad_ys``), gating and
   colocation, under a temporary prefix — so each old gradient tensor has a
   new counterpart with the same name below the prefix;
4. exports, keeps the new nodes, points every live consumer of an old
   gradient tensor (``Apply*`` ops, clipping, summaries) at its counterpart,
   drops the old gradient nodes and whatever only they used (the old
   local-patch nodes, the old stack pushes and counters), then gives the new
   nodes the old prefix, so node names are kept;
5. keeps the ``while_context``/``cond_context`` collections consistent
   (values of dropped nodes removed, new ones added, names renamed).

TensorFlow itself keeps only *forward* loops in the ``while_context``
collection (a gradient loop's context is not exported by
``export_meta_graph`` either), so the regenerated gradient loop gets no entry
there, exactly like a graph TensorFlow wrote.

If any step fails, the IR is left untouched and the finding stays unfixed
with a note (:class:`~graphfix.patch.gradients.FixError`).  A bare GraphDef has no
contexts: TensorFlow cannot differentiate its loops, so there the note says
to pass the ``.meta``/SavedModel.
"""
from __future__ import annotations

from graphfix.analysis import Facts
from graphfix.analysis.gradpath import gated
from graphfix.core import tfimport
from graphfix.core.errors import FixError, GraphfixError
from graphfix.core.ir import GraphIR, parse_input, without_nodes
from graphfix.core.optypes import VARIABLE_OPS
from graphfix.core.tfimport import tf as _tf
from graphfix.patch.gradients import patch_region
from graphfix.patch.scratch import output_types, v1_control_flow

CONTEXT_KEYS = ("while_context", "cond_context")
_TMP = "_graphfix_regen"


# ------------------------------------------------------------ context protos

def _proto_cls(key):
    control_flow_pb2 = tfimport.protos().control_flow_pb2

    return {"while_context": control_flow_pb2.WhileContextDef, "cond_context": control_flow_pb2.CondContextDef}[key]


def load_contexts(collection_def) -> dict[str, list]:
    """The parsed context protos of the ``while_context``/``cond_context`` collections."""
    res = {}
    for key in CONTEXT_KEYS:
        if key in collection_def:
            protos = []
            for raw in collection_def[key].bytes_list.value:
                p = _proto_cls(key)()
                p.ParseFromString(raw)
                protos.append(p)
            res[key] = protos
    return res


def store_contexts(collection_def, contexts: dict[str, list]) -> None:
    for key, protos in contexts.items():
        col = collection_def[key]
        del col.bytes_list.value[:]
        col.bytes_list.value.extend(p.SerializeToString(deterministic=True) for p in protos)


def has_contexts(meta) -> bool:
    return meta is not None and any(k in meta.collection_def and meta.collection_def[k].bytes_list.value
                                    for k in CONTEXT_KEYS)


def _nested(ctx):
    for n in ctx.nested_contexts:
        inner = n.cond_ctxt if n.HasField("cond_ctxt") else n.while_ctxt if n.HasField("while_ctxt") else None
        if inner is not None:
            yield inner
            yield from _nested(inner)


def _all(contexts):
    for protos in contexts.values():
        for p in protos:
            yield p
            yield from _nested(p)


_NAME_FIELDS = ("context_name", "pivot_name", "pivot_for_pred_name", "pivot_for_body_name", "pred_name",
                "maximum_iterations_name")


def _node(t: str) -> str:
    return parse_input(t)[0]


def prune_contexts(contexts, exists) -> dict[str, list]:
    """Drop values naming missing nodes, and whole contexts whose pivot is gone."""
    out = {}
    for key, protos in contexts.items():
        kept = []
        for p in protos:
            if p.pivot_name and not exists(_node(p.pivot_name)):
                continue
            for c in [p, *_nested(p)]:
                vals = [v for v in c.values_def.values if exists(_node(v))]
                if len(vals) != len(c.values_def.values):
                    del c.values_def.values[:]
                    c.values_def.values.extend(vals)
                for k in list(c.values_def.external_values):
                    if not exists(_node(k)) or not exists(_node(c.values_def.external_values[k])):
                        del c.values_def.external_values[k]
                if hasattr(c, "loop_exit_names"):
                    for field in ("loop_exit_names", "loop_enter_names"):
                        names = [v for v in getattr(c, field) if exists(_node(v))]
                        del getattr(c, field)[:]
                        getattr(c, field).extend(names)
            kept.append(p)
        out[key] = kept
    return out


def rename_contexts(contexts, rename) -> None:
    """Apply ``rename(str) -> str`` to every name in the protos (in place)."""
    for c in _all(contexts):
        for f in _NAME_FIELDS:
            if hasattr(c, f) and getattr(c, f):
                setattr(c, f, rename(getattr(c, f)))
        if hasattr(c, "loop_exit_names"):
            for field in ("loop_exit_names", "loop_enter_names"):
                names = [rename(v) for v in getattr(c, field)]
                del getattr(c, field)[:]
                getattr(c, field).extend(names)
        vals = []
        for v in c.values_def.values:
            v = rename(v)
            if v not in vals:
                vals.append(v)
        del c.values_def.values[:]
        c.values_def.values.extend(vals)
        ext = {rename(k): rename(v) for k, v in c.values_def.external_values.items()}
        c.values_def.external_values.clear()
        c.values_def.external_values.update(ext)


def add_new_nodes(contexts, ir, new_nodes) -> None:
    """Put each new node into the contexts of the nearest existing node it
    reads (not through an ``Exit``): a guard built inside a loop body joins
    the loop's context, as if ``tf.while_loop`` had built it."""
    where: dict[str, list] = {}
    for c in _all(contexts):
        external = set(c.values_def.external_values)
        for v in c.values_def.values:
            if v not in external:  # an outside tensor the loop reads through an Enter
                where.setdefault(_node(v), []).append(c)
    new = set(new_nodes)
    order = [n for n in ir.topo_order() if n in new]
    for n in order:
        homes = None
        seen, stack = set(), [n]
        while stack and homes is None:
            cur = stack.pop(0)
            for s in ir.node(cur).input:
                src = parse_input(s)[0]
                if src in seen or src not in ir:
                    continue
                seen.add(src)
                if ir.op(src) in ("Exit", "RefExit"):
                    continue
                if src in where:
                    homes = where[src]
                    break
                if src in new:
                    stack.append(src)
        if not homes:
            continue
        try:
            k = len(output_types(ir.node(n)))
        except GraphfixError:
            k = 1
        for c in homes:
            have = set(c.values_def.values)
            for i in range(k):
                t = f"{n}:{i}"
                if t not in have:
                    c.values_def.values.append(t)
        where[n] = homes


def sync_meta(meta, ir, original_names) -> None:
    """Make ``meta``'s context collections match the rewritten graph ``ir``:
    regenerated contexts if a loop gradient was regenerated, new nodes inside
    loops added, dropped nodes removed.  In place; a no-op without contexts."""
    base = ir.regen_contexts
    if base is None:
        if not has_contexts(meta):
            return
        base = load_contexts(meta.collection_def)
    names = set(ir.names())
    contexts = prune_contexts(_copy(base), names.__contains__)
    regenerated = ir.regen_names
    add_new_nodes(contexts, ir, [n for n in ir.names() if n not in original_names and n not in regenerated])
    store_contexts(meta.collection_def, contexts)


# ------------------------------------------------------------ regeneration

def replace_region_in_loop(ir, facts, *, code, anchor, region, output, build) -> list[str]:
    """:func:`graphfix.patch.region.replace_region` for a region inside a while
    loop of a training graph: forward guard + regenerated gradients."""
    meta = ir.meta_graph
    if not has_contexts(meta) and ir.regen_contexts is None:
        raise FixError("gradient patching inside a while-loop frame needs the loop's WhileContext to "
                         "regenerate the gradient: rewrite the .meta MetaGraphDef or the SavedModel (a bare "
                         "GraphDef does not carry it)")
    try:
        return _regenerate(ir, facts, meta, code=code, anchor=anchor, region=region, output=output, build=build)
    except GraphfixError:
        raise
    except Exception as e:  # noqa: BLE001 — TensorFlow raises many kinds; the finding keeps a note
        if type(e).__name__ == "FixError":
            raise
        msg = " ".join(str(e).split())[:300] or type(e).__name__
        raise FixError(f"cannot regenerate the gradient of the while loop: {type(e).__name__}: {msg}") from None


def _regenerate(ir, facts, meta, *, code, anchor, region, output, build) -> list[str]:
    """Guard the region on a copy of the graph, differentiate the losses again
    with ``tf.gradients`` on it (imported with the while/cond contexts), and
    make the result the graph ``ir`` holds; returns the names added."""
    scopes = facts.grad_scopes
    prefixes = [gp for gp in scopes.prefixes if any(scopes.scope(gp, r) for r in region)]
    seeds = {}
    for gp, loss in facts.seeds:
        seeds.setdefault(gp, loss)
    missing = [gp for gp in prefixes if gp not in seeds]
    if missing:
        raise FixError(f"cannot find the loss of gradient prefix {missing[0]!r}")
    contexts = ir.regen_contexts or load_contexts(meta.collection_def)
    # 1. forward guard on a copy (no gradient scopes: nothing patched locally)
    work = GraphIR(ir.to_graph_def(), copy=True)
    wf = Facts(work, facts.losses, no_gradients=True)
    before = set(ir.names())
    added = patch_region(work, wf, code=code, anchor=anchor, region=region, output=output, build=build)
    contexts = prune_contexts(_copy(contexts), work.__contains__)
    add_new_nodes(contexts, work, [n for n in work.names() if n not in before])
    # 2. import with the contexts, differentiate again
    exported, renames = _differentiate(meta, work, contexts, prefixes, seeds, scopes.members)
    # 3. splice: new nodes in, old gradient (and what only it used) out
    final, renamed_new = _splice_regenerated(work, exported, renames)
    new_contexts = _regenerated_contexts(exported, renames, final)
    # 4. commit: the IR object the pass manager holds becomes the result
    ir.replace_graph(final, regen_contexts=new_contexts, regen_names=[n.name for n in renamed_new])
    return [a for a in added if a in ir]


def _differentiate(meta, work, contexts, prefixes, seeds, members):
    """Import ``work`` with ``contexts`` and call ``tf.gradients`` again for each
    gradient prefix, as it was first called, under a temporary prefix:
    ``(exported MetaGraphDef, temporary prefix -> old prefix)``."""
    meta_graph_lib = tfimport.module("tensorflow.python.framework.meta_graph")
    tf = _tf()
    imp = type(meta)()
    imp.CopyFrom(meta)
    imp.graph_def.CopyFrom(work.to_graph_def())
    for key in CONTEXT_KEYS:
        if key in imp.collection_def:
            del imp.collection_def[key]
    store_contexts(imp.collection_def, contexts)
    for key in list(imp.collection_def):
        if key not in CONTEXT_KEYS:
            del imp.collection_def[key]
    imp.ClearField("saver_def")
    g = tf.Graph()
    with g.as_default(), v1_control_flow():
        meta_graph_lib.import_scoped_meta_graph(imp)
        trainable = _trainable(meta, work)
        renames: dict[str, str] = {}
        for gp in prefixes:
            new_prefix = gp + _TMP
            if g.unique_name(new_prefix, mark_as_used=False) != new_prefix:
                raise FixError(f"name {new_prefix!r} is taken")
            loss = g.get_tensor_by_name(seeds[gp])
            xs, gy, gate, coloc = gradient_call(work, g, gp, seeds[gp], members, trainable)
            tf.compat.v1.gradients([loss], xs, grad_ys=gy, name=new_prefix, gate_gradients=gate,
                                   colocate_gradients_with_ops=coloc)
            renames[new_prefix] = gp
        exported = meta_graph_lib.export_scoped_meta_graph(graph=g)[0]
    return exported, renames


def _splice_regenerated(work, exported, renames):
    """``work`` with the regenerated gradient in place of the old one (and of
    what only the old one used): ``(GraphDef, the regenerated NodeDefs)``."""
    old_names = set(work.names())
    new_nodes = [n for n in exported.graph_def.node if n.name not in old_names]
    stray = [n.name for n in new_nodes if not any(n.name.startswith(p + "/") for p in renames)]
    if stray:
        raise FixError(f"tf.gradients added nodes outside its prefix ({stray[0]})")
    changed_inputs = {n.name: list(n.input) for n in exported.graph_def.node
                      if n.name in old_names and list(n.input) != list(work.node(n.name).input)}
    gd = work.to_graph_def()
    for n in gd.node:
        if n.name in changed_inputs:  # an existing op TensorFlow gave a new (control) input
            del n.input[:]
            n.input.extend(changed_inputs[n.name])
    gd.node.extend(new_nodes)
    full = GraphIR(gd, copy=False)
    old_grad, dead = old_gradient(full, renames)

    final = without_nodes(gd)
    renamed_new = [_renamed(n, renames) for n in new_nodes]
    # Devices: a regenerated node runs where its old namesake ran (the
    # optimizer's device scope), a genuinely new one where most old ones did.
    old_dev = {n: full.node(n).device for n in old_grad}
    common = max(sorted(set(old_dev.values())), key=list(old_dev.values()).count, default="")
    for n in renamed_new:
        if not n.device:
            n.device = old_dev.get(n.name, common)
    final.node.extend(in_place_of(full, dead, renamed_new, keep=lambda n: n in old_names or n in dead))
    return final, renamed_new


def _regenerated_contexts(exported, renames, final):
    """The while/cond contexts of the exported graph, under the old gradient
    prefixes and pruned to the nodes ``final`` keeps."""
    def rename(s: str) -> str:
        for new_p, old_p in renames.items():
            if s.startswith(new_p + "/") or s.startswith("^" + new_p + "/"):
                return s.replace(new_p + "/", old_p + "/", 1)
        return s

    new_contexts = load_contexts(exported.collection_def)
    rename_contexts(new_contexts, rename)
    return prune_contexts(new_contexts, GraphIR(final, copy=False).__contains__)


def _copy(contexts):
    out = {}
    for key, protos in contexts.items():
        out[key] = []
        for p in protos:
            q = type(p)()
            q.CopyFrom(p)
            out[key].append(q)
    return out


def renamed_ref(s: str, renames: dict[str, str]) -> str:
    """A node name or input (``^`` kept) moved from a new gradient prefix to the
    old one it replaces (``renames``: new prefix -> old prefix)."""
    ctrl = s.startswith("^")
    body = s[1:] if ctrl else s
    for new_p, old_p in renames.items():
        if body.startswith(new_p + "/"):
            body = old_p + body[len(new_p):]
            break
    return ("^" if ctrl else "") + body


def _renamed(nodedef, renames):
    n = type(nodedef)()
    n.CopyFrom(nodedef)

    def rn(s):
        return renamed_ref(s, renames)

    n.name = rn(n.name)
    refs = [rn(s) for s in n.input]
    del n.input[:]
    n.input.extend(refs)
    if "_class" in n.attr:
        locs = []
        for loc in n.attr["_class"].list.s:
            s = loc.decode()
            locs.append(("loc:@" + rn(s[5:])).encode() if s.startswith("loc:@") else loc)
        del n.attr["_class"].list.s[:]
        n.attr["_class"].list.s.extend(locs)
    if "frame_name" in n.attr:
        n.attr["frame_name"].s = rn(n.attr["frame_name"].s.decode()).encode()
    return n


def in_place_of(full, dead: set[str], new_nodes, keep=None, fix=None) -> list:
    """The NodeDefs of ``full`` in order, without the ``dead`` ones (and those
    ``keep`` rejects), with ``new_nodes`` standing where the first dead node
    stood (at the end when none died); ``fix`` may rewrite each node kept."""
    first_old = next((n for n in full.names() if n in dead), None)
    out, placed = [], False
    for name in full.names():
        if keep is not None and not keep(name):
            continue
        if name == first_old and not placed:
            out.extend(new_nodes)
            placed = True
        if name in dead:
            continue
        out.append(full.node(name) if fix is None else fix(full.node(name)))
    if not placed:
        out.extend(new_nodes)
    return out


def gradient_call(work, g, gp: str, loss: str, members, trainable):
    """How the old ``tf.gradients`` call under prefix ``gp`` was made, to make
    it again in scratch graph ``g``: (xs — the variables the loss depends on,
    the trainable ones when known —, grad_ys or None, gate_gradients,
    colocate_gradients_with_ops)."""
    anc = work.ancestors(loss.rsplit(":", 1)[0])
    xs_names = [n for n in work.names() if n in anc and work.op(n) in VARIABLE_OPS]
    if trainable:
        xs_names = [n for n in xs_names if n in trainable] or xs_names
    xs = [g.get_tensor_by_name(n + ":0") for n in xs_names]
    grad_ys = _grad_ys(work, gp)
    gy = [g.get_tensor_by_name(grad_ys)] if grad_ys else None
    gate = gated(n for n in members if n.startswith(gp + "/"))
    coloc = any(_colocated_outside(work, n, gp) for n in members if n.startswith(gp + "/"))
    return xs, gy, gate, coloc


def old_gradient(full, renames: dict[str, str]) -> tuple[set[str], set[str]]:
    """The old gradient nodes (under the prefixes ``renames`` maps new -> old),
    and those plus what only they use, in ``full`` (the graph holding old and regenerated
    gradients side by side).  Every live reader of an old gradient node
    (Apply*, clipping, summaries) will read its counterpart, which takes the
    old name: a node without one is a FixError."""
    prefix_of = {}
    for gp_new, gp in renames.items():
        for n in full.names():
            if n.startswith(gp + "/"):
                prefix_of[n] = (gp, gp_new)
    dead = _only_used_by(full, set(prefix_of))
    for n in sorted(prefix_of, key=full.order.__getitem__):
        gp, gp_new = prefix_of[n]
        for dst in [c for c, _ in full.consumers(n)] + full.control_consumers(n):
            if dst not in dead and gp_new + n[len(gp):] not in full:
                raise FixError(f"the regenerated gradient has no counterpart of {n} (read by {dst})")
    return set(prefix_of), dead


def _only_used_by(ir, start: set[str]) -> set[str]:
    """``start`` plus every node all of whose consumers are in the set
    (what only the old gradient used).  Nodes nothing consumes stay (sinks)."""
    dead = set(start)
    todo = [p for n in start for p in ir.predecessors(n)]
    while todo:
        n = todo.pop()
        if n in dead:
            continue
        succ = ir.successors(n)
        if succ and succ <= dead:
            dead.add(n)
            todo.extend(ir.predecessors(n))
    return dead


def _trainable(meta, ir) -> set[str]:
    if meta is None or "trainable_variables" not in meta.collection_def:
        return set()
    variable_pb2 = tfimport.protos().variable_pb2

    res = set()
    for raw in meta.collection_def["trainable_variables"].bytes_list.value:
        v = variable_pb2.VariableDef()
        v.ParseFromString(raw)
        res.add(_node(v.variable_name))
    return {n for n in res if n in ir}


def _grad_ys(ir, gp: str) -> str | None:
    """The user's ``grad_ys`` tensor of a prefix seeded with ``<gp>/grad_ys_N``."""
    for n in ir.names():
        if n.startswith(gp + "/grad_ys_") and n[len(gp) + 9:].isdigit() and ir.op(n) == "Identity":
            src, out = ir.input(n, 0)
            return f"{src}:{out}"
    return None


def _colocated_outside(ir, name: str, gp: str) -> bool:
    cls = ir.attr(name, "_class")
    if cls is None:
        return False
    return any(s.startswith(b"loc:@") and not s[5:].decode().startswith(gp + "/") for s in cls.list.s)
