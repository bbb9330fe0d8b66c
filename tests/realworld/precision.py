"""Precision of graphfix on real graphs other people wrote.

Runs ``graphfix.check`` over every graph of manifest.json that fetch.py has
extracted into files/, and compares each finding — (file id, node, code) —
with the hand-judged table judged.csv (columns file_id, node, code, verdict
true|false, reason).  Prints, per rule and overall, how many findings are
judged true; lists findings nobody has judged yet, judged findings that no
longer appear (a ``true`` one vanishing is a lost detection), files with no
finding, and files graphfix cannot load.

Rules are run twice when the default set is smaller than the whole registry:
the precision gate is on the default set (what ``graphfix check`` reports),
and the opt-in rules' findings are judged and reported too.

A file graphfix cannot load is recorded in judged.csv with code ``load-error``
and node empty: verdict ``true`` when the rejection is right (TensorFlow's own
``import_graph_def`` rejects the file too), ``false`` when graphfix wrongly
rejects a real graph.  Such rows are counted apart from precision, and a new
load error fails the run just like an unjudged finding.

    python tests/realworld/precision.py [--json] [--files DIR] [--min 0.90] [--rewrite]

``--rewrite`` also runs ``graphfix.rewrite`` (TensorFlow; ~1 min) on every
file with a finding and lists where its findings differ from ``check``'s:
rewrite applies the rules one after another to the graph the previous ones
changed, so it can report terms check never showed (and miss ones an earlier
fix covered).  That list is informational; it does not change the exit status.

Issue 11's noise policy is checked too: a default rule whose judged
findings show its precision is under --min (one-sided exact binomial test,
p < 0.05: "cannot reach" it) fails the run until the rule is made opt-in.

Exit status: 0 every finding judged, precision >= --min and no default rule
shown to be under it; 1 not; 2 nothing
to measure (no extracted files — run fetch.py first) or a bad judged.csv.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repository root: graphfix, rewrites
sys.path.insert(0, HERE)

import fetch  # noqa: E402  (tests/realworld/fetch.py, beside this file)

JUDGED = os.path.join(HERE, "judged.csv")
LOAD_ERROR = "load-error"
COLUMNS = ["file_id", "node", "code", "verdict", "reason"]


class JudgedError(Exception):
    pass


def load_judged(path: str = JUDGED) -> dict[tuple[str, str, str], tuple[str, str]]:
    """{(file_id, node, code): (verdict, reason)} from judged.csv."""
    table = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != COLUMNS:
            raise JudgedError(f"{path}: columns must be {','.join(COLUMNS)}, not {reader.fieldnames}")
        for i, row in enumerate(reader, start=2):
            key = (row["file_id"], row["node"], row["code"])
            if row["verdict"] not in ("true", "false"):
                raise JudgedError(f"{path}:{i}: verdict must be true or false, not {row['verdict']!r}")
            if not row["reason"].strip():
                raise JudgedError(f"{path}:{i}: no reason given")
            if key in table:
                raise JudgedError(f"{path}:{i}: {key} judged twice")
            table[key] = (row["verdict"], row["reason"])
    return table


def rule_sets():
    """(codes of the default rule set, codes of every rule)."""
    import rewrites

    return [r.code for r in rewrites.RULES if r.default], [r.code for r in rewrites.RULES]


def run_graphfix(entries, root: str):
    """Findings per present file: {id: {"default": set, "all": set, "error": str|None, "seconds": float}}."""
    import graphfix

    default_codes, all_codes = rule_sets()
    opt_in = [c for c in all_codes if c not in default_codes]
    out = {}
    for entry in entries:
        if not fetch.present(entry, root):
            continue
        t0 = time.perf_counter()
        res = {"default": set(), "all": set(), "error": None}
        try:
            model = graphfix.load(fetch.target(entry, root))
            found = {(f.node, f.code) for f in graphfix.check(model, select=default_codes).findings}
            res["default"] = found
            res["all"] = set(found)
            if opt_in:  # as `graphfix check --select <every code>` reports them
                res["all"] |= {(f.node, f.code) for f in graphfix.check(model, select=all_codes).findings}
        except graphfix.GraphfixError as e:
            res["error"] = str(e).replace(fetch.target(entry, root), "<file>")
        res["seconds"] = time.perf_counter() - t0
        out[entry["id"]] = res
    return out


def rewrite_disagreements(entries, root: str, results) -> list[dict]:
    """Per file with check findings: (code, node) pairs only rewrite reports, and only check reports."""
    import graphfix

    out = []
    for entry in entries:
        res = results.get(entry["id"])
        if not res or res["error"] is not None or not res["default"]:
            continue
        model = graphfix.load(fetch.target(entry, root))
        try:
            _, report = graphfix.rewrite(model)
        except graphfix.GraphfixError as e:
            out.append({"file_id": entry["id"], "rewrite_error": str(e)})
            continue
        got = {(f.node, f.code) for f in report.findings}
        only_r, only_c = sorted(got - res["default"]), sorted(res["default"] - got)
        if only_r or only_c:
            out.append({"file_id": entry["id"], "only_rewrite": [list(x) for x in only_r],
                        "only_check": [list(x) for x in only_c]})
    return out


def _precision(true: int, judged: int):
    return true / judged if judged else None


ALPHA = 0.05  # issue 11's noise policy, as a test: a rule "cannot reach" the minimum when


def below_minimum(true: int, judged: int, minimum: float, alpha: float = ALPHA) -> tuple[float | None, bool]:
    """(p, below): ``p`` is the chance of ``true`` or fewer true findings out of
    ``judged`` for a rule whose precision were exactly ``minimum`` (one-sided
    exact binomial test); ``below`` when p < ``alpha``, i.e. the judged
    findings show the rule's precision is under the minimum.  Such a rule
    leaves the default set (``default = False``)."""
    if not judged:
        return None, False
    p = sum(math.comb(judged, k) * minimum ** k * (1 - minimum) ** (judged - k) for k in range(true + 1))
    return p, p < alpha


def measure(root: str = fetch.FILES, judged_path: str = JUDGED, minimum: float = 0.90, entries=None) -> dict:
    """Run graphfix over the extracted files and compare with the judged table."""
    entries = fetch.load_manifest() if entries is None else entries
    judged = load_judged(judged_path)
    results = run_graphfix(entries, root)
    default_codes, all_codes = rule_sets()
    per_rule = {c: {"found": 0, "true": 0, "false": 0, "unjudged": 0, "default": c in default_codes}
                for c in all_codes}
    findings, unjudged, errors, new_errors, clean = [], [], [], [], []
    for fid, res in sorted(results.items()):
        if res["error"] is not None:
            known = (fid, "", LOAD_ERROR) in judged
            errors.append({"file_id": fid, "error": res["error"], "known": known})
            if not known:
                new_errors.append(fid)
            continue
        if not res["all"]:
            clean.append(fid)
        for node, code in sorted(res["all"]):
            verdict, reason = judged.get((fid, node, code), (None, None))
            item = {"file_id": fid, "node": node, "code": code, "verdict": verdict, "reason": reason,
                    "default": (node, code) in res["default"]}
            findings.append(item)
            stats = per_rule.setdefault(code, {"found": 0, "true": 0, "false": 0, "unjudged": 0,
                                               "default": item["default"]})
            stats["found"] += 1
            stats[verdict or "unjudged"] += 1
            if verdict is None:
                unjudged.append(item)
    now = {(f["file_id"], f["node"], f["code"]) for f in findings}
    vanished = [{"file_id": k[0], "node": k[1], "code": k[2], "verdict": v[0], "reason": v[1]}
                for k, v in sorted(judged.items())
                if k[2] != LOAD_ERROR and k[0] in results and results[k[0]]["error"] is None and k not in now]
    fixed_errors = [k[0] for k in judged if k[2] == LOAD_ERROR and k[0] in results and results[k[0]]["error"] is None]
    for stats in per_rule.values():
        stats["precision"] = _precision(stats["true"], stats["true"] + stats["false"])
        stats["p_value"], stats["below_minimum"] = below_minimum(stats["true"], stats["true"] + stats["false"],
                                                                 minimum)
    noisy_defaults = sorted(c for c, st in per_rule.items() if st["default"] and st["below_minimum"])
    d_true = sum(1 for f in findings if f["default"] and f["verdict"] == "true")
    d_judged = sum(1 for f in findings if f["default"] and f["verdict"])
    a_true = sum(1 for f in findings if f["verdict"] == "true")
    a_judged = sum(1 for f in findings if f["verdict"])
    precision = _precision(d_true, d_judged)
    ok = not unjudged and not new_errors and not noisy_defaults and (precision is None or precision >= minimum)
    return {
        "files": len(results), "manifest": len(entries),
        "repos": len({e["repo"] for e in entries if e["id"] in results}),
        "files_with_findings": len({f["file_id"] for f in findings}), "files_without_findings": clean,
        "findings": findings, "per_rule": per_rule,
        "precision": precision, "true": d_true, "judged": d_judged,
        "precision_all_rules": _precision(a_true, a_judged), "true_all_rules": a_true, "judged_all_rules": a_judged,
        "unjudged": unjudged, "vanished": vanished, "load_errors": errors, "new_load_errors": new_errors,
        "load_errors_gone": fixed_errors, "minimum": minimum, "ok": ok, "noisy_defaults": noisy_defaults,
        "seconds": round(sum(r["seconds"] for r in results.values()), 2),
    }


def _pct(p):
    return "n/a" if p is None else f"{100 * p:.1f} %"


def render_text(m: dict) -> str:
    lines = [f"{m['files']} of {m['manifest']} manifest files present ({m['repos']} repositories), "
             f"checked in {m['seconds']} s; {m['files_with_findings']} with findings, "
             f"{len(m['files_without_findings'])} without, {len(m['load_errors'])} graphfix cannot load", "",
             "rule    default  found  true  false  unjudged  precision  p(at 90 %)"]
    for code, s in sorted(m["per_rule"].items()):
        pv = s.get("p_value")
        lines.append(f"{code:7} {'yes' if s['default'] else 'no':>7}  {s['found']:5}  {s['true']:4}  {s['false']:5}"
                     f"  {s['unjudged']:8}  {_pct(s['precision']):>9}  "
                     f"{'' if pv is None else f'{pv:.3f}'}{'  below' if s.get('below_minimum') else ''}")
    lines += ["", f"precision (default rules): {m['true']}/{m['judged']} = {_pct(m['precision'])} "
                  f"(minimum {_pct(m['minimum'])})",
              f"precision (all rules):     {m['true_all_rules']}/{m['judged_all_rules']} = "
              f"{_pct(m['precision_all_rules'])}"]
    if m.get("noisy_defaults"):
        lines += ["", f"default rules whose precision is shown to be under {_pct(m['minimum'])} (p < {ALPHA}): "
                      f"{', '.join(m['noisy_defaults'])} — issue 11's noise policy makes them opt-in"]
    if m["unjudged"]:
        lines += ["", f"{len(m['unjudged'])} unjudged finding(s) — add a line each to judged.csv:"]
        lines += [f"  {f['file_id']},{f['node']},{f['code']},?,?" for f in m["unjudged"]]
    if m["vanished"]:
        lines += ["", f"{len(m['vanished'])} judged finding(s) no longer reported:"]
        lines += [f"  {v['file_id']} {v['node']} {v['code']} (was {v['verdict']}: {v['reason']})"
                  for v in m["vanished"]]
    if m["load_errors"]:
        lines += ["", "files graphfix cannot load:"]
        lines += [f"  {e['file_id']}: {e['error']}{'' if e['known'] else '  [NEW: judge it]'}"
                  for e in m["load_errors"]]
    if m["load_errors_gone"]:
        lines += ["", "judged load errors that now load (drop their rows): " + ", ".join(m["load_errors_gone"])]
    if "rewrite_disagreements" in m:
        lines += ["", f"check and rewrite disagree on {len(m['rewrite_disagreements'])} file(s):"]
        for d in m["rewrite_disagreements"]:
            if "rewrite_error" in d:
                lines.append(f"  {d['file_id']}: rewrite failed: {d['rewrite_error']}")
                continue
            lines += [f"  {d['file_id']}: only rewrite {code} {node}" for node, code in d["only_rewrite"]]
            lines += [f"  {d['file_id']}: only check   {code} {node}" for node, code in d["only_check"]]
    lines += ["", "OK" if m["ok"] else "FAIL"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print the measurement as JSON")
    ap.add_argument("--files", default=fetch.FILES, help="extracted files (default: tests/realworld/files)")
    ap.add_argument("--judged", default=JUDGED, help="judged table (default: tests/realworld/judged.csv)")
    ap.add_argument("--min", type=float, default=0.90, help="minimum precision of the default rules")
    ap.add_argument("--rewrite", action="store_true", help="also list where rewrite's findings differ from check's")
    args = ap.parse_args(argv)
    try:
        m = measure(args.files, args.judged, args.min)
    except (OSError, JudgedError) as e:
        print(f"precision: error: {e}", file=sys.stderr)
        return 2
    if m["files"] == 0:
        print(f"precision: error: no extracted files under {args.files}: run tests/realworld/fetch.py first",
              file=sys.stderr)
        return 2
    if args.rewrite:
        entries = fetch.load_manifest()
        with_findings = {f["file_id"] for f in m["findings"]}
        checked = run_graphfix([e for e in entries if e["id"] in with_findings], args.files)
        m["rewrite_disagreements"] = rewrite_disagreements(entries, args.files, checked)
    print(json.dumps(m, indent=1, sort_keys=True) if args.json else render_text(m))
    return 0 if m["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
