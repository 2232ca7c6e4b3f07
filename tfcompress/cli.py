"""The ``tfcompress`` command: a thin shell over :mod:`tfcompress.pipeline` and :mod:`tfcompress.bench`.

Exit codes: 0 success, 2 bad input (one line on stderr naming the problem), 1 an unexpected failure.

Commands: ``run`` (the whole recipe), ``bench MODEL [MODEL ...]`` (latency/size/quality side by side, see
:func:`tfcompress.bench.run_bench`), ``report RUN_DIR`` (re-render a run or bench folder from report.json).

Example:
    >>> main(["bench", "a.tflite", "a.tflite", "--runs", "50", "--out", "runs/bench"])  # doctest: +SKIP
    >>> main(["report", "runs/bench"])  # doctest: +SKIP
    >>> main(["run", "--stages", "nonsense"])  # doctest: +SKIP
    tfcompress: error: unknown stage(s) ['nonsense']; ctr stages are [...]
    2
"""
import argparse
import os
import sys

from . import bench_command, data_command, tune_command
from .bench_command import seed_number, whole_number
from .run_options import add_own_data_arguments, add_recipe_arguments, config_from_args

PROG = "tfcompress"


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block), pointing to ``--help``; its
    subcommands' parsers are of the same class.

    Example:
        >>> OneLineParser(prog="tfcompress").parse_args(["--nonsense"])
        Traceback (most recent call last):
        ...
        SystemExit: 2
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser():
    p = OneLineParser(prog=PROG, description="Distil, prune, quantize and export e-commerce "
                                "Keras models to int8 TFLite, and report what was gained and lost.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _add_run_parser(sub)
    bench_command.add_parser(sub)
    tune_command.add_parser(sub)
    data_command.add_parser(sub)
    _add_report_parser(sub)
    return p


def _add_run_parser(sub):
    r = sub.add_parser("run", help="the whole job on the built-in data: teacher -> distilled student -> "
                       "pruned -> QAT -> int8 TFLite -> report",
                       description="Run the end-to-end recipe on the built-in synthetic e-commerce data.")
    r.add_argument("--task", help="default: inferred from --data (a table with a label: table; user and item "
                   "columns: ctr; a text column and a label: text; no --data: ctr on the built-in shop); "
                   "ctr (CTR ranking on the built-in shop, or on interactions with --data), table (any "
                   "labelled CSV/TSV/Parquet table: binary, multiclass or regression), retrieval (two-tower "
                   "top-K retrieval + list ranking for the phone), text (product titles, or reviews with --data) "
                   "or image (synthetic images, or Fashion-MNIST with --data)")
    r.add_argument("--data", help="real data for the task: ctr and retrieval: 'movielens' (../shared/data), a "
                   "MovieLens zip/folder/ratings.csv or an interactions CSV (user, item, time columns); text: "
                   "'reviews' (../shared/data) or a reviews CSV path; image: 'fashion_mnist' (../shared/data) "
                   "or a folder of Fashion-MNIST IDX files; ctr also a folder or glob of Parquet/CSV/TFRecord "
                   "shards (streamed, see `tfcompress data make`)")
    r.add_argument("--out", help="run folder for the report (default runs/TASK)")
    r.add_argument("--savedmodels", help="folder for SavedModels (default savedmodels)")
    r.add_argument("--tflite-dir", help="folder for .tflite files (default tflite_export)")
    r.add_argument("--events", type=whole_number, help="built-in data size: impressions for ctr (1,000 to 10,000,000; "
                   "default 200,000), shop events whose titles text uses, images for image")
    r.add_argument("--seed", type=seed_number, help="random seed (default 0)")
    r.add_argument("--config", help="YAML file of RunConfig keys (unknown keys are rejected)")
    r.add_argument("--stages", help="comma-separated subset of teacher,baseline,distill,prune,qat,export "
                   "(retrieval: teacher,baseline,distill,compress,export)")
    r.add_argument("--quick", action="store_true", help="tiny data and models: finishes in about a minute")
    r.add_argument("--verbose", action="store_true", help="show Keras training progress (and TensorFlow's log)")
    r.add_argument("--resume", action="store_true", help="continue the unfinished run in the folders (the "
                   "default when they hold one of the same config)")
    r.add_argument("--overwrite", action="store_true", help="move another run found in the folders aside "
                   "(into FOLDER/.previous-RUNID/) instead of refusing")
    add_own_data_arguments(r)
    add_recipe_arguments(r)


def _add_report_parser(sub):
    rp = sub.add_parser("report", help="re-render report.md/html and plots from a run folder's report.json",
                        description="Re-render report.md, report.html, report.csv and the plots of a "
                        "`tfcompress run` or `tfcompress bench` folder from its report.json.")
    rp.add_argument("run_dir", metavar="RUN_DIR", help="a folder holding report.json")


def _run(args):
    from .pipeline import run
    from .pipeline.distribute import make_distribution

    config = config_from_args(args)
    make_distribution(config.distribute)  # before any TensorFlow op (multi-worker needs it first)
    result = run(config.validate())
    if result.report_dir is None:  # a multi-worker run's other worker: the chief wrote the report
        return 0
    print(f"report: {os.path.join(result.report_dir, 'report.md')}")
    if result.headline:
        print(result.headline)
    return 0


def _report(args):
    if tune_command.is_tune_folder(args.run_dir):
        return tune_command.report(args.run_dir)
    from ._io import write_json
    from .bench import Report, write_bench_report
    from .pipeline import add_report_sections, check_run_folder, load_report

    check_run_folder(args.run_dir)
    data = load_report(args.run_dir)
    report = Report.from_dict(data)
    hidden = [c for c in report.frame.columns if c == "path"
              or report.frame[c].map(lambda v: isinstance(v, (dict, list))).any()]
    report.frame = report.frame.drop(columns=hidden)
    csv_path = os.path.join(args.run_dir, "report.csv")
    if os.path.isfile(csv_path):  # keep the table's columns as first written (report.json rows hold extras)
        import pandas as pd

        try:
            shown = [c for c in pd.read_csv(csv_path, nrows=0).columns if c in report.frame.columns]
        except (ValueError, OSError):
            shown = []
        if shown:
            report.frame = report.frame[shown]
    add_report_sections(report, data)  # the same sections in report.md and report.html
    written = write_bench_report(report, args.run_dir, samples=data.get("latency_samples_us") or None)
    # report.json keeps everything it held (paths, parity, summary, config, samples); only the title,
    # meta and extra tables are refreshed
    write_json(written["json"], {**data, **{k: v for k, v in report.to_dict().items() if k != "stages"}})
    print(f"report: {written['md']} (also .html/.csv); plots: "
          + ", ".join(os.path.basename(p) for p in written.values() if str(p).endswith(".png")))
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
    if getattr(args, "verbose", False):  # TensorFlow's own start-up log too (it is not imported yet)
        os.environ["TFCOMPRESS_VERBOSE"] = "1"
    from .errors import TFCompressError

    try:
        return {"run": _run, "bench": bench_command.main, "report": _report, "tune": tune_command.main,
                "data": data_command.main}[args.command](args)
    except TFCompressError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
