"""Benchmark of batch runs: --jobs, the result cache, --shard.

Builds a model zoo of at least 200 graph files from the corpus of realistic
TF1 training graphs (tests/corpus: every case as a binary GraphDef .pb, a
MetaGraphDef .meta, a text GraphDef .pbtxt and a SavedModel directory), adds
the real-world files under tests/realworld/files/ (or --realworld DIR) when
that directory exists, and times the real CLI (one subprocess per run, as a
user or CI runs it):

  check    --jobs 1 vs --jobs 2 (--no-cache), alternating, --repeat times
           each (median); the outputs must be identical except for the
           seconds column
  rewrite  --out-dir, --jobs 1 vs --jobs 2, alternating, --rewrite-repeat
           times each; every written file byte for byte identical, and the
           reports too
  cache    `check` with an empty cache (cold), then again (warm); the warm
           run must take <= 5 % of the cold one and print the same report
  shard    `check --shard K/4` for K = 1..4; the union of the four must be the
           unsharded run, each model exactly once, with the same report

Usage:
    python bench/batch_bench.py [--json bench/batch_results.json] [--zoo DIR] [--skip-rewrite]
                                [--repeat 3] [--rewrite-repeat 2]
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRAPHFIX_SELECT", "ALL")  # the zoo's hazards are GF001/GF002's, opt-in since session 5
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLI = os.path.join(ROOT, "cli.py")
REALWORLD = os.path.join(ROOT, "tests", "realworld", "files")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def build_zoo(root: str) -> dict:
    """Write every corpus case four ways under ``root``; returns counts by kind."""
    from google.protobuf import text_format

    from graphfix.core.tfimport import protos
    from tests.corpus import CASES, build  # importing the package registers every case

    counts = {"pb": 0, "meta": 0, "pbtxt": 0, "saved_model": 0}
    names = sorted(CASES)
    for name in names:
        case = build(name)
        family = name.split("_")[0]
        d = os.path.join(root, family)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{name}.pb"), "wb") as f:
            f.write(case.graph_def.SerializeToString(deterministic=True))
        with open(os.path.join(d, f"{name}.meta"), "wb") as f:
            f.write(case.meta_graph_def.SerializeToString(deterministic=True))
        with open(os.path.join(d, f"{name}.pbtxt"), "w") as f:
            f.write(text_format.MessageToString(case.graph_def))
        saved = protos().saved_model_pb2.SavedModel()
        saved.saved_model_schema_version = 1
        meta = saved.meta_graphs.add()
        meta.CopyFrom(case.meta_graph_def)
        meta.meta_info_def.tags.append("train")
        sm = os.path.join(root, "saved_models", name)
        os.makedirs(os.path.join(sm, "variables"), exist_ok=True)
        with open(os.path.join(sm, "saved_model.pb"), "wb") as f:
            f.write(saved.SerializeToString(deterministic=True))
        for k in counts:
            counts[k] += 1
    return counts


def cli(*args, cwd, env=None):
    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", COLUMNS="200")
    e.update(env or {})
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, CLI, *args], capture_output=True, text=True, cwd=cwd, env=e)
    return r, time.perf_counter() - t0


def mask(text: str) -> str:
    """``text`` without its timings (seconds column blanked, spaces squeezed)."""
    return re.sub(r" +", " ", re.sub(r"\b\d+\.\d\d\b", "S", text))


def files(root: str) -> dict:
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, root)] = f.read()
    return out


def models_json(stdout: str) -> dict:
    data = json.loads(stdout)
    return {m["input"]: {k: v for k, v in m.items() if k != "timing_ms"} for m in data["models"]}


def alternate(repeat: int, run):
    """``run("1")`` and ``run("2")`` (--jobs), alternating, ``repeat`` times each,
    so that a change in the machine's load hits both alike."""
    runs = {"1": [], "2": []}
    for _ in range(repeat):
        for j in ("1", "2"):
            runs[j].append(run(j))
    return runs


