"""A model's report and its renderings: text and JSON here; SARIF and GitHub
annotations in graphfix.render.sarif and graphfix.render.github."""
from __future__ import annotations

import dataclasses
import json

from graphfix.core.findings import Finding, short
from graphfix.core.version import __version__
from graphfix.render.github import render_github
from graphfix.render.sarif import render_sarif


@dataclasses.dataclass(repr=False)
class Report:
    """What ``graphfix.check``/``graphfix.rewrite`` found (and fixed) in one model.

    ``render(fmt)`` gives it as the CLI prints it: ``"text"``, ``"json"``,
    ``"sarif"`` or ``"github"``."""

    input: str
    format: str
    nodes: int
    losses: list[str]
    findings: list[Finding]
    timing_ms: dict[str, float]
    version: str = dataclasses.field(default=__version__)
    output: str | None = None
    nodes_out: int | None = None
    dropped: list[str] = dataclasses.field(default_factory=list)  # what a --to conversion left out
    verify: dict | None = None  # rewrite --verify: {"ok": bool, "failed": [which check failed, ...]}
    opt_in: dict[str, int] = dataclasses.field(default_factory=dict)  # code -> findings of unselected opt-in rules

    @property
    def verify_failed(self) -> bool:
        return self.verify is not None and not self.verify["ok"]

    @property
    def mode(self) -> str:
        """``"rewrite"`` for a report of ``graphfix.rewrite``, else ``"check"``."""
        return "rewrite" if self.nodes_out is not None else "check"

    def render(self, fmt: str = "text", mode: str | None = None) -> str:
        """This report in ``fmt`` (text, json, sarif, github), as the CLI prints it."""
        return render(self, fmt, mode or self.mode)

    def __str__(self) -> str:
        return self.render("text").rstrip("\n")

    def __repr__(self) -> str:
        codes = sorted({f.code for f in self.findings})
        what = f"{self.found} finding{'s' if self.found != 1 else ''}"
        if codes:
            what += f" ({', '.join(codes[:5])}{', …' if len(codes) > 5 else ''})"
        if self.mode == "rewrite":
            what += f", {self.fixed} fixed"
        return f"<Report {self.mode} {short(self.input, keep_end=True)!r}: {self.nodes} nodes, {what}>"

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
        return {"tool": "graphfix", "version": self.version, "input": self.input, "format": self.format,
                "nodes": self.nodes, "losses": list(self.losses),
                "findings": [f.to_json() for f in self.findings],
                "summary": {"found": self.found, "fixed": self.fixed, "remaining": self.remaining},
                "timing_ms": {k: round(v, 3) for k, v in self.timing_ms.items()},
                **({"output": self.output, "nodes_out": self.nodes_out} if self.output else {}),
                **({"dropped": list(self.dropped)} if self.dropped else {}),
                **({"verify": self.verify} if self.verify is not None else {}),
                **({"opt_in": dict(self.opt_in)} if self.opt_in else {})}


def text_lines(report: Report, mode: str = "check") -> list[list[tuple[str, str]]]:
    """The text report as lines of ``(text, kind)`` segments; ``kind`` names the
    style graphfix.render.console gives it on a terminal (``""``: unstyled)."""
    lines = []
    for f in report.findings:
        tried = mode == "rewrite" and bool(f.note)  # a fix was attempted (or checked) and does not hold
        if f.fixed:
            status = ("[fixed]", "fixed")
        elif tried:
            status = ("[not fixed]", "not_fixed")
        elif f.fixable and f.safety == "unsafe":
            status = ("[unsafe fix available]", "unsafe")
        elif mode == "rewrite":
            status = ("[not fixed]", "not_fixed")
        else:
            status = ("[*]", "fixable") if f.fixable else ("", "")
        guard = f" (guard: {f.guard})" if f.fixed and f.guard else ""
        note = f": {f.note}" if f.note and not f.fixed and mode == "rewrite" else ""
        line = [(report.input, "path"), (":", "sep"), (f.node, "node"), (":", "sep"), (" ", ""),
                (f.code, "code"), (f" {f.message}{guard}", "")]
        if status[0]:
            line += [(" ", ""), status]
        if note:
            line.append((note, "note"))
        lines.append(line)
    if not report.findings:
        lines.append([(report.input, "path"), (":", "sep"),
                      (f" clean ({report.nodes} nodes, no hazards found)", "clean")])
    else:
        hidden = sum(1 for f in report.findings if not f.fixed and f.fixable and f.safety == "unsafe" and not f.note)
        summary = f"Found {report.found} hazard{'s' if report.found != 1 else ''}"
        if mode == "rewrite":
            summary += f" ({report.fixed} fixed, {report.remaining} remaining)."
        else:
            fixable = sum(1 for f in report.findings if f.fixable and f.safety == "safe")
            summary += f" ({fixable} fixable with `graphfix rewrite`)."
        line = [(summary, "summary")]
        if hidden:
            line.append((f" {hidden} hidden fix{'es' if hidden != 1 else ''} can be enabled with --unsafe-fixes.",
                         ""))
        lines.append(line)
    if report.opt_in:
        n = sum(report.opt_in.values())
        codes = ", ".join(f"{c} x{k}" for c, k in sorted(report.opt_in.items()))
        lines.append([(f"{n} more finding{'s' if n != 1 else ''} from opt-in rules ({codes}): "
                       "--select ALL includes them.", "note")])
    if report.dropped:
        lines.append([(f"{report.output}: converted; dropped {'; '.join(report.dropped)}.", "note")])
    if report.verify is not None:
        lines.append([("verify: OK", "fixed") if report.verify["ok"] else
                      ("verify: FAILED: " + "; ".join(report.verify["failed"]), "not_fixed")])
    return lines


def render_text(report: Report, mode: str = "check") -> str:
    return "".join("".join(t for t, _ in line).rstrip() + "\n" for line in text_lines(report, mode))


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=False) + "\n"


FORMATS = ("text", "json", "sarif", "github")

# The formats that hold several models' reports in one document (a batch run
# renders all its reports through these; one model is a list of one).
DOCUMENTS = {"sarif": render_sarif, "github": render_github}


def render(report: Report, fmt: str = "text", mode: str = "check") -> str:
    """``report`` in ``fmt``: text, json, sarif (graphfix.render.sarif) or github (graphfix.render.github)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt in DOCUMENTS:
        return DOCUMENTS[fmt]([report], mode)
    return render_json(report) if fmt == "json" else render_text(report, mode)
