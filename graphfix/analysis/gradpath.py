"""Gradient structure: which nodes belong to which ``tf.gradients`` call, and
which ops lie on the path from the variables to a loss."""
from __future__ import annotations

import re
from collections import defaultdict

import networkx as nx


_SPLICED = re.compile(r"/graphfix/GF\d+/grad(?:_\d+)?/")


class GradScopes:
    """Index of gradient-function name scopes: ``(prefix, forward op) -> nodes``.

    ``tf.gradients`` builds the gradient of forward op ``X`` under
    ``<prefix>/X_grad/``; this maps each such scope back to ``X``.
    """

    def __init__(self, ir, prefixes):
        self.prefixes = sorted(set(prefixes), key=len, reverse=True)
        self.scopes: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.members: set[str] = set()
        if not self.prefixes:
            return
        for name in ir.names():
            for gp in self.prefixes:
                if name.startswith(gp + "/"):
                    self.members.add(name)
                    rest = name[len(gp) + 1:]
                    i = rest.find("_grad/")
                    if i > 0:
                        self.scopes[(gp, rest[:i])].append(name)
                    break

    def has_scope(self, fwd: str) -> bool:
        """Some ``tf.gradients`` call differentiated forward op ``fwd``."""
        return any((gp, fwd) in self.scopes for gp in self.prefixes)

    def scope(self, prefix: str, fwd: str) -> list[str]:
        return self.scopes.get((prefix, fwd), [])

    def is_gradient_node(self, name: str) -> bool:
        """In a gradient subgraph: under a gradient prefix, or a gradient that
        graphfix spliced in (``<op>/graphfix/<CODE>/grad…/``)."""
        return name in self.members or (self.prefixes and _SPLICED.search(name) is not None)


def ancestors_of(ir, tensors) -> set[str]:
    """Nodes that the given tensors depend on (data and control), the producers included."""
    res: set[str] = set()
    for t in tensors:
        node = t.rsplit(":", 1)[0]
        if node in ir and node not in res:
            res.add(node)
            res |= nx.ancestors(ir.g, node)
    return res
