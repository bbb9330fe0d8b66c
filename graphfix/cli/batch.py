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
``models/a/b.pb`` to ``OUT/a/b.pb``.  Two models that would land on the same
output path are an error for the later one in argument order (decided from
the paths alone, so that it does not depend on which model finishes first).
A model that fails to load or repair is reported on one line and the run goes
on with the others.  The exit status is 2 if any model failed, else 1 if
findings remain, else 0.

How the models are processed (:func:`_collect`): ``--shard K/N`` first keeps
the models whose path hashes to shard K; batch ``check`` then answers what it
can from the result cache (graphfix.cli.cache); the rest run in ``--jobs`` worker
processes with an optional ``--timeout`` each (graphfix.cli.pool), or one after
another in this process with ``--jobs 1``.  Either way every model goes
through graphfix.cli.results.process and comes back as plain data, and the
reports, the table and the exit status are put together here in argument
order — the output does not depend on ``--jobs`` or on the cache.

Progress (graphfix.render.progress) goes to stderr when stderr is a terminal.  At
the end comes a table (model, nodes, found, fixed, remaining, seconds,
status): on stdout in text format, on stderr for the machine formats (whose
stdout must stay parseable) and with ``--diff`` (whose stdout is the diff);
drawn with rich on a terminal.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import re
import sys
import time

from graphfix.cli import cache as cache_mod
from graphfix.cli import pool
from graphfix.cli.results import (
    Result,
    Task,
    decode_report,
    init_worker,
    process,
    run_in_worker,
    with_path,
)
from graphfix.core import io
from graphfix.core.errors import GraphfixError
from graphfix.core.version import __version__
from graphfix.render import console
from graphfix.render.progress import Progress
from graphfix.render.report import DOCUMENTS, render_text, text_lines
from graphfix.render.richtable import render

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
        if len(paths) > 1 or _needs_expansion(paths[0]) or getattr(args, "shard", None):
            return True
        args.input = paths[0]
        return False
    out_dir = getattr(args, "out_dir", None)
    if out_dir:
        if getattr(args, "dot", None):
            raise GraphfixError("--dot draws one model; use it with `rewrite IN OUT`, not with --out-dir")
        return True
    if getattr(args, "shard", None):
        raise GraphfixError("--shard splits batch runs; use it with --out-dir DIR")
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


def _render(fmt: str, reports, mode: str, errors, rows) -> tuple[str, str, bool]:
    """(report text, table text, whether the table is part of the report: text format)."""
    table = render_table(rows, mode)
    if fmt == "json":
        ok = [r for r in rows if r.status != "error"]
        data = {"tool": "graphfix", "version": __version__, "command": mode,
                "models": [r.to_json() for r in reports],
                "errors": [{"input": p, "error": m} for p, m in errors],
                "summary": {"models": len(rows), "errors": len(errors),
                            "found": sum(r.found for r in ok), "fixed": sum(r.fixed or 0 for r in ok),
                            "remaining": sum(r.remaining for r in ok)}}
        return json.dumps(data, indent=2) + "\n", table, False
    if fmt in DOCUMENTS:
        return DOCUMENTS[fmt](reports, mode, errors), table, False
    lines = []
    for r in reports:
        if r.findings:
            lines.extend(render_text(r, mode).splitlines()[:r.found])
    text = "\n".join(lines) + ("\n\n" if lines else "")
    return text, table, True




def write_findings(stream, text: str, reports, mode: str, no_color: bool = False) -> None:
    """The text format's finding lines (``text``, from :func:`_render`), styled
    as a single model's are (graphfix.render.console) when ``stream`` wants colour."""
    if not (text and console.color_wanted(stream, no_color) and console.rich_available()):
        stream.write(text)
        return
    lines = [line for r in reports if r.findings for line in text_lines(r, mode)[:r.found]]
    console.write_segments(lines, stream, color=True)
    stream.write("\n")


def show_table(stream, table: str, rows: list[Row], mode: str, no_color: bool = False) -> None:
    """Write the summary table: drawn with rich on a terminal (if installed) that wants colour
    (no ``NO_COLOR``, no ``--no-color``: graphfix.render.console.color_wanted), else ``table`` as it is."""
    if rows and console.is_terminal(stream) and console.color_wanted(stream, no_color) and console.rich_available():
        stream.write(render(rows, mode, table.splitlines()[-1], stream))
        return
    stream.write(table)


# ------------------------------------------------------------------ run

