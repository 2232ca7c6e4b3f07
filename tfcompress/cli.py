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

from . import bench_command, tune_command
from .bench_command import seed_number, whole_number
from .choices import EXPORT_MODES, RECOVERY_OPTIONS

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
                   "or a folder of Fashion-MNIST IDX files")
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
    _add_own_data_arguments(r)
    add_recipe_arguments(r)


def add_recipe_arguments(r):
    """The student-recipe and choice flags of ``run`` (``tune`` searches them and writes them to YAML)."""
    c = r.add_argument_group("the student's recipe and the run's choices")
    c.add_argument("--tolerance", metavar="T", help="quality a choice may lose against its reference: '1%%' "
                   "(relative, the default) or 0.004 (an absolute metric drop)")
    c.add_argument("--structured-share", type=float, metavar="F", help="remove this share of the student's "
                   "units by structured pruning before fine-tuning (0 < F < 1)")
    c.add_argument("--lowrank-energy", type=float, metavar="F", help="factorize the student's dense kernels "
                   "keeping this share of spectral energy (0 < F < 1)")
    c.add_argument("--export-mode", choices=EXPORT_MODES, help="the student's file (default int8)")
    c.add_argument("--per-tensor", action="store_true", help="per-tensor int8 weights (some NPUs need them)")
    c.add_argument("--recovery", metavar="A,B", help="int8 accuracy recovery at export: any of "
                   + ", ".join(RECOVERY_OPTIONS))


def _add_own_data_arguments(r):
    d = r.add_argument_group("your own data and teacher (roles are inferred and printed when not given)")
    for flag, what in (("--label", "the label column"), ("--user", "the user id column"),
                       ("--item", "the item id column"), ("--time", "the time column (dates or epoch seconds)"),
                       ("--text", "the text column")):
        d.add_argument(flag, metavar="COLUMN", help=what)
    d.add_argument("--features", metavar="A,B,...", help="only these feature columns")
    d.add_argument("--drop", metavar="A,B,...", help="leave these columns out")
    d.add_argument("--sep", help="the delimiter of a text table (default: sniffed), e.g. ',' or '\\t'")
    d.add_argument("--no-header", action="store_true", help="the table's first row is data, not column names")
    d.add_argument("--split", choices=("auto", "time", "user", "stratified", "random"),
                   help="how to split train/validation/test (default auto: by time, else by user, else stratified)")
    d.add_argument("--label-threshold", type=float, metavar="X", help="a rating label: positive when >= X")
    d.add_argument("--teacher", metavar="PATH", help="your trained teacher (.keras/.h5, SavedModel folder, "
                   ".tflite): skips the teacher stage")
    d.add_argument("--teacher-output", choices=("logits", "probabilities"),
                   help="what your teacher outputs (default: detected)")
    d.add_argument("--student", metavar="from-teacher:SHARE", help="build the student by structured width "
                   "pruning of your teacher to SHARE of its parameters (e.g. from-teacher:0.25)")
    d.add_argument("--teacher-head", metavar="HEAD", help="a pretrained teacher folder (text): probe (frozen "
                   "encoder + linear head, the default), top:N (fine-tune the top N layers) or full")
    d.add_argument("--labelled", type=whole_number, metavar="N", help="keep N labelled training rows; the "
                   "teacher labels the others, used for distillation only (the transfer set)")
    d.add_argument("--student-vocab", choices=("own", "teacher"), help="text student's vocabulary: own "
                   "(WordPiece learned on the data, the default) or the teacher's")
    d.add_argument("--student-embeddings", choices=("teacher",), help="initialize the text student's token "
                   "embeddings from the teacher's, projected down")
    d.add_argument("--teacher-cache", metavar="DIR", help="folder for cached teacher outputs (default "
                   "~/.cache/tfcompress)")


def _add_report_parser(sub):
    rp = sub.add_parser("report", help="re-render report.md/html and plots from a run folder's report.json",
                        description="Re-render report.md, report.html, report.csv and the plots of a "
                        "`tfcompress run` or `tfcompress bench` folder from its report.json.")
    rp.add_argument("run_dir", metavar="RUN_DIR", help="a folder holding report.json")


#: ``tfcompress run`` flags → RunConfig fields (flags left unset keep the config's value)
_RUN_FIELDS = {"task": "task", "data": "data", "events": "events", "seed": "seed", "out": "out",
               "savedmodels": "savedmodels_dir", "tflite_dir": "tflite_dir", "label": "label", "user": "user",
               "item": "item", "time": "time", "text": "text", "sep": "sep", "split": "split",
               "label_threshold": "label_threshold", "teacher": "teacher_model",
               "teacher_output": "teacher_output", "student": "student_init", "tolerance": "tolerance",
               "structured_share": "structured_share", "lowrank_energy": "lowrank_energy",
               "export_mode": "export_mode", "teacher_head": "teacher_head", "labelled": "labelled",
               "student_vocab": "student_vocab", "student_embeddings": "student_embeddings",
               "teacher_cache": "teacher_cache"}
_LIST_FIELDS = {"stages": "stages", "features": "features", "drop": "drop", "recovery": "recovery"}
_SWITCHES = {"quick": ("quick", True), "verbose": ("verbose", True), "no_header": ("header", False),
             "resume": ("resume", True), "overwrite": ("overwrite", True), "per_tensor": ("per_channel", False)}


def _config_from_args(args):
    from .pipeline import RunConfig

    overrides = {field: getattr(args, flag) for flag, field in _RUN_FIELDS.items()
                 if getattr(args, flag) is not None}
    overrides.update({field: tuple(s.strip() for s in getattr(args, flag).split(",") if s.strip())
                      for flag, field in _LIST_FIELDS.items() if getattr(args, flag) is not None})
    overrides.update({field: value for flag, (field, value) in _SWITCHES.items() if getattr(args, flag)})
    if overrides.get("sep") == "\\t":
        overrides["sep"] = "\t"
    base = RunConfig.quick_defaults() if args.quick else RunConfig()
    if args.config:
        base = RunConfig.from_yaml(args.config, base=base)
    return RunConfig.from_dict(overrides, base=base)


def _run(args):
    from .pipeline import run

    result = run(_config_from_args(args).validate())
    print(f"report: {os.path.join(result.report_dir, 'report.md')}")
    if result.headline:
        print(result.headline)
    return 0


def _report(args):
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
        return {"run": _run, "bench": bench_command.main, "report": _report,
                "tune": tune_command.main}[args.command](args)
    except TFCompressError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
