"""SARIF 2.1.0 rendering of graphfix reports (``--format sarif``).

One ``run`` per invocation, however many models it covered: every registered
rule is a ``reportingDescriptor`` (id = code, name, short description = the
rule's summary, full description and help from its ruff-style docstring, fix
safety as a property); every finding is a ``result`` located by the input file
(``physicalLocation``, with line numbers for text graphs) and by the node
(``logicalLocation``, ``fullyQualifiedName`` = node name).  Unfixed findings
are ``error``\\s, fixed ones ``note``\\s.

SARIF fixes are text edits; a graph repair is not (it adds nodes and rewires
the gradient subgraph).  So a result's ``fixes`` entry describes the guard in
its ``description`` and ``properties`` (guard, safety, new nodes, whether it
was applied and where it was written), and its one ``artifactChange`` is a
zero-length, no-op replacement that only anchors the fix at the node — a SARIF
viewer that "applies" it changes nothing.  ``graphfix rewrite`` applies it.

Models that could not be read (batch mode) are ``toolExecutionNotifications``
of the invocation, which is then not ``executionSuccessful``.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import re
from importlib import metadata

import rewrites
from graphfix.core.version import __version__
from graphfix.render import locations

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_VERSION = "2.1.0"
# Placeholder until pyproject.toml names the project's home ([project.urls] Homepage),
# which information_uri() prefers.
INFORMATION_URI = "https://github.com/graphfix/graphfix"
LOGICAL_KIND = "object"  # a node of the graph (SARIF's logicalLocation kinds have no "graph node")

_SECTION = re.compile(r"^([A-Z][A-Za-z ]*[a-z?]):\s*$")

GUARD_TEXT = {
    "cond": "tf.cond(<hazard cannot fire>, <term>, 0) built from v1 Switch/Merge, so only the taken branch runs",
    "where": "tf.where(<hazard cannot fire>, <term>, 0)",
    "double-where": "a double tf.where, so neither the value nor the gradient of the unsafe branch is NaN",
    "stop_gradient": "tf.stop_gradient on the term, so it keeps its value but is not trained on",
    "div_no_nan": "tf.math.divide_no_nan (0 where the denominator is 0)",
    "safe-norm": "the safe norm where(s > 0, sqrt(where(s > 0, s, 1)), 0), whose gradient at 0 is 0",
    "exp-half": "exp(x / 2) in place of sqrt(exp(x)): the same value, a gradient that is never inf",
    "log-softmax": "tf.nn.log_softmax in place of log(softmax)",
    "gather-log-softmax": "a gather of tf.nn.log_softmax in place of the log of a gathered softmax",
    "onehot-log-softmax": "sum(one_hot * log_softmax) in place of the log of a one-hot-summed softmax",
    "log-sigmoid": "-softplus(-z) in place of log(sigmoid(z))",
    "log-one-minus-sigmoid": "-softplus(z) in place of log(1 - sigmoid(z))",
    "clamp": "a clamp of the argument into the op's finite range (changes values beyond it)",
    "masked-mean": "sum(where(mask, x, 0)) / maximum(count(mask), 1): the mean over the valid elements",
}


def guard_text(guard: str | None) -> str:
    """A one-line description of a guard style."""
    if not guard:
        return "a guard"
    return GUARD_TEXT.get(guard, f"a {guard} guard")


def fix_description(finding, applied: bool, output: str | None = None) -> str:
    """What the fix of ``finding`` does (or did), in one sentence or two."""
    verb = "Guarded" if applied else "Guard"
    text = f"{verb} {finding.node} ({finding.op}) with {guard_text(finding.guard)}"
    text += "; the term contributes 0 where the hazard fires and is unchanged elsewhere."
    if applied:
        added = sum(1 for n in finding.new_nodes if n != finding.node)
        text += f" {added} node{'s' if added != 1 else ''} added"
        text += f", written to {output}." if output else "."
    elif finding.safety == "unsafe":
        text += " Unsafe fix: may change values; apply with `graphfix rewrite --unsafe-fixes`."
    else:
        text += " Apply with `graphfix rewrite`."
    return text


def information_uri() -> str:
    """The project's home page from the installed package metadata, else :data:`INFORMATION_URI`."""
    try:
        for entry in metadata.metadata("graphfix").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() in ("homepage", "home", "source", "repository") and url.strip():
                return url.strip()
        home = metadata.metadata("graphfix").get("Home-page")
        if home and home != "UNKNOWN":
            return home
    except Exception:  # not installed, or metadata unreadable
        pass
    return INFORMATION_URI


# ------------------------------------------------------------------ rules

def doc_sections(rule) -> tuple[str, dict[str, str]]:
    """(title line, {section: dedented body}) of a rule's ruff-style docstring."""
    lines = inspect.cleandoc(rule.__doc__ or "").splitlines()
    title = lines[0].strip() if lines else f"{rule.code} {rule.name}"
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines[1:]:
        m = _SECTION.match(line)
        if m and not line.startswith((" ", "\t")):
            current = m.group(1).rstrip("?")
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return title, {k: inspect.cleandoc("\n".join(v)) for k, v in sections.items()}


def _paragraphs(text: str) -> str:
    """Re-flow hard-wrapped prose: one line per paragraph."""
    paras = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paras if p.strip())


def _markdown(title: str, sections: dict[str, str]) -> str:
    out = [f"## {title}"]
    for name, body in sections.items():
        out.append(f"### {name}")
        if name in ("Example", "Use instead"):
            out.append("```python\n" + body + "\n```")
        else:
            out.append(_paragraphs(body))
    return "\n\n".join(out)


