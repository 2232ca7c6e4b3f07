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

PROG = "tfcompress"


def _parser():
    p = argparse.ArgumentParser(prog=PROG, description="Distil, prune, quantize and export e-commerce "
                                "Keras models to int8 TFLite, and report what was gained and lost.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="the whole job on the built-in data: teacher -> distilled student -> "
                       "pruned -> QAT -> int8 TFLite -> report",
                       description="Run the end-to-end recipe on the built-in synthetic e-commerce data.")
    r.add_argument("--task", help="ctr (default: CTR ranking on the built-in shop, or on interactions with "
                   "--data), retrieval (two-tower top-K retrieval + list ranking for the phone), text (product "
                   "titles, or reviews with --data) or image (synthetic images, or Fashion-MNIST with --data)")
    r.add_argument("--data", help="real data for the task: ctr and retrieval: 'movielens' (../shared/data), a "
                   "MovieLens zip/folder/ratings.csv or an interactions CSV (user, item, time columns); text: "
                   "'reviews' (../shared/data) or a reviews CSV path; image: 'fashion_mnist' (../shared/data) "
                   "or a folder of Fashion-MNIST IDX files")
    r.add_argument("--out", help="run folder for the report (default runs/TASK)")
    r.add_argument("--savedmodels", help="folder for SavedModels (default savedmodels)")
    r.add_argument("--tflite-dir", help="folder for .tflite files (default tflite_export)")
    r.add_argument("--events", type=_int, help="built-in data size: impressions for ctr (1,000 to 10,000,000; "
                   "default 200,000), shop events whose titles text uses, images for image")
    r.add_argument("--seed", type=_int, help="random seed (default 0)")
    r.add_argument("--config", help="YAML file of RunConfig keys (unknown keys are rejected)")
    r.add_argument("--stages", help="comma-separated subset of teacher,baseline,distill,prune,qat,export "
                   "(retrieval: teacher,baseline,distill,compress,export)")
    r.add_argument("--quick", action="store_true", help="tiny data and models: finishes in about a minute")
    r.add_argument("--verbose", action="store_true", help="show Keras training progress")

    b = sub.add_parser("bench", help="latency, size and quality of .tflite files, SavedModels and Keras "
                       "files side by side", description="Benchmark models on the same real rows: "
                       "interleaved latency (p50/p90/p99, throughput) per batch size, device, TFLite "
                       "threads and XNNPACK setting; size, sparsity, peak interpreter memory; quality "
                       "against a baseline with bootstrap 95%% intervals. Writes report.md/csv/json/html "
                       "and plots into --out.")
    b.add_argument("models", nargs="+", metavar="MODEL",
                   help="a .tflite file, a SavedModel folder or a .keras/.h5 file (the same path twice "
                        "measures the noise floor)")
    b.add_argument("--data", default="builtin", help="builtin (the synthetic shop's test split) or a "
                   ".csv/.parquet file with the models' input columns (default builtin)")
    b.add_argument("--events", type=_int, default=20_000, help="events of the built-in shop; use the "
                   "number the models were trained on (default 20,000, as `run --quick`)")
    b.add_argument("--seed", type=_int, default=0, help="seed of the built-in shop and of row sampling")
    b.add_argument("--label", help="label column of --data (default click or label when present)")
    b.add_argument("--batch", default="1,32", help="comma-separated batch sizes (default 1,32)")
    b.add_argument("--threads", default="1,2,4", help="TFLite interpreter threads (default 1,2,4)")
    b.add_argument("--xnnpack", default="on,off", help="TFLite XNNPACK delegate: on, off or on,off")
    b.add_argument("--runs", type=_int, default=100, help="timed calls per configuration (default 100)")
    b.add_argument("--warmup", type=_int, help="untimed calls first (default runs/10, at least 2)")
    b.add_argument("--baseline", help="model name (file name without extension) quality differences refer "
                   "to (default the first model)")
    b.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocess per .tflite")
    b.add_argument("--out", default=os.path.join("runs", "bench"), help="report folder (default runs/bench)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")

    rp = sub.add_parser("report", help="re-render report.md/html and plots from a run folder's report.json",
                        description="Re-render report.md, report.html, report.csv and the plots of a "
                        "`tfcompress run` or `tfcompress bench` folder from its report.json.")
    rp.add_argument("run_dir", metavar="RUN_DIR", help="a folder holding report.json")
    return p


