"""The batch summary table drawn with rich, for a terminal.

Same columns and figures as graphfix.cli.batch.render_table's plain text (which
files, pipes and ``--report`` get); the status is coloured.  Drawn only when
rich is installed (graphfix.render.console.rich_available).
"""
from __future__ import annotations

import io

try:  # optional: graphfix.cli.batch draws the plain table without it
    from rich.console import Console
    from rich.table import Table
except ImportError:
    Console = Table = None

_STYLE = {"clean": "green", "fixed": "cyan", "would fix": "cyan", "findings": "yellow", "remaining": "yellow",
          "error": "bold red"}


def render(rows, mode: str, verdict: str, stream) -> str:
    """The table of ``rows`` plus the ``verdict`` line, as text with colour codes."""
    def cell(v):
        return "-" if v is None else str(v)

    table = Table(show_footer=True, box=None, pad_edge=False, header_style="bold", footer_style="bold")
    ok = [r for r in rows if r.status != "error"]
    footers = [f"total ({len(rows)})", str(sum(r.nodes for r in ok)), str(sum(r.found for r in ok)),
               str(sum(r.fixed for r in ok)) if mode == "rewrite" else "-", str(sum(r.remaining for r in ok)),
               f"{sum(r.seconds for r in rows):.2f}", ""]
    for i, name in enumerate(("model", "nodes", "found", "fixed", "remaining", "seconds", "status")):
        table.add_column(name, footer=footers[i], justify="left" if i in (0, 6) else "right",
                         overflow="fold")
    for r in rows:
        table.add_row(r.model, cell(r.nodes), cell(r.found), cell(r.fixed if mode == "rewrite" else None),
                      cell(r.remaining), f"{r.seconds:.2f}", f"[{_STYLE.get(r.status, '')}]{r.status}[/]")
    buf = io.StringIO()
    width = Console(file=stream).width
    console = Console(file=buf, force_terminal=True, width=width, highlight=False)
    console.print(table)
    console.print(verdict, highlight=False, markup=False)
    return buf.getvalue()
