"""Per-layer reports of what compression did to the weights: sparsity, m-by-n patterns, unique values.

Sparsity itself is counted by :mod:`tfcompress.bench.size` (Keras models and ``.tflite`` files); this
module adds the checks the compression stages need: the m-by-n (e.g. 2:4) pattern and the number of
distinct weight values per kernel (what clustering must preserve), in Keras and in int8 TFLite files.

Example:
    >>> import numpy as np
    >>> from tfcompress._keras import keras
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="h", kernel_initializer="ones")])
    >>> sparsity_report(m)[["layer", "sparsity", "unique"]].values.tolist()
    [['h', 0.0, 1]]
"""
import numpy as np
import pandas as pd

from ..bench import size as _size
from ..errors import TFCompressError, check

__all__ = ["sparsity_report", "m_by_n_violations", "is_m_by_n", "unique_values", "tflite_unique_values"]


def _inner_kernels(model):
    for layer, var in _size._kernels(model):
        yield layer, np.asarray(var)


def sparsity_report(model):
    """Per-kernel DataFrame: layer, weight, shape, params, zeros, sparsity (from
    :func:`tfcompress.bench.size.keras_layer_sparsity`) plus ``unique`` (distinct values in the kernel).

    Example:
        >>> from tfcompress._keras import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        >>> float(sparsity_report(m)["sparsity"][0])
        1.0
    """
    frame = _size.keras_layer_sparsity(model)
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
        >>> from tfcompress._keras import keras
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
    interpreter = _size._tflite_interpreter(path)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    producer = {int(out): op for op in interpreter._get_ops_details() for out in op["outputs"]}
    rows, seen = [], set()
    for op in interpreter._get_ops_details():
        if op["op_name"] not in _size.WEIGHT_OPS or len(op["inputs"]) < 2:
            continue
        index = int(op["inputs"][1])
        while (_size._constant(interpreter, index) is None and index in producer
               and producer[index]["op_name"] in ("DEQUANTIZE", "DENSIFY")):
            index = int(producer[index]["inputs"][0])
        values = _size._constant(interpreter, index)
        if values is None or index in seen:
            continue
        seen.add(index)
        per_channel = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(1, -1)
        rows.append({"weight": details[index]["name"], "shape": tuple(values.shape), "dtype": str(values.dtype),
                     "unique": int(len(np.unique(values))),
                     "max_unique_per_channel": int(max(len(np.unique(r)) for r in per_channel))})
    return pd.DataFrame(rows, columns=["weight", "shape", "dtype", "unique", "max_unique_per_channel"])
