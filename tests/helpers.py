"""Shared test helpers: run the CLI in-process or as a subprocess, build graphs."""
import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile

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


def run_cli(*args, cwd=None, timeout=None):
    """``cli.main(ARGS)`` in this process -> CompletedProcess(returncode, stdout, stderr).

    The same code as ``python cli.py ARGS`` from argument parsing to the exit
    status, without a new interpreter and its imports (0.4 s, 2-3 s more with
    TensorFlow).  For tests where the command's work is the point; what only a
    real process shows (exit by signal, a terminal, a closed pipe, what gets
    imported, hash seeds, the environment) is tested with :func:`cli`.  Batch
    runs should pass ``--jobs 1`` (the output does not depend on it) so that no
    worker processes are forked from the test process.

    Output is captured at the file-descriptor level as well, so what native
    code (TensorFlow's C++ logging) writes to fd 1 or 2 is in stdout/stderr as
    it would be in a real process.  ``timeout`` seconds: a run that takes
    longer raises ``subprocess.TimeoutExpired`` (SIGALRM), as :func:`cli` does."""
    import cli as cli_module

    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    native = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)

    def hang(signum, frame):
        raise subprocess.TimeoutExpired(["cli.py", *map(str, args)], timeout)

    alarm = signal.signal(signal.SIGALRM, hang) if timeout else None
    try:
        if cwd is not None:
            os.chdir(cwd)
        os.dup2(native[0].fileno(), 1)
        os.dup2(native[1].fileno(), 2)
        if timeout:
            signal.alarm(int(timeout))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli_module.main([str(a) for a in args])
            except SystemExit as e:  # argparse: usage errors, --help
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        if timeout:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, alarm)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        os.chdir(old)
    texts = []
    for f in native:
        f.seek(0)
        texts.append(f.read().decode(errors="replace"))
        f.close()
    return subprocess.CompletedProcess(args, rc, out.getvalue() + texts[0], err.getvalue() + texts[1])


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return path
