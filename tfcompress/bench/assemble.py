"""The bench report: one table per model (size, headline latency, quality), the latency grid and the
per-layer table, with a meta section saying how each figure was measured; and the report folder
(Markdown, CSV, JSON, HTML and plots).

Example:
    >>> import pandas as pd
    >>> from tfcompress.bench import assemble_report
    >>> sizes = pd.DataFrame([{"name": "a", "format": "tflite", "size_bytes": 1000, "path": "/m/a.tflite"}])
    >>> quality = pd.DataFrame([{"name": "a", "auc": 0.75}])
    >>> grid = pd.DataFrame([{"name": "a", "format": "tflite", "device": "CPU", "threads": 1, "xnnpack": "on",
    ...                       "batch": 1, "p50_us": 10.0, "p90_us": 12.0, "p99_us": 15.0,
    ...                       "throughput_p50_per_s": 1e5}])
    >>> assemble_report(sizes, quality, grid).models.columns.tolist()
    ['name', 'format', 'size_bytes', 'p50_us', 'p90_us', 'p99_us', 'throughput_p50_per_s', 'auc', 'path']
"""
import dataclasses
import os

import pandas as pd

from .._io import ensure_dir, write_json
from .latency import gpu_devices
from .plots import latency_plot, pareto_plot, sparsity_plot
from .report import Report

__all__ = ["BenchResult", "assemble_report", "write_bench_report"]

_MODEL_COLUMNS = ["name", "format", "size_bytes", "gzip_bytes", "params", "sparsity", "peak_rss_bytes",
                  "interpreter_rss_bytes", "p50_us", "p90_us", "p99_us", "throughput_p50_per_s", "auc", "accuracy",
                  "rmse", "logloss"]


@dataclasses.dataclass
class BenchResult:
    """What :func:`run_bench` measured: ``models`` (one row per model), ``latency`` (one row per model x
    configuration), ``layers`` (per-layer sparsity), the :class:`Report`, the written ``paths`` and the
    raw ``samples`` (label -> list of µs)."""

    models: pd.DataFrame
    latency: pd.DataFrame
    layers: pd.DataFrame
    report: object
    paths: dict
    samples: dict


def assemble_report(footprint, quality, latency, *, layers=None, samples=None, data=None, baseline=None,
                    batches=(1,), threads=(1,), xnnpack=(True,), runs=None, warmup=None, bootstrap=200,
                    title="tfcompress bench"):
    """One :class:`BenchResult` from the three measurements of the same models.

    ``footprint`` (one row per model, from :func:`~tfcompress.bench.measure_footprint`), ``quality``
    (from :func:`~tfcompress.bench.measure_quality`) and ``latency`` (from
    :func:`~tfcompress.bench.measure_latency_grid`) are joined by ``name``; the models table also gets the
    headline p50/p90/p99 of the first setting (``batches[0]``, CPU, TFLite with ``threads[0]`` threads
    and ``xnnpack[0]``). ``data`` (the :class:`~tfcompress.bench.BenchData`), ``baseline``, ``runs``,
    ``warmup`` and ``bootstrap`` are written into the report's meta. Nothing is written to disk (see
    :func:`write_bench_report`).
    """
    models = footprint.merge(quality, on="name", how="left") if len(quality.columns) > 1 else footprint
    headline = _headline(latency, batches[0], threads[0], xnnpack[0])
    models = models.merge(headline, on="name", how="left")
    first = [c for c in _MODEL_COLUMNS if c in models.columns]
    models = models[first + [c for c in models.columns if c not in first and c != "path"] + ["path"]]
    layers = pd.DataFrame() if layers is None else layers
    gpus = gpu_devices()
    described, objective = (data.description, data.objective) if data is not None else ("", None)
    meta = {"data": described, "task": objective or "no labels: quality not measured",
            "baseline": baseline or models["name"].iloc[0], "runs": runs, "warmup": warmup,
            "batches": list(batches), "threads": list(threads), "xnnpack": ["on" if x else "off" for x in xnnpack],
            "gpu": ", ".join(gpus) if gpus else "no GPU visible: Keras/SavedModel latency measured on CPU only",
            "latency": "per call, µs; throughput_p50_per_s = batch / p50, throughput_per_s = batch / mean; "
                       "models interleaved in a shuffled order each round; TensorFlow and TFLite "
                       "models in separate blocks (TF thread pools slow a following TFLite call)",
            "headline": f"p50/p90/p99 columns of the first table: batch {batches[0]}, CPU, TFLite with "
                        f"{threads[0]} thread(s), XNNPACK {'on' if xnnpack[0] else 'off'}",
            "bootstrap": f"{bootstrap} paired resamples of the evaluation rows; *_diff = model - baseline, "
                         "95% interval in *_diff_lo/_hi"}
    report = Report(models.drop(columns=["path"]), title=title, meta=meta)
    report.add_table("latency", latency)
    if not layers.empty:
        report.add_table("layers", layers)
    return BenchResult(models, latency, layers, report, {}, dict(samples or {}))


