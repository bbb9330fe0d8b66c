"""Rules and the pass manager that runs them.

A rule (one module under ``rewrites/``) has a code, a kebab-case name, a fix
safety and a ruff-style docstring; ``match`` reads the IR and the shared
analysis :class:`~graphfix.analysis.Facts` and returns findings, ``fix``
applies one finding through the IR's edit API.  The pass manager runs the
selected rules in registry order, re-matching until nothing more is fixed
(a fixed term is recognised as guarded, so this reaches a fixpoint), and
times each rule.
"""
from __future__ import annotations

import inspect
import time

from graphfix.analysis import Facts
from graphfix.analysis.dtypes import is_float
from graphfix.core import tfimport
from graphfix.core.errors import FixError
from graphfix.core.findings import Finding
from graphfix.engine.selfcheck import check_fixes
from graphfix.patch.region import replace_region

GUARDS = ("auto", "cond", "where")
MAX_ITERATIONS = 8


class Rule:
    """Base class of every rule.  Subclasses set the class attributes and
    implement :meth:`match` and :meth:`fix`."""

    code = "GF000"
    name = "rule"
    safety = "safe"
    summary = ""
    guards: tuple[str, ...] = ("where",)
    default = True  # in the default rule set (False: only when --select names it)
    # Noise policy: "gradient" — a gradient-only hazard, looked for only where
    # a gradient is taken; "loss" — a report-only rule, only where a loss is
    # known (not in an inference graph); None — everywhere.
    needs: str | None = None

    def match(self, ctx: "Context") -> list[Finding]:
        raise NotImplementedError

    def fix(self, ctx: "Context", finding: Finding) -> list[str]:
        raise NotImplementedError

    def sites(self, ctx, *ops: str) -> list[str]:
        """The float nodes of these op types that feed a loss, in graph order;
        none where the rule's noise policy (:attr:`needs`) keeps it quiet."""
        facts = ctx.facts
        if (self.needs == "loss" and not facts.losses) or (self.needs == "gradient" and not facts.gradient_taken):
            return []
        return [n for n in facts.nodes_of(*ops) if is_float(ctx.ir, n) and facts.feeds_loss(n)]

    def finding(self, ctx, node: str, message: str, **kw) -> Finding:
        return Finding(code=self.code, rule=self.name, node=node, op=ctx.ir.op(node), message=message,
                       safety=kw.pop("safety", self.safety), **kw)

    def pick_guard(self, ctx, node: str) -> str:
        """The guard style to use at ``node``: the requested one if this rule
        offers it, else the rule's default; ``cond`` never inside a loop frame."""
        want = ctx.guard
        if want == "auto" or want not in self.guards:
            want = self.guards[0]
        if want == "cond" and node in ctx.facts.in_loop:
            want = "where" if "where" in self.guards else want
        return want

    def replace_node(self, ctx, node: str, build, region=None, output=None) -> list[str]:
        """Replace output 0 of ``node`` (or ``output`` of ``region``) by the
        guard ``build`` makes, patching the gradient subgraph (graphfix.patch.gradients)."""
        return replace_region(ctx.ir, ctx.facts, code=self.code, anchor=node, region=region or [node],
                              output=output or (node, 0), build=build)

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")


class Context:
    """What a rule sees: the IR, fresh analysis facts, and the user's options."""

    def __init__(self, ir, losses=None, guard: str = "auto", unsafe_fixes: bool = False, options=None):
        self.ir = ir
        self.losses = list(losses or [])
        self.guard = guard
        self.unsafe_fixes = unsafe_fixes
        self.options = dict(options or {})
        self.covered: set[str] = set()  # nodes a rule's finding already covers (report-only rules skip them)
        self.domain_covered: set[str] = set()  # ... by a where whose test keeps the input in its domain
        self._facts: Facts | None = None
        self._first: Facts | None = None

    @property
    def facts(self) -> Facts:
        if self._facts is None or self._facts.version != self.ir.version:
            self._facts = Facts(self.ir, self.losses, pinned=self._first, previous=self._facts)
            if self._first is None:
                self._first = self._facts
        return self._facts


