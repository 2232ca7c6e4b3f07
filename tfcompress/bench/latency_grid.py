"""Latency of several models over a grid of settings: every batch size x every device (Keras and
SavedModel models: the CPU and each visible GPU) x every interpreter thread count x XNNPACK on/off
(``.tflite`` files).

Within one setting the models are timed interleaved (:func:`tfcompress.bench.compare_latency`'s
shuffled round-robin), on the same real rows, so drift in machine speed hits them alike.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tfcompress import keras
    >>> from tfcompress.bench import BenchModel, load_data, measure_latency_grid
    >>> x = keras.Input((), name="x")
    >>> net = keras.Model(x, keras.layers.Reshape((1,))(x))
    >>> model = BenchModel("m", "keras", "m.keras", net, {"x": np.float32})
    >>> rows = load_data(pd.DataFrame({"x": [1.0, 2.0]}))
    >>> frame, samples = measure_latency_grid([model], rows, batches=(1, 2), runs=3, warmup=1)
    >>> sorted(set(frame.dropna(subset=["p50_us"])["batch"])), sorted(samples)[0]
    ([1, 2], 'm [CPU:0, b1]')
"""
import sys

import numpy as np
import pandas as pd

from ..errors import TFCompressError
from . import latency

__all__ = ["measure_latency_grid", "grid_settings", "LATENCY_COLUMNS"]

#: columns of the latency table, in order
LATENCY_COLUMNS = ["name", "format", "device", "threads", "xnnpack", "batch", "p50_us", "p90_us", "p99_us",
                   "mean_us", "std_us", "throughput_p50_per_s", "throughput_per_s", "runs", "note"]


def grid_settings(batches=(1, 32), threads=(1,), xnnpack=(True,), runs=100, warmup=None):
    """The checked grid ``(batches, threads, xnnpack, warmup)`` as lists (``warmup`` defaults to
    ``runs // 10``, at least 2); a :class:`~tfcompress.errors.TFCompressError` names a bad value.

    Example:
        >>> grid_settings((1, 32), (1, 2), (True,), runs=50)
        ([1, 32], [1, 2], [True], 5)
        >>> grid_settings((0,))
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: batch sizes must be whole numbers >= 1, got (0,)
    """
    batches = _whole_numbers("batch sizes", batches)
    threads = _whole_numbers("threads", threads)
    if isinstance(xnnpack, (str, bytes)) or not all(isinstance(x, (bool, np.bool_)) for x in _listed(
            "xnnpack", xnnpack)):
        raise TFCompressError(f"xnnpack must be a list of True/False (on/off), got {xnnpack!r}")
    latency._check_runs(runs, 0)
    warmup = max(2, runs // 10) if warmup is None else warmup
    latency._check_runs(runs, warmup)
    return batches, threads, [bool(x) for x in xnnpack], warmup


def _listed(name, values):
    try:
        values = list(values)
    except TypeError:
        raise TFCompressError(f"{name} must be a list, got {values!r}") from None
    if not values:
        raise TFCompressError(f"{name} is empty: pass at least one value")
    return values


def _whole_numbers(name, values):
    listed = _listed(name, values)
    if isinstance(values, (str, bytes)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in listed):
        raise TFCompressError(f"{name} must be whole numbers >= 1, got {values!r}")
    return [int(v) for v in listed]


def measure_latency_grid(models, data, *, batches=(1, 32), threads=(1,), xnnpack=(True,), runs=100,
                         warmup=None, seed=0, progress=False):
    """Time every :class:`~tfcompress.bench.BenchModel` over the grid on rows of ``data`` (a
    :class:`~tfcompress.bench.BenchData`); returns ``(frame, samples)``.

    ``frame`` has one row per model x setting (columns :data:`LATENCY_COLUMNS`: p50/p90/p99, mean,
    throughput per call in µs and rows/s); without a GPU each Keras/SavedModel model gets a row with
    device ``GPU`` whose ``note`` says no GPU is visible. ``samples`` maps a label such as
    ``"m [1t, xnnpack on, b32]"`` to the per-call times in µs. Each batch size uses its own fixed draw
    of rows (``seed + batch``). TensorFlow and TFLite models are timed in separate blocks (TensorFlow's
    thread pools slow a TFLite call that follows). ``progress=True`` shows a tqdm bar on stderr.
    """
    batches, threads, xnnpack, warmup = grid_settings(batches, threads, xnnpack, runs, warmup)
    gpus = latency.gpu_devices()
    devices = ["/CPU:0"] + [latency._check_device(g) for g in gpus]
    tf_models = [m for m in models if m.is_tensorflow]
    tfl_models = [m for m in models if m.kind == "tflite"]
    configs = len(tf_models) * len(devices) + len(tfl_models) * len(threads) * len(xnnpack)
    bar = _progress_bar(len(batches) * configs * runs) if progress else None
    timing = {"runs": runs, "warmup": warmup, "seed": seed, "tick": bar.update if bar is not None else None}
    rows, samples = [], {}
    for batch in batches:
        inputs = data.sample(batch, seed=seed + batch)
        for device in devices if tf_models else ():
            stats = _compare(tf_models, inputs, device=device, **timing)
            for m in tf_models:
                rows.append(_latency_row(m, stats[m.name], device=device.strip("/")))
                samples[f"{m.name} [{device.strip('/')}, b{batch}]"] = stats[m.name].samples_us
        if not gpus:
            rows += [{"name": m.name, "format": m.kind, "device": "GPU", "batch": batch,
                      "note": "no GPU visible to TensorFlow: not measured"} for m in tf_models]
        for t in threads if tfl_models else ():
            for x in xnnpack:
                stats = _compare(tfl_models, inputs, threads=t, xnnpack=x, **timing)
                for m in tfl_models:
                    rows.append(_latency_row(m, stats[m.name], device="CPU", threads=t, xnnpack=x))
                    samples[f"{m.name} [{t}t, xnnpack {'on' if x else 'off'}, b{batch}]"] = stats[m.name].samples_us
    if bar is not None:
        bar.close()
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=[c for c in LATENCY_COLUMNS if c in frame.columns]), samples


def _progress_bar(total):
    from tqdm import tqdm

    return tqdm(total=total, desc="bench", unit="call", file=sys.stderr, leave=False)


def _compare(models, inputs, *, runs, warmup, seed, tick, device=None, threads=1, xnnpack=True):
    """Interleaved timing of ``models`` (all TensorFlow or all TFLite) on ``inputs``: name -> LatencyStats."""
    runners = {}
    for m in models:
        feed = m.cast(inputs)
        if m.kind == "keras":
            runners[m.name] = latency._keras_runner(m.obj, feed, device)
        elif m.kind == "savedmodel":
            runners[m.name] = latency._savedmodel_runner(m.obj, feed, device)
        else:
            runners[m.name] = latency._tflite_runner(m.path, feed, threads, xnnpack)
    return latency._measure(runners, runs, warmup, seed=seed, progress=tick)


def _latency_row(m, stats, device, threads=None, xnnpack=None):
    d = stats.to_dict()
    row = {"name": m.name, "format": m.kind, "device": device, "batch": d["batch_size"]}
    if threads is not None:
        row.update({"threads": threads, "xnnpack": "on" if xnnpack else "off"})
    row.update({k: d[k] for k in ("p50_us", "p90_us", "p99_us", "mean_us", "std_us", "throughput_per_s", "runs")})
    # rows/s at the median call: one stalled call (the OS, another process) cannot swing it like the mean
    row["throughput_p50_per_s"] = d["batch_size"] * 1e6 / d["p50_us"] if d["p50_us"] > 0 else None
    return row
