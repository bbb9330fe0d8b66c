"""The one entry point for replacing a region of the forward graph with a
guard while keeping its gradient right (used by the pass manager).

Outside a while loop the stale gradient scopes are patched in place with the
guard's own gradient (:func:`graphfix.patch.gradients.patch_region`).  A while
loop's gradient is a second loop fed by stacks, so for a region inside one
whose gradient is taken, the gradient is regenerated with ``tf.gradients``
instead (:func:`graphfix.patch.regenerate.replace_region_in_loop`; it needs
the MetaGraphDef's control-flow contexts).
"""
from __future__ import annotations

from graphfix.patch.gradients import patch_region, stale_scopes, topo_order
from graphfix.patch.regenerate import replace_region_in_loop


def replace_region(ir, facts, *, code: str, anchor: str, region: list[str], output, build) -> list[str]:
    """Replace the ``output`` tensor(s) of ``region`` by ``build(builder)``
    (see :func:`graphfix.patch.gradients.patch_region`); returns the names of
    the nodes added."""
    if anchor in facts.in_loop:
        ordered = topo_order(ir, region)
        if stale_scopes(ir, facts, ordered):
            return replace_region_in_loop(ir, facts, code=code, anchor=anchor, region=ordered, output=output,
                                          build=build)
    return patch_region(ir, facts, code=code, anchor=anchor, region=region, output=output, build=build)
