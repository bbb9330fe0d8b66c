"""The numeric abstract interpretation every rule stands on.

One pass over the graph in topological order (demand-driven: a query
evaluates the query's ancestors once, in producer-before-consumer order, so a
whole-graph run and a few queries cost the same per node) computes an
:class:`~graphfix.analysis.absval.AbsVal` for every tensor with the transfer
functions of :mod:`graphfix.analysis.transfer`.

Beyond a plain interval analysis it

* **refines by dominating conditions**: the true output of a ``Switch`` on
  ``size(x) > 0`` sees ``x`` non-empty, and a ``where(c, a, b)`` evaluates
  ``a`` (and the ops computing it from the compared tensor) under ``c`` and
  ``b`` under ``not c`` — so ``where(p > 0, p, 1)`` is positive,
  ``where(size(x) > 0, mean(x), 0)`` is never NaN and
  ``where(x >= 0, -x, x)`` is ``<= 0``;
* keeps **relational facts** for TensorFlow's own stable forms:
  ``x - reduce_max(x)`` is ``<= 0`` and exactly 0 at each slice's max, so
  ``reduce_sum(exp(x - reduce_max(x)))`` is ``>= 1``;
* **widens** at loop heads: a ``Merge`` fed by ``NextIteration`` holds an
  unbounded value (keeping what the loop's entry says about NaN and
  emptiness), so the body is evaluated once;
* runs over the **backward graph** too: gradient ops (``SqrtGrad``,
  ``Reciprocal`` in ``*_grad`` scopes, ``Mul`` of 0 by inf…) are ops like any
  other, so :meth:`Numeric.births` lists where a non-finite value is born
  from finite inputs, forward or backward.
"""
from __future__ import annotations

import dataclasses

from graphfix.analysis.absval import ASSUMED, INF, NO, REACHABLE, TOP, AbsVal, join, semantics
from graphfix.analysis.bodies import function_graph
from graphfix.analysis.consts import const_scalar, const_value
from graphfix.analysis.dtypes import out_dtype
from graphfix.analysis.reach import forget_downstream
from graphfix.analysis.shapes import static_shape
from graphfix.analysis.structure import size_source, strip
from graphfix.analysis.transfer import TRANSFER, unknown
from graphfix.core.errors import GraphfixError
from graphfix.core.ir import GraphIR
from graphfix.core.optypes import is_apply

_CMP = {"Greater": ">", "GreaterEqual": ">=", "Less": "<", "LessEqual": "<=", "Equal": "==", "NotEqual": "!="}
_MIRROR = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}
_NEGATE = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
# Ops whose value is recomputed under a condition on one of their inputs.
_NO_RECOMPUTE = frozenset({"Const", "Placeholder", "PlaceholderWithDefault", "VariableV2", "VarHandleOp",
                           "ReadVariableOp", "Merge", "RefMerge", "Switch", "RefSwitch", "Enter", "NextIteration"})
_REFINE_DEPTH = 3


@dataclasses.dataclass(frozen=True)
class Fact:
    """``tensor rel k`` (``rel`` one of > >= < <= == !=) or ``tensor nonempty``."""

    tensor: tuple
    rel: str
    k: float = 0.0


