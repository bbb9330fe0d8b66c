"""Feeds for ``graphfix verify``: the placeholders of a graph, random *normal*
feeds for them, ``.npz`` feed files, and *trigger* candidates derived from the
findings (the inputs that make a hazard fire).

Everything here reads the GraphDef protobuf only; nothing runs TensorFlow.
"""
from __future__ import annotations

import dataclasses
import os
import zlib

import numpy as np

from graphfix.core.errors import GraphfixError
from graphfix.core.ir import split_tensor, tensor_name
from graphfix.core.tfimport import protos, tf

UNKNOWN_DIM = 4          # size given to a dimension of unknown size
SATURATED = 200.0        # far in the flat tails of sigmoid / softmax / exp

# DataType enum -> numpy dtype (the ones a placeholder can sensibly be fed with).
_NP = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 7: object,
       9: np.int64, 10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
_FLOATS = (1, 2, 19, 14)  # float, double, half, bfloat16
_INTS = (3, 4, 5, 6, 9, 17, 22, 23)
_BOOL = 10
_STRING = 7


@dataclasses.dataclass
class Placeholder:
    name: str            # tensor name, "x:0"
    dtype: int           # DataType enum
    shape: list | None   # dims (-1 unknown), None = unknown rank

    @property
    def kind(self) -> str:
        if self.dtype in _FLOATS:
            return "float"
        if self.dtype in _INTS:
            return "int"
        if self.dtype == _BOOL:
            return "bool"
        if self.dtype == _STRING:
            return "string"
        return "other"

    def concrete_shape(self) -> tuple[int, ...]:
        if self.shape is None:  # unknown rank: mostly a hyperparameter fed as a Python number
            return ()           # (keep_prob, learning_rate); a scalar also broadcasts against anything
        return tuple(UNKNOWN_DIM if d < 0 else d for d in self.shape)

    def np_dtype(self):
        if self.dtype == 14:  # bfloat16: fed as float32 is refused; use the TF type
            return tf().bfloat16.as_numpy_dtype
        return _NP.get(self.dtype)

    def describe(self) -> str:
        dt = protos().types_pb2.DataType.Name(self.dtype).replace("DT_", "").lower()
        dims = "?" if self.shape is None else ",".join("?" if d < 0 else str(d) for d in self.shape)
        return f"{self.name} {dt}[{dims}]"


def placeholders(graph_def) -> list[Placeholder]:
    """Every ``Placeholder`` of the graph (``PlaceholderWithDefault`` keeps its default)."""
    res = []
    for n in graph_def.node:
        if n.op != "Placeholder":
            continue
        dtype = n.attr["dtype"].type if "dtype" in n.attr else 1
        shape = None
        if "shape" in n.attr and not n.attr["shape"].shape.unknown_rank:
            shape = [d.size for d in n.attr["shape"].shape.dim]
        inferred = None
        if "_output_shapes" in n.attr and n.attr["_output_shapes"].list.shape:
            s = n.attr["_output_shapes"].list.shape[0]
            inferred = None if s.unknown_rank else [d.size for d in s.dim]
        # Up to GraphDef version 21 (TensorFlow <= 1.1) a Placeholder's empty
        # shape attr means "any shape", not a scalar (TensorFlow's own shape
        # function reads it so); the inferred shape, if written, knows better.
        if shape is None or (shape == [] and graph_def.versions.producer <= 21):
            shape = inferred
        res.append(Placeholder(tensor_name(n.name, 0), dtype, shape))
    return res


# How a placeholder of each kind may be drawn for a *normal* feed, in the
# order tried.  The first plan gives every placeholder its kind's first
# strategy; when the original graph is not finite (or fails) on it, verify
# tries other strategies one placeholder at a time, then for all of a kind
# (see :func:`normal_plans`).  Integers: "1-2" keeps lengths, counts and
# labels > 0 non-zero; "cycle N" covers ids 0..N-1 (every class / partition
# / task present); floats: "positive" for rates, probabilities, float masks.
STRATEGIES = {
    "float": ("normal", "positive", "ones"),
    "int": ("1-2", "cycle 2", "cycle 3", "cycle 4", "ones", "zeros"),
    "bool": ("random", "all-true"),
    "string": ("fixed",),
}


def draw(p: Placeholder, seed: int, strategy: str) -> np.ndarray:
    """One seeded value for placeholder ``p`` drawn with ``strategy``."""
    rs = np.random.RandomState((seed * 7919 + zlib.crc32(p.name.encode())) & 0x7FFFFFFF)
    shape = p.concrete_shape()
    size = int(np.prod(shape)) if shape else 1
    if p.kind == "float":
        if strategy == "normal":
            # Scalar floats are rates, keep probabilities, scales: positive.
            v = rs.uniform(0.5, 1.0, size=shape) if shape == () else rs.randn(*shape)
        elif strategy == "positive":
            v = rs.uniform(0.1, 1.0, size=shape)
        else:
            v = np.ones(shape)
        return np.asarray(v).astype(p.np_dtype())
    if p.kind == "int":
        if strategy == "1-2":
            v = rs.randint(1, 3, size=shape)
        elif strategy.startswith("cycle"):
            n = int(strategy.split()[1])
            v = (np.arange(size) % n).reshape(shape)
        elif strategy == "ones":
            v = np.ones(shape)
        else:
            v = np.zeros(shape)
        return np.asarray(v).astype(p.np_dtype())
    if p.kind == "bool":
        if strategy == "all-true" or shape == ():
            return np.ones(shape, np.bool_)
        v = rs.rand(*shape) > 0.5
        if v.size and not v.any():
            v.reshape(-1)[rs.randint(v.size)] = True
        return v
    if p.kind == "string":
        return np.full(shape, b"graphfix", dtype=object)
    raise GraphfixError(f"cannot make a feed for placeholder {p.describe()}; pass --feeds FILE.npz")


