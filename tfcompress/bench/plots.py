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

__all__ = ["pareto_front", "pareto_figure", "pareto_plot", "latency_plot", "sparsity_plot"]


def _figure(width=6.4, height=4.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="tight")
    FigureCanvasAgg(fig)  # a renderer to measure text with; pyplot stays untouched
    return fig


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


def pareto_figure(frame, x="size_bytes", y="auc", label="name", logx=True, higher_is_better=True, title=None):
    """The matplotlib ``Figure`` behind :func:`pareto_plot`, labels placed so that no two overlap.

    Points that fall on the same spot share one label (``"a, b"``); other labels try positions around
    their point (right, left, above, below, then further out) and take the first that overlaps no
    label placed before.

    Example:
        >>> import pandas as pd
        >>> f = pd.DataFrame({"name": ["a", "b"], "size_bytes": [1e6, 1e6], "auc": [0.8, 0.8]})
        >>> [t.get_text() for t in pareto_figure(f).axes[0].texts]
        ['a, b']
    """
    frame = pd.DataFrame(frame)
    _require_columns(frame, [x, y])
    data = frame.dropna(subset=[x, y])
    if data.empty:
        raise TFCompressError(f"no row has both {x!r} and {y!r}: nothing to plot")
    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(data[x], data[y], color="tab:blue", zorder=3)
    front = pareto_front(data, x, y, higher_is_better)
    ax.step(front[x], front[y], where="post", color="tab:red", label="Pareto front", zorder=2)
    if logx and (data[x] > 0).all():
        ax.set_xscale("log")
    ax.margins(x=0.15, y=0.25)  # room for labels around the outer points
    if "bytes" in x:
        _bytes_axis(ax.xaxis)
    better = "higher" if higher_is_better else "lower"
    ax.set_xlabel(f"{x} (smaller is better)")
    ax.set_ylabel(f"{y} ({better} is better)")
    ax.set_title(title or f"{y} vs {x}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    if label in data.columns:
        fig.draw_without_rendering()  # settle the layout, then keep it so label boxes stay where measured
        fig.set_layout_engine("none")
        _place_labels(ax, [str(v) for v in data[label]], data[x].to_numpy(float), data[y].to_numpy(float))
    return fig


def pareto_plot(frame, x="size_bytes", y="auc", label="name", path=None, logx=True,
                higher_is_better=True, title=None):
    """Scatter of ``y`` against ``x`` per stage with the Pareto front drawn; returns ``path`` (or PNG bytes).

    Labels never overlap (see :func:`pareto_figure`).

    Example:
        >>> import pandas as pd, tempfile, os
        >>> f = pd.DataFrame({"name": ["a", "b"], "size_bytes": [1e6, 2e5], "auc": [0.8, 0.79]})
        >>> p = pareto_plot(f, path=os.path.join(tempfile.mkdtemp(), "pareto.png"))
        >>> os.path.getsize(p) > 0
        True
    """
    return _finish(pareto_figure(frame, x, y, label, logx, higher_is_better, title), path)


#: label positions tried around a point, in points: (dx, dy, horizontal alignment, vertical alignment)
_LABEL_SPOTS = [(7, 2, "left", "bottom"), (7, -2, "left", "top"), (-7, 2, "right", "bottom"),
                (-7, -2, "right", "top"), (0, 8, "center", "bottom"), (0, -8, "center", "top")] + [
    (dx, sign * (3 + 11 * k), ha, "bottom" if sign > 0 else "top")
    for k in (1, 2, 3, 4, 5) for sign in (1, -1) for dx, ha in ((6, "left"), (-6, "right"))]


def _point_groups(ax, names, xs, ys, tolerance=4.0):
    """``[(display xy, "name, name")]``: names whose points lie within ``tolerance`` pixels share one label."""
    pixels = ax.transData.transform(np.column_stack([xs, ys]))
    groups = []
    for name, xy, point in zip(names, pixels, zip(xs, ys)):
        for group in groups:
            if np.hypot(*(group[0] - xy)) <= tolerance:
                group[2].append(name)
                break
        else:
            groups.append((xy, point, [name]))
    return [(point, ", ".join(members)) for _, point, members in groups]


def _bytes_axis(axis):
    """Tick labels in B/KB/MB (major ticks only), so log-scale labels do not run into each other."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def label(v, _):
        for unit, size in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
            if v >= size:
                return f"{v / size:.3g} {unit}"
        return f"{v:.0f} B"

    if axis.get_scale() == "log":
        axis.set_major_locator(LogLocator(base=2.0))  # 16 KB, 32 KB, ...
    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(NullFormatter())


def _place_labels(ax, names, xs, ys):
    """Annotate each point (group) at the first spot whose box overlaps no placed label and no point and
    stays inside the axes; the least-overlapping spot when none is free. Far spots get a leader line."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    placed = [Bbox.from_bounds(px - 6, py - 6, 12, 12) for px, py in ax.transData.transform(np.column_stack([xs, ys]))]
    for point, text in _point_groups(ax, names, xs, ys):
        best = None
        for dx, dy, ha, va in _LABEL_SPOTS:
            arrow = {"arrowstyle": "-", "color": "0.5", "lw": 0.6} if abs(dy) > 8 else None
            note = ax.annotate(text, point, textcoords="offset points", xytext=(dx, dy), ha=ha, va=va, fontsize=8,
                               arrowprops=arrow)
            box = note.get_window_extent(renderer)
            cost = sum(_overlap(box, other) for other in placed) + (0 if _contains(inside, box) else 1e6)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, note, box)
            else:
                note.remove()
            if cost == 0:
                break
        placed.append(best[2])


def _overlap(a, b):
    """Area shared by two display boxes (0 when they are apart)."""
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))


def _contains(outer, box):
    return outer.x0 <= box.x0 and box.x1 <= outer.x1 and outer.y0 <= box.y0 and box.y1 <= outer.y1


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
