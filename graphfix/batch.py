"""Many models in one run: ``graphfix check DIR_OR_GLOB…`` and
``graphfix rewrite --out-dir OUT DIR_OR_GLOB…``.

Inputs are expanded here (so quoted globs work on every shell):

* a file is taken as it is;
* a SavedModel directory (one holding ``saved_model.pb(txt)``) is one model;
* any other directory is walked (sorted, hidden entries skipped, SavedModel
  directories taken whole and not descended into) for ``.pb``, ``.pbtxt`` and
  ``.meta`` files;
* a glob (``*``, ``?``, ``[…]``, ``**``) is expanded; matching directories
  are walked as above, matching files are taken if they have one of those
  extensions.

A model's output path is its path relative to the argument that found it —
the walked directory, or the non-glob part of the pattern, or just its name
for a file given directly — under OUT: ``rewrite --out-dir OUT models`` writes
``models/a/b.pb`` to ``OUT/a/b.pb``; two models that would land on the same
output path are an error for the second one.  A model that fails to load or repair is
reported on one line and the run goes on with the others.  The exit status is
2 if any model failed, else 1 if findings remain, else 0.

A progress bar goes to stderr when stderr is a terminal.  At the end comes a
table (model, nodes, found, fixed, remaining, seconds, status): on stdout in
text format, on stderr for the machine formats (whose stdout must stay
parseable) and with ``--diff`` (whose stdout is the diff).
"""
from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import shutil
import sys
import time

from graphfix.errors import GraphfixError

MODEL_EXTS = (".pb", ".pbtxt", ".meta")
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_MAGIC = re.compile(r"[*?[]")
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
_VERDICT = {"clean": "clean", "fixed": "fixed", "would fix": "would be fixed", "findings": "with findings",
            "remaining": "with findings left", "error": "failed"}


@dataclasses.dataclass
class Target:
    path: str  # as found (relative paths stay relative)
    rel: str  # where its output goes under --out-dir


@dataclasses.dataclass
class Row:
    model: str
    nodes: int | None = None
    found: int | None = None
    fixed: int | None = None
    remaining: int | None = None
    seconds: float = 0.0
    status: str = "error"


# ------------------------------------------------------------------ routing

def is_saved_model_dir(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, n)) for n in SAVED_MODEL_FILES)


def _has_magic(path: str) -> bool:
    return bool(_MAGIC.search(path))


def _needs_expansion(path: str) -> bool:
    if os.path.exists(path):
        return os.path.isdir(path) and not is_saved_model_dir(path)
    return _has_magic(path)


def route(args) -> bool:
    """Normalise the positional paths of ``check``/``rewrite`` and say whether
    this is a batch run.  For a single model, ``args.input`` (and for rewrite
    ``args.output``) become plain paths again, as the one-model commands expect."""
    paths = list(args.input)
    if args.command == "check":
        if len(paths) > 1 or _needs_expansion(paths[0]):
            return True
        args.input = paths[0]
        return False
    out_dir = getattr(args, "out_dir", None)
    if out_dir:
        if getattr(args, "dot", None):
            raise GraphfixError("--dot draws one model; use it with `rewrite IN OUT`, not with --out-dir")
        return True
    if len(paths) == 2:
        args.input, args.output = paths
        return False
    if len(paths) == 1 and getattr(args, "diff", False):
        args.input, args.output = paths[0], None
        return False
    if len(paths) == 1:
        raise GraphfixError("rewrite needs IN and OUT (or --diff to only print the change, "
                            "or --out-dir DIR to rewrite many models)")
    raise GraphfixError(f"rewrite takes IN OUT, got {len(paths)} paths; to rewrite many models "
                        "use --out-dir DIR")


# ------------------------------------------------------------------ expansion

def _static_prefix(pattern: str) -> str:
    """The directory part of ``pattern`` before its first glob component."""
    parts = pattern.replace(os.sep, "/").split("/")
    keep = []
    for p in parts[:-1]:
        if _has_magic(p):
            break
        keep.append(p)
    if not keep:
        return "."
    if keep == [""]:
        return "/"
    return "/".join(keep)