def parse_shard(value: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) as ``(K, N)``."""
    try:
        k, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes K/N (e.g. 2/4), not {value!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {value}: K must be between 1 and N")
    return k, n


def in_shard(path: str, k: int, n: int) -> bool:
    """Whether the model at ``path`` belongs to shard ``k`` of ``n``: chosen by a
    hash of its path relative to the current directory, so every machine of a
    CI matrix that runs the same command from the same checkout root agrees."""
    try:
        rel = os.path.relpath(os.path.abspath(path))
    except ValueError:  # another drive
        rel = os.path.normpath(path)
    digest = hashlib.blake2b(rel.replace(os.sep, "/").encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n == k - 1


def default_jobs() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def run(args, options=None, stdout=None, stderr=None) -> int:
    """Run ``check`` or ``rewrite --out-dir`` over every model ``args.input`` names
    (``options``: the rule options the CLI passes to ``check``/``rewrite``)."""
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
    if not targets and not errors:
        raise GraphfixError("no models given")
    shard = getattr(args, "shard", None)
    if shard:
        targets = [t for t in targets if in_shard(t.path, *shard)]
    errors = [(p, with_path(p, m)) for p, m in errors]
    # Rows: the arguments that named no model first, then every model in order.
    rows: list[Row] = [Row(model=p, status="error") for p, _ in errors]
    if options is None:
        options = {"stop_gradient": list(getattr(args, "stop_gradient", None) or [])}
    tasks = _tasks(args, targets, mode, out_dir, diff_only, options)
    results = _collect(args, tasks, mode, options, stderr)
    reports, diffs = [], []
    for res in results:
        row = Row(model=res.path, nodes=res.nodes, seconds=res.seconds)
        if res.error is not None:
            if res.traceback:
                stderr.write(res.traceback)
            errors.append((res.path, res.error))
        else:
            report = decode_report(res.report)
            reports.append(report)
            if res.diff is not None:
                diffs.append(res.diff)
            row.found, row.fixed, row.remaining = report.found, report.fixed, report.remaining
            row.status = _status(report, mode, diff_only)
        rows.append(row)
    text, table, inline = _render(args.format, reports, mode, errors, rows)
    main = stderr if diff_only else stdout
    if diff_only:
        stdout.write("".join(diffs))
        stdout.flush()
    no_color = bool(getattr(args, "no_color", False))
    if inline:
        write_findings(main, text, reports, mode, no_color)
        main.flush()
        show_table(main, table, rows, mode, no_color)
    else:
        main.write(text)
        show_table(stderr, table, rows, mode, no_color)
    if args.report:
        io.atomic_write(args.report, (text + table if inline else text).encode("utf-8"))
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


def _tasks(args, targets, mode, out_dir, diff_only, options) -> list[Task]:
    """One task per target; an output path already taken by an earlier target
    marks the later one as colliding (it fails, the earlier one is written)."""
    tasks, owners = [], {}
    for i, t in enumerate(targets):
        task = Task(index=i, path=t.path, mode=mode, select=args.select, ignore=args.ignore, losses=args.loss,
                    options=options, debug=bool(getattr(args, "debug", False)))
        if mode == "rewrite":
            task.unsafe_fixes, task.guard = args.unsafe_fixes, args.guard
            task.clear_devices, task.diff_only = args.clear_devices, diff_only
            task.diff_style = args.diff if diff_only and args.diff in ("full", "stat") else "full"
            task.out = os.path.join(out_dir, t.rel)
            key = os.path.realpath(task.out)
            owner = owners.setdefault(key, t.path)
            task.collides_with = owner if owner != t.path else None
        tasks.append(task)
    return tasks


def _cache_options(args, options) -> dict:
    """The options that change a model's report (part of the cache key)."""
    return {"command": args.command, "select": args.select, "ignore": args.ignore, "loss": args.loss,
            "options": options, "op_library": getattr(args, "op_library", None),
            "guard": getattr(args, "guard", None), "unsafe_fixes": getattr(args, "unsafe_fixes", None)}


def _collect(args, tasks: list[Task], mode, options, stderr) -> list[Result]:
    """Every task's result, in task order: from the cache, from worker
    processes (``--jobs``/``--timeout``) or run here one after another."""
    results: list[Result | None] = [None] * len(tasks)
    progress = Progress(len(tasks), stream=stderr)
    cache = None
    if mode == "check" and not getattr(args, "no_cache", False) and tasks:
        cache = cache_mod.ResultCache(cache_mod.directory(), _cache_options(args, options),
                                      warn=lambda m: stderr.write(f"graphfix: warning: {m}\n"))
    keys: dict[int, str] = {}

    def done(res: Result) -> None:
        results[res.index] = res
        key = keys.get(res.index)
        if cache is not None and key and res.error is None:
            cache.put(key, {"nodes": res.nodes, "report": res.report})
        progress.advance(res.path, res.seconds)

    try:
        todo = []
        for task in tasks:
            if cache is not None:
                t0 = time.perf_counter()
                key = cache.key(task.path)
                hit = cache.get(key) if key else None
                if hit is not None:
                    try:
                        report = hit["report"]
                        ok = decode_report(report).input == task.path and isinstance(hit.get("nodes"), int)
                    except (KeyError, TypeError, ValueError, AttributeError):
                        ok = False
                    if ok:
                        done(Result(index=task.index, path=task.path, nodes=hit["nodes"], report=report,
                                    seconds=time.perf_counter() - t0))
                        continue
                if key:
                    keys[task.index] = key
            todo.append(task)
        jobs = getattr(args, "jobs", None) or default_jobs()
        timeout = getattr(args, "timeout", None)
        if timeout or (jobs > 1 and len(todo) > 1):
            def on_done(index, res, failure, seconds):
                if res is None:
                    res = Result(index=index, path=tasks[index].path,
                                 error=with_path(tasks[index].path, failure), seconds=seconds)
                done(res)

            pool.run([(t.index, t) for t in todo], run_in_worker, on_done, jobs=jobs, timeout=timeout,
                     init=init_worker, initargs=(mode, list(getattr(args, "op_library", None) or [])))
        else:
            for task in todo:
                done(process(task))
    finally:
        progress.close()
    return results
