"""Shared test helpers: run the CLI in-process or as a subprocess, build graphs."""
import contextlib
import io
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")


def cli(*args, cwd=None, env=None, timeout=600):
    """Run ``python cli.py ARGS`` as a user would; returns CompletedProcess
    (``subprocess.TimeoutExpired`` after ``timeout`` seconds: a hang)."""
    e = dict(os.environ)
    e.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    e.update(env or {})
    return subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=e, timeout=timeout)


def run_cli(*args, cwd=None):
    """``cli.main(ARGS)`` in this process -> CompletedProcess(returncode, stdout, stderr).

    The same code as ``python cli.py ARGS`` from argument parsing to the exit
    status, without a new interpreter and its TensorFlow import (2-3 s each).
    For tests where the command's work is the point; what only a real process
    shows (exit by signal, a terminal, a closed pipe, what gets imported,
    hash seeds, the environment) is tested with :func:`cli`.  Batch runs should
    pass ``--jobs 1`` (the output does not depend on it) so that no worker
    processes are forked from the test process."""
    import cli as cli_module

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli_module.main([str(a) for a in args])
            except SystemExit as e:  # argparse: usage errors, --help
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return path
