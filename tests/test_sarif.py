"""`--format sarif`: valid against the official SARIF 2.1.0 schema (vendored in
tests/data), with the rule metadata, levels, locations and fixes code-scanning
tools read."""
import json
import os
import shutil

import jsonschema
import pytest
from google.protobuf import text_format

import graphfix
import rewrites
from graphfix.render.sarif import doc_sections, rule_descriptor, to_sarif
from tests.helpers import EXAMPLES, ROOT, cli, run_cli

DETECTION = os.path.join(EXAMPLES, "detection.pb")
CLEAN = os.path.join(EXAMPLES, "clean.pb")
SCHEMA = os.path.join(os.path.dirname(__file__), "data", "sarif-schema-2.1.0.json")
# Other rules come and go while graphfix grows; these tests are about GF001's one hazard.
ONLY = ("--select", "GF001")


@pytest.fixture(scope="module")
def validator():
    with open(SCHEMA) as f:
        schema = json.load(f)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def _valid(validator, log):
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return log


def test_check_sarif_is_valid_and_complete(validator):
    r = cli("check", "examples/detection.pb", *ONLY, "--format", "sarif", cwd=ROOT)
    assert r.returncode == 1, r.stderr
    log = _valid(validator, json.loads(r.stdout))
    assert log["version"] == "2.1.0" and "sarif-schema-2.1.0" in log["$schema"]
    run, = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "graphfix" and driver["version"] == graphfix.__version__
    assert driver["informationUri"].startswith("https://")
    ids = [rule["id"] for rule in driver["rules"]]
    assert ids == sorted(r.code for r in rewrites.RULES)
    gf001 = driver["rules"][ids.index("GF001")]
    assert gf001["name"] == "empty-reduction"
    assert gf001["shortDescription"]["text"] == rewrites.lookup("GF001")[0].summary
    assert "mean" in gf001["fullDescription"]["text"].lower()
    assert "What it does" in gf001["help"]["text"] and "### Fix safety" in gf001["help"]["markdown"]
    assert gf001["properties"]["fixSafety"] == "safe"
    # opt-in rules are disabled in their default configuration; the default set is enabled
    assert {r["id"] for r in driver["rules"] if not r["defaultConfiguration"]["enabled"]} == \
        {r.code for r in rewrites.RULES if not r.default} >= {"GF001", "GF011"}

    result, = run["results"]
    assert result["ruleId"] == "GF001" and result["ruleIndex"] == ids.index("GF001")
    assert result["level"] == "error"
    assert "loss/Mean_1" in result["message"]["text"] and "NaN" in result["message"]["text"]
    loc, = result["locations"]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "examples/detection.pb"
    assert loc["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file://")
    logical, = loc["logicalLocations"]
    assert logical["fullyQualifiedName"] == "loss/Mean_1" and logical["kind"] in ("member", "object")
    assert run["artifacts"][loc["physicalLocation"]["artifactLocation"]["index"]]["location"]["uri"] == \
        "examples/detection.pb"
    fix, = result["fixes"]
    assert "cond" in fix["description"]["text"] and "graphfix rewrite" in fix["description"]["text"]
    assert fix["properties"]["applied"] is False
    assert run["invocations"][0]["executionSuccessful"] is True


def test_rewrite_sarif_marks_fixed_findings_as_notes(validator, tmp_path):
    out, rep = tmp_path / "fixed.pb", tmp_path / "report.sarif"
    r = run_cli("rewrite", DETECTION, out, *ONLY, "--format", "sarif", "--report", rep)
    assert r.returncode == 0, r.stderr
    assert out.exists()
    log = _valid(validator, json.loads(r.stdout))
    assert json.loads(rep.read_text()) == log
    result, = log["runs"][0]["results"]
    assert result["level"] == "note" and result["properties"]["fixed"] is True
    assert result["properties"]["output"] == str(out)
    # An absolute input path is a file: URI, not a %SRCROOT%-relative one (unless below the cwd).
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.endswith("examples/detection.pb")
    fix, = result["fixes"]
    assert fix["properties"]["applied"] is True and fix["properties"]["guard"] == "cond"
    assert "loss/Mean_1/graphfix/GF001/nonempty" in fix["properties"]["newNodes"]
    assert str(out) in fix["description"]["text"]
    # The fix's text edit is a no-op anchor: graph edits are not text edits.
    rep_ = fix["artifactChanges"][0]["replacements"][0]
    assert "insertedContent" not in rep_ and rep_["deletedRegion"] == {"byteOffset": 0, "byteLength": 0}


def test_clean_graph_gives_valid_empty_run(validator):
    r = cli("check", CLEAN, *ONLY, "--format", "sarif")
    assert r.returncode == 0, r.stderr
    log = _valid(validator, json.loads(r.stdout))
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"]


def test_text_graph_results_have_line_regions(validator, tmp_path, monkeypatch):
    model = graphfix.load(DETECTION)
    src = tmp_path / "det.pbtxt"
    src.write_text(text_format.MessageToString(model.graph_def))
    monkeypatch.chdir(tmp_path)
    report = graphfix.check(graphfix.load("det.pbtxt"), select=["GF001"])
    log = _valid(validator, to_sarif([report], "check"))
    result, = log["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    lines = src.read_text().splitlines()
    assert lines[region["startLine"] - 1] == "node {"
    assert lines[region["startLine"]] == '  name: "loss/Mean_1"'
    assert lines[region["endLine"] - 1] == "}"
    anchor = result["fixes"][0]["artifactChanges"][0]["replacements"][0]["deletedRegion"]
    assert anchor["startLine"] == anchor["endLine"] == region["startLine"]
    assert anchor["startColumn"] == anchor["endColumn"] == 1


def test_batch_sarif_reports_failed_models_as_notifications(validator, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(DETECTION, models / "detection.pb")
    (models / "broken.pb").write_bytes(b"\x08\x96\x01garbage")
    r = cli("check", "models", *ONLY, "--format", "sarif", cwd=tmp_path)
    assert r.returncode == 2
    log = _valid(validator, json.loads(r.stdout))
    run = log["runs"][0]
    assert [a["location"]["uri"] for a in run["artifacts"]] == ["models/detection.pb"]
    assert len(run["results"]) == 1
    inv, = run["invocations"]
    assert inv["executionSuccessful"] is False
    note, = inv["toolExecutionNotifications"]
    assert note["level"] == "error" and note["message"]["text"].startswith("models/broken.pb: ")
    assert "graphfix: error: models/broken.pb: " in r.stderr


def test_every_rule_docstring_makes_a_descriptor():
    for rule in rewrites.RULES:
        title, sections = doc_sections(rule)
        assert title.startswith(rule.code), title
        d = rule_descriptor(rule)
        assert d["id"] == rule.code and d["name"] == rule.name
        assert d["fullDescription"]["text"] and "\n" not in d["shortDescription"]["text"]
        assert d["properties"]["fixSafety"] in ("safe", "unsafe")


def test_every_guard_a_golden_case_emits_has_a_description():
    """SARIF describes each guard by name: no finding falls back to the generic text."""
    import glob
    import os

    from graphfix.render.sarif import GUARD_TEXT

    here = os.path.dirname(os.path.abspath(__file__))
    emitted = set()
    for report in glob.glob(os.path.join(here, "golden", "GF*", "*", "report.txt")):
        for line in open(report):
            if "(guard: " in line:
                emitted.add(line.split("(guard: ", 1)[1].split(")", 1)[0])
    assert emitted and emitted <= set(GUARD_TEXT), emitted - set(GUARD_TEXT)
