"""How sparse a model's weights are, in one place: Keras models and ``.tflite`` files, plus the checks the
compression stages need (m-by-n patterns, distinct values per kernel).

* :func:`keras_layer_sparsity` / :func:`keras_sparsity` — exact zeros per kernel / overall, nested models and
  tfmot wrappers included; :func:`layer_sparsity` — the same fraction by top-level layer name.
* :func:`tflite_layer_sparsity` / :func:`tflite_sparsity` — the weights of FULLY_CONNECTED / CONV ops of a
  ``.tflite`` file (read through :mod:`tfcompress.tflite_file`); for int8 a zero is the zero point.
* :func:`sparsity_report` — per kernel sparsity plus distinct values; :func:`is_m_by_n`,
  :func:`m_by_n_violations`; :func:`unique_values`, :func:`tflite_unique_values` (what clustering keeps).

``tfcompress.bench.size`` re-exports the sparsity measures beside its byte and parameter counts.

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="h", kernel_initializer="ones")])
    >>> sparsity_report(m)[["layer", "sparsity", "unique"]].values.tolist()
    [['h', 0.0, 1]]
"""
import numpy as np
import pandas as pd

from .. import tflite_file
from .._keras import tf
from ..errors import TFCompressError, check

__all__ = ["keras_sparsity", "keras_layer_sparsity", "layer_sparsity", "tflite_sparsity", "tflite_layer_sparsity",
           "sparsity_report", "m_by_n_violations", "is_m_by_n", "unique_values", "tflite_unique_values"]

KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel")
"""Layer attributes that hold prunable kernels; embeddings and biases are not counted."""

WEIGHT_OPS = tflite_file.WEIGHT_OPS
"""TFLite ops whose input 1 is the weight (filter) tensor."""

_LAYER_COLUMNS = ["layer", "weight", "shape", "params", "zeros", "sparsity"]


def _row(layer, weight, values, zero_mask):
    """One row of a per-kernel sparsity frame: the one place zeros are counted."""
    zeros = int(np.count_nonzero(zero_mask))
    return {"layer": layer, "weight": weight, "shape": tuple(values.shape), "params": int(values.size),
            "zeros": zeros, "sparsity": zeros / values.size if values.size else 0.0}


def _overall(frame):
    params = frame["params"].sum()
    return float(frame["zeros"].sum() / params) if params else 0.0


# ---------------------------------------------------------------------------------------------------
# Keras models


def _check_keras_model(model):
    if not hasattr(model, "weights") or not hasattr(model, "_flatten_layers"):
        raise TFCompressError(f"expected a Keras (tf_keras) model or layer, got "
                              f"{type(model).__name__}")


def _is_kernel_name(var):
    return var.name.split("/")[-1].split(":")[0] in KERNEL_ATTRIBUTES


def _kernels(model):
    """Yield ``(layer, variable)`` for every kernel in the model, nested models and wrappers included."""
    seen = set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        found = [getattr(layer, attr, None) for attr in KERNEL_ATTRIBUTES]
        # tfmot's QuantizeWrapper moves the kernel variable to the wrapper (the inner layer's
        # `kernel` becomes a fake-quantized tensor); its `_weight_vars` hold the real variables.
        owner = getattr(layer, "layer", layer)
        wrapped = [entry[0] for entry in getattr(layer, "_weight_vars", None) or ()]
        wrapped = [v for v in wrapped if _is_kernel_name(v)]
        for var in found + wrapped:
            if isinstance(var, tf.Variable) and id(var) not in seen:
                seen.add(id(var))
                yield (owner if any(var is w for w in wrapped) else layer), var


def _inner_kernels(model):
    for layer, var in _kernels(model):
        yield layer, np.asarray(var)


def keras_layer_sparsity(model):
    """Per-kernel sparsity of a Keras model as a DataFrame (layer, weight, shape, params, zeros, sparsity).

    Counts the kernels of Dense layers and of any layer with a ``kernel`` (also ``depthwise_kernel`` /
    ``pointwise_kernel``) attribute, recursing into nested models and wrappers; embeddings and biases
    are left out.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        >>> keras_layer_sparsity(m)[["params", "zeros", "sparsity"]].values.tolist()
        [[2.0, 2.0, 1.0]]
    """
    _check_keras_model(model)
    rows = []
    for layer, var in _kernels(model):
        values = np.asarray(var)
        rows.append(_row(layer.name, var.name, values, values == 0))
    return pd.DataFrame(rows, columns=_LAYER_COLUMNS)


def keras_sparsity(model):
    """Fraction of exact zeros over all kernels of a Keras model (0.0 if it has no kernels).

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        >>> keras_sparsity(m)
        1.0
    """
    return _overall(keras_layer_sparsity(model))


def layer_sparsity(model):
    """Fraction of exact zeros in each top-level kernel-bearing layer's kernel (inside a tfmot wrapper
    too), by layer name.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="h", kernel_initializer="zeros")])
        >>> layer_sparsity(m)
        {'h': 1.0}
    """
    out = {}
    for layer in model.layers:
        kernel = getattr(getattr(layer, "layer", layer), "kernel", None)
        if kernel is not None and hasattr(kernel, "numpy"):
            values = kernel.numpy()
            out[layer.name] = float(_row(layer.name, None, values, values == 0)["sparsity"])
    return out


# ---------------------------------------------------------------------------------------------------
# TFLite files


