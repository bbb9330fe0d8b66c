"""What a rule reports about one node: a :class:`Finding`.  Every layer uses
it (the rules make them, the pass manager marks them fixed, the renderers
print them), so it lives in the core, beside the model and the IR."""
from __future__ import annotations

import dataclasses


def short(s: str, limit: int = 80, keep_end: bool = False) -> str:
    """``s`` cut to ``limit`` characters with an ellipsis (for a path, its end is kept)."""
    s = str(s)
    if len(s) <= limit:
        return s
    return "…" + s[-(limit - 1):] if keep_end else s[:limit - 1] + "…"


@dataclasses.dataclass(repr=False)
class Finding:
    code: str
    rule: str
    node: str
    op: str
    message: str
    safety: str = "safe"
    guard: str | None = None
    fixable: bool = True
    fixed: bool = False
    new_nodes: list[str] = dataclasses.field(default_factory=list)
    note: str = ""  # why a fix was not applied
    data: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        status = "fixed" if self.fixed else "not fixed" if self.note else "found"
        note = f", note: {short(self.note, 60)!r}" if self.note else ""
        extra = f", {len(self.new_nodes)} new nodes" if self.new_nodes else ""
        return f"<Finding {self.code} {short(self.node, 60)!r} ({self.op}) {status}{extra}{note}: " \
               f"{short(self.message, 100)!r}>"

    def to_json(self) -> dict:
        return {"code": self.code, "rule": self.rule, "node": self.node, "op": self.op, "message": self.message,
                "guard": self.guard, "safety": self.safety, "fixed": self.fixed, "new_nodes": list(self.new_nodes),
                **({"note": self.note} if self.note else {})}
