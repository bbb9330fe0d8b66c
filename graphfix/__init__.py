"""graphfix: repair TensorFlow 1.x graphs whose loss can become NaN on some batches.

    import graphfix
    model = graphfix.load("model.pb")
    report = graphfix.check(model)
    fixed, report = graphfix.rewrite(model)
    graphfix.save(fixed, "fixed.pb")
    result = graphfix.verify(model, fixed)

The package is layered; each layer imports only the ones before it
(tests/test_layering.py holds it to that):

    core          model, IR, I/O, errors, findings, the lazy TensorFlow import
    analysis      numeric abstract interpretation, losses, gradient paths
    patch         scratch graphs, gradient patching and regeneration
    engine        the pass manager, guard builders, self-check
    rewrites      the rules (a top-level package, beside graphfix)
    render        text, JSON, SARIF, GitHub, diff, dot, terminal output
    api           load / check / rewrite / save
    verification  differential execution (``graphfix verify``)
    cli           batch runs, the result cache, worker pool (with cli.py)

Importing graphfix does not import TensorFlow.
"""
from __future__ import annotations

from graphfix.api import check, load, rewrite, save
from graphfix.core.errors import GraphfixError
from graphfix.core.version import __version__
from graphfix.verification.differential import verify

__all__ = ["load", "check", "rewrite", "save", "verify", "GraphfixError", "__version__"]
