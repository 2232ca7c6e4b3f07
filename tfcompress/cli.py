"""The ``tfcompress`` command: a thin shell over :mod:`tfcompress.pipeline` and :mod:`tfcompress.bench`.

Exit codes: 0 success, 2 bad input (one line on stderr naming the problem), 1 an unexpected failure.

Example:
    >>> main(["run", "--stages", "nonsense"])  # doctest: +SKIP
    tfcompress: error: unknown stage(s) ['nonsense']; stages are [...]
    2
"""
import argparse
import os
import sys

PROG = "tfcompress"


def _parser():
    p = argparse.ArgumentParser(prog=PROG, description="Distil, prune, quantize and export e-commerce "
                                "Keras models to int8 TFLite, and report what was gained and lost.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="the whole job on the built-in data: teacher -> distilled student -> "
                       "pruned -> QAT -> int8 TFLite -> report",
                       description="Run the end-to-end recipe on the built-in synthetic e-commerce data.")
    r.add_argument("--out", help="run folder for the report (default runs/ctr)")
    r.add_argument("--savedmodels", help="folder for SavedModels (default savedmodels)")
    r.add_argument("--tflite-dir", help="folder for .tflite files (default tflite_export)")
    r.add_argument("--events", type=_int, help="impressions to generate, 1000 to 10,000,000 (default 200,000)")
    r.add_argument("--seed", type=_int, help="random seed (default 0)")
    r.add_argument("--config", help="YAML file of RunConfig keys (unknown keys are rejected)")
    r.add_argument("--stages", help="comma-separated subset of teacher,baseline,distill,prune,qat,export")
    r.add_argument("--quick", action="store_true", help="tiny data and models: finishes in about a minute")
    r.add_argument("--verbose", action="store_true", help="show Keras training progress")
    return p


def _int(text):
    try:
        return int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _config_from_args(args):
    from .pipeline import RunConfig

    overrides = {}
    if args.quick:
        overrides["quick"] = True
    if args.events is not None:
        overrides["events"] = args.events
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.stages is not None:
        overrides["stages"] = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    if args.out is not None:
        overrides["out"] = args.out
    if args.savedmodels is not None:
        overrides["savedmodels_dir"] = args.savedmodels
    if args.tflite_dir is not None:
        overrides["tflite_dir"] = args.tflite_dir
    if args.verbose:
        overrides["verbose"] = True
    base = RunConfig.quick_defaults() if args.quick else RunConfig()
    if args.config:
        base = RunConfig.from_yaml(args.config, base=base)
    return RunConfig.from_dict(overrides, base=base)


def _run(args):
    from .pipeline import run

    config = _config_from_args(args)
    config.validate()
    result = run(config)
    s = result.summary
    print(f"report: {os.path.join(result.report_dir, 'report.md')}")
    if s:
        speed = f", {s['latency_p50_speedup']:.1f}x lower batch-1 p50 latency" if s.get("latency_p50_speedup") else ""
        print(f"int8 student vs float32 teacher: {s['size_ratio']:.1f}x smaller, AUC {s['auc_final']:.4f} vs "
              f"{s['auc_teacher']:.4f} ({s['auc_relative_change']:+.2%}){speed}")
    return 0


def main(argv=None):
    """Entry point of the ``tfcompress`` command; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse already printed its message
        return int(e.code or 0)
    if not args.command:
        parser.print_help()
        return 2
    from .errors import TFCompressError

    try:
        return {"run": _run}[args.command](args)
    except TFCompressError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