def _zero_mask(values, details):
    """Which stored values encode a real 0.0 (for int8/uint8: the value equals the zero point)."""
    if not np.issubdtype(values.dtype, np.integer):
        return values == 0
    qp = details.get("quantization_parameters") or {}
    zero_points = np.asarray(qp.get("zero_points", []))
    if zero_points.size <= 1:
        zp = int(zero_points[0]) if zero_points.size else int(details["quantization"][1])
        return values == zp
    shape = [1] * values.ndim
    shape[int(qp.get("quantized_dimension", 0))] = -1
    return values == zero_points.reshape(shape)


def tflite_layer_sparsity(path):
    """Per-op weight sparsity of a ``.tflite`` file as a DataFrame (layer, weight, shape, params, zeros, sparsity).

    Looks at input 1 (the weights) of FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D ops; weights
    stored as float16/int8 behind a DEQUANTIZE (or DENSIFY) op are followed back to the constant.

    Example:
        >>> # tflite_layer_sparsity("model.tflite")[["layer", "sparsity"]]
    """
    rows = [_row(t["op_name"], t["name"], t["values"], _zero_mask(t["values"], t["details"]))
            for t in tflite_file.weights(path, WEIGHT_OPS)]
    return pd.DataFrame(rows, columns=_LAYER_COLUMNS)


def tflite_sparsity(path):
    """Fraction of exact zeros over the weight tensors of FULLY_CONNECTED / CONV ops in a ``.tflite`` file.

    For int8 weights a zero is the stored value equal to the zero point (0 for symmetric weights), so
    tiny float weights that quantize to 0 count as zeros too.

    Example:
        >>> # tflite_sparsity("model_int8.tflite")  -> e.g. 0.5 after 50% pruning
    """
    return _overall(tflite_layer_sparsity(path))


# ---------------------------------------------------------------------------------------------------
# What compression must keep: sparsity with distinct values, m-by-n patterns


def sparsity_report(model):
    """Per-kernel DataFrame: layer, weight, shape, params, zeros, sparsity (from
    :func:`keras_layer_sparsity`) plus ``unique`` (distinct values in the kernel).

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        >>> float(sparsity_report(m)["sparsity"][0])
        1.0
    """
    frame = keras_layer_sparsity(model)
    # same order as keras_layer_sparsity (variable names may repeat, e.g. after strip_clustering)
    frame["unique"] = [int(len(np.unique(values))) for _, values in _inner_kernels(model)]
    return frame


def _check_m_by_n(m, n):
    check(isinstance(m, (int, np.integer)) and isinstance(n, (int, np.integer)) and 0 < m < n,
          f"m-by-n sparsity needs integers 0 < m < n, got m={m!r}, n={n!r} (e.g. m=2, n=4)")
    return int(m), int(n)


def _groups(kernel, n):
    """The kernel as rows of groups of ``n`` consecutive weights along the input axis, as tfmot and
    TFLite lay them out: Dense ``(in, out)`` -> ``(out, in)``; Conv ``(h, w, in, out)`` -> ``(out·h·w, in)``.
    Rows are zero-padded to a multiple of ``n``."""
    k = np.asarray(kernel)
    if k.ndim == 2:
        rows = k.T
    elif k.ndim == 4:
        rows = np.transpose(k, (3, 0, 1, 2)).reshape(-1, k.shape[2])
    else:
        raise TFCompressError(f"m-by-n patterns are defined for rank-2 or rank-4 kernels, got shape {k.shape}")
    pad = (-rows.shape[1]) % n
    rows = np.pad(rows, ((0, 0), (0, pad)))
    return rows.reshape(rows.shape[0], -1, n)


def m_by_n_violations(kernel, m=2, n=4):
    """Number of groups of ``n`` consecutive input-axis weights (per output unit) with fewer than ``m`` zeros.

    Example:
        >>> m_by_n_violations(np.array([[0.], [0.], [1.], [2.]]), 2, 4)
        0
        >>> m_by_n_violations(np.array([[0.], [3.], [1.], [2.]]), 2, 4)
        1
    """
    m, n = _check_m_by_n(m, n)
    groups = _groups(kernel, n)
    zeros = np.sum(groups == 0, axis=-1)
    return int(np.sum(zeros < m))


def is_m_by_n(kernel, m=2, n=4):
    """True if every group of ``n`` consecutive input-axis weights has at least ``m`` zeros.

    Example:
        >>> is_m_by_n(np.zeros((8, 3)), 2, 4)
        True
    """
    return m_by_n_violations(kernel, m, n) == 0


def unique_values(model):
    """Distinct values in each kernel of a Keras model, by layer name (clustered layers: <= clusters).

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="h", kernel_initializer="ones")])
        >>> unique_values(m)
        {'h': 1}
    """
    return {layer.name: int(len(np.unique(values))) for layer, values in _inner_kernels(model)}


def tflite_unique_values(path):
    """Per weight tensor of a ``.tflite`` file (FULLY_CONNECTED / CONV inputs 1): distinct stored values
    in the whole tensor and the maximum over output channels (rows of the TFLite layout), as a DataFrame
    (weight, shape, dtype, unique, max_unique_per_channel). An int8 model quantized per channel stores a
    clustered kernel with at most ``n_clusters`` distinct values in every channel.

    Example:
        >>> # tflite_unique_values("clustered_int8.tflite")["max_unique_per_channel"].max() <= 16
    """
    rows = []
    for tensor in tflite_file.weights(path, WEIGHT_OPS):
        values = tensor["values"]
        per_channel = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(1, -1)
        rows.append({"weight": tensor["name"], "shape": tuple(values.shape), "dtype": str(values.dtype),
                     "unique": int(len(np.unique(values))),
                     "max_unique_per_channel": int(max(len(np.unique(r)) for r in per_channel))})
    return pd.DataFrame(rows, columns=["weight", "shape", "dtype", "unique", "max_unique_per_channel"])