def run(ctx: Context, rules, apply: bool) -> tuple[list[Finding], dict[str, float]]:
    """Match (and, if ``apply``, fix) until a fixpoint; findings in order found.

    With ``apply``, the last round matches on the final graph and fixes
    nothing; a fixed finding it matches again is not fixed
    (:mod:`graphfix.engine.selfcheck`, which also checks the gradient path).
    ``timing`` has each rule's milliseconds; the first fix that needs
    TensorFlow imports it, and that import is counted under
    ``"tensorflow_import"``, not under the rule."""
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    # (node, its op) -> code of the first rule that reported it: one hazard, one
    # rule; a guard that now carries the node's name (another op) is a new node
    claimed: dict[tuple[str, str], str] = {}
    timing: dict[str, float] = {}
    matched: set[tuple[str, str]] = set()
    covered_by: dict[str, tuple[set, set]] = {}  # rule code -> the nodes its matching marked covered
    # the graph as read, which the self-check compares with (only a rewrite needs it)
    ops_before = ctx.ir.op_table() if apply else {}
    for round_ in range(MAX_ITERATIONS + 1):
        fixed_any = False
        matched = set()
        last = round_ == MAX_ITERATIONS  # only re-match: the fixed graph as it will be written
        for rule in rules:
            t0, tf0 = time.perf_counter(), tfimport.import_ms
            before = (set(ctx.covered), set(ctx.domain_covered))
            for f in rule.match(ctx):
                key = (f.code, f.node)
                matched.add(key)
                if key in seen or last:
                    continue
                if f.node not in ctx.ir or claimed.get((f.node, ctx.ir.op(f.node)), f.code) != f.code:
                    continue
                seen.add(key)
                claimed[(f.node, ctx.ir.op(f.node))] = f.code
                findings.append(f)
                if apply and f.fixable and (f.safety == "safe" or ctx.unsafe_fixes):
                    ctx.ir.start_edit_log()  # graphfix.patch.gradients records each region it replaces
                    try:
                        f.new_nodes = sorted(rule.fix(ctx, f))
                        f.fixed = True
                        fixed_any = True
                    except FixError as e:
                        f.note = str(e)
                    f.data["edits"] = ctx.ir.end_edit_log()
            covered_by.setdefault(rule.code, (set(), set()))
            covered_by[rule.code][0].update(ctx.covered - before[0])
            covered_by[rule.code][1].update(ctx.domain_covered - before[1])
            tf_ms = tfimport.import_ms - tf0
            timing[rule.code] = timing.get(rule.code, 0.0) + (time.perf_counter() - t0) * 1000 - tf_ms
            if tf_ms:
                timing["tensorflow_import"] = timing.get("tensorflow_import", 0.0) + tf_ms
        if not apply or not fixed_any:
            break
    if apply and any(f.fixed for f in findings):
        t0 = time.perf_counter()
        matched |= _rematch(ctx, rules, findings, covered_by)
        check_fixes(ctx.ir, ctx.facts.grad_scopes, findings, matched, ops_before, ctx.facts.in_loop)
        timing["selfcheck"] = (time.perf_counter() - t0) * 1000
    return findings, timing


def _rematch(ctx, rules, findings, covered_by) -> set[tuple[str, str]]:
    """Match again, on the final graph, every rule with a fixed finding, with
    only the coverage *other* rules recorded: a rule's own earlier match must
    not hide the hazard its fix was meant to remove."""
    codes = {f.code for f in findings if f.fixed}
    keys: set[tuple[str, str]] = set()
    saved = ctx.covered, ctx.domain_covered
    try:
        for rule in rules:
            if rule.code not in codes:
                continue
            ctx.covered = set().union(*(c for code, (c, _) in covered_by.items() if code != rule.code))
            ctx.domain_covered = set().union(*(d for code, (_, d) in covered_by.items() if code != rule.code))
            keys.update((f.code, f.node) for f in rule.match(ctx))
    finally:
        ctx.covered, ctx.domain_covered = saved
    return keys