def rule_descriptor(rule) -> dict:
    """The SARIF ``reportingDescriptor`` of a rule class."""
    title, sections = doc_sections(rule)
    what = sections.get("What it does", "")
    why = sections.get("Why is this bad", "")
    full = _paragraphs(what + ("\n\n" + why if why else "")) or rule.summary
    doc = rule.doc() if hasattr(rule, "doc") else title
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary or title},
        "fullDescription": {"text": full},
        "help": {"text": doc, "markdown": _markdown(title, sections)},
        # an opt-in rule (issue 11's noise policy) runs only when --select names it
        "defaultConfiguration": {"level": "error", "enabled": bool(getattr(rule, "default", True))},
        "properties": {
            "fixSafety": rule.safety,
            "guards": list(getattr(rule, "guards", ())),
            "tags": ["numerics", "nan", "tensorflow"],
            "problem.severity": "error",
        },
    }


def _all_rules():
    return sorted(rewrites.RULES, key=lambda r: r.code)


# ------------------------------------------------------------------ results

def _fingerprint(code: str, node: str) -> str:
    return hashlib.sha256(f"{code}\0{node}".encode()).hexdigest()[:32]


def _leaf(node: str) -> str:
    return node.rsplit("/", 1)[-1]


def _region(lines: dict, node: str) -> dict | None:
    if node not in lines:
        return None
    start, end = lines[node]
    return {"startLine": start, "endLine": end}


def _result(finding, report, rule_index: dict, art_index: int, art_loc: dict, lines: dict, mode: str) -> dict:
    applied = bool(finding.fixed)
    text = f"{finding.node}: {finding.message}"
    if applied:
        text += f" [fixed: {finding.guard} guard]" if finding.guard else " [fixed]"
    elif mode == "rewrite" and finding.note:
        text += f" [not fixed: {finding.note}]"
    phys = {"artifactLocation": {**art_loc, "index": art_index}}
    region = _region(lines, finding.node)
    if region:
        phys["region"] = region
    result = {
        "ruleId": finding.code,
        "level": "note" if applied else "error",
        "message": {"text": text},
        "locations": [{
            "physicalLocation": phys,
            "logicalLocations": [{"name": _leaf(finding.node), "fullyQualifiedName": finding.node,
                                  "kind": LOGICAL_KIND}],
        }],
        "partialFingerprints": {"graphfixNode/v1": _fingerprint(finding.code, finding.node)},
        "properties": {"node": finding.node, "op": finding.op, "rule": finding.rule, "safety": finding.safety,
                       "guard": finding.guard, "fixed": applied,
                       **({"note": finding.note} if finding.note else {}),
                       **({"output": report.output} if applied and report.output else {})},
    }
    if finding.code in rule_index:
        result["ruleIndex"] = rule_index[finding.code]
    if applied or finding.fixable:
        anchor = {"startLine": region["startLine"], "startColumn": 1, "endLine": region["startLine"],
                  "endColumn": 1} if region else {"byteOffset": 0, "byteLength": 0}
        result["fixes"] = [{
            "description": {"text": fix_description(finding, applied, report.output if applied else None)},
            "artifactChanges": [{
                "artifactLocation": {**art_loc, "index": art_index},
                "replacements": [{"deletedRegion": anchor}],
            }],
            "properties": {"guard": finding.guard, "safety": finding.safety, "applied": applied,
                           "newNodes": list(finding.new_nodes),
                           "graphEdit": True},
        }]
    return result


def to_sarif(reports, mode: str = "check", errors=()) -> dict:
    """The SARIF log (a dict) for ``reports`` (one per model) and the models
    that failed (``errors``: ``(path, message)`` pairs, the message naming the path)."""
    rules = _all_rules()
    rule_index = {r.code: i for i, r in enumerate(rules)}
    artifacts, art_index, results = [], {}, []
    for report in reports:
        path = locations.artifact_path(report.input)
        loc = locations.artifact_location(path)
        key = loc["uri"]
        if key not in art_index:
            art_index[key] = len(artifacts)
            artifacts.append({"location": dict(loc), "roles": ["analysisTarget"],
                              "mimeType": "text/plain" if "(text)" in report.format else "application/octet-stream",
                              "properties": {"graphFormat": report.format, "nodes": report.nodes}})
        lines = locations.node_lines(path, "(text)" in report.format) if report.findings else {}
        for f in report.findings:
            results.append(_result(f, report, rule_index, art_index[key], loc, lines, mode))
    notifications = []
    for path, message in errors:
        loc = locations.artifact_location(locations.artifact_path(path))
        notifications.append({"level": "error", "message": {"text": message},
                              "locations": [{"physicalLocation": {"artifactLocation": loc}}]})
    invocation = {"executionSuccessful": not errors, "properties": {"command": mode}}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    run = {
        "tool": {"driver": {"name": "graphfix", "version": __version__, "semanticVersion": __version__,
                            "informationUri": information_uri(), "rules": [rule_descriptor(r) for r in rules]}},
        "invocations": [invocation],
        "originalUriBaseIds": {"%SRCROOT%": {"uri": locations.root_uri()}},
        "artifacts": artifacts,
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    return {"$schema": SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def render_sarif(reports, mode: str = "check", errors=()) -> str:
    """:func:`to_sarif` as indented JSON text."""
    return json.dumps(to_sarif(reports, mode, errors), indent=2) + "\n"