def normal_feed(phs: list[Placeholder], seed: int, plan: dict | None = None) -> dict[str, np.ndarray]:
    """Seeded random feed; ``plan`` maps placeholder names to a strategy (default: the kind's first)."""
    plan = plan or {}
    return {p.name: draw(p, seed, plan.get(p.name) or STRATEGIES.get(p.kind, ("",))[0]) for p in phs}


def normal_plans(phs: list[Placeholder], first: dict | None = None, limit: int = 48):
    """Plans to try, in order: ``first`` (what worked for the previous seed),
    the default, one placeholder changed at a time, then all placeholders of
    a kind on the same strategy."""
    plans = [dict(first or {}), {}]
    for p in phs:
        for st in STRATEGIES.get(p.kind, ())[1:]:
            plans.append({p.name: st})
    for kind, sts in STRATEGIES.items():
        members = [p.name for p in phs if p.kind == kind]
        if len(members) > 1:
            for st in sts[1:]:
                plans.append({n: st for n in members})
    seen, out = [], []
    for pl in plans:
        if pl not in seen:
            seen.append(pl)
            out.append(pl)
    return out[:limit]


def describe_plan(plan: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(plan.items()))


def load_feeds(path, phs: list[Placeholder]) -> dict[str, np.ndarray]:
    """Feeds from an ``.npz`` file (keys: placeholder names, with or without ``:0``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GraphfixError(f"{path}: no such feeds file")
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {k: data[k] for k in data.files}
    except Exception as e:  # zipfile / pickle / format errors
        raise GraphfixError(f"{path}: not a NumPy .npz feeds file: {e}") from None
    by_name = {p.name: p for p in phs}
    feed = {}
    for key, value in raw.items():
        node, out = split_tensor(key)
        name = tensor_name(node, out)
        if name not in by_name:
            raise GraphfixError(f"{path}: {key!r} is not a placeholder of the original graph")
        p = by_name[name]
        if p.shape is not None and (len(value.shape) != len(p.shape) or
                                    any(d >= 0 and d != v for d, v in zip(p.shape, value.shape))):
            raise GraphfixError(f"{path}: {key!r} has shape {list(value.shape)}, the placeholder "
                                f"{p.describe()} does not accept it")
        feed[name] = value
    return feed


@dataclasses.dataclass
class Candidate:
    name: str                     # e.g. "labels:0=zeros"
    feed: dict[str, np.ndarray]


def _transforms(p: Placeholder):
    if p.kind == "bool":
        return [("all-false", lambda v: np.zeros_like(v, dtype=np.bool_))]
    if p.kind == "int":
        return [("zeros", np.zeros_like), ("-1", lambda v: np.full_like(v, -1))]
    if p.kind == "float":
        if p.concrete_shape() == ():
            # A scalar float is a hyperparameter fed as a number (a keep
            # probability, a learning rate), drawn positive for normal feeds
            # too: 0 or -200 there is outside its domain, not a batch.
            return []
        return [("zeros", np.zeros_like), (f"+{SATURATED:g}", lambda v: np.full_like(v, SATURATED)),
                (f"-{SATURATED:g}", lambda v: np.full_like(v, -SATURATED))]
    return []


def trigger_candidates(base: dict[str, np.ndarray], relevant: list[Placeholder], limit: int = 16) -> list[Candidate]:
    """Feeds that may make a hazard fire: ``base`` with one relevant
    placeholder (then all of them together) set to all-false / zeros / -1 /
    ±200.  The all-together candidates come first: they fire most hazards
    (an empty mask is usually "no label > 0" *and* "no length > 0")."""
    cands: list[Candidate] = []
    kinds = {}
    for p in relevant:
        for label, fn in _transforms(p):
            kinds.setdefault((p.kind, label), []).append((p, fn))
    together = []
    for (kind, label), items in kinds.items():
        if len(items) > 1 or len(relevant) > 1:
            feed = dict(base)
            for p, fn in items:
                feed[p.name] = fn(base[p.name])
            together.append(Candidate(f"every {kind} input={label}", feed))
    # All relevant inputs "empty" at once (bool all-false, ints 0, floats 0).
    if len(relevant) > 1:
        feed = dict(base)
        for p in relevant:
            tr = _transforms(p)
            if tr:
                feed[p.name] = tr[0][1](base[p.name])
        cands.append(Candidate("every input=zeros/all-false", feed))
    cands.extend(together)
    for p in relevant:
        for label, fn in _transforms(p):
            feed = dict(base)
            feed[p.name] = fn(base[p.name])
            cands.append(Candidate(f"{p.name}={label}", feed))
    seen, out = set(), []
    for c in cands:
        key = tuple(sorted((k, v.tobytes() if v.dtype != object else repr(v)) for k, v in c.feed.items()))
        if key in seen:
            continue
        seen.add(key)
        out.append(c)
    return out[:limit]
