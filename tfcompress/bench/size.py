"""How big is a model: bytes on disk, gzipped bytes, parameter counts and weight sparsity.

Works on Keras models (tf_keras) and on ``.tflite`` files (read with the LiteRT interpreter, no
TensorFlow needed for those).

Example:
    >>> from tfcompress._keras import keras
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
import pandas as pd

from .._keras import tf
from ..errors import TFCompressError

__all__ = ["file_bytes", "gzip_bytes", "count_params", "keras_sparsity", "keras_layer_sparsity",
           "tflite_sparsity", "tflite_layer_sparsity", "tflite_params"]

KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel")
"""Layer attributes that hold prunable kernels; embeddings and biases are not counted."""

WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
"""TFLite ops whose input 1 is the weight (filter) tensor."""

_LAYER_COLUMNS = ["layer", "weight", "shape", "params", "zeros", "sparsity"]


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


def _check_keras_model(model):
    if not hasattr(model, "weights") or not hasattr(model, "_flatten_layers"):
        raise TFCompressError(f"expected a Keras (tf_keras) model or layer, got "
                              f"{type(model).__name__}")


def count_params(model):
    """Total number of weights of a Keras model, trainable and non-trainable (each variable once).

    Example:
        >>> from tfcompress._keras import keras
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


def keras_layer_sparsity(model):
    """Per-kernel sparsity of a Keras model as a DataFrame (layer, weight, shape, params, zeros, sparsity).

    Counts the kernels of Dense layers and of any layer with a ``kernel`` (also ``depthwise_kernel`` /
    ``pointwise_kernel``) attribute, recursing into nested models and wrappers; embeddings and biases
    are left out.

    Example:
        >>> from tfcompress._keras import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        >>> keras_layer_sparsity(m)[["params", "zeros", "sparsity"]].values.tolist()
        [[2.0, 2.0, 1.0]]
    """
    _check_keras_model(model)
    rows = []
    for layer, var in _kernels(model):
        values = np.asarray(var)
        zeros = int(np.count_nonzero(values == 0))
        rows.append({"layer": layer.name, "weight": var.name, "shape": tuple(values.shape),
                     "params": int(values.size), "zeros": zeros,
                     "sparsity": zeros / values.size if values.size else 0.0})
    return pd.DataFrame(rows, columns=_LAYER_COLUMNS)


def _overall(frame):
    params = frame["params"].sum()
    return float(frame["zeros"].sum() / params) if params else 0.0


def keras_sparsity(model):
    """Fraction of exact zeros over all kernels of a Keras model (0.0 if it has no kernels).

    Example:
        >>> from tfcompress._keras import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer="zeros")])
        >>> keras_sparsity(m)
        1.0
    """
    return _overall(keras_layer_sparsity(model))


# ---------------------------------------------------------------------------------------------------
# TFLite files


def _tflite_interpreter(path):
    """A LiteRT interpreter that is NOT allocated: only constant tensors hold data then."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TFCompressError(f"TFLite file {path!r} does not exist: pass the path of a .tflite file")
    try:
        return Interpreter(model_path=path, experimental_op_resolver_type=(
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    except ValueError as e:
        raise TFCompressError(f"{path!r} is not a readable TFLite model: {e}") from None


def _constant(interpreter, index):
    """The data of tensor ``index`` if it is a constant (before allocation), else None."""
    if index < 0:
        return None
    try:
        return interpreter.get_tensor(index)
    except ValueError:
        return None


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
    interpreter = _tflite_interpreter(path)
    ops = interpreter._get_ops_details()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    producer = {int(out): op for op in ops for out in op["outputs"]}
    rows, seen = [], set()
    for op in ops:
        if op["op_name"] not in WEIGHT_OPS or len(op["inputs"]) < 2:
            continue
        index = int(op["inputs"][1])
        while (_constant(interpreter, index) is None and index in producer
               and producer[index]["op_name"] in ("DEQUANTIZE", "DENSIFY")):
            index = int(producer[index]["inputs"][0])
        values = _constant(interpreter, index)
        if values is None or index in seen:
            continue
        seen.add(index)
        zeros = int(np.count_nonzero(_zero_mask(values, details[index])))
        rows.append({"layer": op["op_name"], "weight": details[index]["name"],
                     "shape": tuple(values.shape), "params": int(values.size), "zeros": zeros,
                     "sparsity": zeros / values.size if values.size else 0.0})
    return pd.DataFrame(rows, columns=_LAYER_COLUMNS)


def tflite_sparsity(path):
    """Fraction of exact zeros over the weight tensors of FULLY_CONNECTED / CONV ops in a ``.tflite`` file.

    For int8 weights a zero is the stored value equal to the zero point (0 for symmetric weights), so
    tiny float weights that quantize to 0 count as zeros too.

    Example:
        >>> # tflite_sparsity("model_int8.tflite")  -> e.g. 0.5 after 50% pruning
    """
    return _overall(tflite_layer_sparsity(path))


_WEIGHT_DTYPES = (np.float32, np.float16, np.float64, np.int8, np.uint8, np.int16)


def tflite_params(path):
    """Number of weight values stored in a ``.tflite`` file.

    Counts every constant tensor of a float, int8, uint8 or int16 type with at least one element, plus
    int32 bias tensors (input 2 of FULLY_CONNECTED / CONV ops, as int8 models store them); model
    inputs/outputs and int32 shape constants are not weights.

    Example:
        >>> # tflite_params("model.tflite")
    """
    interpreter = _tflite_interpreter(path)
    io = {d["index"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    biases = {int(op["inputs"][2]) for op in interpreter._get_ops_details()
              if op["op_name"] in WEIGHT_OPS and len(op["inputs"]) > 2}
    total = 0
    for d in interpreter.get_tensor_details():
        index = d["index"]
        if index in io or not (d["dtype"] in _WEIGHT_DTYPES or index in biases):
            continue
        values = _constant(interpreter, index)
        if values is not None and values.size >= 1:
            total += int(values.size)
    return total
