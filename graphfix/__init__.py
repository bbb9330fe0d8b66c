"""graphfix: repair TensorFlow 1.x graphs whose loss can become NaN on some batches.

    import graphfix
    model = graphfix.load("model.pb")
    report = graphfix.check(model)
    fixed, report = graphfix.rewrite(model)
    graphfix.save(fixed, "fixed.pb")
"""
from __future__ import annotations

__version__ = "0.1.0"  # the only place the version is written (pyproject.toml reads it)

from graphfix.api import check, load, rewrite, save  # noqa: E402
from graphfix.errors import GraphfixError  # noqa: E402
from graphfix import verify  # noqa: E402  (callable: graphfix.verify(original, fixed, feeds=None))

__all__ = ["load", "check", "rewrite", "save", "verify", "GraphfixError", "__version__"]
