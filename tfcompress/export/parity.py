"""Parity between a Keras model and its TFLite export, on the same held-out inputs.

Example:
    >>> import numpy as np
    >>> compare_outputs(np.array([0.1, 0.2]), np.array([0.1, 0.2]), objective="regression")["max_abs"]
    0.0
"""
import warnings

import numpy as np

from ..errors import TFCompressError
from ..objectives import OBJECTIVES, check_objective, objective_from

def objective_argument(objective, task, where):
    """``objective`` (or ``where``'s deprecated ``task=``), checked to be one of :data:`OBJECTIVES`.

    Example:
        >>> objective_argument("multiclass", None, "to_tflite")
        'multiclass'
    """
    return check_objective(objective_from(objective, task, where, warn=_warn), where)


def _warn(message):
    warnings.warn(message, DeprecationWarning, stacklevel=4)


class ParityError(TFCompressError):
    """A TFLite export disagrees with its Keras source beyond the caller's tolerance.

    Example:
        >>> issubclass(ParityError, TFCompressError)
        True
    """


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def compare_outputs(keras_out, tflite_out, labels=None, *, objective="binary", task=None):
    """max |Δ| and mean |Δ| of the outputs (probabilities for ``binary``: sigmoid of the logits;
    softmax for ``multiclass``), plus the metric difference when ``labels`` are given (AUC, accuracy, or
    RMSE for the other objectives). ``task=`` is a deprecated alias of ``objective=``.

    Example:
        >>> r = compare_outputs(np.array([[2.0], [-1.0]]), np.array([[2.1], [-1.0]]), labels=[1, 0])
        >>> r["max_abs"], r["metric"], r["metric_diff"]
        (0.010106, 'auc', 0.0)
    """
    from .. import metrics

    objective = objective_argument(objective, task, "compare_outputs")
    a = np.asarray(keras_out, np.float64)
    b = np.asarray(tflite_out, np.float64)
    if a.shape != b.shape:
        raise TFCompressError(f"Keras output shape {a.shape} differs from TFLite output shape {b.shape}")
    if objective == "binary":
        pa, pb = _sigmoid(a.reshape(-1)), _sigmoid(b.reshape(-1))
    elif objective == "multiclass":
        ea, eb = np.exp(a - a.max(-1, keepdims=True)), np.exp(b - b.max(-1, keepdims=True))
        pa, pb = ea / ea.sum(-1, keepdims=True), eb / eb.sum(-1, keepdims=True)
    else:
        pa, pb = a, b
    diff = np.abs(pa - pb)
    out = {"max_abs": round(float(diff.max()), 6) if diff.size else 0.0,
           "mean_abs": round(float(diff.mean()), 6) if diff.size else 0.0, "n": int(len(a))}
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if objective == "binary":
            ka, kb = metrics.auc(y, pa), metrics.auc(y, pb)
            out.update({"metric": "auc", "keras": ka, "tflite": kb, "metric_diff": kb - ka})
        elif objective == "multiclass":
            ka, kb = metrics.accuracy(y, pa), metrics.accuracy(y, pb)
            out.update({"metric": "accuracy", "keras": ka, "tflite": kb, "metric_diff": kb - ka})
        else:
            ka, kb = metrics.rmse(y, pa), metrics.rmse(y, pb)
            out.update({"metric": "rmse", "keras": ka, "tflite": kb, "metric_diff": kb - ka})
    return out


def parity_report(model, tflite_model, data, *, objective="binary", batch_size=2048, task=None):
    """Run ``model`` (Keras) and ``tflite_model`` (a :class:`TFLiteModel`) on ``data`` — a dict of inputs,
    optionally with a ``labels`` entry — and compare (see :func:`compare_outputs`). ``task=`` is a
    deprecated alias of ``objective=``.

    Example:
        >>> import os, tempfile
        >>> from tfcompress import keras
        >>> from tfcompress.export import TFLiteModel, to_tflite
        >>> m = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1, name="y")])
        >>> tfl = TFLiteModel(to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float32"))
        >>> parity_report(m, tfl, {"x": np.ones((4, 2), "float32")}, objective="regression")["max_abs"] < 1e-6
        True
    """
    objective = objective_argument(objective, task, "parity_report")
    data = dict(data)
    labels = data.pop("labels", None)
    keras_out = model.predict(data, batch_size=batch_size, verbose=0)
    tfl_out = tflite_model.predict(data, batch_size=batch_size)
    return compare_outputs(keras_out, tfl_out, labels, objective=objective)


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


def report_exceeds(report, tolerance):
    """Which limits in ``tolerance`` the parity ``report`` exceeds, as text ('' if none).

    Example:
        >>> report_exceeds({"max_abs": 0.02, "mean_abs": 0.001}, {"max_abs": 0.01, "mean_abs": 0.01})
        'max_abs = 0.02 > 0.01'
    """
    bad = []
    for key, limit in (tolerance or {}).items():
        if key not in report:
            raise TFCompressError(f"unknown parity tolerance {key!r}; known: {sorted(report)}")
        value = report[key]
        if value is not None and abs(value) > limit:
            bad.append(f"{key} = {value:.4g} > {limit:g}")
    return "; ".join(bad)
