"""Findings and their renderings: text, JSON (and SARIF via graphfix.sarif)."""
from __future__ import annotations

import dataclasses
import json


@dataclasses.dataclass
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

    def to_json(self) -> dict:
        return {"code": self.code, "rule": self.rule, "node": self.node, "op": self.op, "message": self.message,
                "guard": self.guard, "safety": self.safety, "fixed": self.fixed, "new_nodes": list(self.new_nodes),
                **({"note": self.note} if self.note else {})}


@dataclasses.dataclass
class Report:
    input: str
    format: str
    nodes: int
    losses: list[str]
    findings: list[Finding]
    timing_ms: dict[str, float]
    version: str = ""
    output: str | None = None
    nodes_out: int | None = None
    dropped: list[str] = dataclasses.field(default_factory=list)  # what a --to conversion left out
    verify: dict | None = None  # rewrite --verify: {"ok": bool, "failed": [which check failed, ...]}

    @property
    def verify_failed(self) -> bool:
        return self.verify is not None and not self.verify["ok"]

    @property
    def found(self) -> int:
        return len(self.findings)

    @property
    def fixed(self) -> int:
        return sum(f.fixed for f in self.findings)

    @property
    def remaining(self) -> int:
        return self.found - self.fixed

    def to_json(self) -> dict:
        from graphfix import __version__

        return {"tool": "graphfix", "version": __version__, "input": self.input, "format": self.format,
                "nodes": self.nodes, "losses": list(self.losses),
                "findings": [f.to_json() for f in self.findings],
                "summary": {"found": self.found, "fixed": self.fixed, "remaining": self.remaining},
                "timing_ms": {k: round(v, 3) for k, v in self.timing_ms.items()},
                **({"output": self.output, "nodes_out": self.nodes_out} if self.output else {}),
                **({"dropped": list(self.dropped)} if self.dropped else {}),
                **({"verify": self.verify} if self.verify is not None else {})}


def render_text(report: Report, mode: str = "check") -> str:
    lines = []
    for f in report.findings:
        tried = mode == "rewrite" and bool(f.note)  # a fix was attempted (or checked) and does not hold
        status = "[fixed]" if f.fixed else "[not fixed]" if tried else "[unsafe fix available]" if (
            f.fixable and f.safety == "unsafe") else "[not fixed]" if mode == "rewrite" else "[*]" if f.fixable else ""
        guard = f" (guard: {f.guard})" if f.fixed and f.guard else ""
        note = f": {f.note}" if f.note and not f.fixed and mode == "rewrite" else ""
        lines.append(f"{report.input}:{f.node}: {f.code} {f.message}{guard} {status}{note}".rstrip())
    if not report.findings:
        lines.append(f"{report.input}: clean ({report.nodes} nodes, no hazards found)")
    else:
        hidden = sum(1 for f in report.findings if not f.fixed and f.fixable and f.safety == "unsafe" and not f.note)
        summary = f"Found {report.found} hazard{'s' if report.found != 1 else ''}"
        if mode == "rewrite":
            summary += f" ({report.fixed} fixed, {report.remaining} remaining)."
        else:
            fixable = sum(1 for f in report.findings if f.fixable and f.safety == "safe")
            summary += f" ({fixable} fixable with `graphfix rewrite`)."
        if hidden:
            summary += f" {hidden} hidden fix{'es' if hidden != 1 else ''} can be enabled with --unsafe-fixes."
        lines.append(summary)
    if report.dropped:
        lines.append(f"{report.output}: converted; dropped {'; '.join(report.dropped)}.")
    if report.verify is not None:
        lines.append("verify: OK" if report.verify["ok"] else "verify: FAILED: " + "; ".join(report.verify["failed"]))
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=False) + "\n"


def render(report: Report, fmt: str = "text", mode: str = "check") -> str:
    """``report`` in ``fmt``: text, json, sarif (graphfix.sarif) or github (graphfix.github)."""
    if fmt == "json":
        return render_json(report)
    if fmt == "sarif":
        from graphfix.sarif import render_sarif

        return render_sarif([report], mode)
    if fmt == "github":
        from graphfix.github import render_github

        return render_github([report], mode)
    return render_text(report, mode)