def _walk(root: str, exclude: str | None):
    """(path, path relative to root) of every model under directory ``root``, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if d.startswith(".") or (exclude and os.path.realpath(full) == exclude):
                continue
            if is_saved_model_dir(full):
                found.append(full)
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if not f.startswith(".") and f.lower().endswith(MODEL_EXTS):
                found.append(os.path.join(dirpath, f))
    res = [(p, os.path.relpath(p, root)) for p in found]
    res.sort(key=lambda t: t[1].split(os.sep))
    return res


def expand(paths, exclude: str | None = None) -> tuple[list[Target], list[tuple[str, str]]]:
    """Targets for ``paths`` (files, directories, globs) in argument order,
    duplicates dropped, and ``(argument, problem)`` for arguments that name no model.
    ``exclude`` (the output directory) is never walked into."""
    excl = os.path.realpath(exclude) if exclude else None
    targets: list[Target] = []
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(path: str, rel: str) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            targets.append(Target(path, os.path.normpath(rel)))

    for arg in paths:
        arg = os.fspath(arg)
        if os.path.exists(arg):
            if os.path.isdir(arg) and not is_saved_model_dir(arg):
                found = _walk(arg, excl)
                if not found:
                    errors.append((arg, "no models found (.pb, .pbtxt, .meta files or SavedModel directories)"))
                for p, rel in found:
                    add(p, rel)
            else:
                add(arg, os.path.basename(os.path.normpath(arg)))
        elif _has_magic(arg):
            base = _static_prefix(arg)
            hits = 0
            for m in sorted(glob.glob(arg, recursive=True)):
                parent = os.path.dirname(m) or "."
                if os.path.isdir(m):
                    if excl and os.path.realpath(m) == excl:
                        continue
                    if is_saved_model_dir(m):
                        add(m, os.path.relpath(m, base))
                        hits += 1
                    else:
                        for p, rel in _walk(m, excl):
                            add(p, os.path.join(os.path.relpath(m, base), rel))
                            hits += 1
                elif os.path.basename(m) in SAVED_MODEL_FILES and is_saved_model_dir(parent):
                    add(parent, os.path.relpath(parent, base))  # the whole SavedModel, variables and all
                    hits += 1
                elif m.lower().endswith(MODEL_EXTS):
                    add(m, os.path.relpath(m, base))
                    hits += 1
            if not hits:
                errors.append((arg, "no models match this pattern"))
        else:
            errors.append((arg, "no such file or directory"))
    return targets, errors


# ------------------------------------------------------------------ progress

class Progress:
    """A one-line progress bar on ``stream``, drawn only when it is a terminal."""

    def __init__(self, total: int, stream=None, enabled: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            try:
                enabled = self.stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = enabled and total > 0
        self.total = total
        self.width = 0

    def update(self, done: int, label: str = "") -> None:
        if not self.enabled:
            return
        cols = shutil.get_terminal_size((80, 24)).columns
        bar_len = 24
        filled = bar_len * done // max(self.total, 1)
        line = f"[{'#' * filled}{'.' * (bar_len - filled)}] {done}/{self.total} {label}"
        line = line[:max(cols - 1, 10)]
        self.stream.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


# ------------------------------------------------------------------ table

def render_table(rows: list[Row], mode: str) -> str:
    """The summary table, a totals line and a one-line verdict."""
    head = ("model", "nodes", "found", "fixed", "remaining", "seconds", "status")

    def cell(v, fmt="{}"):
        return "-" if v is None else fmt.format(v)

    body = [(r.model, cell(r.nodes), cell(r.found), cell(r.fixed if mode == "rewrite" else None),
             cell(r.remaining), f"{r.seconds:.2f}", r.status) for r in rows]
    ok = [r for r in rows if r.status != "error"]
    total = (f"total ({len(rows)})", str(sum(r.nodes for r in ok)),
             str(sum(r.found for r in ok)), str(sum(r.fixed for r in ok)) if mode == "rewrite" else "-",
             str(sum(r.remaining for r in ok)), f"{sum(r.seconds for r in rows):.2f}", "")
    widths = [max(len(x[i]) for x in [head, total, *body]) for i in range(len(head))]

    def line(cols):
        out = [cols[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cols[1:6], widths[1:6])] + [cols[6]]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths).rstrip()
    lines = [line(head), sep, *(line(b) for b in body), sep, line(total)]
    counts = {s: sum(r.status == s for r in rows) for s in _VERDICT}
    verdict = ", ".join(f"{n} {_VERDICT[s]}" for s, n in counts.items() if n)
    lines.append(f"{len(rows)} input{'s' if len(rows) != 1 else ''}: {verdict}." if rows else "no models.")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ run

def _status(report, mode: str, diff_only: bool) -> str:
    if mode == "check":
        return "findings" if report.found else "clean"
    if not report.found:
        return "clean"
    if report.remaining:
        return "remaining"
    return "would fix" if diff_only else "fixed"


def _render(fmt: str, reports, mode: str, errors, rows) -> tuple[str, str]:
    """(stdout text, table text)."""
    from graphfix import __version__
    from graphfix.report import render_text

    table = render_table(rows, mode)
    if fmt == "json":
        ok = [r for r in rows if r.status != "error"]
        data = {"tool": "graphfix", "version": __version__, "command": mode,
                "models": [r.to_json() for r in reports],
                "errors": [{"input": p, "error": m} for p, m in errors],
                "summary": {"models": len(rows), "errors": len(errors),
                            "found": sum(r.found for r in ok), "fixed": sum(r.fixed or 0 for r in ok),
                            "remaining": sum(r.remaining for r in ok)}}
        return json.dumps(data, indent=2) + "\n", table
    if fmt == "sarif":
        from graphfix.sarif import render_sarif

        return render_sarif(reports, mode, errors), table
    if fmt == "github":
        from graphfix.github import render_github

        return render_github(reports, mode, errors), table
    lines = []
    for r in reports:
        if r.findings:
            lines.extend(render_text(r, mode).splitlines()[:r.found])
    text = "\n".join(lines) + ("\n\n" if lines else "")
    return text + table, ""


def run(args, options=None, stdout=None, stderr=None) -> int:
    """Run ``check`` or ``rewrite --out-dir`` over every model ``args.input`` names
    (``options``: the rule options the CLI passes to ``check``/``rewrite``)."""
    from graphfix import io

    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    mode = args.command
    out_dir = getattr(args, "out_dir", None)
    diff_only = bool(getattr(args, "diff", False))
    if args.report:
        io.check_writable(args.report)
    if mode == "rewrite" and not diff_only:
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise GraphfixError(f"{out_dir}: --out-dir exists and is not a directory")
        try:
            os.makedirs(out_dir, exist_ok=True)
        except OSError as e:
            raise GraphfixError(f"{out_dir}: cannot create the output directory: {e.strerror or e}") from None
    targets, errors = expand(args.input, exclude=out_dir if mode == "rewrite" else None)
    errors = [(p, _with_path(p, m)) for p, m in errors]
    rows: list[Row] = [Row(model=p, status="error") for p, _ in errors]
    reports, diffs = [], []
    outputs: dict[str, str] = {}
    progress = Progress(len(targets), stream=stderr)
    if options is None:
        options = {"stop_gradient": list(getattr(args, "stop_gradient", None) or [])}
    try:
        _each(args, targets, mode, out_dir, diff_only, options, progress, rows, reports, diffs, errors, outputs)
    finally:
        progress.done()
    if not targets and not errors:
        raise GraphfixError("no models given")
    # Rows: the arguments that named no model first, then every model in order.
    text, table = _render(args.format, reports, mode, errors, rows)
    if diff_only:
        stdout.write("".join(diffs))
        stderr.write(text)
        if table:
            stderr.write(table)
    else:
        stdout.write(text)
        if table:
            stderr.write(table)
    if args.report:
        io.atomic_write(args.report, text.encode("utf-8"))
    for _, message in errors:
        stderr.write(f"graphfix: error: {' '.join(message.split())}\n")
    stdout.flush()
    if errors:
        return EXIT_ERROR
    if mode == "check":
        return EXIT_FINDINGS if any(r.found for r in reports) else EXIT_CLEAN
    if any(r.remaining for r in reports) or (diff_only and any(diffs)):
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _each(args, targets, mode, out_dir, diff_only, options, progress, rows, reports, diffs, errors, outputs):
    """Load, check or repair, and write every target; a failure becomes an error row."""
    import graphfix

    for i, t in enumerate(targets):
        progress.update(i, t.path)
        t0 = time.perf_counter()
        row = Row(model=t.path)
        try:
            model = graphfix.load(t.path)
            row.nodes = model.node_count
            if mode == "check":
                report = graphfix.check(model, select=args.select, ignore=args.ignore, losses=args.loss,
                                        options=options)
            else:
                fixed, report = graphfix.rewrite(model, select=args.select, ignore=args.ignore,
                                                 unsafe_fixes=args.unsafe_fixes, guard=args.guard, losses=args.loss,
                                                 clear_devices=args.clear_devices, options=options)
                if diff_only:
                    from graphfix.diff import graph_diff

                    diffs.append(graph_diff(model, fixed, t.path, os.path.join(out_dir, t.rel)))
                else:
                    out = os.path.join(out_dir, t.rel)
                    key = os.path.realpath(out)
                    if key in outputs:
                        raise GraphfixError(f"its output {out} would overwrite the output of {outputs[key]} "
                                            "(same relative path); give them separately")
                    outputs[key] = t.path
                    parent = os.path.dirname(out)
                    if parent:
                        try:
                            os.makedirs(parent, exist_ok=True)
                        except OSError as e:
                            raise GraphfixError(f"{parent}: cannot create directory: {e.strerror or e}") from None
                    graphfix.save(fixed, out)
                    report.output = out
            reports.append(report)
            row.found, row.fixed, row.remaining = report.found, report.fixed, report.remaining
            row.status = _status(report, mode, diff_only)
        except Exception as e:  # noqa: BLE001 — one model's failure must not stop the others
            errors.append((t.path, _with_path(t.path, _message(e, getattr(args, "debug", False)))))
            row.status = "error"
        row.seconds = time.perf_counter() - t0
        rows.append(row)
    progress.update(len(targets), "")


def _with_path(path: str, message: str) -> str:
    """``message`` starting with ``path:`` (most GraphfixErrors already do)."""
    return message if message.startswith(f"{path}:") or message.startswith(f"{path} ") else f"{path}: {message}"


def _message(e: BaseException, debug: bool) -> str:
    if debug:
        import traceback

        traceback.print_exc()
    if isinstance(e, GraphfixError):
        return str(e)
    if isinstance(e, MemoryError):
        return "out of memory"
    return f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)"
