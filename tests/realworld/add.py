"""Add a graph file (or SavedModel directory) from a mirrored repository to manifest.json.

    python tests/realworld/add.py OWNER/NAME COMMIT PATH [--id ID] [--note TEXT] [--mirror DIR]

PATH is a .pb / .pbtxt / .meta file, or the directory holding saved_model.pb.
The entry gets its sha256, size and kind from the mirror.  It is refused if
graphfix cannot load it — unless --load-error is given, for a real graph
graphfix wrongly rejects — or if the manifest already has a file with the same
sha256.  Run fetch.py afterwards, then precision.py, and judge what it finds.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)

import fetch  # noqa: E402


def _show(gdir, commit, path):
    proc = subprocess.run(["git", "--git-dir", gdir, "show", f"{commit}:{path}"], capture_output=True)
    return proc.stdout if proc.returncode == 0 else None


def build_entry(gdir, repo, commit, path, entry_id=None, note=None, allow_load_error=False):
    import graphfix

    commit = subprocess.run(["git", "--git-dir", gdir, "rev-parse", commit], capture_output=True,
                            text=True).stdout.strip()
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        raise SystemExit(f"add: error: {repo} has no commit {commit!r}")
    path = path.rstrip("/")
    listing = subprocess.run(["git", "--git-dir", gdir, "ls-tree", "-r", "--name-only", commit, path + "/"],
                             capture_output=True, text=True).stdout.split()
    saved = bool(listing)
    files = {os.path.relpath(f, path): _show(gdir, commit, f) for f in listing} if saved else \
        {os.path.basename(path): _show(gdir, commit, path)}
    files = {k: v for k, v in files.items() if v is not None}
    main = files.get("saved_model.pb") if saved else files.get(os.path.basename(path))
    if main is None:
        raise SystemExit(f"add: error: {path} is not in {repo}@{commit[:12]} (or is not a SavedModel directory)")
    if main.startswith(b"version https://git-lfs"):
        raise SystemExit("add: error: a Git LFS pointer, not a graph")
    with tempfile.TemporaryDirectory() as tmp:
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "wb") as f:
                f.write(data)
        try:
            model = graphfix.load(tmp if saved else os.path.join(tmp, os.path.basename(path)))
            kind = model.kind
            applies = sum(1 for n in model.graph_def.node if n.op.startswith(("Apply", "ResourceApply")))
            auto = (f"training graph, {model.node_count} nodes, {applies} apply op(s)" if applies
                    else f"inference/forward graph, {model.node_count} nodes")
        except graphfix.GraphfixError as e:
            if not allow_load_error:
                raise SystemExit(f"add: error: graphfix cannot load it: {e}")
            kind = "saved_model" if saved else ("meta_graph" if path.endswith(".meta") else "graph_def")
            auto = f"graphfix cannot load it: {str(e).split(': ', 1)[-1][:120]}"
    slug = lambda s: re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()  # noqa: E731
    entry = {"id": entry_id or f"{slug(repo.split('/')[1])[:24]}--{slug(path)[-56:].lstrip('-')}",
             "repo": repo, "commit": commit, "path": path, "sha256": hashlib.sha256(main).hexdigest(),
             "kind": kind, "bytes": sum(len(v) for v in files.values()), "note": note or auto}
    if saved:
        entry["files"] = [{"path": k, "sha256": hashlib.sha256(v).hexdigest(), "bytes": len(v)}
                          for k, v in sorted(files.items())]
    return entry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo")
    ap.add_argument("commit")
    ap.add_argument("path")
    ap.add_argument("--id")
    ap.add_argument("--note")
    ap.add_argument("--mirror", default="/work/.mirror")
    ap.add_argument("--load-error", action="store_true", help="record a real graph graphfix cannot load")
    args = ap.parse_args(argv)
    gdir = fetch.git_dir(args.mirror, args.repo)
    if gdir is None:
        print(f"add: error: {args.repo} is not in {args.mirror}", file=sys.stderr)
        return 2
    entry = build_entry(gdir, args.repo, args.commit, args.path, args.id, args.note, args.load_error)
    with open(fetch.MANIFEST, encoding="utf-8") as f:
        manifest = json.load(f)
    for e in manifest["entries"]:
        if e["id"] == entry["id"] or e["sha256"] == entry["sha256"]:
            print(f"add: error: the manifest already has {e['id']} (same id or sha256)", file=sys.stderr)
            return 2
    manifest["entries"] = sorted(manifest["entries"] + [entry], key=lambda e: e["id"])
    with open(fetch.MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    print(f"added {entry['id']}: {entry['note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
