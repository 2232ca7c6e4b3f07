"""Plots of a comparison table: the size/quality Pareto front, latency distributions, sparsity per layer.

They use matplotlib's Agg renderer through ``matplotlib.figure.Figure`` (pyplot is never imported, so a
notebook's backend is left alone). Each returns the PNG bytes, or writes them atomically to ``path`` and
returns it.

Example:
    >>> import pandas as pd
    >>> from tfcompress.bench import pareto_front
    >>> pareto_front(pd.DataFrame({"size_bytes": [10, 5], "auc": [0.9, 0.8]}))["size_bytes"].tolist()
    [5, 10]
"""
import io
import math

import numpy as np
import pandas as pd

from .._io import write_bytes
from ..errors import TFCompressError

__all__ = ["pareto_front", "pareto_plot", "latency_plot", "sparsity_plot"]


def _figure(width=6.4, height=4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="tight")


def _finish(fig, path):
    """PNG bytes of ``fig``; written atomically to ``path`` (returned) when given."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    if path is None:
        return data
    write_bytes(path, data)
    return path


def _require_columns(frame, columns):
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TFCompressError(f"columns {missing} are not in the table (columns: "
                              f"{list(frame.columns)}): pass existing column names")


def pareto_front(frame, x="size_bytes", y="auc", higher_is_better=True):
    """Rows on the Pareto front: no other row has smaller-or-equal ``x`` and a better ``y``.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"size_bytes": [10, 5, 8], "auc": [0.9, 0.8, 0.7]})
        >>> pareto_front(f)["size_bytes"].tolist()
        [5, 10]
    """
    _require_columns(frame, [x, y])
    data = frame.dropna(subset=[x, y])
    sign = 1.0 if higher_is_better else -1.0
    order = sorted(range(len(data)), key=lambda i: (data[x].iloc[i], -sign * data[y].iloc[i]))
    keep, best = [], -math.inf
    for i in order:
        value = sign * float(data[y].iloc[i])
        if value > best:
            keep.append(i)
            best = value
    return data.iloc[keep]


def pareto_plot(frame, x="size_bytes", y="auc", label="name", path=None, logx=True,
                higher_is_better=True, title=None):
    """Scatter of ``y`` against ``x`` per stage with the Pareto front drawn; returns ``path`` (or PNG bytes).

    Example:
        >>> import pandas as pd, tempfile, os
        >>> f = pd.DataFrame({"name": ["a", "b"], "size_bytes": [1e6, 2e5], "auc": [0.8, 0.79]})
        >>> p = pareto_plot(f, path=os.path.join(tempfile.mkdtemp(), "pareto.png"))
        >>> os.path.getsize(p) > 0
        True
    """
    frame = pd.DataFrame(frame)
    _require_columns(frame, [x, y])
    data = frame.dropna(subset=[x, y])
    if data.empty:
        raise TFCompressError(f"no row has both {x!r} and {y!r}: nothing to plot")
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(data[x], data[y], color="tab:blue", zorder=3)
    if label in data.columns:
        for _, row in data.iterrows():
            ax.annotate(str(row[label]), (row[x], row[y]), textcoords="offset points",
                        xytext=(5, 5), fontsize=8)
    front = pareto_front(data, x, y, higher_is_better)
    ax.step(front[x], front[y], where="post", color="tab:red", label="Pareto front", zorder=2)
    if logx and (data[x] > 0).all():
        ax.set_xscale("log")
    better = "higher" if higher_is_better else "lower"
    ax.set_xlabel(f"{x} (smaller is better)")
    ax.set_ylabel(f"{y} ({better} is better)")
    ax.set_title(title or f"{y} vs {x}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return _finish(fig, path)


def latency_plot(samples, path=None, title="Latency per call", logx=None):
    """Box plot of latency distributions: ``{name: list of µs}`` (or LatencyStats); returns ``path`` or PNG bytes.

    ``logx=None`` uses a log axis when the medians span more than 30x (say, TensorFlow ms next to
    TFLite µs), so every box stays readable.

    Example:
        >>> import tempfile, os
        >>> p = latency_plot({"a": [10, 12, 11], "b": [5, 6, 7]}, os.path.join(tempfile.mkdtemp(), "l.png"))
        >>> os.path.getsize(p) > 0
        True
    """
    if not isinstance(samples, dict) or not samples:
        raise TFCompressError("samples must be a non-empty dict name -> list of microseconds")
    names, values = [], []
    for name, s in samples.items():
        s = np.asarray(getattr(s, "samples_us", s), dtype=np.float64)
        if s.size == 0:
            raise TFCompressError(f"no latency samples for {name!r}: measure before plotting")
        names.append(str(name))
        values.append(s)
    fig = _figure(height=max(2.5, 0.6 * len(names) + 1.5))
    ax = fig.add_subplot()
    try:
        ax.boxplot(values, orientation="horizontal", showfliers=True)
    except TypeError:  # matplotlib < 3.10
        ax.boxplot(values, vert=False, showfliers=True)
    ax.set_yticks(range(1, len(names) + 1), names)
    medians = [float(np.median(v)) for v in values]
    if logx is None:
        logx = min(medians) > 0 and max(medians) / min(medians) > 30
    if logx and all(float(v.min()) > 0 for v in values):
        ax.set_xscale("log")
    ax.set_xlabel("latency per call (µs)" + (", log scale" if ax.get_xscale() == "log" else ""))
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    return _finish(fig, path)


def sparsity_plot(layer_frame, path=None, title="Kernel sparsity per layer"):
    """Horizontal bars of ``sparsity`` per layer (a frame from ``keras_layer_sparsity``); returns ``path`` or PNG bytes.

    Example:
        >>> import pandas as pd, tempfile, os
        >>> f = pd.DataFrame({"layer": ["d1", "d2"], "sparsity": [0.5, 0.8]})
        >>> os.path.getsize(sparsity_plot(f, os.path.join(tempfile.mkdtemp(), "s.png"))) > 0
        True
    """
    frame = pd.DataFrame(layer_frame)
    _require_columns(frame, ["layer", "sparsity"])
    if frame.empty:
        raise TFCompressError("the layer table is empty: the model has no kernels to plot")
    labels = frame["layer"].astype(str).tolist()
    fig = _figure(height=max(2.5, 0.35 * len(labels) + 1.5))
    ax = fig.add_subplot()
    ax.barh(range(len(labels)), frame["sparsity"].astype(float), color="tab:green")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of zero weights")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    return _finish(fig, path)