def _headline(latency_frame, batch, threads, xnnpack):
    """p50/p90/p99 per model for one configuration: ``batch``, CPU, TFLite with ``threads`` and ``xnnpack``."""
    cols = ["name", "p50_us", "p90_us", "p99_us", "throughput_p50_per_s"]
    if latency_frame.empty or "p50_us" not in latency_frame.columns:
        return pd.DataFrame(columns=cols)
    f = latency_frame[latency_frame["batch"] == batch].dropna(subset=["p50_us"])
    is_tf = f["format"].isin(["keras", "savedmodel"]) & (f["device"] == "CPU:0")
    if "threads" in f.columns:
        is_tfl = (f["format"] == "tflite") & (f["threads"] == threads) & (f["xnnpack"] == ("on" if xnnpack else "off"))
        is_tf = is_tf | is_tfl
    return f[is_tf].drop_duplicates("name")[cols]


def write_bench_report(report, out, samples=None, paths_by_model=None):
    """Write the report files and plots of a bench report into ``out``; returns a dict kind -> path.

    Plots: ``pareto.png`` (size vs quality), ``latency_vs_quality.png``, ``latency.png`` (per-call
    distributions, from ``samples``) and ``sparsity.png`` (per-layer, when there is a layer table).
    Works from a :class:`Report` alone too (as rebuilt from a report.json by ``tfcompress report``).
    ``paths_by_model`` (name -> model path) and ``samples`` go into report.json only.

    Example:
        >>> import tempfile
        >>> from tfcompress.bench import Report
        >>> r = Report([{"name": "a", "size_bytes": 1000, "auc": 0.7}, {"name": "b", "size_bytes": 500, "auc": 0.69}])
        >>> sorted(write_bench_report(r, tempfile.mkdtemp(), samples={"a": [3.0, 4.0]}))
        ['csv', 'html', 'json', 'latency', 'md', 'pareto']
    """
    ensure_dir(out, "report folder")
    frame = report.frame
    report.plots = []
    paths = {}
    quality = next((q for q in ("auc", "accuracy") if q in frame.columns and frame[q].notna().any()), None)
    if quality is None and "rmse" in frame.columns and frame["rmse"].notna().any():
        quality = "rmse"
    higher = quality != "rmse"
    label = "name" if "name" in frame.columns else frame.columns[0]
    if quality and "size_bytes" in frame.columns and frame["size_bytes"].notna().any():
        paths["pareto"] = pareto_plot(frame, x="size_bytes", y=quality, label=label, higher_is_better=higher,
                                      path=os.path.join(out, "pareto.png"))
        report.add_plot(paths["pareto"], f"{quality} vs size (log scale); the Pareto front joins the best trade-offs")
    if quality and "p50_us" in frame.columns and frame["p50_us"].notna().any():
        paths["latency_vs_quality"] = pareto_plot(
            frame, x="p50_us", y=quality, label=label, higher_is_better=higher, logx=True,
            path=os.path.join(out, "latency_vs_quality.png"), title=f"{quality} vs headline p50 latency")
        report.add_plot(paths["latency_vs_quality"], f"{quality} vs p50 latency per call (µs)")
    if samples:
        paths["latency"] = latency_plot(samples, path=os.path.join(out, "latency.png"),
                                        title="Latency per call (µs), every configuration")
        report.add_plot(paths["latency"], "latency distributions: box = p25-p75, whiskers 1.5 IQR")
    layers = report.tables.get("layers")
    if layers is not None and not layers.empty and {"layer", "sparsity"} <= set(layers.columns):
        lf = layers.copy()
        if "model" in lf.columns:
            lf["layer"] = lf["model"].astype(str) + ": " + lf["layer"].astype(str) + " " + lf["weight"].astype(str).str[-30:]
        paths["sparsity"] = sparsity_plot(lf, path=os.path.join(out, "sparsity.png"))
        report.add_plot(paths["sparsity"], "fraction of zero weights per layer")
    written = report.save(out)
    full = report.to_dict()
    if paths_by_model:
        for row in full["stages"]:
            if row.get("name") in paths_by_model:
                row["path"] = paths_by_model[row["name"]]
    if samples:
        full["latency_samples_us"] = {k: list(v) for k, v in samples.items()}
    write_json(written["json"], full)
    written.update(paths)
    return written
