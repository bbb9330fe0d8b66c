"""The loaded model: a GraphDef plus the container it came in."""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(repr=False)
class Model:
    """A graph as loaded from disk.

    ``kind`` is ``"graph_def"``, ``"meta_graph"`` or ``"saved_model"``;
    ``text`` says whether the file was protobuf text format.  ``graph_def`` is
    the graph every analysis and rule works on; for a MetaGraphDef or a
    SavedModel it is the embedded one.  ``raw`` keeps the bytes of the input
    file so that an unchanged model is written back byte-identical (None when
    loaded with ``keep_bytes=False``, as ``check`` does: it never writes).
    """

    kind: str
    text: bool
    graph_def: Any
    path: str = ""
    raw: bytes | None = None
    meta_graph: Any = None
    saved_model: Any = None
    meta_index: int = 0
    changed: bool = False

    @property
    def node_count(self) -> int:
        return len(self.graph_def.node)

    def __repr__(self) -> str:
        # Short on purpose: the graph and the raw bytes can be megabytes.
        kind = {"graph_def": "GraphDef", "meta_graph": "MetaGraphDef", "saved_model": "SavedModel"}.get(
            self.kind, self.kind) + (" text" if self.text else "")
        path = self.path if len(self.path) <= 120 else "…" + self.path[-119:]
        extra = ", changed" if self.changed else ""
        return f"<graphfix.Model {kind} {path!r}: {self.node_count} nodes{extra}>"

    @classmethod
    def of(cls, graph) -> "Model":
        """A Model for an in-memory GraphDef or MetaGraphDef (as a build
        pipeline or a test holds it); a Model is returned as it is."""
        if isinstance(graph, cls):
            return graph
        if hasattr(graph, "collection_def"):
            return cls(kind="meta_graph", text=False, graph_def=graph.graph_def, meta_graph=graph)
        return cls(kind="graph_def", text=False, graph_def=graph)

    def with_graph_def(self, graph_def) -> "Model":
        """A copy of this model carrying ``graph_def`` (marked changed)."""
        meta = saved = None
        if self.saved_model is not None:
            saved = type(self.saved_model)()
            saved.CopyFrom(self.saved_model)
            meta = saved.meta_graphs[self.meta_index]
            meta.graph_def.CopyFrom(graph_def)
            graph_def = meta.graph_def
        elif self.meta_graph is not None:
            meta = type(self.meta_graph)()
            meta.CopyFrom(self.meta_graph)
            meta.graph_def.CopyFrom(graph_def)
            graph_def = meta.graph_def
        return dataclasses.replace(
            self, graph_def=graph_def, meta_graph=meta, saved_model=saved, raw=None, changed=True
        )
