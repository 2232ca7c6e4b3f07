"""Where the bytes of a recommendation model are: parameters and bytes of its embedding tables, in a Keras
model and in a ``.tflite`` file (the constant tables its GATHER ops read).

Example:
    >>> from tfcompress import keras
    >>> m = keras.Sequential([keras.Input((), dtype="int32"), keras.layers.Embedding(10, 3)])
    >>> embedding_params(m), embedding_bytes(m)
    (30, 120)
"""
import os

import numpy as np

from .. import tflite_file
from .._keras import keras, tf
from .embedding_base import _Compressed


def embedding_params(model):
    """Parameters in the model's embedding tables (Embedding layers and the layers of this module).

    Example:
        >>> m = keras.Sequential([keras.Input((), dtype="int32"), keras.layers.Embedding(10, 3)])
        >>> embedding_params(m)
        30
    """
    return _embedding_weights(model, lambda w: 1)


def embedding_bytes(model):
    """Bytes of the model's embedding tables at their stored dtypes (float32 4 bytes a value, the int8
    values of per-row tables 1, packed int4 two values a byte).

    Example:
        >>> from tfcompress.models import quantize_tables
        >>> m = keras.Sequential([keras.Input((), dtype="int32"), keras.layers.Embedding(10, 3)])
        >>> embedding_bytes(m), embedding_bytes(quantize_tables(m, bits=4))  # 10 x 2 packed bytes + 10 scales
        (120, 60)
    """
    return _embedding_weights(model, lambda w: tf.as_dtype(w.dtype).size)


def _embedding_weights(model, per_value):
    total = 0
    for layer in _all_layers(model):
        if isinstance(layer, (_Compressed, keras.layers.Embedding)):
            total += int(sum(int(np.prod(w.shape)) * per_value(w) for w in layer.weights))
    return total


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def tflite_embedding_bytes(path):
    """``{"total": file bytes, "embedding": bytes of constant tables read by GATHER ops, "dtypes": {...}}``
    of a ``.tflite`` file (the ``dtypes`` of those tables tell whether they stayed int8); tables under 64
    bytes are not counted.

    Example:
        >>> # tflite_embedding_bytes("model.tflite")["dtypes"]  -> {"...emb_item_id...": "int8", ...}
    """
    tables = [t for t in tflite_file.gather_tables(path) if t["nbytes"] >= 64]
    return {"total": os.path.getsize(path), "embedding": int(sum(t["nbytes"] for t in tables)),
            "dtypes": {t["name"]: t["dtype"] for t in tables}}
