"""The README tells a newcomer everything, and what it shows works: the test
command is the one CI runs, every option is documented, the `graphfix`
command is where it says, the pre-commit hook and the code-scanning job run."""
import json
import os
import re
import shutil
import subprocess
import sys

import jsonschema
import yaml

from tests.helpers import EXAMPLES, ROOT, cli

README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
GRAPHFIX = os.path.join(os.path.dirname(sys.executable), "graphfix")  # the console script, as installed
SCHEMA = os.path.join(ROOT, "tests", "data", "sarif-schema-2.1.0.json")


def _blocks(lang):
    return re.findall(rf"^```{lang}\n(.*?)^```", README, re.M | re.S)


def test_ci_runs_exactly_the_readme_test_command():
    commands = [b.strip() for b in _blocks("sh") if "pytest" in b]
    assert len(commands) == 1, commands
    assert "-n auto" in commands[0]  # parallel (pytest-xdist)
    ci = [ln.strip() for ln in open(os.path.join(ROOT, ".ci", "run")) if "pytest" in ln and not ln.startswith("#")]
    assert ci == commands


def test_every_option_is_in_the_readme():
    top = cli("--help").stdout
    commands = re.findall(r"^    ([a-z]+) ", top.split("COMMAND", 2)[2], re.M)  # as --help lists them
    assert {"check", "rewrite", "verify", "rules", "explain"} <= set(commands), top
    for command in ("", *commands):
        r = cli(*([command] if command else []), "--help")
        assert r.returncode == 0, r.stderr
        options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-V)\b", r.stdout)) - {"--help"}
        assert options, r.stdout
        missing = [o for o in sorted(options) if o not in README]
        assert not missing, (command, missing)


def test_the_graphfix_command_is_where_the_readme_says():
    assert ".venv/bin/graphfix" in README and ". .venv/bin/activate" in README
    assert os.path.isfile(GRAPHFIX) and os.access(GRAPHFIX, os.X_OK)
    r = subprocess.run([GRAPHFIX, "-V"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("graphfix ")


def test_pre_commit_hook_runs_graphfix_check_on_graph_files(tmp_path):
    hooks = yaml.safe_load(open(os.path.join(ROOT, ".pre-commit-hooks.yaml")))
    (hook,) = hooks
    assert hook["id"] == "graphfix-check" and hook["language"] == "python"
    assert hook["id"] in README
    files = re.compile(hook["files"])
    for name in ("a.pb", "dir/b.pbtxt", "model.meta", "sm/saved_model.pb"):
        assert files.search(name), name
    for name in ("train.py", "model.pb.txt", "README.md", "x.pbtxt.orig"):
        assert not files.search(name), name
    # pre-commit runs: entry + args + the staged file names
    argv = hook["entry"].split() + hook.get("args", [])
    assert argv[0] == "graphfix"
    clean, dirty = os.path.join(EXAMPLES, "clean.pb"), os.path.join(EXAMPLES, "detection.pb")
    r = subprocess.run([GRAPHFIX, *argv[1:], clean], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([GRAPHFIX, *argv[1:], clean, dirty], capture_output=True, text=True)
    assert r.returncode == 1 and "GF001" in r.stdout  # the commit is stopped


def test_readme_code_scanning_job_writes_and_uploads_valid_sarif(tmp_path):
    # the one-machine job (a job with a matrix of shards may also be shown)
    (job,) = [yaml.safe_load(b) for b in _blocks("yaml") if "upload-sarif" in b and "matrix" not in b]
    steps = job["jobs"]["graphfix"]["steps"]
    assert job["jobs"]["graphfix"]["permissions"]["security-events"] == "write"
    (check,) = [s["run"] for s in steps if "run" in s and "graphfix check" in s["run"]]
    (upload,) = [s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")]
    out = re.search(r"> (\S+)", check)[1]
    assert upload["with"]["sarif_file"] == out
    os.makedirs(tmp_path / "models" / "det")
    shutil.copy(os.path.join(EXAMPLES, "detection.pb"), tmp_path / "models" / "det" / "model.pb")
    shutil.copy(os.path.join(EXAMPLES, "clean.pb"), tmp_path / "models" / "clean.pb")
    env = dict(os.environ, PATH=os.path.dirname(GRAPHFIX) + os.pathsep + os.environ["PATH"])
    r = subprocess.run(["bash", "-eo", "pipefail", "-c", check], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr  # findings (exit 1) do not fail the job ...
    sarif = json.loads((tmp_path / out).read_text())
    jsonschema.validate(sarif, json.load(open(SCHEMA)))
    results = sarif["runs"][0]["results"]
    assert [x["ruleId"] for x in results] == ["GF001"] and results[0]["level"] == "error"
    (tmp_path / "models" / "broken.pb").write_bytes(b"not a graph")
    r = subprocess.run(["bash", "-eo", "pipefail", "-c", check], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert r.returncode != 0 and "broken.pb" in r.stderr  # ... an error does
