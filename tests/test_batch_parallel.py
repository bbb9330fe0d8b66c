"""Batch runs in worker processes (--jobs, --timeout), the result cache of
batch `check`, and --shard — each test runs the real CLI as a subprocess on
real graphs (corpus training graphs as .pb/.meta/.pbtxt, a SavedModel, a
broken file).

Hangs and crashes come from the documented worker test hooks
(graphfix/cli/results.py): GRAPHFIX_TEST_HANG / GRAPHFIX_TEST_KILL name a part of
a model's path; a worker given such a model sleeps, or SIGKILLs itself."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from google.protobuf import text_format

from tests.helpers import ROOT, run_cli
from tests.test_batch import _table, _tree

CASES = ("detection_boolean_mask_momentum", "seq2seq_sequence_mask_adam", "where_log_distance_momentum",
         "safe_losses_mse_weighted_adam", "embedding_triplet_norm_momentum")


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    """Five corpus cases, each as binary GraphDef, MetaGraphDef and text GraphDef."""
    from tests.corpus import shared as build

    root = tmp_path_factory.mktemp("corpus")
    for name in CASES:
        case = build(name)
        (root / f"{name}.pb").write_bytes(case.graph_def.SerializeToString(deterministic=True))
        (root / f"{name}.meta").write_bytes(case.meta_graph_def.SerializeToString(deterministic=True))
        (root / f"{name}.pbtxt").write_text(text_format.MessageToString(case.graph_def))
    return root


@pytest.fixture
def zoo(tmp_path, corpus_files):
    """tmp_path/models: the corpus files under corpus/, plus test_batch's tree
    (a SavedModel, text and binary models, a broken one, things to skip)."""
    m = _tree(tmp_path)
    shutil.copytree(corpus_files, m / "corpus")
    return tmp_path


def _cli(*args, cwd, env=None, cache=None, timeout=600):
    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", COLUMNS="120")
    e.pop("GRAPHFIX_CACHE_DIR", None)
    if cache is not None:
        e["GRAPHFIX_CACHE_DIR"] = str(cache)
    e.update(env or {})
    return subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=e, timeout=timeout)


def _mask(text):
    """``text`` with the seconds column (and any other x.yz timing) blanked, and
    runs of spaces squeezed (a longer time widens the table's column)."""
    return re.sub(r" +", " ", re.sub(r"\b\d+\.\d\d\b", "S", text))


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _entries(cache):
    return sorted(p for p in cache.rglob("*.json") if not p.name.startswith("."))


def _errors(stderr):
    return [line for line in stderr.splitlines() if line.startswith("graphfix: error: ")]


# ------------------------------------------------------------------ pool

def test_parallel_check_output_is_the_sequential_output(zoo):
    seq = _cli("check", "models", "--jobs", "1", "--no-cache", cwd=zoo)
    par = _cli("check", "models", "--jobs", "2", "--no-cache", cwd=zoo)
    assert seq.returncode == par.returncode == 2  # models/sub/broken.pb
    assert _mask(par.stdout) == _mask(seq.stdout) and par.stderr == seq.stderr
    rows = _table(seq.stdout)
    assert len(rows) == 20 and rows["models/sub/broken.pb"]["status"] == "error"
    assert rows["models/corpus/detection_boolean_mask_momentum.meta"]["status"] == "findings"
    assert rows["models/corpus/safe_losses_mse_weighted_adam.pbtxt"]["status"] == "clean"
    for fmt in ("json", "sarif", "github"):
        seq = _cli("check", "models", "--jobs", "1", "--no-cache", "--format", fmt, cwd=zoo)
        par = _cli("check", "models", "--jobs", "2", "--no-cache", "--format", fmt, cwd=zoo)
        assert seq.returncode == par.returncode == 2
        if fmt == "json":
            a, b = json.loads(seq.stdout), json.loads(par.stdout)
            for m in a["models"] + b["models"]:
                m.pop("timing_ms")
            assert a == b and len(a["models"]) == 19
        else:
            assert par.stdout == seq.stdout
        assert _mask(par.stderr) == _mask(seq.stderr)


def test_parallel_rewrite_writes_the_same_files(zoo):
    seq = _cli("rewrite", "--out-dir", "seq", "models", "--jobs", "1", cwd=zoo)
    par = _cli("rewrite", "--out-dir", "par", "models", "--jobs", "2", cwd=zoo)
    assert seq.returncode == par.returncode == 2
    assert _mask(par.stdout.replace("par/", "OUT/")) == _mask(seq.stdout.replace("seq/", "OUT/"))
    assert par.stderr == seq.stderr
    a, b = _files(zoo / "seq"), _files(zoo / "par")
    assert a == b and len(a) == 20  # 19 models, one a SavedModel with its variables.index
    assert a["corpus/detection_boolean_mask_momentum.pb"] != \
        (zoo / "models/corpus/detection_boolean_mask_momentum.pb").read_bytes()  # really repaired
    assert a["sub/clean.pb"] == (zoo / "models/sub/clean.pb").read_bytes()


def test_models_run_at_once_in_separate_workers(zoo):
    """Two hanging models with --jobs 2 time out together, not one after the other."""
    t0 = time.monotonic()
    r = _cli("check", "models/corpus", "--jobs", "2", "--timeout", "8", "--no-cache", cwd=zoo,
             env={"GRAPHFIX_TEST_HANG": "seq2seq_sequence_mask_adam.p"})  # .pb and .pbtxt
    elapsed = time.monotonic() - t0
    assert r.returncode == 2
    assert sorted(_errors(r.stderr)) == [
        "graphfix: error: models/corpus/seq2seq_sequence_mask_adam.pb: timed out after 8 s (--timeout)",
        "graphfix: error: models/corpus/seq2seq_sequence_mask_adam.pbtxt: timed out after 8 s (--timeout)"]
    assert elapsed < 15, elapsed  # one after the other would take >= 16 s
    rows = _table(r.stdout)
    assert len(rows) == 15 and sum(row["status"] == "error" for row in rows.values()) == 2


# ------------------------------------------------------------------ timeouts and crashes

@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_hanging_model_times_out_and_the_others_go_on(zoo, jobs):
    r = _cli("rewrite", "--out-dir", "out", "models/corpus", "--jobs", jobs, "--timeout", "4", cwd=zoo,
             env={"GRAPHFIX_TEST_HANG": "where_log_distance_momentum.meta"})
    assert r.returncode == 2
    assert _errors(r.stderr) == ["graphfix: error: models/corpus/where_log_distance_momentum.meta: "
                                 "timed out after 4 s (--timeout)"]
    rows = _table(r.stdout)
    assert rows["models/corpus/where_log_distance_momentum.meta"]["status"] == "error"
    assert float(rows["models/corpus/where_log_distance_momentum.meta"]["seconds"]) >= 4
    assert rows["models/corpus/where_log_distance_momentum.pb"]["status"] == "fixed"
    written = sorted(p.name for p in (zoo / "out").iterdir())  # no temp files, nothing for the hung model
    assert written == sorted(f"{c}.{e}" for c in CASES for e in ("pb", "meta", "pbtxt")
                             if (c, e) != ("where_log_distance_momentum", "meta"))


def test_a_killed_worker_fails_its_model_only(zoo):
    r = _cli("check", "models/corpus", "--jobs", "2", "--no-cache", cwd=zoo,
             env={"GRAPHFIX_TEST_KILL": "embedding_triplet_norm_momentum"})
    assert r.returncode == 2
    assert _errors(r.stderr) == [
        f"graphfix: error: models/corpus/embedding_triplet_norm_momentum.{e}: its worker process died "
        "(killed by SIGKILL)" for e in ("meta", "pb", "pbtxt")]
    rows = _table(r.stdout)
    assert [k for k, v in rows.items() if v["status"] == "error"] == [
        f"models/corpus/embedding_triplet_norm_momentum.{e}" for e in ("meta", "pb", "pbtxt")]
    assert sum(v["status"] == "findings" for v in rows.values()) == 9  # the 12 others all checked
    assert sum(v["status"] == "clean" for v in rows.values()) == 3


def test_hooks_are_off_outside_workers(zoo):
    r = _cli("check", "models/corpus/detection_boolean_mask_momentum.pb", "models/sub/clean.pb", "--jobs", "1",
             "--no-cache", cwd=zoo, env={"GRAPHFIX_TEST_KILL": "models"}, timeout=120)
    assert r.returncode == 1 and not _errors(r.stderr)


# ------------------------------------------------------------------ cache

def test_cache_hits_and_misses(zoo):
    cache = zoo / "cache"
    kill_all = {"GRAPHFIX_TEST_KILL": "models/"}  # a model that reaches a worker dies: it was not a hit
    cold = _cli("check", "models", cwd=zoo, cache=cache)
    assert cold.returncode == 2
    assert len(_entries(cache)) == 19  # every model but the broken one
    assert (cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    warm = _cli("check", "models", "--timeout", "60", cwd=zoo, cache=cache, env=kill_all)
    assert warm.returncode == 2
    assert _mask(warm.stdout) == _mask(cold.stdout)  # the same report, from the cache
    assert _errors(warm.stderr) == ["graphfix: error: models/sub/broken.pb: its worker process died "
                                    "(killed by SIGKILL)"]  # unreadable: never cached, the only miss
    # an option that changes results: every model misses
    r = _cli("check", "models/corpus", "--select", "GF001", "--timeout", "60", cwd=zoo, cache=cache, env=kill_all)
    assert len(_errors(r.stderr)) == 15 and all("worker process died" in e for e in _errors(r.stderr))
    for opts in (["--ignore", "GF003"], ["--loss", "loss/total:0"], ["--stop-gradient", "loss/total"]):
        r = _cli("check", "models/corpus/detection_boolean_mask_momentum.pb", "models/sub/clean.pb", *opts,
                 "--timeout", "60", cwd=zoo, cache=cache, env=kill_all)
        assert len(_errors(r.stderr)) == 2, (opts, r.stderr)
    # a changed file misses, the others hit
    det = zoo / "models/sub/det.pbtxt"
    det.write_text("# edited\n" + det.read_text())
    r = _cli("check", "models", "--timeout", "60", cwd=zoo, cache=cache, env=kill_all)
    assert sorted(_errors(r.stderr)) == ["graphfix: error: models/sub/broken.pb: its worker process died "
                                         "(killed by SIGKILL)",
                                         "graphfix: error: models/sub/det.pbtxt: its worker process died "
                                         "(killed by SIGKILL)"]
    # ... and is cached again once checked
    _cli("check", "models/sub/det.pbtxt", "models/sub/clean.pb", cwd=zoo, cache=cache)
    r = _cli("check", "models/sub", "--timeout", "60", cwd=zoo, cache=cache, env=kill_all)
    assert [e.split(": ")[2] for e in _errors(r.stderr)] == ["models/sub/broken.pb"]
    # --no-cache neither reads nor writes it
    r = _cli("check", "models/sub/det.pbtxt", "models/sub/clean.pb", "--no-cache", "--timeout", "60", cwd=zoo,
             cache=zoo / "other", env=kill_all)
    assert len(_errors(r.stderr)) == 2 and not (zoo / "other").exists()


def test_a_corrupt_or_foreign_cache_entry_is_ignored_and_rewritten(zoo):
    cache = zoo / "cache"
    args = ("check", "models/corpus", "--format", "json")
    cold = _cli(*args, cwd=zoo, cache=cache)
    entries = _entries(cache)
    assert cold.returncode == 1 and len(entries) == 15
    good = entries[0].read_bytes()
    entries[0].write_bytes(good[:len(good) // 2])  # truncated
    entries[1].write_bytes(b"\x00\xff garbage")
    foreign = json.loads(entries[2].read_text())  # well-formed, checksum fine, but another model's entry
    entries[3].write_text(json.dumps(foreign))
    tampered = json.loads(entries[4].read_text())  # an edited report: the checksum no longer matches
    tampered["result"]["report"]["findings"] = []
    entries[4].write_text(json.dumps(tampered))
    entries[5].write_text(json.dumps({"cache": "something else", "key": entries[5].stem}))
    again = _cli(*args, cwd=zoo, cache=cache)
    assert again.returncode == 1 and "graphfix:" not in again.stderr  # no error, no warning

    def strip(out):
        data = json.loads(out)
        for m in data["models"]:
            m.pop("timing_ms")
        return data

    assert strip(again.stdout) == strip(cold.stdout)
    for p in entries[:6]:  # rewritten: valid again
        assert json.loads(p.read_text())["key"] == p.stem
    r = _cli(*args, "--timeout", "60", cwd=zoo, cache=cache, env={"GRAPHFIX_TEST_KILL": "models/"})
    assert r.returncode == 1 and strip(r.stdout) == strip(cold.stdout)  # all hits now


def test_two_concurrent_runs_share_one_cache(zoo):
    cache = zoo / "cache"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", COLUMNS="120", GRAPHFIX_CACHE_DIR=str(cache))
    cmd = [sys.executable, os.path.join(ROOT, "cli.py"), "check", "models"]
    procs = [subprocess.Popen(cmd + extra, cwd=zoo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for extra in (["--jobs", "2"], ["--jobs", "1"], ["--select", "GF001"])]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [2, 2, 2]
    ref = _cli("check", "models", "--no-cache", cwd=zoo)
    assert _mask(outs[0][0]) == _mask(outs[1][0]) == _mask(ref.stdout)
    assert outs[0][1] == outs[1][1] == ref.stderr
    assert not [p for p in cache.rglob(".tmp-*")]  # no temporary file left
    assert len(_entries(cache)) == 2 * 19  # two option sets, 19 readable models
    for extra in ([], ["--select", "GF001"]):  # all hits: only the unreadable model reaches a (dying) worker
        r = _cli("check", "models", *extra, "--timeout", "60", cwd=zoo, cache=cache,
                 env={"GRAPHFIX_TEST_KILL": "models/"})
        assert [e.split(": ")[2] for e in _errors(r.stderr)] == ["models/sub/broken.pb"], r.stderr


def test_clean_removes_the_cache_and_only_a_cache(zoo):
    r = _cli("check", "models/sub/clean.pb", "models/detection.pb", cwd=zoo)
    assert r.returncode == 1 and (zoo / ".graphfix_cache" / "CACHEDIR.TAG").is_file()  # default: beside us
    assert (zoo / ".graphfix_cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    r = _cli("clean", cwd=zoo)
    assert r.returncode == 0 and r.stdout == "removed .graphfix_cache\n" and not (zoo / ".graphfix_cache").exists()
    r = _cli("clean", cwd=zoo)
    assert r.returncode == 0 and r.stdout == "no cache at .graphfix_cache\n"
    r = _cli("clean", cwd=zoo, cache=zoo / "models")  # not a cache: refused, nothing removed
    assert r.returncode == 2 and _errors(r.stderr) == [
        f"graphfix: error: {zoo / 'models'}: not a graphfix cache (no CACHEDIR.TAG written by graphfix); "
        "not removing it"]
    assert (zoo / "models" / "detection.pb").is_file()


# ------------------------------------------------------------------ shards

def test_shards_cover_every_model_exactly_once(zoo):
    full = _cli("check", "models", "--format", "json", "--no-cache", cwd=zoo)
    whole = {m["input"]: m for m in json.loads(full.stdout)["models"]}
    assert len(whole) == 19
    seen = []
    for k in range(1, 5):
        r = _cli("check", "models", "--format", "json", "--shard", f"{k}/4", "--no-cache", cwd=zoo)
        assert r.returncode in (0, 1, 2)
        data = json.loads(r.stdout)
        for m in data["models"]:
            assert {**m, "timing_ms": 0} == {**whole[m["input"]], "timing_ms": 0}
        seen += [m["input"] for m in data["models"]] + [e["input"] for e in data["errors"]]
        # the same shard again, and from absolute paths: the same models
        again = _cli("check", str(zoo / "models"), "--format", "json", "--shard", f"{k}/4", "--no-cache", cwd=zoo)
        assert [m["input"] for m in json.loads(again.stdout)["models"]] == \
            [str(zoo / m["input"]) for m in data["models"]]
    assert sorted(seen) == sorted(list(whole) + ["models/sub/broken.pb"])  # each once
    assert all(0 < seen.count(m) == 1 for m in whole)


@pytest.mark.parametrize("value", ["0/4", "5/4", "a/b", "2"])
def test_bad_shard_is_one_error_line(zoo, value):
    r = _cli("check", "models", "--shard", value, cwd=zoo)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--shard" in r.stderr, r.stderr


# ------------------------------------------------------------------ progress

def test_progress_shows_rate_and_slowest_model(zoo):
    from tests.test_batch import _run

    r = _run("check", "models/corpus", "--no-cache", cwd=zoo, tty=True)  # rich's bar
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", r.stderr)
    assert r.returncode == 1
    assert "15/15" in shown and re.search(r"\d+\.\d models/s", shown) and "slowest models/corpus/" in shown
    r = _run("check", "models/corpus", "--no-cache", cwd=zoo)  # not a terminal: nothing
    assert r.returncode == 1 and r.stderr == ""
    # the summary table on a terminal (stderr, with --format json) is drawn by rich, same figures
    r = _run("check", "models/corpus", "--no-cache", "--format", "json", cwd=zoo, tty=True)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", r.stderr)
    assert r.returncode == 1 and len(json.loads(r.stdout)["models"]) == 15
    models = json.loads(r.stdout)["models"]
    total = next(line for line in shown.splitlines() if line.strip().startswith("total (15)"))
    found = sum(len(m["findings"]) for m in models)
    assert total.split()[2:6] == [str(sum(m["nodes"] for m in models)), str(found), "-", str(found)], total
    assert "15 inputs: 3 clean, 12 with findings." in shown and "\x1b[" in r.stderr


# ------------------------------------------------------------------ reports survive the trip

@pytest.mark.parametrize("fmt", ["sarif", "github", "json"])
def test_batch_reports_render_like_single_model_reports(zoo, fmt):
    """A report that went through a worker process or the cache renders like
    the one `check MODEL` makes in-process (the batch path with --shard 1/1)."""
    cache = zoo / "cache"
    for name in ("where_log_distance_momentum.meta", "embedding_triplet_norm_momentum.pbtxt",
                 "detection_boolean_mask_momentum.pb"):
        path = f"models/corpus/{name}"
        single = run_cli("check", path, "--format", fmt, cwd=zoo)  # in this process, as the docstring says
        for run in ("cold", "warm"):  # computed in a worker, then read from the cache
            batch = _cli("check", path, "--shard", "1/1", "--format", fmt, "--timeout", "60", cwd=zoo,
                         cache=cache, env={"GRAPHFIX_TEST_KILL": "models/"} if run == "warm" else None)
            assert batch.returncode == single.returncode == 1, batch.stderr
            if fmt == "json":
                a, b = json.loads(single.stdout), json.loads(batch.stdout)["models"][0]
                a.pop("timing_ms"), b.pop("timing_ms")
                assert a == b
            else:
                assert batch.stdout == single.stdout, (name, run)