def _int(text):
    try:
        return int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _config_from_args(args):
    from .pipeline import RunConfig

    overrides = {}
    if args.task is not None:
        overrides["task"] = args.task
    if args.data is not None:
        overrides["data"] = args.data
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

    config = _config_from_args(args).validate()
    result = run(config)
    s = result.summary
    print(f"report: {os.path.join(result.report_dir, 'report.md')}")
    if s and s.get("headline"):
        print(s["headline"])
    elif s:
        speed = f", {s['latency_p50_speedup']:.1f}x lower batch-1 p50 latency" if s.get("latency_p50_speedup") else ""
        m = s["metric"]
        print(f"int8 student vs float32 teacher: {s['size_ratio']:.1f}x smaller, {m} {s[m + '_final']:.4f} vs "
              f"{s[m + '_teacher']:.4f} ({s[m + '_relative_change']:+.2%}){speed}")
    return 0


def _bench(args):
    from .bench.runner import run_bench

    result = run_bench(args.models, data=args.data, events=args.events, seed=args.seed, label=args.label,
                       batches=args.batch, threads=args.threads, xnnpack=args.xnnpack, runs=args.runs,
                       warmup=args.warmup, baseline=args.baseline, out=args.out, memory=not args.no_memory,
                       progress=not args.no_progress)
    print(result.report.to_markdown())
    noise = _noise_floor(result)
    if noise:
        print(noise)
    print(f"report: {result.paths['md']} (also .html/.csv/.json); plots: "
          + ", ".join(os.path.basename(p) for k, p in result.paths.items() if str(p).endswith(".png")))
    return 0


def _noise_floor(result):
    """A line about the spread between repeated measurements of the same file, when one was given twice."""
    models = result.models
    lines = []
    for path, group in models.groupby("path"):
        if len(group) < 2:
            continue
        names = list(group["name"])
        lat = result.latency[result.latency["name"].isin(names)].dropna(subset=["p50_us"])
        keys = [c for c in ("device", "threads", "xnnpack", "batch") if c in lat.columns]
        spreads = []
        for _, cfg in lat.groupby(keys, dropna=False):
            p50 = cfg["p50_us"].to_numpy()
            if len(p50) >= 2 and p50.min() > 0:
                spreads.append(p50.max() / p50.min() - 1)
        if spreads:
            lines.append(f"noise floor ({' vs '.join(names)}, same file): p50 differs by median "
                         f"{100 * sorted(spreads)[len(spreads) // 2]:.1f}%, max {100 * max(spreads):.1f}% "
                         f"over {len(spreads)} configurations")
    return "\n".join(lines)


def _report(args):
    from ._io import write_json
    from .bench import Report
    from .bench.runner import write_bench_report
    from .pipeline import _append_markdown, load_report

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
    written = write_bench_report(report, args.run_dir, samples=data.get("latency_samples_us") or None)
    # report.json keeps everything it held (paths, parity, summary, config, samples); only the title,
    # meta and extra tables are refreshed
    write_json(written["json"], {**data, **{k: v for k, v in report.to_dict().items() if k != "stages"}})
    if data.get("parity") or data.get("summary"):
        try:
            _append_markdown(written["md"], data.get("parity") or {}, data.get("summary") or {})
        except (KeyError, TypeError, ValueError):  # a report.json from another tfcompress version
            _append_plain(written["md"], {k: data.get(k) for k in ("summary", "parity") if data.get(k)})
    print(f"report: {written['md']} (also .html/.csv); plots: "
          + ", ".join(os.path.basename(p) for p in written.values() if str(p).endswith(".png")))
    return 0


def _append_plain(path, sections):
    """Append ``{section: {key: value}}`` to a Markdown file as bullet lists."""
    from ._io import write_text

    with open(path) as f:
        lines = [f.read().rstrip(), ""]
    for title, values in sections.items():
        lines += [f"### {title}", ""] + [f"- {k}: {v:.4g}" if isinstance(v, float) else f"- {k}: {v}"
                                         for k, v in values.items()] + [""]
    write_text(path, "\n".join(lines) + "\n")


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
        return {"run": _run, "bench": _bench, "report": _report}[args.command](args)
    except TFCompressError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
