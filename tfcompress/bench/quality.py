"""Quality of several models on the same rows: their metrics, and paired bootstrap intervals of each
model's difference from a baseline.

The metrics follow the data's objective: ``binary`` (AUC, log loss), ``multiclass`` (accuracy, log loss),
``regression`` (RMSE). Raw outputs are turned into probabilities first (a sigmoid or softmax when the
model returns logits), so a Keras model with logits and a TFLite model with probabilities compare alike.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tfcompress import keras
    >>> from tfcompress.bench import BenchModel, load_data, measure_quality
    >>> x = keras.Input((), name="x")
    >>> net = keras.Model(x, keras.layers.Reshape((1,))(x))
    >>> model = BenchModel("identity", "keras", "identity.keras", net, {"x": np.float32})
    >>> data = load_data(pd.DataFrame({"x": [-2.0, -1.0, 1.0, 2.0], "label": [0, 0, 1, 1]}))
    >>> measure_quality([model], data)[["name", "auc", "eval_rows"]].values.tolist()
    [['identity', 1.0, 4]]
"""
import re

import numpy as np
import pandas as pd

from .. import metrics
from ..errors import TFCompressError

__all__ = ["measure_quality"]


def measure_quality(models, data, *, baseline=None, bootstrap=200, seed=0):
    """Metrics of each model on ``data`` (a :class:`~tfcompress.bench.BenchData`), one row per model.

    Columns: ``name``, the objective's metrics, ``eval_rows``; with two models or more, for every model
    but the ``baseline`` (a model name, default the first) ``<metric>_diff`` (model - baseline, mean
    over ``bootstrap`` paired resamples of the rows drawn with ``seed``) and its 95% interval
    ``<metric>_diff_lo`` / ``<metric>_diff_hi``. Without labels (or for an objective without metrics)
    only ``name`` is filled. Binary 0/1 labels with a model of several outputs are read as class ids:
    ``data.objective`` becomes ``multiclass``.

    Example:
        >>> import numpy as np, pandas as pd
        >>> from tfcompress import keras
        >>> from tfcompress.bench import BenchModel, load_data
        >>> x = keras.Input((), name="x")
        >>> net = keras.Model(x, keras.layers.Reshape((1,))(x))
        >>> same = [BenchModel(n, "keras", n, net, {"x": np.float32}) for n in ("a", "b")]
        >>> data = load_data(pd.DataFrame({"x": np.linspace(-1, 1, 40), "label": [0, 1] * 20}))
        >>> measure_quality(same, data, bootstrap=20).loc[1, ["auc_diff", "auc_diff_lo", "auc_diff_hi"]].tolist()
        [0.0, 0.0, 0.0]
    """
    names = [m.name for m in models]
    baseline = baseline or names[0]
    if baseline not in names:
        raise TFCompressError(f"baseline {baseline!r} is not one of the models {names}: pass one of these names")
    fns = _metric_fns(data.objective) if data.labels is not None else {}
    rows, preds = [{"name": n} for n in names], {}
    if not fns:
        return pd.DataFrame(rows)
    for m, row in zip(models, rows):
        raw = _predict(m, data.arrays)
        if data.objective == "binary" and raw.reshape(len(raw), -1).shape[1] > 1:  # 0/1 labels, C outputs
            data.objective, data.labels = "multiclass", data.labels.astype(np.int32)
            fns = _metric_fns(data.objective)
        preds[m.name] = _probabilities(data.objective, raw)
        row.update({k: float(f(data.labels, preds[m.name])) for k, f in fns.items()})
        row["eval_rows"] = int(len(data.labels))
    if len(models) > 1:
        for row in rows:
            if row["name"] == baseline:
                continue
            for key, f in fns.items():
                mean, lo, hi = metrics.bootstrap_diff(f, data.labels, preds[baseline], preds[row["name"]],
                                                      n=bootstrap, seed=seed)
                row.update({f"{key}_diff": mean, f"{key}_diff_lo": lo, f"{key}_diff_hi": hi})
    return pd.DataFrame(rows)


def _probabilities(objective, out):
    out = np.asarray(out, np.float64)
    if objective == "binary":
        out = out.reshape(len(out), -1)[:, 0]
        if out.min() < 0 or out.max() > 1:  # logits
            out = 1.0 / (1.0 + np.exp(-out))
        return np.clip(out, 1e-7, 1 - 1e-7)
    if objective == "multiclass":
        out = out.reshape(len(out), -1)
        if out.min() < 0 or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
            z = np.exp(out - out.max(axis=1, keepdims=True))
            out = z / z.sum(axis=1, keepdims=True)
        return out
    return out.reshape(len(out), -1)[:, 0]


def _error_line(e):
    """The informative line of a (possibly multi-line TensorFlow) exception message."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return ((named or lines or [type(e).__name__])[0])[:200]


def _predict(m, arrays):
    """``m.predict`` with a failure inside TensorFlow/LiteRT turned into a one-line error naming the model."""
    try:
        return m.predict(arrays)
    except TFCompressError:
        raise
    except Exception as e:  # noqa: BLE001  (TF and LiteRT raise many types; the first line says what)
        first = _error_line(e)
        raise TFCompressError(f"model {m.name} failed on the data ({first}): check that the data matches "
                              "what the model was trained on (ids within its vocabularies, same columns)") from None


def _metric_fns(objective):
    if objective == "binary":
        return {"auc": metrics.auc, "logloss": metrics.logloss}
    if objective == "multiclass":
        return {"accuracy": metrics.accuracy, "logloss": metrics.logloss}
    if objective == "regression":
        return {"rmse": metrics.rmse}
    return {}
