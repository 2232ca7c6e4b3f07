"""The ``tfcompress bench`` command: its arguments, and a thin shell over :func:`tfcompress.bench.run_bench`.

:func:`add_parser` adds the ``bench`` subcommand to an ``argparse`` parser; :func:`main` runs it on the
parsed arguments, prints the report and a noise-floor line (when one file was given twice) and returns
the exit code. Bad input raises :class:`~tfcompress.errors.TFCompressError`; ``tfcompress.cli`` turns it
into one line on stderr and exit code 2.

Example:
    >>> import argparse
    >>> from tfcompress import bench_command
    >>> parser = argparse.ArgumentParser(prog="tfcompress")
    >>> bench_command.add_parser(parser.add_subparsers(dest="command"))  # doctest: +ELLIPSIS
    ArgumentParser(prog='tfcompress bench', ...)
    >>> args = parser.parse_args(["bench", "a.tflite", "a.tflite", "--batch", "1,8", "--xnnpack", "off"])
    >>> args.models, args.batch, args.threads
    (['a.tflite', 'a.tflite'], '1,8', '1,2,4')
"""
import argparse
import os

from .errors import TFCompressError, check_seed

__all__ = ["add_parser", "main", "whole_number", "seed_number", "noise_floor"]


def whole_number(text):
    """An ``argparse`` type: ``"20_000"`` or ``"20,000"`` -> ``20000``.

    Example:
        >>> whole_number("20,000"), whole_number("1_000")
        (20000, 1000)
    """
    try:
        return int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def seed_number(text):
    """An ``argparse`` type: a whole number in ``[0, 2**32 - 1]`` (checked before TensorFlow is imported).

    Example:
        >>> seed_number("7")
        7
    """
    value = whole_number(text)
    try:
        return check_seed(value)
    except TFCompressError as e:
        raise argparse.ArgumentTypeError(str(e).replace("seed = ", "")) from None


def add_parser(subparsers):
    """Add the ``bench`` subcommand and its arguments to ``subparsers`` (from ``add_subparsers``); returns it.

    Example:
        >>> import argparse
        >>> p = argparse.ArgumentParser()
        >>> _ = add_parser(p.add_subparsers(dest="command"))
        >>> p.parse_args(["bench", "m.keras", "--runs", "1,000"]).runs
        1000
    """
    b = subparsers.add_parser("bench", help="latency, size and quality of .tflite files, SavedModels and Keras "
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
    b.add_argument("--events", type=whole_number, default=20_000, help="events of the built-in shop; use the "
                   "number the models were trained on (default 20,000, as `run --quick`)")
    b.add_argument("--seed", type=seed_number, default=0, help="seed of the built-in shop and of row sampling")
    b.add_argument("--label", help="label column of --data (default click or label when present)")
    b.add_argument("--batch", default="1,32", help="comma-separated batch sizes (default 1,32)")
    b.add_argument("--threads", default="1,2,4", help="TFLite interpreter threads (default 1,2,4)")
    b.add_argument("--xnnpack", default="on,off", help="TFLite XNNPACK delegate: on, off or on,off")
    b.add_argument("--runs", type=whole_number, default=100, help="timed calls per configuration (default 100)")
    b.add_argument("--warmup", type=whole_number, help="untimed calls first (default runs/10, at least 2)")
    b.add_argument("--baseline", help="model name (file name without extension) quality differences refer "
                   "to (default the first model)")
    b.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocess per .tflite")
    b.add_argument("--out", default=os.path.join("runs", "bench"), help="report folder (default runs/bench)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    return b


def main(args):
    """Run ``tfcompress bench`` on parsed arguments (see :func:`add_parser`); returns the exit code 0.

    Example:
        >>> import argparse
        >>> p = argparse.ArgumentParser()
        >>> _ = add_parser(p.add_subparsers(dest="command"))
        >>> main(p.parse_args(["bench", "m.tflite", "--batch", "1,x"]))
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: batch sizes must be a comma-separated list of whole numbers like 1,32, got '1,x'
    """
    lists = {"batches": _parse_list("batch sizes", args.batch, int, "whole numbers like 1,32"),
             "threads": _parse_list("threads", args.threads, int, "whole numbers like 1,2,4"),
             "xnnpack": _parse_list("xnnpack", args.xnnpack, _on_off, "on/off: on, off or on,off")}
    check_seed(args.seed)  # all checked before TensorFlow is imported
    from .pipeline.run_manifest import check_artifact

    for model in args.models:
        check_artifact(model)
    from .bench import run_bench

    result = run_bench(args.models, data=args.data, events=args.events, seed=args.seed, label=args.label,
                       runs=args.runs, warmup=args.warmup, baseline=args.baseline, out=args.out,
                       memory=not args.no_memory, progress=not args.no_progress, **lists)
    print(result.report.to_markdown())
    noise = noise_floor(result)
    if noise:
        print(noise)
    print(f"report: {result.paths['md']} (also .html/.csv/.json); plots: "
          + ", ".join(os.path.basename(p) for k, p in result.paths.items() if str(p).endswith(".png")))
    return 0


def _parse_list(name, text, cast, allowed):
    values = [v.strip() for v in text.split(",") if v.strip()] if isinstance(text, str) else text
    try:
        out = [cast(v) for v in values]
    except (TypeError, ValueError):
        raise TFCompressError(f"{name} must be a comma-separated list of {allowed}, got {text!r}") from None
    if not out:
        raise TFCompressError(f"{name} is empty: pass at least one value")
    return out


def _on_off(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ValueError(value)


def noise_floor(result):
    """A line about the spread between repeated measurements of the same file, when one was given twice
    (``""`` otherwise), from a :class:`~tfcompress.bench.BenchResult`.

    Example:
        >>> import pandas as pd
        >>> from tfcompress.bench import BenchResult
        >>> models = pd.DataFrame({"name": ["a", "a#2"], "path": ["/m/a.tflite"] * 2})
        >>> latency = pd.DataFrame({"name": ["a", "a#2"], "batch": [1, 1], "p50_us": [10.0, 11.0]})
        >>> noise_floor(BenchResult(models, latency, pd.DataFrame(), None, {}, {}))
        'noise floor (a vs a#2, same file): p50 differs by median 10.0%, max 10.0% over 1 configurations'
    """
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
