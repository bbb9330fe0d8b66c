"""graphfix: repair TensorFlow 1.x graphs whose loss can become NaN on some batches.

    import graphfix
    model = graphfix.load("model.pb")
    report = graphfix.check(model)
    fixed, report = graphfix.rewrite(model)
    graphfix.save(fixed, "fixed.pb")

The API is imported on first use, so that ``import graphfix.errors`` (the
command line's start, a batch run answered from the result cache) does not
pay for networkx and the analyses.
"""
from __future__ import annotations

__version__ = "0.1.0"  # the only place the version is written (pyproject.toml reads it)

__all__ = ["load", "check", "rewrite", "save", "verify", "GraphfixError", "__version__"]

_API = ("load", "check", "rewrite", "save")


def __getattr__(name: str):
    if name in _API:
        from graphfix import api

        return getattr(api, name)
    if name == "GraphfixError":
        from graphfix.errors import GraphfixError

        return GraphfixError
    if name == "verify":  # callable: graphfix.verify(original, fixed, feeds=None)
        import importlib

        return importlib.import_module("graphfix.verify")
    raise AttributeError(f"module 'graphfix' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
