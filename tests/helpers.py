"""Shared test helpers: run the CLI in-process or as a subprocess, build graphs."""
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


def write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return path
