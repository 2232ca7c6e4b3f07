"""int8 conversion with chosen ops kept float: the ``denylisted_nodes`` of TensorFlow's quantization debugger.

:func:`quantize_with_denylist` is the primitive that ``convert(..., float_fallback=)`` and the fallback search
(:mod:`tfcompress.export.fallback`) build on; :func:`quantization_debugger` is the debugger fed by input name.

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> from tfcompress.export import converter_for
    >>> x = keras.Input((4,), name="x")
    >>> m = keras.Model({"x": x}, keras.layers.Dense(1, name="logit")(keras.layers.Dense(8, name="h")(x)))
    >>> rep = {"x": np.random.RandomState(0).randn(16, 4).astype("float32")}
    >>> with converter_for(m, mode="int8", representative=rep, int8_io=False) as c:
    ...     samples = list(c.representative_dataset())
    ...     blob = quantize_with_denylist(c, samples, [])
    >>> blob[4:8]
    b'TFL3'
"""
import warnings

from .. import tflite_file
from .._keras import tf
from ..errors import TFCompressError

_INTERPRETER_DEPRECATED = ".*tf.lite.Interpreter is deprecated"


def quantization_debugger(converter, samples):
    """A ``tf.lite.experimental.QuantizationDebugger`` for a configured int8 ``converter``, fed ``samples``
    (dicts input name -> array[1, ...]) as lists in its interpreter's input order.

    Example:
        >>> # dbg = quantization_debugger(converter, samples); dbg.run(); dbg.layer_statistics_dump(f)
    """
    options = tf.lite.experimental.QuantizationDebugOptions(fully_quantize=True)
    order = []

    def ordered():
        return iter([[s[n] for n in order] for s in samples])

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_INTERPRETER_DEPRECATED)
        dbg = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=ordered, debug_options=options)
    names = [_input_name(d["name"], samples[0]) for d in tflite_file.debugger_input_details(dbg)]
    order.extend(names)
    return dbg


def _input_name(tensor_name, sample):
    if tensor_name in sample:
        return tensor_name
    base = tensor_name.split(":")[0]
    base = base[len("serving_default_"):] if base.startswith("serving_default_") else base
    if base in sample:
        return base
    raise TFCompressError(f"cannot match TFLite input {tensor_name!r} to a model input {sorted(sample)}")


def quantize_with_denylist(converter, samples, denylist):
    """int8 TFLite bytes from a configured ``converter`` with the ops producing tensors ``denylist`` kept
    float (float inputs/outputs). ``samples``: dicts input name -> array[1, ...].

    Example:
        >>> # blob = quantize_with_denylist(converter, samples, ["model/h/MatMul"])  (see the module example)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_INTERPRETER_DEPRECATED)
        dbg = quantization_debugger(converter, samples)
        # the non-debug quantization reads these options: denylisted ops stay float, inputs/outputs float
        tflite_file.set_debugger_options(dbg, tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=list(denylist), fully_quantize=False))
        return dbg.get_nondebug_quantized_model()
