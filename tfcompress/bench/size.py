"""How big is a model: bytes on disk, gzipped bytes, parameter counts and weight sparsity.

Works on Keras models (tf_keras) and on ``.tflite`` files (read through :mod:`tfcompress.tflite_file`).
The sparsity measures (``keras_sparsity``, ``keras_layer_sparsity``, ``tflite_sparsity``,
``tflite_layer_sparsity``) are those of :mod:`tfcompress.prune.sparsity`, re-exported here.

Example:
    >>> from tfcompress import keras
    >>> from tfcompress.bench import size
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> size.count_params(model)
    10
    >>> size.keras_sparsity(model) < 1.0
    True
"""
import gzip
import os

import numpy as np

from .. import tflite_file
from ..errors import TFCompressError
from ..prune.sparsity import (KERNEL_ATTRIBUTES, WEIGHT_OPS, _check_keras_model,  # noqa: F401 (re-exported)
                              keras_layer_sparsity, keras_sparsity, tflite_layer_sparsity, tflite_sparsity)

__all__ = ["file_bytes", "gzip_bytes", "count_params", "keras_sparsity", "keras_layer_sparsity",
           "tflite_sparsity", "tflite_layer_sparsity", "tflite_params"]


# ---------------------------------------------------------------------------------------------------
# Bytes on disk


def _files(path):
    path = os.fspath(path)
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        return sorted(os.path.join(root, name)
                      for root, _, names in os.walk(path) for name in names)
    raise TFCompressError(f"{path!r} does not exist: pass a model file or a SavedModel folder")


def file_bytes(path):
    """Size in bytes of a file, or the total of all files under a folder.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "m.bin")
        >>> _ = open(p, "wb").write(b"12345")
        >>> file_bytes(p)
        5
    """
    return int(sum(os.path.getsize(f) for f in _files(path)))


def gzip_bytes(path):
    """Size of the file's bytes gzipped at level 9 (a folder: the sum over its files).

    This is what a model costs to download when served compressed; pruned (sparse) weights shrink a
    lot here even though the raw file does not.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "zeros.bin")
        >>> _ = open(p, "wb").write(bytes(10_000))
        >>> gzip_bytes(p) < 100
        True
    """
    total = 0
    for f in _files(path):
        with open(f, "rb") as fh:
            total += len(gzip.compress(fh.read(), compresslevel=9, mtime=0))
    return int(total)


# ---------------------------------------------------------------------------------------------------
# Keras models


def count_params(model):
    """Total number of weights of a Keras model, trainable and non-trainable (each variable once).

    Example:
        >>> from tfcompress import keras
        >>> count_params(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
        8
    """
    _check_keras_model(model)
    seen, total = set(), 0
    for w in model.weights:
        if id(w) not in seen:
            seen.add(id(w))
            total += int(np.prod(w.shape))
    return total


# ---------------------------------------------------------------------------------------------------
# TFLite files


_WEIGHT_DTYPES = (np.float32, np.float16, np.float64, np.int8, np.uint8, np.int16)


def tflite_params(path):
    """Number of weight values stored in a ``.tflite`` file.

    Counts every constant tensor of a float, int8, uint8 or int16 type with at least one element, plus
    int32 bias tensors (input 2 of FULLY_CONNECTED / CONV ops, as int8 models store them); model
    inputs/outputs and int32 shape constants are not weights.

    Example:
        >>> # tflite_params("model.tflite")
    """
    interpreter = tflite_file.interpreter(path, xnnpack=False)
    io = {d["index"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    biases = {int(op["inputs"][2]) for op in tflite_file.ops(interpreter)
              if op["op_name"] in WEIGHT_OPS and len(op["inputs"]) > 2}
    total = 0
    for d in interpreter.get_tensor_details():
        index = d["index"]
        if index in io or not (d["dtype"] in _WEIGHT_DTYPES or index in biases):
            continue
        values = tflite_file.constant(interpreter, index)
        if values is not None and values.size >= 1:
            total += int(values.size)
    return total
