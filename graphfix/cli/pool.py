"""Worker processes for batch runs, each model with its own time limit.

:func:`run` hands tasks one at a time to up to ``jobs`` worker processes and
reports each outcome as it comes in.  A worker runs ``init`` once when it
starts (graphfix imports TensorFlow there for ``rewrite``, once per worker),
then takes tasks until it is told to stop.  What one task does cannot harm
the others:

* a task that runs longer than ``timeout`` seconds has its worker killed and
  fails with "timed out";
* a worker that dies during a task (SIGKILL from the out-of-memory killer, a
  crash in native code) fails that task alone;

and in both cases a fresh worker takes the dead one's place.

Workers are started with the ``forkserver`` method where the platform has it
(``spawn`` elsewhere), never by forking the calling process: that process may
have imported TensorFlow (an ``--op-library``, or a library caller), and a
forked copy of TensorFlow's threads is not safe to use.  The fork server
pre-imports graphfix, its rules and the graph protobufs (graphfix.cli.preload; no
TensorFlow), so a worker starts in a few milliseconds.

Workers ignore SIGINT (Ctrl-C in a terminal reaches the whole process
group); the calling process stops them — SIGTERM, so that an atomic write in
progress removes its temporary file, then SIGKILL — when the run ends or is
interrupted.
"""
from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import signal
import time

from graphfix.core.errors import GraphfixError

PRELOAD = ["graphfix.cli.preload"]
_START_FAILURES = 3  # workers in a row that die before their first task: give up


class _Terminated(BaseException):
    pass


def _on_sigterm(signum, frame):
    raise _Terminated()


def _worker_main(conn, func, init, initargs) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if init is not None:
            try:
                init(*initargs)
            except Exception as e:  # noqa: BLE001 — reported by the caller as one line
                conn.send(("init-error", str(e) or type(e).__name__))
                return
        conn.send(("ready", None))
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg is None:
                return
            key, task = msg
            conn.send(("done", (key, func(task))))
    except (_Terminated, BrokenPipeError, KeyboardInterrupt):
        return


def context():
    """The multiprocessing context workers start from (forkserver, else spawn)."""
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


class _Worker:
    def __init__(self, ctx, func, init, initargs):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, func, init, initargs), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.task = None  # (key, payload) while busy
        self.started = self.deadline = None

    def stop(self, grace: float = 2.0) -> None:
        """End the process: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(grace)
            if self.proc.is_alive():
                self.proc.kill()
        self.proc.join()
        self.conn.close()


def _death(proc) -> str:
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def run(tasks, func, on_done, jobs: int, timeout: float | None = None, init=None, initargs=()) -> None:
    """Run ``func(payload)`` for every ``(key, payload)`` in ``tasks`` in up to
    ``jobs`` worker processes.  ``on_done(key, result, failure, seconds)`` is
    called in this process as each task ends: ``failure`` is None and
    ``result`` what ``func`` returned, or ``result`` is None and ``failure``
    says in a few words why the task did not finish; ``seconds`` is the
    wall time since the task was handed out.  ``func``, ``init`` and the payloads
    must be picklable (module-level functions, plain data)."""
    pending = collections.deque(tasks)
    if not pending:
        return
    ctx = context()
    workers: list[_Worker] = []
    start_failures = 0
    try:
        while pending or any(w.task for w in workers):
            busy = sum(1 for w in workers if w.task)
            while len(workers) < min(jobs, busy + len(pending)):
                workers.append(_Worker(ctx, func, init, initargs))
            for w in workers:
                if w.ready and w.task is None and pending:
                    w.task = pending.popleft()
                    w.started = time.monotonic()
                    w.deadline = w.started + timeout if timeout else None
                    try:
                        w.conn.send(w.task)
                    except (BrokenPipeError, OSError):
                        pending.appendleft(w.task)  # died idle: not this task's fault
                        w.task = None
            wait = None
            deadlines = [w.deadline for w in workers if w.task and w.deadline is not None]
            if deadlines:
                wait = max(0.0, min(deadlines) - time.monotonic())
            handles = [w.conn for w in workers] + [w.proc.sentinel for w in workers]
            multiprocessing.connection.wait(handles, wait)
            now = time.monotonic()
            for w in list(workers):
                gone = False
                try:
                    while w.conn.poll():
                        kind, value = w.conn.recv()
                        if kind == "ready":
                            w.ready = True
                            start_failures = 0
                        elif kind == "init-error":
                            raise GraphfixError(f"a worker process could not start: {value}")
                        else:
                            key, result = value
                            w.task = w.deadline = None
                            on_done(key, result, None, time.monotonic() - w.started)
                except (EOFError, OSError):
                    gone = True
                if not gone and not w.proc.is_alive():
                    gone = True
                if gone:
                    w.stop(grace=0)
                    workers.remove(w)
                    if w.task is not None:
                        on_done(w.task[0], None, f"its worker process died ({_death(w.proc)})", now - w.started)
                    elif not w.ready:
                        start_failures += 1
                        if start_failures >= _START_FAILURES:
                            raise GraphfixError(f"worker processes die as they start ({_death(w.proc)})")
                elif w.task is not None and w.deadline is not None and now >= w.deadline:
                    w.stop(grace=1.0)
                    workers.remove(w)
                    on_done(w.task[0], None, f"timed out after {timeout:g} s (--timeout)", now - w.started)
    finally:
        for w in workers:
            try:
                w.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for w in workers:
            if w.task is None:
                w.proc.join(1.0)
            w.stop()
