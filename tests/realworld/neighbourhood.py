"""Print the neighbourhood of a node in an extracted real-world graph, to judge a finding.

    python tests/realworld/neighbourhood.py FILE_ID NODE [--up 4] [--down 3]

Shows the node, the producers of its inputs up to --up levels (indented tree,
constants with their value) and its consumers down to --down levels, with
each node's op.  Shared subtrees are printed once (``…`` marks a repeat).
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)

import fetch  # noqa: E402


def _const(node) -> str:
    if node.op != "Const":
        return ""
    t = node.attr["value"].tensor
    vals = list(t.float_val) or list(t.int_val) or list(t.double_val) or list(t.int64_val) or list(t.bool_val)
    dims = [d.size for d in t.tensor_shape.dim]
    return f" = {vals[:4]}{'…' if len(vals) > 4 else ''} shape={dims}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file_id")
    ap.add_argument("node")
    ap.add_argument("--up", type=int, default=4)
    ap.add_argument("--down", type=int, default=3)
    args = ap.parse_args(argv)
    import graphfix

    entry = {e["id"]: e for e in fetch.load_manifest()}[args.file_id]
    gd = graphfix.load(fetch.target(entry)).graph_def
    nodes = {n.name: n for n in gd.node}
    users: dict[str, list[str]] = {}
    for n in gd.node:
        for i in n.input:
            users.setdefault(i.lstrip("^").split(":")[0], []).append(n.name)
    seen = set()

    def up(name, depth, indent):
        n = nodes.get(name.lstrip("^").split(":")[0])
        if n is None:
            print(f"{indent}{name} (not in graph)")
            return
        mark = " …" if n.name in seen and n.input else ""
        print(f"{indent}{name} [{n.op}]{_const(n)}{mark}")
        if mark or depth == 0:
            return
        seen.add(n.name)
        for i in n.input:
            up(i, depth - 1, indent + "  ")

    def down(name, depth, indent):
        for u in users.get(name, []):
            print(f"{indent}-> {u} [{nodes[u].op}]")
            if depth > 1:
                down(u, depth - 1, indent + "  ")

    print("== inputs")
    up(args.node, args.up, "")
    print("== consumers")
    down(args.node, args.down, "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
