"""GitHub Actions annotations (``--format github``).

One workflow command per finding, as GitHub's runner parses them::

    ::error file=models/det.pb,title=GF001 empty-reduction::loss/Mean_1: mean over … is NaN
    ::notice file=models/det.pb,title=GF001 empty-reduction::loss/Mean_1: … [fixed: cond guard]

``error`` for a finding left in the graph, ``notice`` for one graphfix fixed;
text graphs also get ``line``/``endLine`` (the node's block).  Escaping
follows the runner (actions/toolkit ``command.ts``): in the message ``%``,
``\\r`` and ``\\n`` become ``%25``, ``%0D``, ``%0A``; in property values ``:``
and ``,`` also become ``%3A`` and ``%2C``.  Paths are relative to
``$GITHUB_WORKSPACE`` (else the working directory) when the file is below it,
so GitHub can show the annotation on the file.
"""
from __future__ import annotations

import os

from graphfix.render import locations


def escape_data(s: str) -> str:
    """Escape a workflow-command message."""
    return str(s).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    """Escape a workflow-command property value."""
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **props) -> str:
    """``::kind k=v,…::message`` with every part escaped; ``None`` properties are left out."""
    body = ",".join(f"{k}={escape_property(v)}" for k, v in props.items() if v is not None)
    return f"::{kind}{' ' + body if body else ''}::{escape_data(message)}"


def _file(path: str) -> str:
    return locations.display_path(locations.artifact_path(path), os.environ.get("GITHUB_WORKSPACE") or None)


def annotations(reports, mode: str = "check", errors=()) -> list[str]:
    """The workflow commands for ``reports`` and failed models ``errors``
    (``(path, message)``, the message naming the path)."""
    out = []
    for report in reports:
        path = locations.artifact_path(report.input)
        lines = locations.node_lines(path, "(text)" in report.format) if report.findings else {}
        file = _file(report.input)
        for f in report.findings:
            message = f"{f.node}: {f.message}"
            if f.fixed:
                message += f" [fixed: {f.guard} guard]" if f.guard else " [fixed]"
            elif mode == "rewrite" and f.note:
                message += f" [not fixed: {f.note}]"
            elif f.fixable and f.safety == "unsafe":
                message += " [unsafe fix available: --unsafe-fixes]"
            start, end = lines.get(f.node, (None, None))
            out.append(command("notice" if f.fixed else "error", message, file=file, line=start, endLine=end,
                               title=f"{f.code} {f.rule}"))
    for path, message in errors:
        out.append(command("error", message, file=_file(path), title="graphfix error"))
    return out


def render_github(reports, mode: str = "check", errors=()) -> str:
    lines = annotations(reports, mode, errors)
    return "".join(line + "\n" for line in lines)