class Numeric:
    """Abstract values of the tensors of one IR version."""

    def __init__(self, ir):
        self.ir = ir
        self._vals: dict[str, list[AbsVal]] = {}
        self._nouts: dict[str, int] = {}
        self._trained: set[str] | None = None
        self._trained_from: set[str] = set()
        self._back: dict[str, AbsVal] = {}  # loop head (Merge) -> what its NextIteration brings
        self._stable = not ir.has_op("NextIteration", "RefNextIteration")
        self._vn: dict[tuple, int] | None = None  # tensor -> value number modulo the data (see congruent)

    def carry(self, touched: set[str]) -> bool:
        """Keep the values edits that touched only ``touched`` cannot have
        changed: a value is computed from its inputs' values, so the touched
        nodes and what they feed are forgotten (and computed again if asked).
        What a value also reads beyond its inputs is checked: which variables
        an optimizer trains, how many outputs of a node are read.  False
        (nothing kept) in a graph with v1 loops, whose values are a fixpoint
        over the whole graph, or when the trained variables changed."""
        ir = self.ir
        if self._back or not self._stable or any(
                ir.op(n) in ("NextIteration", "RefNextIteration") for n in touched if n in ir):
            return False
        if self._trained is not None and (not touched.isdisjoint(self._trained_from) or any(
                is_apply(ir.op(n)) for n in touched if n in ir)):
            old = self._trained
            self._trained = None
            if self._trained_set() != old:
                return False
        self._vn = None
        vals, nouts = self._vals, self._nouts
        seeds = set(touched)
        for n in touched:
            nouts.pop(n, None)
        for n in touched:  # a new reader of a higher output of an untouched node
            if n in ir:
                for src, out in ir.inputs(n):
                    if src in nouts and out >= nouts[src]:
                        del nouts[src]
                        seeds.add(src)
        forget_downstream(ir, vals, seeds)
        return True

    def _stabilize_loops(self) -> None:
        """v1 while loops: evaluate, then join what each ``NextIteration`` brings
        back into its loop head and evaluate again, until nothing changes (the
        heads are already widened, so only the flags can grow: a few rounds)."""
        self._stable = True  # value() may be called from here on
        heads = [n for n in self.ir.topo_order() if self.op(n) in ("Merge", "RefMerge") and
                 len(self._deps(n)) < len(self.ir.inputs(n))]
        for _ in range(8):
            self._vals = {}
            self.run_all()
            grew = False
            for h in heads:
                back = [self.value(t) for t in self.ir.inputs(h) if t not in self._deps(h)]
                new = join(self._back.get(h), *back) if h in self._back else join(*back)
                if new != self._back.get(h):
                    self._back[h] = new
                    grew = True
            if not grew:
                return

    # ------------------------------------------------------------ queries
    def value(self, t) -> AbsVal:
        """The abstract value of tensor ``t`` = (node, output)."""
        if not self._stable:
            self._stabilize_loops()
        outs = self._vals.get(t[0])
        if outs is None:
            self._evaluate(t[0])
            outs = self._vals[t[0]]
        if t[1] < len(outs):
            return outs[t[1]]
        return outs[0] if self.op(t[0]) in _DATA_SOURCES else TOP

    def run_all(self) -> None:
        """Evaluate every tensor (the whole-graph pass)."""
        if not self._stable:
            self._stabilize_loops()
            return
        for name in self.ir.topo_order():
            if name not in self._vals:
                self._evaluate(name)

    def births(self) -> list[tuple[str, int, str]]:
        """(node, output, "nan"|"inf") where a non-finite value is born from finite inputs."""
        self.run_all()
        res = []
        for name in self.ir.topo_order():
            ins = [self.value(t) for t in self._deps(name)]
            if any(not v.finite for v in ins):
                continue
            for i, v in enumerate(self._vals[name]):
                if v.nan:
                    res.append((name, i, "nan"))
                elif v.inf:
                    res.append((name, i, "inf"))
        return res

    # ------------------------------------------------------------ evaluation
    def _deps(self, name: str) -> list[tuple[str, int]]:
        ins = self.ir.inputs(name)
        if self.op(name) in ("Merge", "RefMerge"):
            return [t for t in ins if self.op(t[0]) not in ("NextIteration", "RefNextIteration")]
        return ins

    def _evaluate(self, root: str) -> None:
        vals = self._vals
        stack = [root]
        while stack:
            name = stack[-1]
            if name in vals:
                stack.pop()
                continue
            pending = [src for src, _ in self._deps(name) if src not in vals]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            vals[name] = self._compute(name, [self.value(t) for t in self._deps(name)])

    def _compute(self, name: str, ins: list[AbsVal]) -> list[AbsVal]:
        op = self.op(name)
        fn = TRANSFER.get(op, unknown)
        try:
            out = fn(self, name, ins)
        except (IndexError, KeyError, ValueError, ZeroDivisionError, OverflowError, TypeError, GraphfixError):
            out = unknown(self, name, ins)  # a malformed node: no facts, never a crash
        return list(out) if isinstance(out, (list, tuple)) else [out]

    # ------------------------------------------------------------ what transfer functions ask
    def op(self, name: str) -> str:
        return self.ir.op(name)

    def dtype(self, name: str, out: int = 0):
        try:
            return out_dtype(self.ir, name, out)
        except GraphfixError:
            return None

    def attr_type(self, name: str, key: str):
        a = self.ir.attr(name, key)
        return a.type if a is not None else None

    def const(self, name: str):
        return const_value(self.ir, name)

    def num_outputs(self, name: str) -> int:
        n = self._nouts.get(name)
        if n is None:
            nd = self.ir.node(name)
            n = 1
            for key in ("num_partitions", "num_split", "num", "N"):
                if key in nd.attr:
                    n = max(n, int(nd.attr[key].i))
                    break
            for key in ("output_types", "component_types", "dtypes", "Tdense", "T"):
                if key in nd.attr and nd.attr[key].WhichOneof("value") == "list":
                    n = max(n, len(nd.attr[key].list.type))
            n = max(n, self.ir.outputs_read(name))
            n = min(n, 1 << 16)
            self._nouts[name] = n
        return n

    def call_outputs(self, name: str, ins: list[AbsVal]) -> list[AbsVal] | None:
        """The outputs of a functional ``If``/``PartitionedCall``: its body (bodies,
        joined) analysed with the arguments the op passes — an ``If``'s
        branches under its predicate and its negation.  None when the body
        cannot be read (the op is then unknown)."""
        nd = self.ir.node(name)
        lib = {f.signature.name: f for f in self.ir.library.function} if self.ir.library is not None else {}
        tensors = self.ir.inputs(name)
        if nd.op in ("If", "StatelessIf"):
            calls = [(nd.attr["then_branch"].func.name, [self.under(t, self.facts(tensors[0], True))
                                                          for t in tensors[1:]]),
                     (nd.attr["else_branch"].func.name, [self.under(t, self.facts(tensors[0], False))
                                                          for t in tensors[1:]])]
        else:
            calls = [(nd.attr["f"].func.name, list(ins))]
        outs = None
        for fn, args in calls:
            fdef = lib.get(fn)
            if fdef is None:
                return None
            gd, rets = function_graph(fdef)
            body = GraphIR(gd, copy=False, arg_values={a.name: v for a, v in zip(fdef.signature.input_arg, args)})
            inner = Numeric(body)
            vals = []
            for r in rets:
                node, _, out = r.rpartition(":")
                vals.append(inner.value((node, int(out))) if node in body else TOP)
            outs = vals if outs is None else [join(a, b) for a, b in zip(outs, vals)]
        return outs

    def argument_value(self, name: str) -> AbsVal | None:
        """A function body analysed on its own: the value its argument ``name``
        has at the call sites (``ir.arg_values``), if known."""
        return self.ir.arg_values.get(name)

    def trained(self, name: str) -> bool:
        """``name`` (a variable, its handle or a read of it) is updated by an optimizer's apply op."""
        if self._trained is None:
            self._trained = self._trained_set()
        if self.op(name) == "ReadVariableOp":
            name = self.ir.input(name, 0)[0]
        return name in self._trained

    def _trained_set(self) -> set[str]:
        """The variables optimizers' apply ops update; ``_trained_from`` keeps
        the nodes it was read from (the apply ops and what their first input
        passes through)."""
        ir = self.ir
        res: set[str] = set()
        seen: set[str] = set()
        for n, op in ir.op_table().items():
            if is_apply(op):
                seen.add(n)
                ins = ir.inputs(n)
                if ins:
                    t = ins[0]
                    while strip(ir, t) != t:
                        seen.add(t[0])
                        t = ir.input(t[0], 0)
                    seen.add(t[0])
                    res.add(t[0])
        self._trained_from = seen
        return res

    def same_input(self, name: str) -> bool:
        ins = self.ir.inputs(name)
        return len(ins) >= 2 and strip(self.ir, ins[0]) == strip(self.ir, ins[1])

    def congruent(self, name: str) -> bool:
        """The two inputs of ``name`` compute the same function of the data:
        the same ops with the same attributes on the same variables and
        constants, differing at most in which fed tensor (or which rows of one
        tensor: gather indices, slice bounds, the outputs of a split) they
        read.  Two embeddings of the same item are then exactly equal
        whenever the data holds that item twice (an anchor fed as its own
        positive, a duplicated row) — not a coincidence."""
        ins = self.ir.inputs(name)
        if len(ins) < 2:
            return False
        vn = self._value_numbers()
        a, b = vn.get(strip(self.ir, ins[0])), vn.get(strip(self.ir, ins[1]))
        return a is not None and a == b

    def _value_numbers(self) -> dict[tuple, int]:
        """Value numbering (hash-consing) in one topological pass, with every
        fed tensor one leaf and the index operands of gathers and slices
        ignored; variables, random draws and loop heads are leaves of their own."""
        if self._vn is not None:
            return self._vn
        ir = self.ir
        table: dict[tuple, int] = {}
        vn: dict[tuple, int] = {}

        def num(t):
            n = vn.get(t)
            return n if n is not None else table.setdefault(("node", t), len(table))

        for name in ir.topo_order():
            op = self.op(name)
            ins = ir.inputs(name)
            nd = ir.node(name)
            attrs = tuple(sorted((k, v.SerializeToString(deterministic=True)) for k, v in nd.attr.items()
                                 if not k.startswith("_") and k != "shape"))
            n_out = max(1, ir.outputs_read(name))
            for out in range(n_out):
                t = (name, out)
                if op in _PASS_VN and ins:
                    vn[t] = num(ins[0])
                    continue
                if op in _FED_VN and self._fed(name):
                    key = ("data", attrs)
                elif op in _LEAF_VN or not op:
                    key = ("node", t)
                elif op in _ROWS_VN and ins:
                    key = (op, attrs, num(ins[_ROWS_VN[op]]))
                else:
                    key = (op, attrs, tuple(num(i) for i in ins), out)
                vn[t] = table.setdefault(key, len(table))
        self._vn = vn
        return vn

    def _fed(self, name: str) -> bool:
        """A placeholder is fed data, unless it is a function's argument bound to something else."""
        at_call = self.argument_value(name)
        return at_call is None or (at_call.data and not at_call.learned)

    def _max_of(self, name: str):
        """If ``name`` = ``Sub(a, max(a))``: the Max node."""
        ins = self.ir.inputs(name)
        if len(ins) < 2:
            return None
        b = ins[1]
        while True:
            op = self.op(b[0])
            if op in ("StopGradient", "Identity", "Snapshot", "PreventGradient"):
                b = self.ir.input(b[0], 0)
            elif op in ("Select", "SelectV2") and self._finite_or_zero(b[0]):
                b = self.ir.input(b[0], 1)  # reduce_logsumexp: where(is_finite(m), m, 0)
            else:
                break
        if self.op(b[0]) != "Max":
            return None
        if strip(self.ir, self.ir.input(b[0], 0)) != strip(self.ir, ins[0]):
            return None
        return b[0]

    def _finite_or_zero(self, select: str) -> bool:
        c, a, z = (strip(self.ir, t) for t in self.ir.inputs(select)[:3])
        return self.op(c[0]) == "IsFinite" and strip(self.ir, self.ir.input(c[0], 0)) == a and self.scalar(z) == 0

    def is_max_shift(self, name: str) -> bool:
        return self._max_of(name) is not None

    def max_shift_axes(self, name: str):
        return self._axes(self._max_of(name))

    def _axes(self, reduction: str):
        axes = self.ir.input(reduction, 1)
        v = const_value(self.ir, axes[0])
        if v is not None:
            return ("axes",) + tuple(sorted(int(a) for a in v.reshape(-1)))
        return ("all",) if self.op(axes[0]) == "Range" else ("unknown", reduction)

    def softmax_peak(self, reduction: str) -> float | None:
        """If ``reduction`` is ``reduce_max`` (or ``reduce_sum``, which is no
        smaller) over the class axis of a ``Softmax`` (its last axis): a
        positive lower bound of the result, else None.

        The largest entry of a softmax row is ``exp(0) / sum`` with every
        term of the sum <= 1, so it is >= 1/n over n classes — half that, for
        the rounding of the sum.  With n unknown it is still >= the dtype's
        smallest normal number (n < 2**63); float16 needs n known."""
        ir = self.ir
        x = strip(ir, ir.input(reduction, 0))
        if self.op(x[0]) != "Softmax":
            return None
        shape = static_shape(ir, x)
        axes = self._axes(reduction)
        if axes[0] == "axes":
            last = {-1} | ({len(shape) - 1} if shape else set())
            if not last & set(axes[1:]):
                return None
        elif axes[0] != "all":
            return None
        n = shape[-1] if shape else -1
        if n > 0:
            return 0.5 / n
        dt = self.dtype(reduction)
        return None if dt == 19 else semantics(dt).tiny

    def reduces_axes(self, name: str, axes) -> bool:
        """Does reduction ``name`` reduce (at least) the axes of a max-shift fact?"""
        mine = self._axes(name)
        if mine[0] == "all":
            return True
        return axes[0] == "axes" and mine[0] == "axes" and set(axes[1:]) <= set(mine[1:])

    def keeps_empty(self, name: str) -> bool | None:
        """An empty input leaves the reduction's output empty (axis 0 is not
        reduced): True, False, or None when the axes are not known."""
        keep = self.ir.attr(name, "keep_dims")
        if keep is not None and keep.b:
            return True
        ins = self.ir.inputs(name)
        if len(ins) < 2:
            return False
        axes = ins[1][0]
        if self.op(axes) == "Range":
            start = const_value(self.ir, self.ir.input(axes, 0)[0])
            if start is None or start.size != 1:
                return None
            return int(start.reshape(-1)[0]) != 0
        v = const_value(self.ir, axes)
        if v is None:
            return None
        return 0 not in [int(a) for a in v.reshape(-1)]

    def scalar(self, t) -> float | None:
        """The single value every element of ``t`` has, if known (a constant,
        ``zeros_like``/``ones_like``, ``fill(shape, k)``)."""
        t = strip(self.ir, t)
        op = self.op(t[0])
        if op == "ZerosLike":
            return 0.0
        if op == "OnesLike":
            return 1.0
        if op == "Fill":
            return const_scalar(self.ir, self.ir.input(t[0], 1))
        if op != "Const" or t[1] != 0:
            return None
        v = const_value(self.ir, t[0])
        if v is None or v.size == 0 or v.dtype.kind not in "fiub":
            return None
        first = v.reshape(-1)[0]
        return float(first) if bool((v == first).all()) else None

    def eps_where_zero(self, name: str) -> bool:
        """``name`` is ``x + k * cast(x == 0)`` (or ``where(x == 0, k, 0)``) with x >= 0, k > 0."""
        ins = self.ir.inputs(name)
        if len(ins) != 2:
            return False
        for x, e in (ins, ins[::-1]):
            x = strip(self.ir, x)
            if not self.value(x).nonneg:
                continue
            for f, val in self._indicator_terms(e):
                if f.tensor == x and f.rel == "==" and f.k == 0 and val > 0:
                    return True
        return False

    def _indicator_terms(self, t):
        """(fact, value) when ``t`` is ``value`` where the fact holds and 0 elsewhere."""
        ir = self.ir
        t = strip(ir, t)
        op = self.op(t[0])
        ins = ir.inputs(t[0])
        if op == "Mul" and len(ins) == 2:
            for a, b in (ins, ins[::-1]):
                k = self.scalar(b)
                if k is not None:
                    return [(f, v * k) for f, v in self._indicator_terms(a)]
            return []
        if op == "Cast" and ins and self.dtype(ins[0][0], ins[0][1]) == 10:
            return [(f, 1.0) for f in self.facts(ins[0], True)]
        if op in ("Select", "SelectV2") and len(ins) == 3:
            k, z = self.scalar(ins[1]), self.scalar(ins[2])
            if k is not None and z == 0:
                return [(f, k) for f in self.facts(ins[0], True)]
        return []

    # ------------------------------------------------------------ conditions
    def facts(self, cond, polarity: bool = True) -> list[Fact]:
        """What ``cond`` (a bool tensor) being ``polarity`` says about other tensors."""
        ir = self.ir
        c = strip(ir, cond)
        op = self.op(c[0])
        ins = ir.inputs(c[0])
        if op == "LogicalNot" and ins:
            return self.facts(ins[0], not polarity)
        if op == "LogicalAnd" and polarity and len(ins) == 2:
            return self.facts(ins[0], True) + self.facts(ins[1], True)
        if op == "LogicalOr" and not polarity and len(ins) == 2:
            return self.facts(ins[0], False) + self.facts(ins[1], False)
        if op not in _CMP or len(ins) != 2:
            return []
        rel = _CMP[op]
        a, b = ins
        kb, ka = self.scalar(b), self.scalar(a)
        if kb is not None:
            x, k = a, kb
        elif ka is not None:
            x, k, rel = b, ka, _MIRROR[rel]
        else:
            return []
        if not polarity:
            rel = _NEGATE[rel]
        res = [Fact(strip(ir, x), rel, k)]
        src = size_source(ir, x)
        if src is not None and ((rel == ">" and k >= 0) or (rel == ">=" and k >= 1) or (rel == "!=" and k == 0)):
            res.append(Fact(src, "nonempty"))
        return res

    def under(self, t, facts: list[Fact], depth: int = 0) -> AbsVal:
        """The value of ``t`` where ``facts`` hold."""
        base = self.value(t)
        if not facts:
            return base
        st = strip(self.ir, t)
        refined = base
        for f in facts:
            if f.tensor == st:
                refined = _refine(refined, f)
        if refined is not base or depth >= _REFINE_DEPTH or self.op(t[0]) in _NO_RECOMPUTE:
            return refined
        deps = self._deps(t[0])
        if not deps:
            return base
        ins = [self.under(d, facts, depth + 1) for d in deps]
        if all(a is b for a, b in zip(ins, (self.value(d) for d in deps))):
            return base
        outs = self._compute(t[0], ins)
        return outs[t[1]] if t[1] < len(outs) else base

    def select_branches(self, name: str, ins: list[AbsVal]) -> list[AbsVal]:
        """The two sides of ``where(c, a, b)``, ``a`` under ``c`` and ``b`` under ``not c``."""
        tensors = self.ir.inputs(name)
        if len(tensors) < 3:
            return [TOP]
        c, a, b = tensors[:3]
        va = self._given(a, ins[1], self.facts(c, True))
        vb = self._given(b, ins[2], self.facts(c, False))
        cond = ins[0]
        if cond.lo == cond.hi:  # a constant condition picks one side
            return [va if cond.lo else vb]
        return [va, vb]

    def _given(self, t, v: AbsVal, facts: list[Fact]) -> AbsVal:
        """``t`` (whose value is ``v``, maybe already refined) under ``facts``."""
        if v is self.value(t):
            return self.under(t, facts)
        st = strip(self.ir, t)
        for f in facts:
            if f.tensor == st:
                v = _refine(v, f)
        return v

    def switch_branches(self, name: str, ins: list[AbsVal]) -> list[AbsVal]:
        tensors = self.ir.inputs(name)
        if len(tensors) < 2:
            return [TOP, TOP]
        data, pred = tensors[:2]
        return [self.under(data, self.facts(pred, False)), self.under(data, self.facts(pred, True))]

    def merge_value(self, name: str, ins: list[AbsVal], loop: bool | None = None) -> AbsVal:
        """A Merge's value; at a loop head (or with ``loop``) widened."""
        if loop is None:
            loop = len(ins) < len(self.ir.inputs(name))
        v = join(*ins, self._back.get(name)) if ins else TOP
        if loop:  # widen: the loop may move the value anywhere
            v = dataclasses.replace(v, lo=-INF, hi=INF, zero=max(v.zero, ASSUMED), lo_hit=False, hi_hit=False,
                                    ones=None)
        return v


