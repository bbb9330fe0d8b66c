"""The rules graphfix applies, one module each, registered by code.

The registry is an explicit ordered list: rules run in this order, and the
order matters where one rule's guard is another's input (a denominator
guarded by GF002 is no longer a zero-denominator for anyone else).
"""
from __future__ import annotations

from graphfix.errors import GraphfixError
from rewrites.empty_reduction import EmptyReduction

RULES = [
    EmptyReduction,
]

BY_CODE = {r.code: r for r in RULES}
BY_NAME = {r.name: r for r in RULES}


def lookup(token: str):
    """Rules named by a code (``GF001``), a code prefix (``GF``, ``GF00``) or a name."""
    t = token.strip()
    if t in BY_NAME:
        return [BY_NAME[t]]
    hits = [r for r in RULES if r.code.upper().startswith(t.upper())] if t else []
    if not hits:
        raise GraphfixError(f"unknown rule {token!r} (see `graphfix rules`)")
    return hits


def select(select=None, ignore=None):
    """Rule instances after --select / --ignore (codes, prefixes or names)."""
    chosen = list(RULES)
    if select:
        wanted = {r for tok in select for r in lookup(tok)}
        chosen = [r for r in chosen if r in wanted]
    if ignore:
        dropped = {r for tok in ignore for r in lookup(tok)}
        chosen = [r for r in chosen if r not in dropped]
    return [r() for r in chosen]
