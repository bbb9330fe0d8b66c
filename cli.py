"""graphfix command line: a thin front end over the graphfix library API.

    python cli.py rewrite model.pb fixed.pb
    python cli.py check model.pb --format json
    python cli.py rules
    python cli.py explain GF001

Exit status: 0 nothing left to fix, 1 findings remain, 2 error.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + exits 2)
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _codes(value: str) -> list[str]:
    return [c for c in value.replace(" ", ",").split(",") if c]


def _common(p, formats=("text", "json", "sarif", "github")):
    p.add_argument("--format", choices=formats, default="text", help="report format (default: text)")
    p.add_argument("--report", metavar="FILE", help="also write the report to FILE (in --format)")
    p.add_argument("--select", type=_codes, action="extend", metavar="CODES",
                   help="only these rules (codes, prefixes or names, comma-separated)")
    p.add_argument("--ignore", type=_codes, action="extend", metavar="CODES", help="skip these rules")
    p.add_argument("--loss", action="append", metavar="TENSOR",
                   help="the loss tensor (repeatable); default: found from the gradient subgraph")
    p.add_argument("--stop-gradient", action="append", metavar="NODE", dest="stop_gradient",
                   help="GF007: a term that stays in the loss value but must not be trained on (repeatable)")
    p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    _op_library(p)


def _op_library(p):
    p.add_argument("--op-library", action="append", metavar="LIB.so", dest="op_library",
                   help="load a custom-op library (tf.load_op_library) the graph needs (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphfix", description="Repair TensorFlow 1.x graphs whose loss can become NaN "
                                                 "on some batches (empty means, zero denominators, NaN "
                                                 "gradients through tf.where, …).")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("rewrite", help="guard every hazard and write the fixed graph",
                       usage="graphfix rewrite [options] IN OUT\n"
                             "       graphfix rewrite [options] --diff IN [OUT]\n"
                             "       graphfix rewrite [options] --out-dir DIR IN_DIR_OR_GLOB [...]")
    p.add_argument("input", nargs="+", metavar="IN [OUT]",
                   help="IN: GraphDef .pb/.pbtxt, MetaGraphDef .meta, or SavedModel directory; OUT: where to "
                        "write the fixed graph (same kind as the input unless the extension says otherwise). "
                        "With --out-dir: any number of models, directories and globs")
    p.add_argument("--diff", action="store_true",
                   help="print a diff of the graph change and write no output graph (OUT may be omitted); "
                        "exit 1 if the graph would change")
    p.add_argument("--dot", metavar="FILE", help="draw each repaired term before/after as Graphviz DOT "
                                                 "(SVG if FILE ends in .svg and Graphviz is installed)")
    p.add_argument("--out-dir", metavar="DIR", dest="out_dir",
                   help="batch mode: rewrite every model IN names (files, directories, globs) into DIR, "
                        "mirroring relative paths")
    _common(p)
    p.add_argument("--guard", choices=("auto", "cond", "where"), default="auto",
                   help="guard style for rules that offer several (default: auto)")
    p.add_argument("--unsafe-fixes", action="store_true", help="also apply fixes that change values")
    p.add_argument("--clear-devices", action="store_true", help="drop every device placement")
    p.add_argument("--verify", action="store_true",
                   help="also run `graphfix verify` on the result (same feed derivation); exit 1 if it fails")
    p.add_argument("--to", choices=("graphdef", "metagraph"),
                   help="convert the output (default: keep the input's kind, whatever OUT's extension); "
                        "the report names what a conversion drops")

    p = sub.add_parser("check", help="report hazards, change nothing (exit 1 if any)")
    p.add_argument("input", nargs="+", metavar="IN",
                   help="model file or SavedModel directory; several, other directories (walked) and globs "
                        "check every model they name (batch mode)")
    _common(p)

    p = sub.add_parser("verify", help="run ORIGINAL and FIXED in TensorFlow and compare (exit 1 on a mismatch)")
    p.add_argument("original")
    p.add_argument("fixed")
    p.add_argument("--feeds", metavar="FILE.npz", help="normal feeds (placeholder name -> array); default: "
                                                      "random data from the placeholders' dtypes and shapes")
    p.add_argument("--trials", type=int, default=3, metavar="N", help="random normal feeds to try (default 3)")
    p.add_argument("--loss", action="append", metavar="TENSOR", help="the loss tensor (repeatable)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    _op_library(p)

    sub.add_parser("rules", help="list the rules")
    p = sub.add_parser("explain", help="print a rule's documentation")
    p.add_argument("code", help="rule code or name, e.g. GF001")
    return parser


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup (temp files) runs."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    debug = "--debug" in argv
    try:  # SIGTERM (a CI job cancelled) unwinds like Ctrl-C: no temp file is left behind
        old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread
        old_sigterm = None
    try:
        args = parser.parse_args(argv)
        if args.version:
            from graphfix import __version__

            print(f"graphfix {__version__}")
            return EXIT_CLEAN
        if args.command is None:
            print("graphfix: error: no command given (rewrite, check, verify, rules or explain; see graphfix "
                  "--help)", file=sys.stderr)
            return EXIT_ERROR
        return _dispatch(args)
    except _UsageError as e:
        print(f"graphfix: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("graphfix: error: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("graphfix: error: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as e:  # noqa: BLE001 — the contract is one line, never a traceback
        from graphfix.errors import GraphfixError

        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(e, GraphfixError):
            msg = str(e)
        elif isinstance(e, MemoryError):
            msg = "out of memory"
        else:
            msg = f"internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)"
        print(f"graphfix: error: {' '.join(msg.split())}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if old_sigterm is not None:
            signal.signal(signal.SIGTERM, old_sigterm)


def _dispatch(args) -> int:
    for lib in getattr(args, "op_library", None) or ():
        from graphfix.scratch import load_op_library

        load_op_library(lib)
    if args.command == "rules":
        return _cmd_rules()
    if args.command == "explain":
        return _cmd_explain(args.code)
    if args.command == "rewrite" and getattr(args, "out_dir", None) and (args.verify or args.to):
        from graphfix.errors import GraphfixError

        raise GraphfixError(f"--{'verify' if args.verify else 'to'} works on one model (rewrite IN OUT), "
                            "not with --out-dir")
    if args.command in ("check", "rewrite"):
        from graphfix import batch

        if batch.route(args):  # many models (also normalises args.input/args.output for one)
            return batch.run(args, options=_options(args))
    if args.command == "check":
        return _cmd_check(args)
    if args.command == "rewrite":
        return _cmd_rewrite(args)
    if args.command == "verify":
        return _cmd_verify(args)
    raise AssertionError(args.command)


def _cmd_rules() -> int:
    import rewrites

    print(f"{'code':6}  {'name':24}  {'fix':6}  summary")
    for r in sorted(rewrites.RULES, key=lambda r: r.code):
        print(f"{r.code:6}  {r.name:24}  {r.safety:6}  {r.summary}")
    return EXIT_CLEAN


def _cmd_explain(code: str) -> int:
    import rewrites

    rules = rewrites.lookup(code)
    print("\n\n".join(r.doc() for r in rules))
    return EXIT_CLEAN


def _emit(report, fmt: str, mode: str, report_file: str | None, stream=None) -> None:
    from graphfix import io
    from graphfix.report import render

    text = render(report, fmt, mode)
    (stream or sys.stdout).write(text)
    if report_file:
        io.atomic_write(report_file, text.encode("utf-8"))


def _cmd_check(args) -> int:
    import graphfix

    if args.report:
        from graphfix import io

        io.check_writable(args.report)
        io.check_distinct(args.report, "--report", [args.input])
    model = graphfix.load(args.input)
    report = graphfix.check(model, select=args.select, ignore=args.ignore, losses=args.loss,
                            options=_options(args))
    _emit(report, args.format, "check", args.report)
    return EXIT_FINDINGS if report.found else EXIT_CLEAN


def _cmd_rewrite(args) -> int:
    import graphfix
    from graphfix import io

    io.check_writable(args.output) if not os.path.isdir(args.input) and not args.diff else None
    if args.report:
        io.check_writable(args.report)
        io.check_distinct(args.report, "--report", [args.input, args.output])
    if args.dot:
        from graphfix import dot

        dot.check_target(args.dot)
    model = graphfix.load(args.input)
    fixed, report = graphfix.rewrite(model, select=args.select, ignore=args.ignore, unsafe_fixes=args.unsafe_fixes,
                                     guard=args.guard, losses=args.loss, clear_devices=args.clear_devices,
                                     options=_options(args))
    if args.verify:  # before anything is written: the report must say what holds
        from graphfix import verify
        from graphfix.selfcheck import record_verify

        record_verify(report, verify.verify(model, fixed, losses=args.loss))
    if args.dot:
        dot.write(model, fixed, report.findings, args.dot, title=args.input)
    if args.diff:  # like ruff: print the change, write no graph; exit 1 if it would change
        from graphfix.diff import graph_diff

        text = graph_diff(model, fixed, args.input, args.output or args.input)
        sys.stdout.write(text)
        _emit(report, args.format, "rewrite", args.report, stream=sys.stderr)
        if args.format == "text":
            print("--diff: no graph written.", file=sys.stderr)
        return EXIT_FINDINGS if text or report.remaining or report.verify_failed else EXIT_CLEAN
    report.dropped = graphfix.save(fixed, args.output, to=args.to)
    report.output = args.output
    _emit(report, args.format, "rewrite", args.report)
    return EXIT_FINDINGS if report.remaining or report.verify_failed else EXIT_CLEAN


def _options(args) -> dict:
    return {"stop_gradient": list(args.stop_gradient or [])}


def _cmd_verify(args) -> int:
    import graphfix
    from graphfix import verify

    original = graphfix.load(args.original)
    fixed = graphfix.load(args.fixed)
    result = verify.verify(original, fixed, feeds=args.feeds, losses=args.loss, trials=args.trials)
    sys.stdout.write(result.render(args.format))
    return EXIT_CLEAN if result.ok else EXIT_FINDINGS


if __name__ == "__main__":
    sys.exit(main())
