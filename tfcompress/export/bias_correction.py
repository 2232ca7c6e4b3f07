"""Empirical bias correction of int8 weights (Nagel et al. 2019, "Data-Free Quantization", section 4.2).

Rounding a kernel to int8 shifts the mean of its layer's output when the rounding errors do not cancel
(skewed weights, inputs with a non-zero mean). :func:`bias_corrected` simulates the converter's weight
quantization (symmetric int8, one scale per output channel, or per tensor), measures on calibration rows the
mean shift of each ``Dense`` / ``Conv2D`` / ``DepthwiseConv2D`` pre-activation output, ``mean(x · (Wq - W))``,
and subtracts it from that layer's bias in a **copy** of the model; the converter then quantizes the copy.
Layers without a bias are left as they are (adding one would change the model's structure).

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> x = keras.Input((8,), name="x")
    >>> m = keras.Model({"x": x}, keras.layers.Dense(2, name="h")(x))
    >>> rows = {"x": np.random.RandomState(0).rand(64, 8).astype("float32")}
    >>> fixed, shifts = bias_corrected(m, rows)
    >>> sorted(shifts), fixed is m
    (['h'], False)
"""
import numpy as np

from .._keras import keras, tf
from ..errors import TFCompressError
from ..models.utils import copy_model

_LAYERS = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def quantized_kernel(kernel, *, per_channel=True, depthwise=False):
    """``kernel`` rounded as the TFLite converter stores it: symmetric int8 (-127..127), one scale per output
    channel (the last axis; for a depthwise kernel, the last two) or one for the tensor, back in float.

    Example:
        >>> round(float(quantized_kernel(np.array([[0.5, 1.0], [0.26, -1.0]]))[1, 0]), 4)
        0.2598
    """
    w = np.asarray(kernel, np.float64)
    flat = w.reshape(-1, w.shape[-2] * w.shape[-1]) if depthwise else w.reshape(-1, w.shape[-1])
    amax = np.abs(flat).max(axis=0) if per_channel else np.full(flat.shape[1], np.abs(flat).max())
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    q = np.clip(np.round(flat / scale), -127, 127) * scale
    return q.reshape(w.shape).astype(np.float32)


def _linear(layer, x, kernel):
    """The layer's pre-activation output without bias, ``x`` through ``kernel``."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return tf.nn.depthwise_conv2d(x, kernel, strides=(1, *layer.strides, 1), padding=layer.padding.upper(),
                                      dilations=layer.dilation_rate).numpy()
    if isinstance(layer, keras.layers.Conv2D):
        return tf.nn.conv2d(x, kernel, strides=layer.strides, padding=layer.padding.upper(),
                            dilations=layer.dilation_rate).numpy()
    return np.tensordot(x, kernel, axes=[[-1], [0]])


def _targets(model):
    """The layers to correct: Dense / Conv2D / DepthwiseConv2D with a bias, channels last, used once."""
    out = []
    for layer in model.layers:
        if not isinstance(layer, _LAYERS) or not getattr(layer, "use_bias", False):
            continue
        if isinstance(layer, keras.layers.Conv2DTranspose) or getattr(layer, "groups", 1) != 1 or \
                getattr(layer, "data_format", "channels_last") != "channels_last" or len(layer.inbound_nodes) != 1:
            continue
        out.append(layer)
    return out


def bias_corrected(model, rows, *, per_channel=True, batch_size=256):
    """``(copy, shifts)``: a copy of ``model`` whose Dense/Conv biases absorb the mean output shift of int8
    weight rounding measured on ``rows`` (dict of arrays by input name), and ``{layer name: mean |shift|}``
    of the corrected layers.

    Example:
        >>> # fixed, shifts = bias_corrected(student, calibration_rows); to_tflite(fixed, ..., mode="int8")
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or not model.inputs:
        raise TFCompressError("bias correction needs a functional or Sequential Keras model with inputs")
    targets = _targets(model)
    copy = copy_model(model)
    if not targets:
        return copy, {}
    probe = keras.Model(model.inputs, [layer.input for layer in targets])
    feats = probe.predict(rows, batch_size=batch_size, verbose=0)
    feats = feats if isinstance(feats, list) else [feats]
    shifts = {}
    for layer, x in zip(targets, feats):
        kernel = layer.kernel.numpy()
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        delta = quantized_kernel(kernel, per_channel=per_channel, depthwise=depthwise) - kernel
        shift = _linear(layer, np.asarray(x, np.float32), delta)
        mean = shift.reshape(-1, shift.shape[-1]).mean(axis=0)
        clone = copy.get_layer(layer.name)
        clone.bias.assign(clone.bias.numpy() - mean.astype(np.float32))
        shifts[layer.name] = float(np.abs(mean).mean())
    return copy, shifts
