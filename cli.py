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
import traceback

# Ctrl-C while the library loads (python cli.py, or the graphfix script
# importing this module) ends the process as it would before Python ran any of
# graphfix: killed by the signal, no traceback.  main() handles it from then
# on; the previous handler is back once the imports are done.
try:
    _SIGINT = signal.signal(signal.SIGINT, signal.SIG_DFL)
except ValueError:  # imported outside the main thread: signals are not ours to set
    _SIGINT = None

import graphfix  # noqa: E402
import rewrites  # noqa: E402
from graphfix import __version__  # noqa: E402
from graphfix.cli import batch, cache  # noqa: E402
from graphfix.cli.batch import parse_shard  # noqa: E402
from graphfix.core import io  # noqa: E402
from graphfix.core.errors import GraphfixError, one_line  # noqa: E402
from graphfix.engine.selfcheck import record_verify  # noqa: E402
from graphfix.patch.scratch import load_op_library  # noqa: E402
from graphfix.render import console, dot  # noqa: E402
from graphfix.render.console import Activity  # noqa: E402
from graphfix.render.diff import diff_text  # noqa: E402
from graphfix.render.report import render, text_lines  # noqa: E402

if _SIGINT is not None:
    signal.signal(signal.SIGINT, _SIGINT)

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
    _op_library(p)


def _positive(kind):
    def parse(value: str):
        try:
            v = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
        return v
    return parse