_DATA_SOURCES = frozenset(op for op, fn in TRANSFER.items() if getattr(fn, "__name__", "") == "data_source")
# Value numbering (Numeric.congruent): ops that pass their input on, fed leaves,
# leaves of their own, and ops that pick rows of one tensor (its index).
_PASS_VN = frozenset({"Identity", "Snapshot", "StopGradient", "PreventGradient", "RefIdentity", "CheckNumerics",
                      "EnsureShape", "Enter", "RefEnter", "Exit", "RefExit"})
_FED_VN = frozenset({"Placeholder", "PlaceholderV2"}) | _DATA_SOURCES
_LEAF_VN = frozenset({"VariableV2", "Variable", "VarHandleOp", "Merge", "RefMerge", "NextIteration",
                      "RefNextIteration", "PlaceholderWithDefault", "RandomUniform", "RandomStandardNormal",
                      "TruncatedNormal", "RandomUniformInt", "Multinomial", "RandomShuffle", "RandomGamma",
                      "RandomPoisson", "RandomPoissonV2", "ParameterizedTruncatedNormal"})
_ROWS_VN = {"Gather": 0, "GatherV2": 0, "GatherNd": 0, "ResourceGather": 0, "Slice": 0, "StridedSlice": 0,
            "Split": 1, "SplitV": 0, "Unpack": 0}


def _refine(v: AbsVal, f: Fact) -> AbsVal:
    """``v`` restricted to the elements where ``f`` holds."""
    if f.rel == "nonempty":
        return dataclasses.replace(v, empty=False)
    lo, hi, zero, k = v.lo, v.hi, v.zero, f.k
    if f.rel in (">", ">="):
        lo = max(lo, k)
        if k > 0 or (k == 0 and f.rel == ">"):
            zero = NO
    elif f.rel in ("<", "<="):
        hi = min(hi, k)
        if k < 0 or (k == 0 and f.rel == "<"):
            zero = NO
    elif f.rel == "==":
        lo = hi = k
        zero = REACHABLE if k == 0 else NO
    elif f.rel == "!=" and k == 0:
        zero = NO
    if lo > hi:  # the condition never holds: nothing of v is chosen
        lo, hi = k, k
    return dataclasses.replace(v, lo=lo, hi=hi, zero=zero if lo <= 0 <= hi else NO, nan=False,
                               inf=v.inf and (lo == -INF or hi == INF),
                               lo_hit=v.lo_hit and lo == v.lo, hi_hit=v.hi_hit and hi == v.hi)
