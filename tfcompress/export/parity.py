"""Parity between a Keras model and its TFLite export, on the same held-out inputs.

Example:
    >>> import numpy as np
    >>> compare_outputs(np.array([0.1, 0.2]), np.array([0.1, 0.2]), task="regression")["max_abs"]
    0.0
"""
import numpy as np

from ..errors import TFCompressError


class ParityError(TFCompressError):
    """A TFLite export disagrees with its Keras source beyond the caller's tolerance."""


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def compare_outputs(keras_out, tflite_out, labels=None, *, task="binary"):
    """max |Δ| and mean |Δ| of the outputs (probabilities for ``binary``: sigmoid of the logits;
    softmax for ``multiclass``), plus the task-metric difference when ``labels`` are given."""
    from ..bench import metrics

    a = np.asarray(keras_out, np.float64)
    b = np.asarray(tflite_out, np.float64)
    if a.shape != b.shape:
        raise TFCompressError(f"Keras output shape {a.shape} differs from TFLite output shape {b.shape}")
    if task == "binary":
        pa, pb = _sigmoid(a.reshape(-1)), _sigmoid(b.reshape(-1))
    elif task == "multiclass":
        ea, eb = np.exp(a - a.max(-1, keepdims=True)), np.exp(b - b.max(-1, keepdims=True))
        pa, pb = ea / ea.sum(-1, keepdims=True), eb / eb.sum(-1, keepdims=True)
    else:
        pa, pb = a, b
    diff = np.abs(pa - pb)
    out = {"max_abs": round(float(diff.max()), 6) if diff.size else 0.0,
           "mean_abs": round(float(diff.mean()), 6) if diff.size else 0.0, "n": int(len(a))}
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if task == "binary":
            ka, kb = metrics.auc(y, pa), metrics.auc(y, pb)
            out.update({"metric": "auc", "keras": ka, "tflite": kb, "metric_diff": kb - ka})
        elif task == "multiclass":
            ka, kb = metrics.accuracy(y, pa), metrics.accuracy(y, pb)
            out.update({"metric": "accuracy", "keras": ka, "tflite": kb, "metric_diff": kb - ka})
        else:
            ka, kb = metrics.rmse(y, pa), metrics.rmse(y, pb)
            out.update({"metric": "rmse", "keras": ka, "tflite": kb, "metric_diff": kb - ka})
    return out


def parity_report(model, tflite_model, data, *, task="binary", batch_size=2048):
    """Run ``model`` (Keras) and ``tflite_model`` (a :class:`TFLiteModel`) on ``data`` — a dict of inputs,
    optionally with a ``labels`` entry — and compare (see :func:`compare_outputs`)."""
    data = dict(data)
    labels = data.pop("labels", None)
    keras_out = model.predict(data, batch_size=batch_size, verbose=0)
    tfl_out = tflite_model.predict(data, batch_size=batch_size)
    return compare_outputs(keras_out, tfl_out, labels, task=task)


def parity_excess(report, tolerance):
    """How far ``report`` is from ``tolerance``: the largest ``|value| / limit`` over the limits (<= 1 means
    the tolerance holds). Used to compare trial exports.

    Example:
        >>> parity_excess({"max_abs": 0.02, "mean_abs": 0.001}, {"max_abs": 0.01})
        2.0
    """
    worst = 0.0
    for key, limit in (tolerance or {}).items():
        if key not in report:
            raise TFCompressError(f"unknown parity tolerance {key!r}; known: {sorted(report)}")
        value = abs(report[key] or 0.0)
        worst = max(worst, value / limit if limit > 0 else (0.0 if value == 0 else value * 1e12))
    return float(worst)
