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
import sys

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + exits 2)
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _codes(value: str) -> list[str]:
    return [c for c in value.replace(" ", ",").split(",") if c]


def _common(p, formats=("text", "json")):
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphfix", description="Repair TensorFlow 1.x graphs whose loss can become NaN "
                                                 "on some batches (empty means, zero denominators, NaN "
                                                 "gradients through tf.where, …).")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("rewrite", help="guard every hazard and write the fixed graph")
    p.add_argument("input", help="GraphDef .pb/.pbtxt, MetaGraphDef .meta, or SavedModel directory")
    p.add_argument("output", help="where to write the fixed graph (same kind as the input unless the "
                                  "extension says otherwise)")
    _common(p)
    p.add_argument("--guard", choices=("auto", "cond", "where"), default="auto",
                   help="guard style for rules that offer several (default: auto)")
    p.add_argument("--unsafe-fixes", action="store_true", help="also apply fixes that change values")
    p.add_argument("--clear-devices", action="store_true", help="drop every device placement")

    p = sub.add_parser("check", help="report hazards, change nothing (exit 1 if any)")
    p.add_argument("input")
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

    sub.add_parser("rules", help="list the rules")
    p = sub.add_parser("explain", help="print a rule's documentation")
    p.add_argument("code", help="rule code or name, e.g. GF001")
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
        if args.version:
            from graphfix import __version__

            print(f"graphfix {__version__}")
            return EXIT_CLEAN
        if args.command is None:
            parser.print_help()
            return EXIT_ERROR
        return _dispatch(args)
    except _UsageError as e:
        print(f"graphfix: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("graphfix: error: interrupted", file=sys.stderr)
        return 130
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


def _dispatch(args) -> int:
    if args.command == "rules":
        return _cmd_rules()
    if args.command == "explain":
        return _cmd_explain(args.code)
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
    for r in rewrites.RULES:
        print(f"{r.code:6}  {r.name:24}  {r.safety:6}  {r.summary}")
    return EXIT_CLEAN


def _cmd_explain(code: str) -> int:
    import rewrites

    rules = rewrites.lookup(code)
    print("\n\n".join(r.doc() for r in rules))
    return EXIT_CLEAN


def _emit(report, fmt: str, mode: str, report_file: str | None) -> None:
    from graphfix import io
    from graphfix.report import render_json, render_text

    text = render_json(report) if fmt == "json" else render_text(report, mode)
    sys.stdout.write(text)
    if report_file:
        io.atomic_write(report_file, text.encode("utf-8"))


def _cmd_check(args) -> int:
    import graphfix

    if args.report:
        from graphfix import io

        io.check_writable(args.report)
    model = graphfix.load(args.input)
    report = graphfix.check(model, select=args.select, ignore=args.ignore, losses=args.loss,
                            options=_options(args))
    _emit(report, args.format, "check", args.report)
    return EXIT_FINDINGS if report.found else EXIT_CLEAN


def _cmd_rewrite(args) -> int:
    import graphfix
    from graphfix import io

    io.check_writable(args.output) if not os.path.isdir(args.input) else None
    if args.report:
        io.check_writable(args.report)
    model = graphfix.load(args.input)
    fixed, report = graphfix.rewrite(model, select=args.select, ignore=args.ignore, unsafe_fixes=args.unsafe_fixes,
                                     guard=args.guard, losses=args.loss, clear_devices=args.clear_devices,
                                     options=_options(args))
    graphfix.save(fixed, args.output)
    report.output = args.output
    _emit(report, args.format, "rewrite", args.report)
    return EXIT_FINDINGS if report.remaining else EXIT_CLEAN


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
