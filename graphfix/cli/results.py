"""One model's share of a batch run, and the lossless JSON form of its report.

:func:`process` loads one model, checks or repairs it and (for ``rewrite
--out-dir``) writes the output; it returns a :class:`Result` that holds only
plain data, so the same function runs in the batch process itself
(``--jobs 1``) and in worker processes (graphfix.cli.pool), and a result can be
stored in the cache (graphfix.cli.cache).  The report travels as
:func:`encode_report` JSON, which keeps every field the renderers read —
:func:`decode_report` gives back a Report that renders byte for byte like
the original.

Test hooks, active only in worker processes (:func:`run_in_worker`), so that
the tests can make a model hang or crash its worker on purpose:

* ``GRAPHFIX_TEST_HANG=TEXT``: a worker given a model whose path contains
  TEXT sleeps instead of processing it (until ``--timeout`` kills it);
* ``GRAPHFIX_TEST_KILL=TEXT``: such a worker kills itself with SIGKILL, as
  the kernel's out-of-memory killer or a crash in native code would.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import time
import traceback

from graphfix import api
from graphfix.core.errors import GraphfixError, one_line
from graphfix.core.findings import Finding
from graphfix.core.tfimport import tf
from graphfix.patch.scratch import load_op_library
from graphfix.render.diff import diff_text
from graphfix.render.report import Report

HANG_ENV, KILL_ENV = "GRAPHFIX_TEST_HANG", "GRAPHFIX_TEST_KILL"
_SKIP_FIELDS = {"data"}  # Finding.data: the rules' own scratch, never rendered


@dataclasses.dataclass
class Task:
    """What to do with one model (plain data, sent to worker processes)."""
    index: int
    path: str
    mode: str  # "check" or "rewrite"
    select: list | None = None
    ignore: list | None = None
    losses: list | None = None
    options: dict | None = None
    unsafe_fixes: bool = False
    guard: str = "auto"
    clear_devices: bool = False
    out: str | None = None  # rewrite: where the fixed model goes
    diff_only: bool = False
    diff_style: str = "full"  # with diff_only: "full" (per node) or "stat" (per finding), as --diff=
    collides_with: str | None = None  # an earlier model already writes to ``out``
    debug: bool = False


@dataclasses.dataclass
class Result:
    """What came of one model: its report (encoded) or a one-line error."""
    index: int
    path: str
    nodes: int | None = None
    report: dict | None = None
    error: str | None = None
    traceback: str | None = None  # with --debug
    diff: str | None = None
    seconds: float = 0.0


# ------------------------------------------------------------------ report codec

def _encode(obj) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in _SKIP_FIELDS}


def encode_report(report: Report) -> dict:
    """Every field of ``report`` and its findings, as JSON-ready data."""
    data = _encode(report)
    data["findings"] = [_encode(f) for f in report.findings]
    return data


def _decode(cls, data: dict):
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: not an object")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    return cls(**data)


def decode_report(data: dict) -> Report:
    """The Report :func:`encode_report` made (ValueError/TypeError on anything else)."""
    data = dict(data)
    findings = data.pop("findings", None)
    if not isinstance(findings, list):
        raise ValueError("Report: findings is not a list")
    report = _decode(Report, {**data, "findings": []})
    report.findings = [_decode(Finding, f) for f in findings]
    return report


# ------------------------------------------------------------------ one model

def process(task: Task) -> Result:
    """Load, check or repair, and write one model; any failure becomes ``Result.error``."""
    t0 = time.perf_counter()
    res = Result(index=task.index, path=task.path)
    try:
        model = api.load(task.path, keep_bytes=task.mode != "check")  # a check never writes the model back
        res.nodes = model.node_count
        if task.mode == "check":
            report = api.check(model, select=task.select, ignore=task.ignore, losses=task.losses,
                                    options=task.options)
        else:
            if task.collides_with and not task.diff_only:
                raise GraphfixError(f"its output {task.out} would overwrite the output of {task.collides_with} "
                                    "(same relative path); give them separately")
            fixed, report = api.rewrite(model, select=task.select, ignore=task.ignore,
                                             unsafe_fixes=task.unsafe_fixes, guard=task.guard, losses=task.losses,
                                             clear_devices=task.clear_devices, options=task.options)
            if task.diff_only:
                res.diff = diff_text(model, fixed, task.path, task.out, task.diff_style, report.findings)
            else:
                parent = os.path.dirname(task.out)
                if parent:
                    try:
                        os.makedirs(parent, exist_ok=True)
                    except OSError as e:
                        raise GraphfixError(f"{parent}: cannot create directory: {e.strerror or e}") from None
                api.save(fixed, task.out)
                report.output = task.out
        res.report = encode_report(report)
    except Exception as e:  # noqa: BLE001 — one model's failure must not stop the others
        res.error = with_path(task.path, one_line(e))
        if task.debug:
            res.traceback = traceback.format_exc()
    res.seconds = time.perf_counter() - t0
    return res


def with_path(path: str, message: str) -> str:
    """``message`` starting with ``path:`` (most GraphfixErrors already do)."""
    return message if message.startswith(f"{path}:") or message.startswith(f"{path} ") else f"{path}: {message}"


# ------------------------------------------------------------------ worker side

def init_worker(mode: str, op_libraries) -> None:
    """Worker start-up: TensorFlow is imported here, once per worker, when
    the run repairs graphs (``check`` never needs it); custom-op libraries
    are loaded again in every worker."""
    if mode == "rewrite" or op_libraries:
        tf()
    for lib in op_libraries or ():
        load_op_library(lib)


def run_in_worker(task: Task) -> Result:
    """:func:`process` in a worker process, after the test hooks."""
    hang, kill = os.environ.get(HANG_ENV), os.environ.get(KILL_ENV)
    if hang and hang in task.path:
        while True:
            time.sleep(3600)
    if kill and kill in task.path:
        os.kill(os.getpid(), signal.SIGKILL)
    return process(task)
