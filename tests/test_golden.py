"""Golden-file tests, lit style: tests/golden/<rule>/<case>/{input,expected}.pbtxt + report.txt.

Inputs are made by the builders in tests/golden/<rule>/cases.py.  Nothing
here changes unless pytest runs with --update-golden; review a golden diff
like code.  Expected outputs hold nodes TensorFlow generates (gradients, cond
plumbing); tf_version.txt records the TensorFlow that wrote them.  They are
byte-identical under TensorFlow 2.15 and 2.21; a future TensorFlow that builds
gradients differently fails here, and its diff is to be reviewed.
"""
import importlib
import os

import pytest
from google.protobuf import text_format

import graphfix
from graphfix.render.report import render_text

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
RULE_DIRS = sorted(d for d in os.listdir(GOLDEN) if d.startswith("GF"))


def _cases():
    for rule in RULE_DIRS:
        mod = importlib.import_module(f"tests.golden.{rule}.cases")
        for name, (builder, options) in sorted(mod.CASES.items()):
            yield pytest.param(rule, name, builder, options, id=f"{rule}/{name}")


def _write(path, text):
    """Atomic: parallel workers (pytest -n) may write tf_version.txt at once."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@pytest.mark.parametrize("rule,name,builder,options", list(_cases()))
def test_golden(rule, name, builder, options, update_golden, tf):
    case_dir = os.path.join(GOLDEN, rule, name)
    inp = os.path.join(case_dir, "input.pbtxt")
    version_file = os.path.join(GOLDEN, "tf_version.txt")
    if update_golden:
        os.makedirs(case_dir, exist_ok=True)
        _write(inp, text_format.MessageToString(builder(tf)))
        _write(version_file, tf.__version__ + "\n")

    cwd = os.getcwd()
    os.chdir(case_dir)  # reports name the input as 'input.pbtxt'
    try:
        model = graphfix.load("input.pbtxt")
        fixed, report = graphfix.rewrite(model, select=[rule], **options)
    finally:
        os.chdir(cwd)
    out_text = text_format.MessageToString(fixed.graph_def)
    report_text = render_text(report, "rewrite")
    if update_golden:
        _write(os.path.join(case_dir, "expected.pbtxt"), out_text)
        _write(os.path.join(case_dir, "report.txt"), report_text)
    assert out_text == open(os.path.join(case_dir, "expected.pbtxt")).read()
    assert report_text == open(os.path.join(case_dir, "report.txt")).read()

    # The expected output is a fixpoint: rewriting it again changes nothing.
    again, report2 = graphfix.rewrite(graphfix.load(os.path.join(case_dir, "expected.pbtxt")), select=[rule],
                                      **options)
    assert again.changed is False and report2.found == report.remaining, report2.findings