def _shard(value: str):
    try:
        return parse_shard(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _batch(p, cache: bool):
    """Options of batch runs (several models)."""
    g = p.add_argument_group("batch runs (several models)")
    g.add_argument("--jobs", "-j", type=_positive(int), metavar="N",
                   help="models processed at once, each in a worker process (default: the number of cores; "
                        "1: one after another in this process)")
    g.add_argument("--timeout", type=_positive(float), metavar="S",
                   help="give up on a model after S seconds (reported as a failure; the others go on)")
    g.add_argument("--shard", type=_shard, metavar="K/N",
                   help="only shard K of N (1 <= K <= N): a stable 1/N of the models chosen by path hash, "
                        "so N CI machines cover them exactly once")
    if cache:
        g.add_argument("--no-cache", action="store_true", dest="no_cache",
                       help="neither read nor write the result cache ($GRAPHFIX_CACHE_DIR or .graphfix_cache/)")


def _global_flags(p, default=None):
    """``--debug`` and ``--no-color``: accepted before the command and after it.
    The subcommands' copies default to SUPPRESS so they never reset the main
    parser's value."""
    p.add_argument("--debug", action="store_true", default=default if default is not None else False,
                   help="show a traceback on errors")
    p.add_argument("--no-color", action="store_true", dest="no_color",
                   default=default if default is not None else False,
                   help="plain output even on a terminal (also: the NO_COLOR environment variable)")


def _op_library(p):
    p.add_argument("--op-library", action="append", metavar="LIB.so", dest="op_library",
                   help="load a custom-op library (tf.load_op_library) the graph needs (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphfix", description="Repair TensorFlow 1.x graphs whose loss can become NaN "
                                                 "on some batches (empty means, zero denominators, NaN "
                                                 "gradients through tf.where, …).")
    parser.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    _global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("rewrite", help="guard every hazard and write the fixed graph",
                       usage="graphfix rewrite [options] IN OUT\n"
                             "       graphfix rewrite [options] --diff IN [OUT]\n"
                             "       graphfix rewrite [options] --out-dir DIR IN_DIR_OR_GLOB [...]")
    p.add_argument("input", nargs="+", metavar="IN [OUT]",
                   help="IN: GraphDef .pb/.pbtxt, MetaGraphDef .meta, or SavedModel directory; OUT: where to "
                        "write the fixed graph (same kind as the input unless the extension says otherwise). "
                        "With --out-dir: any number of models, directories and globs")
    p.add_argument("--diff", nargs="?", const="full", choices=("full", "stat"), metavar="full|stat",
                   help="print the graph change and write no output graph (OUT may be omitted); exit 1 if the "
                        "graph would change.  --diff (=full): a unified diff per node; --diff=stat: per finding, "
                        "how many nodes are added, removed, rewired and changed")
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
    _batch(p, cache=False)

    p = sub.add_parser("check", help="report hazards, change nothing (exit 1 if any)")
    p.add_argument("input", nargs="+", metavar="IN",
                   help="model file or SavedModel directory; several, other directories (walked) and globs "
                        "check every model they name (batch mode)")
    _common(p)
    _batch(p, cache=True)

    p = sub.add_parser("verify", help="run ORIGINAL and FIXED in TensorFlow and compare (exit 1 on a mismatch)",
                       description="Run ORIGINAL and FIXED side by side in TensorFlow from the same variable "
                                   "values: on normal feeds their loss, gradients and one train step must agree; "
                                   "on feeds that trigger the hazards FIXED must stay finite.  Exit 0 both hold, "
                                   "1 not, 2 error.")
    p.add_argument("original", metavar="ORIGINAL", help="the model as it was (before `graphfix rewrite`)")
    p.add_argument("fixed", metavar="FIXED", help="the repaired model `graphfix rewrite` wrote")
    p.add_argument("--feeds", metavar="FILE.npz", help="normal feeds (placeholder name -> array); default: "
                                                      "random data from the placeholders' dtypes and shapes")
    p.add_argument("--trials", type=int, default=3, metavar="N", help="random normal feeds to try (default 3)")
    p.add_argument("--loss", action="append", metavar="TENSOR", help="the loss tensor (repeatable)")
    p.add_argument("--select", type=_codes, action="extend", metavar="CODES",
                   help="the rules whose hazards are triggered, as given to `rewrite` (default: the default set)")
    p.add_argument("--ignore", type=_codes, action="extend", metavar="CODES", help="skip these rules")
    p.add_argument("--format", choices=("text", "json"), default="text")
    _op_library(p)

    sub.add_parser("clean", help="remove the result cache of batch check runs ($GRAPHFIX_CACHE_DIR or "
                                 ".graphfix_cache/)")
    sub.add_parser("rules", help="list the rules")
    p = sub.add_parser("explain", help="print a rule's documentation")
    p.add_argument("code", help="rule code or name, e.g. GF001")
    for p in sub.choices.values():
        _global_flags(p, default=argparse.SUPPRESS)
    return parser


def _normalise(argv: list[str]) -> list[str]:
    """A bare ``--diff`` means ``--diff=full``, so that it never takes the next
    word (the input path) as its value; only ``--diff=stat`` picks the other form."""
    out, rest = [], False
    for a in argv:
        rest = rest or a == "--"
        out.append("--diff=full" if a == "--diff" and not rest else a)
    return out


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup (temp files) runs."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv=None) -> int:
    argv = _normalise(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser()
    debug = "--debug" in argv
    try:  # SIGTERM (a CI job cancelled) unwinds like Ctrl-C: no temp file is left behind
        old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main thread
        old_sigterm = None
    try:
        args = parser.parse_args(argv)
        if hasattr(args, "select"):  # $GRAPHFIX_SELECT stands in for a missing --select (and keys the cache)
            args.select = rewrites.requested(args.select)
        if args.version:
            print(f"graphfix {__version__}")
            return EXIT_CLEAN
        if args.command is None:
            print("graphfix: error: no command given (rewrite, check, verify, rules or explain; see graphfix "
                  "--help)", file=sys.stderr)
            return EXIT_ERROR
        rc = _dispatch(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
        return rc
    except BrokenPipeError:
        return _broken_pipe()
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
        if debug:
            traceback.print_exc()
        try:
            print(f"graphfix: error: {one_line(e)}", file=sys.stderr)
        except BrokenPipeError:
            pass
        return EXIT_ERROR
    finally:
        if old_sigterm is not None:
            signal.signal(signal.SIGTERM, old_sigterm)


def _broken_pipe() -> int:
    """The reader went away (``graphfix rules | head -1``): stop quietly, as
    Unix tools do, with the status of a process ended by SIGPIPE.  stdout is
    pointed at /dev/null so that the interpreter's final flush cannot fail too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 128 + getattr(signal, "SIGPIPE", 13)


def _dispatch(args) -> int:
    for lib in getattr(args, "op_library", None) or ():
        load_op_library(lib)
    if args.command == "rules":
        return _cmd_rules()
    if args.command == "explain":
        return _cmd_explain(args.code)
    if args.command == "clean":
        print(cache.clean())
        return EXIT_CLEAN
    if args.command == "rewrite" and getattr(args, "out_dir", None) and (args.verify or args.to):
        raise GraphfixError(f"--{'verify' if args.verify else 'to'} works on one model (rewrite IN OUT), "
                            "not with --out-dir")
    if args.command in ("check", "rewrite"):
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
    w = max(len(r.name) for r in rewrites.RULES)
    print(f"{'code':6}  {'name':{w}}  {'fix':6}  {'set':7}  summary")
    for r in sorted(rewrites.RULES, key=lambda r: r.code):
        print(f"{r.code:6}  {r.name:{w}}  {r.safety:6}  {'default' if r.default else 'opt-in':7}  {r.summary}")
    return EXIT_CLEAN


def _cmd_explain(code: str) -> int:
    rules = rewrites.lookup(code)
    print("\n\n".join(r.doc() for r in rules))
    return EXIT_CLEAN


def _emit(report, fmt: str, mode: str, report_file: str | None, stream=None, no_color: bool = False) -> None:
    stream = stream or sys.stdout
    text = render(report, fmt, mode)
    if fmt == "text" and console.color_wanted(stream, no_color) and console.rich_available():
        console.write_segments(text_lines(report, mode), stream, color=True)
    else:
        stream.write(text)
    if report_file:
        io.atomic_write(report_file, text.encode("utf-8"))


def _cmd_check(args) -> int:
    if args.report:
        io.check_writable(args.report)
        io.check_distinct(args.report, "--report", [args.input])
    model = graphfix.load(args.input, keep_bytes=False)  # never written back: the file's bytes can go
    report = graphfix.check(model, select=args.select, ignore=args.ignore, losses=args.loss,
                            options=_options(args))
    _emit(report, args.format, "check", args.report, no_color=args.no_color)
    return EXIT_FINDINGS if report.found else EXIT_CLEAN


def _cmd_rewrite(args) -> int:
    io.check_writable(args.output) if not os.path.isdir(args.input) and not args.diff else None
    if args.report:
        io.check_writable(args.report)
        io.check_distinct(args.report, "--report", [args.input, args.output])
    if args.dot:
        dot.check_target(args.dot)
    name = os.path.basename(os.path.normpath(args.input))
    with Activity(f"graphfix: reading {name}", no_color=args.no_color) as activity:
        model = graphfix.load(args.input)
        activity.update(f"graphfix: repairing {name} ({model.node_count} nodes)")
        fixed, report = graphfix.rewrite(model, select=args.select, ignore=args.ignore,
                                         unsafe_fixes=args.unsafe_fixes, guard=args.guard, losses=args.loss,
                                         clear_devices=args.clear_devices, options=_options(args))
        if args.verify:  # before anything is written: the report must say what holds
            activity.update(f"graphfix: verifying {name}")
            record_verify(report, graphfix.verify(model, fixed, losses=args.loss, select=args.select,
                                                  ignore=args.ignore))
        if args.dot:
            activity.update(f"graphfix: drawing {os.path.basename(args.dot)}")
            dot.write(model, fixed, report.findings, args.dot, title=args.input)
        if not args.diff:
            activity.update(f"graphfix: writing {os.path.basename(os.path.normpath(args.output))}")
            report.dropped = graphfix.save(fixed, args.output, to=args.to)
    if args.diff:  # like ruff: print the change, write no graph; exit 1 if it would change
        text = diff_text(model, fixed, args.input, args.output, args.diff, report.findings)
        sys.stdout.write(text)
        _emit(report, args.format, "rewrite", args.report, stream=sys.stderr, no_color=args.no_color)
        if args.format == "text":
            print("--diff: no graph written.", file=sys.stderr)
        return EXIT_FINDINGS if text or report.remaining or report.verify_failed else EXIT_CLEAN
    report.output = args.output
    _emit(report, args.format, "rewrite", args.report, no_color=args.no_color)
    return EXIT_FINDINGS if report.remaining or report.verify_failed else EXIT_CLEAN


def _options(args) -> dict:
    return {"stop_gradient": list(args.stop_gradient or [])}


def _cmd_verify(args) -> int:
    original = graphfix.load(args.original)
    fixed = graphfix.load(args.fixed)
    result = graphfix.verify(original, fixed, feeds=args.feeds, losses=args.loss, trials=args.trials,
                             select=args.select, ignore=args.ignore)
    sys.stdout.write(result.render(args.format))
    return EXIT_CLEAN if result.ok else EXIT_FINDINGS


if __name__ == "__main__":
    sys.exit(main())
