"""The rules graphfix applies, one module each, registered by code.

The registry is an explicit ordered list: rules run in this order, and the
order matters where one rule's guard is another's input (a denominator
guarded by GF002 is no longer a zero-denominator for anyone else).
"""
from __future__ import annotations

import os

from graphfix.core.errors import GraphfixError
from rewrites.empty_reduction import EmptyReduction
from rewrites.exp_overflow import ExpOverflow
from rewrites.log_picked_probability import LogPickedProbability
from rewrites.log_probability import LogProbability
from rewrites.log_unbounded import LogUnbounded
from rewrites.masked_mean import MaskedMean
from rewrites.masked_term import MaskedTerm
from rewrites.safe_norm import SafeNorm
from rewrites.stop_gradient import StopGradient
from rewrites.where_gradient import WhereGradient
from rewrites.zero_denominator import ZeroDenominator

# Execution order.  GF007 first: a term the user removes from training needs
# no other guard's gradient.  GF005 before the where/mask rules: it rewrites
# log(softmax) into a form with no singular op left (GF011 likewise, for the
# logs of picked probabilities GF005 leaves to it).  GF003/GF006 before
# GF002/GF004: a division or root inside a where or a mask is theirs (one
# double where covers it).  GF002 after GF001: a sum/size mean is GF001's.
# The report-only rules last, so they skip what another rule already covers.
# A rule whose ``default`` is False (too noisy on real graphs to be on by
# default, as ruff keeps its noisiest rules out of the defaults) runs only
# when --select names it (by code, prefix or name).
RULES = [
    StopGradient,
    LogProbability,
    LogPickedProbability,
    EmptyReduction,
    WhereGradient,
    MaskedTerm,
    ZeroDenominator,
    SafeNorm,
    ExpOverflow,
    LogUnbounded,
    MaskedMean,
]

BY_NAME = {r.name: r for r in RULES}


def lookup(token: str):
    """Rules named by a code (``GF001``), a code prefix (``GF``, ``GF00``), a
    name, or ``ALL`` (every rule, the opt-in ones too)."""
    t = token.strip()
    if t.upper() == "ALL":
        return list(RULES)
    if t in BY_NAME:
        return [BY_NAME[t]]
    hits = [r for r in RULES if r.code.upper().startswith(t.upper())] if t else []
    if not hits:
        raise GraphfixError(f"unknown rule {token!r} (see `graphfix rules`)")
    return hits


# Codes (comma-separated, as --select takes them) used when --select is not
# given, e.g. GRAPHFIX_SELECT=ALL in a CI job that wants the opt-in rules too.
SELECT_ENV = "GRAPHFIX_SELECT"


def requested(select=None):
    """The --select tokens in force: ``select``, else those of $GRAPHFIX_SELECT,
    else None (the default set)."""
    if select:
        return list(select)
    env = [t.strip() for t in os.environ.get(SELECT_ENV, "").split(",") if t.strip()]
    return env or None


def _named(tokens) -> set:
    """The rule classes the --select / --ignore tokens name."""
    return {r for tok in tokens or () for r in lookup(tok)}


def opt_in(ignore=None):
    """The rules outside the default set (minus --ignore), as instances."""
    dropped = _named(ignore)
    return [r() for r in RULES if not r.default and r not in dropped]


def select(select=None, ignore=None):
    """Rule instances after --select / --ignore (codes, prefixes or names);
    without --select, the default set."""
    select = requested(select)
    wanted = _named(select) if select else {r for r in RULES if r.default}
    dropped = _named(ignore)
    return [r() for r in RULES if r in wanted and r not in dropped]