def summary(runs) -> dict:
    import statistics

    t1 = statistics.median(t for _, t in runs["1"])
    t2 = statistics.median(t for _, t in runs["2"])
    return {"jobs1_s": round(t1, 2), "jobs2_s": round(t2, 2), "speedup": round(t1 / t2, 2),
            "jobs1_runs_s": [round(t, 2) for _, t in runs["1"]], "jobs2_runs_s": [round(t, 2) for _, t in runs["2"]],
            "exit": sorted({r.returncode for j in runs for r, _ in runs[j]})}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=os.path.join(HERE, "batch_results.json"))
    ap.add_argument("--zoo", help="build the zoo here (kept); default: a temporary directory")
    ap.add_argument("--skip-rewrite", action="store_true")
    ap.add_argument("--realworld", default=REALWORLD,
                    help="real graph files to add (copied into the zoo; default: tests/realworld/files, if present)")
    ap.add_argument("--repeat", type=int, default=3, help="check runs per --jobs value (median reported)")
    ap.add_argument("--rewrite-repeat", type=int, default=2, help="rewrite runs per --jobs value")
    opts = ap.parse_args()
    work = opts.zoo or tempfile.mkdtemp(prefix="graphfix-batch-bench-")
    zoo = os.path.join(work, "zoo")
    res = {"python": platform.python_version(), "cores": os.cpu_count(), "load_before": os.getloadavg()}
    t0 = time.perf_counter()
    if not os.path.isdir(zoo):
        res["zoo"] = build_zoo(zoo)
    res["zoo_build_s"] = round(time.perf_counter() - t0, 2)
    inputs = ["zoo"]
    if opts.realworld and os.path.isdir(opts.realworld):
        real = os.path.join(work, "realworld")
        if not os.path.isdir(real):
            shutil.copytree(opts.realworld, real, symlinks=True)
        inputs.append("realworld")
    res["inputs"] = inputs
    cache = os.path.join(work, "cache")
    env = {"GRAPHFIX_CACHE_DIR": cache}

    print("check: sequential vs --jobs 2 ...", flush=True)
    runs = alternate(opts.repeat, lambda j: cli("check", *inputs, "--jobs", j, "--no-cache", cwd=work, env=env))
    seq = runs["1"][0][0]
    table = [line for line in seq.stdout.splitlines() if line.startswith("total (")]
    res["models"] = int(re.search(r"total \((\d+)\)", table[-1]).group(1))
    res["check"] = summary(runs)
    res["check"]["identical"] = all(mask(r.stdout) == mask(seq.stdout) and r.stderr == seq.stderr
                                    and r.returncode == seq.returncode for r, _ in runs["1"] + runs["2"])
    print(" ", res["check"], flush=True)

    if not opts.skip_rewrite:
        print("rewrite --out-dir: sequential vs --jobs 2 ...", flush=True)
        outs = {}

        def rewrite(j):
            out = os.path.join(work, f"out{j}-{len(outs.setdefault(j, []))}")
            shutil.rmtree(out, ignore_errors=True)
            outs[j].append(out)
            return cli("rewrite", "--out-dir", out, *inputs, "--jobs", j, cwd=work, env=env)

        runs = alternate(opts.rewrite_repeat, rewrite)
        ref = files(outs["1"][0])
        res["rewrite"] = summary(runs)
        res["rewrite"]["files"] = len(ref)
        res["rewrite"]["files_identical"] = all(files(o) == ref for o in outs["1"] + outs["2"])
        seq = runs["1"][0][0]
        res["rewrite"]["reports_identical"] = all(
            mask(r.stdout.replace(o, "OUT")) == mask(seq.stdout.replace(outs["1"][0], "OUT"))
            for j in ("1", "2") for (r, _), o in zip(runs[j], outs[j]))
        print(" ", res["rewrite"], flush=True)

    print("cache: cold vs warm ...", flush=True)
    shutil.rmtree(cache, ignore_errors=True)
    cold, t_cold = cli("check", *inputs, cwd=work, env=env)
    warms = [cli("check", *inputs, cwd=work, env=env) for _ in range(3)]
    t_warm = sorted(t for _, t in warms)[1]
    res["cache"] = {"cold_s": round(t_cold, 2), "warm_s": round(t_warm, 3),
                    "warm_runs_s": [round(t, 3) for _, t in warms],
                    "warm_over_cold": round(t_warm / t_cold, 4),
                    "identical": all(mask(w.stdout) == mask(cold.stdout) and w.returncode == cold.returncode
                                     for w, _ in warms)}
    print(" ", res["cache"], flush=True)

    print("shards: 4 shards vs unsharded ...", flush=True)
    full, t_full = cli("check", *inputs, "--no-cache", "--format", "json", cwd=work, env=env)
    whole = models_json(full.stdout)
    union, sizes, times = {}, [], []
    for k in range(1, 5):
        r, t = cli("check", *inputs, "--no-cache", "--format", "json", "--shard", f"{k}/4", cwd=work, env=env)
        part = models_json(r.stdout)
        sizes.append(len(part))
        times.append(round(t, 2))
        for name, m in part.items():
            union.setdefault(name, []).append(m)
    once = all(len(v) == 1 for v in union.values())
    res["shard"] = {"unsharded_s": round(t_full, 2), "shard_s": times, "shard_models": sizes,
                    "union_equals_unsharded": once and {k: v[0] for k, v in union.items()} == whole,
                    "models": len(whole)}
    print(" ", res["shard"], flush=True)
    res["load_after"] = os.getloadavg()
    with open(opts.json, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print(f"wrote {opts.json}")
    if not opts.zoo:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
