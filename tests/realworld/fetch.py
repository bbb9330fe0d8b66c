"""Extract the real-world graphs listed in manifest.json from local git mirrors.

The graphs belong to other people's public repositories, so they are not
stored here.  Each manifest entry names a repository, a commit and a path;
this script reads that commit with ``git show COMMIT:PATH`` from a local
mirror of the repository and writes the file into ``files/<id>/`` (ignored by
git), checking its sha256.  A SavedModel entry is a directory: every file the
manifest lists for it is extracted and checked.

Mirrors are looked up as ``MIRROR/<owner>+<name>/repo`` (a bare git
directory, or a work tree with ``.git`` inside) — the layout the project's
``fetch`` tool produces; ``--mirror DIR`` points elsewhere.  Nothing is
downloaded: repositories missing from the mirror are listed at the end, and
whoever runs this has to clone them there first (CI cannot).

    python tests/realworld/fetch.py [--mirror DIR] [--force] [--only ID ...]

Exit status: 0 every entry is present and verified, 1 some are missing or
failed verification, 2 bad arguments or a corrupt manifest.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(HERE, "manifest.json")
FILES = os.path.join(HERE, "files")


def load_manifest(path: str = MANIFEST) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)["entries"]


def target(entry: dict, root: str = FILES) -> str:
    """Where an entry lives once extracted: a file, or a SavedModel directory."""
    base = os.path.join(root, entry["id"])
    return base if entry["kind"] == "saved_model" else os.path.join(base, os.path.basename(entry["path"]))


def members(entry: dict) -> list[tuple[str, str, str]]:
    """(path in the repository, path under files/<id>/, sha256) of each file of an entry."""
    if entry["kind"] == "saved_model":
        return [(f"{entry['path']}/{f['path']}", f["path"], f["sha256"]) for f in entry["files"]]
    return [(entry["path"], os.path.basename(entry["path"]), entry["sha256"])]


def git_dir(mirror: str, repo: str) -> str | None:
    base = os.path.join(mirror, repo.replace("/", "+", 1), "repo")
    for cand in (os.path.join(base, ".git"), base):
        if os.path.isfile(os.path.join(cand, "HEAD")):
            return cand
    return None


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def present(entry: dict, root: str = FILES) -> bool:
    """Whether every file of the entry is extracted with the recorded sha256."""
    base = os.path.join(root, entry["id"])
    for _, rel, digest in members(entry):
        p = os.path.join(base, rel)
        if not os.path.isfile(p) or sha256_file(p) != digest:
            return False
    return True


def extract(entry: dict, gdir: str, root: str = FILES) -> str | None:
    """Write the entry's files under root; None on success, else why not."""
    base = os.path.join(root, entry["id"])
    for repo_path, rel, digest in members(entry):
        proc = subprocess.run(["git", "--git-dir", gdir, "show", f"{entry['commit']}:{repo_path}"],
                              capture_output=True)
        if proc.returncode != 0:
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            return f"git show {entry['commit'][:12]}:{repo_path}: {msg[-1] if msg else 'failed'}"
        data = proc.stdout
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            return f"{repo_path}: sha256 {got[:16]}… != manifest {digest[:16]}…"
        out = os.path.join(base, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tmp = out + ".part"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, out)
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mirror", default="/work/.mirror", help="directory of <owner>+<name>/repo git mirrors")
    ap.add_argument("--out", default=FILES, help="where to extract (default: tests/realworld/files)")
    ap.add_argument("--force", action="store_true", help="extract again even when present and verified")
    ap.add_argument("--only", nargs="*", default=None, metavar="ID", help="only these entry ids")
    args = ap.parse_args(argv)
    try:
        entries = load_manifest()
    except (OSError, ValueError, KeyError) as e:
        print(f"fetch: error: cannot read {MANIFEST}: {e}", file=sys.stderr)
        return 2
    if args.only:
        unknown = set(args.only) - {e["id"] for e in entries}
        if unknown:
            print(f"fetch: error: unknown id(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        entries = [e for e in entries if e["id"] in set(args.only)]
    missing_repos: dict[str, int] = {}
    failed, done, kept = [], 0, 0
    for entry in entries:
        if not args.force and present(entry, args.out):
            kept += 1
            continue
        gdir = git_dir(args.mirror, entry["repo"])
        if gdir is None:
            missing_repos[entry["repo"]] = missing_repos.get(entry["repo"], 0) + 1
            continue
        why = extract(entry, gdir, args.out)
        if why:
            failed.append((entry["id"], why))
        else:
            done += 1
    print(f"{len(entries)} entries: {done} extracted, {kept} already present, "
          f"{sum(missing_repos.values())} in missing repositories, {len(failed)} failed")
    for i, why in failed:
        print(f"  failed {i}: {why}")
    if missing_repos:
        print(f"{len(missing_repos)} repositories are not in {args.mirror} (clone them as "
              f"{args.mirror}/<owner>+<name>/repo, then run this again):")
        for repo, n in sorted(missing_repos.items()):
            print(f"  {repo}  ({n} file{'s' if n > 1 else ''})")
    return 1 if failed or missing_repos else 0


if __name__ == "__main__":
    sys.exit(main())
