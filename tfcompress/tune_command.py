"""The ``tfcompress tune`` command: its arguments, and a thin shell over :func:`tfcompress.tune.search`.

:func:`add_parser` adds the ``tune`` subcommand to an ``argparse`` parser; :func:`main` checks the values
(one line and exit code 2 through ``tfcompress.cli`` when one is bad), runs the search and prints where the
chosen file, its recipe and the report are; :func:`report` re-renders a tune folder's report.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="tfcompress")
    >>> _ = add_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["tune", "--quick", "--trials", "8", "--time-budget", "30m", "--objective", "both"])
    >>> args.trials, args.time_budget, args.objective, args.tolerance
    (8, '30m', 'both', '0.5%')
"""
import os

from .bench_command import seed_number, whole_number
from .errors import check
from .run_options import add_own_data_arguments, config_from_args

__all__ = ["add_parser", "main", "report"]

OBJECTIVE_CHOICES = ("size", "latency", "both")


def add_parser(subparsers):
    """Add the ``tune`` subcommand and its arguments to ``subparsers``; returns it."""
    t = subparsers.add_parser("tune", help="search compression recipes for the smallest or fastest model "
                              "within a tolerance of the teacher", description="Search student size, pruning, "
                              "structured and low-rank shrinking, QAT and the export mode (Optuna NSGA-II) for the "
                              "smallest (or fastest) .tflite whose validation quality is within --tolerance of the "
                              "teacher's; writes the chosen file, recipe.yaml (for `tfcompress run --config`) and "
                              "tune_report.md/.html into --out. A search stopped halfway resumes from its study file.")
    t.add_argument("--task", help="ctr, table, text or image (default: inferred from --data, as in `run`)")
    t.add_argument("--data", help="the task's data, as in `tfcompress run` (e.g. movielens, reviews, fashion_mnist)")
    t.add_argument("--config", help="YAML file of RunConfig keys the search starts from")
    t.add_argument("--out", help="folder for the trials, the report and the chosen file (default runs/TASK_tune)")
    t.add_argument("--events", type=whole_number, help="built-in data size (as in `run`)")
    t.add_argument("--seed", type=seed_number, help="random seed (default 0)")
    t.add_argument("--quick", action="store_true", help="tiny data and models (a trial takes seconds)")
    t.add_argument("--verbose", action="store_true", help="print every stage of every trial")
    t.add_argument("--tolerance", default="0.5%", metavar="T", help="validation quality the chosen model may "
                   "lose against the teacher: '0.5%%' (relative, the default) or 0.004 (an absolute drop)")
    t.add_argument("--objective", default="size", choices=OBJECTIVE_CHOICES, help="what to minimize within the "
                   "tolerance: size (bytes, the default), latency (batch-1 p50) or both (their product)")
    t.add_argument("--trials", type=whole_number, metavar="N", help="trials in all, counting those already in the "
                   "study (default 20 without --time-budget)")
    t.add_argument("--time-budget", metavar="DURATION", help="stop starting trials after this long: 90s, 30m, 1h")
    t.add_argument("--study", metavar="FILE", help="the study file to resume or create (default OUT/study.log)")
    add_own_data_arguments(t)  # --label ... --teacher: as in `run` (default teacher: trained once for the search)
    return t


def main(args):
    """Run ``tfcompress tune`` for parsed ``args``; print the choice and the files; return 0."""
    from .tolerance import Tolerance

    Tolerance.parse(args.tolerance)
    check(args.trials is None or args.trials >= 1, f"--trials {args.trials} must be at least 1")
    from .tune import parse_duration, search

    if args.time_budget is not None:
        parse_duration(args.time_budget)
    result = search(config_from_args(args), tolerance=args.tolerance, objective=args.objective, trials=args.trials,
                    time_budget=args.time_budget, study=args.study)
    print(result.note)
    if result.chosen is not None:
        test = ", ".join(f"{k} {v:.4f}" for k, v in result.chosen["test"].items() if isinstance(v, (int, float)))
        print(f"chosen: {result.tflite_path} ({result.chosen['size_bytes']:,} bytes, "
              f"p50 {result.chosen['p50_us']:.0f} us); test (not used to choose): {test}")
        print(f"recipe: {result.recipe_path} (tfcompress run --config {result.recipe_path})")
    print(f"report: {result.report_path}")
    return 0


def report(run_dir):
    """Re-render the tuning report of ``run_dir`` (a ``tfcompress tune`` folder); print where; return 0."""
    from .tune import render_tune_report

    paths = render_tune_report(run_dir)
    print(f"report: {paths['md']} (also .html/.csv)" + (f"; plot: {os.path.basename(paths['png'])}"
                                                         if "png" in paths else ""))
    return 0


def is_tune_folder(run_dir):
    """Whether ``run_dir`` holds a search (its ``tune.json``), so ``tfcompress report`` re-renders that.

    Example:
        >>> import tempfile
        >>> is_tune_folder(tempfile.mkdtemp())
        False
    """
    return os.path.isfile(os.path.join(run_dir, "tune.json"))
