"""Full-integer quantization of a float ``.tflite`` file with given activation ranges (the LiteRT Quantizer).

The TFLite converter computes its own min/max ranges and takes no others; the LiteRT Quantizer
(``ai-edge-quantizer``) quantizes with a calibration result it is handed. :func:`quantize_static` gives it
the ranges of :func:`~tfcompress.export.activation_ranges` and per-op overrides: ops whose output tensor is
named in ``int16`` get 16-bit activations (int8 weights), ops named in ``floats`` stay float.
``per_channel=False`` gives one weight scale per tensor. The file's float inputs stay float (a QUANTIZE op
feeds each consumer at its width); its outputs are int8 (int16 where a 16x8 op writes them).

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> from tfcompress.export import convert, activation_ranges
    >>> m = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(3, name="h")])
    >>> x = np.random.RandomState(0).randn(50, 4).astype("float32")
    >>> f32 = convert(m, mode="float32")
    >>> blob = quantize_static(f32, activation_ranges(f32, {"x": x}), {"x": x[:4]})
    >>> blob[4:8]
    b'TFL3'
"""
import contextlib
import io
import os
import re
import tempfile
import warnings

import numpy as np

from ..errors import TFCompressError


def _scope(name):
    """The quantizer's regex for the op writing tensor ``name`` (its scope is its outputs' names, each + ';')."""
    return f"(^|;){re.escape(name)};"


def _quantizer(path, per_channel, int16, floats):
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer

    granularity = qtyping.QuantGranularity.CHANNELWISE if per_channel else qtyping.QuantGranularity.TENSORWISE
    q = quantizer.Quantizer(path)
    every = qtyping.TFLOperationName.ALL_SUPPORTED
    q.add_static_config(regex=".*", operation_name=every, activation_num_bits=8, weight_num_bits=8,
                        weight_granularity=granularity)
    # the graph inputs stay float (QUANTIZE ops feed each consumer at its own width): an int8 input would
    # bound the precision of every 16x8 op behind it
    q.add_static_config(regex=".*", operation_name=qtyping.TFLOperationName.INPUT, activation_num_bits=8,
                        weight_num_bits=8, algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    for name in int16:
        q.add_static_config(regex=_scope(name), operation_name=every, activation_num_bits=16,
                            weight_num_bits=8, weight_granularity=granularity)
    for name in floats:
        q.add_static_config(regex=_scope(name), operation_name=every, activation_num_bits=8,
                            weight_num_bits=8, algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
    return q


def _calibration(q, ranges, rows):
    """The quantizer's calibration result (every tensor it needs) with the float tensors' ranges replaced."""
    samples = [{k: np.asarray(v[i:i + 1]) for k, v in rows.items()} for i in range(len(next(iter(rows.values()))))]
    with contextlib.redirect_stderr(io.StringIO()):
        qsv = q.calibrate({"serving_default": samples})
    for name, entry in qsv.items():
        if name in ranges:
            lo, hi = ranges[name]
            shape = np.shape(entry["min"])
            entry["min"], entry["max"] = np.full(shape, lo, np.float32), np.full(shape, hi, np.float32)
    return qsv


def quantize_static(blob, ranges, rows, *, per_channel=True, int16=(), floats=()):
    """int8 (static) TFLite bytes of the float model ``blob`` with the activation ``ranges``
    (``{tensor name: (min, max)}``); ``rows``: a few calibration rows by input name (the quantizer needs
    ranges of its own for the non-float tensors). ``int16`` / ``floats``: op output tensor names kept at
    16-bit activations / float.

    Example:
        >>> # quantize_static(f32_bytes, ranges, rows, int16=["model/logits/MatMul"])  (module example)
    """
    with tempfile.TemporaryDirectory(prefix="tfcompress-") as tmp:
        path = os.path.join(tmp, "float.tflite")
        with open(path, "wb") as f:
            f.write(bytes(blob))
        try:
            with warnings.catch_warnings():  # its calibrator keeps every tensor on purpose and says so
                warnings.filterwarnings("ignore", message=".*preserve_all_tensors")
                q = _quantizer(path, per_channel, list(int16), list(floats))
                qsv = _calibration(q, ranges, rows)
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    result = q.quantize(qsv)
        except Exception as e:  # the quantizer raises ValueError/RuntimeError with long texts
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TFCompressError(f"the LiteRT Quantizer could not quantize this model with calibrated "
                                  f"ranges: {first[:300]}; use recovery without 'percentile'/'mse'/'mixed'") from None
    if result.quantized_model is None:
        raise TFCompressError("the LiteRT Quantizer produced no model from the calibrated ranges")
    return bytes(result.quantized_model)
