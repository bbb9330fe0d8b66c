import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests read graphfix's plain output; a CI that forces colour (FORCE_COLOR)
# must not turn it into ANSI codes.  tests/test_cli_ux.py checks colour itself.
os.environ.pop("FORCE_COLOR", None)
# The tests run every rule, the opt-in ones (GF001, GF002, GF009, GF011) too:
# most test graphs carry an empty mean or a mask-sum division, and the tests
# are about the machinery (batch, formats, gradients, control flow), not about
# which rules are on by default.  The default set itself is tested with this
# unset (the `default_rules` fixture): tests/test_rules_exec.py,
# tests/test_cli.py, tests/test_examples.py, tests/test_readme.py.
os.environ["GRAPHFIX_SELECT"] = "ALL"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite golden inputs/expectations under tests/golden instead of comparing")


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core, plus one.

    Some tests spend seconds waiting, not computing: a batch run waiting out
    its ``--timeout`` on a model that hangs on purpose, a signal sent after a
    delay, a process killed mid-write.  With one worker per core such a wait
    leaves a core idle; the extra worker computes meanwhile.
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still sets the number outright."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own hook reads it
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores + 1


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


@pytest.fixture(scope="session")
def tf():
    from graphfix.core.tfimport import tf as _tf

    t = _tf()
    t.compat.v1.disable_eager_execution()
    t.compat.v1.disable_control_flow_v2()
    return t


@pytest.fixture(scope="session", autouse=True)
def _graphfix_cache_dir(tmp_path_factory):
    """Batch `check` caches results in ./.graphfix_cache by default; the tests
    keep theirs in a temporary directory, not in the checkout."""
    old = os.environ.get("GRAPHFIX_CACHE_DIR")
    os.environ["GRAPHFIX_CACHE_DIR"] = str(tmp_path_factory.mktemp("graphfix_cache"))
    yield
    if old is None:
        os.environ.pop("GRAPHFIX_CACHE_DIR", None)
    else:
        os.environ["GRAPHFIX_CACHE_DIR"] = old


@pytest.fixture
def default_rules(monkeypatch):
    """Run with graphfix's real default rule set (no $GRAPHFIX_SELECT)."""
    monkeypatch.delenv("GRAPHFIX_SELECT", raising=False)
