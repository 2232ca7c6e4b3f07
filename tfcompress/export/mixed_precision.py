"""Mixed int8 / 16x8 / float, driven by measured per-op sensitivity (a greedy search on validation parity).

:func:`mixed_precision` first measures each quantized op's sensitivity: the model-level parity on held-out
rows when only that op is kept float or (matrix ops) 16x8 (one or two trials per op, the LiteRT Quantizer of
:mod:`tfcompress.export.static_int8`). Walking the ops from the most to the least sensitive, it tries the op
at 16-bit activations (matrix ops only, whose 16x8 kernels every LiteRT build has) and then float, keeps
the better one if it lowers the error, and stops once the parity limit holds (or ``max_ops`` ops are
promoted). Returns the bytes and what it did: the ops kept in 16x8 and in float, and each step's parity.

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> from tfcompress.export import convert, activation_ranges
    >>> x = keras.Input((4,), name="x")
    >>> m = keras.Model({"x": x}, keras.layers.Dense(1, name="y")(keras.layers.Dense(8, name="h")(x)))
    >>> rows = {"x": np.random.RandomState(0).randn(64, 4).astype("float32")}
    >>> f32 = convert(m, mode="float32")
    >>> blob, plan = mixed_precision(m, f32, activation_ranges(f32, rows), rows, validation=rows,
    ...                              objective="regression", limit={"max_abs": 1.0})
    >>> plan["int16"], plan["float"]
    ([], [])
"""
import os
import tempfile

from .. import tflite_file
from ..errors import TFCompressError
from .parity import compare_outputs, parity_excess
from .static_int8 import quantize_static
from .tflite_model import TFLiteModel

#: ops whose 16x8 (int16 activations, int8 weights) kernels are safe to mix with int8 ops
INT16_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
#: ops that compute (shape and index ops are not candidates)
COMPUTE_OPS = INT16_OPS + ("BATCH_MATMUL", "ADD", "SUB", "MUL", "DIV", "MEAN", "SUM", "RSQRT", "SQRT", "SOFTMAX",
                           "GELU", "LOGISTIC", "TANH", "SQUARED_DIFFERENCE", "AVERAGE_POOL_2D", "HARD_SWISH")


def candidate_ops(blob):
    """``{output tensor name: op name}`` of the compute ops of the float ``.tflite`` bytes ``blob``.

    Example:
        >>> from tfcompress import keras
        >>> from tfcompress.export import convert
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
        >>> candidate_ops(convert(m, mode="float32"))
        {'StatefulPartitionedCall:0': 'FULLY_CONNECTED'}
    """
    interp = tflite_file.interpreter(content=blob, xnnpack=False)
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    return {names[int(op["outputs"][0])]: op["op_name"] for op in tflite_file.ops(interp)
            if op["op_name"] in COMPUTE_OPS and op["outputs"]}


class _Trials:
    """Quantize with given int16/float ops and measure parity against the cached Keras outputs."""

    def __init__(self, model, blob, ranges, rows, validation, objective, per_channel):
        data = dict(validation)
        data.pop("labels", None)
        self.data, self.objective = data, objective
        self.keras_out = model.predict(data, batch_size=2048, verbose=0)
        self.args = (blob, ranges, {k: v[:8] for k, v in rows.items()})
        self.per_channel = per_channel

    def __call__(self, int16=(), floats=()):
        """``(bytes, parity report)``; ``(None, None)`` where the quantizer cannot make that mix."""
        try:
            quantized = quantize_static(*self.args, per_channel=self.per_channel, int16=int16, floats=floats)
        except TFCompressError:
            if not (int16 or floats):
                raise
            return None, None
        with tempfile.TemporaryDirectory(prefix="tfcompress-") as tmp:
            path = os.path.join(tmp, "trial.tflite")
            with open(path, "wb") as f:
                f.write(quantized)
            out = TFLiteModel(path).predict(self.data, batch_size=2048)
        return quantized, compare_outputs(self.keras_out, out, objective=self.objective)


def _excess(report, limit):
    return float("inf") if report is None else parity_excess(report, limit)


def _figures(report, limit):
    return {k: report[k] for k in limit}


def mixed_precision(model, blob, ranges, rows, *, validation, objective="binary", limit=None, max_ops=8,
                    per_channel=True):
    """``(bytes, plan)``: int8 TFLite bytes of the float file ``blob`` (of ``model``) with the most sensitive
    ops promoted to 16x8 or float until the parity on ``validation`` (held-out inputs) meets ``limit``
    (default ``{"max_abs": 0.05}``). ``plan``: ``int16`` and ``float`` (op output tensor names),
    ``sensitivity`` (for the ops that help on their own: the parity / limit ratio with that op alone kept
    float or 16x8, best first), ``steps`` (the parity after each kept op) and ``met``. Each trial is
    measured on the LiteRT runtime, so a kernel that handles a mix badly is never chosen.

    Example:
        >>> # blob, plan = mixed_precision(student, f32_bytes, ranges, rows, validation=held_out)
    """
    limit = dict(limit or {"max_abs": 0.05})
    trial = _Trials(model, blob, ranges, rows, validation, objective, per_channel)
    quantized, report = trial()
    excess = parity_excess(report, limit)
    plan = {"limit": limit, "int16": [], "float": [], "steps": [{"op": None, "parity": _figures(report, limit)}]}
    if excess <= 1.0:
        return quantized, {**plan, "sensitivity": {}, "met": True}
    ops = candidate_ops(blob)
    alone = {name: min(_excess(trial(floats=[name])[1], limit),
                       _excess(trial(int16=[name])[1], limit) if ops[name] in INT16_OPS else float("inf"))
             for name in ops}
    ranked = sorted((name for name in ops if alone[name] < excess), key=lambda n: alone[n])
    plan["sensitivity"] = {name: round(alone[name], 4) for name in ranked[:max_ops]}
    for name in ranked:
        if excess <= 1.0 or len(plan["int16"]) + len(plan["float"]) >= max_ops:
            break
        options = [("int16", plan["int16"] + [name], plan["float"])] if ops[name] in INT16_OPS else []
        options.append(("float", plan["int16"], plan["float"] + [name]))
        tried = [(kind, *trial(int16=i16, floats=fl)) for kind, i16, fl in options]
        kind, best_blob, best = min(tried, key=lambda t: _excess(t[2], limit))
        if _excess(best, limit) >= excess * 0.99:
            continue
        plan[kind].append(name)
        quantized, excess = best_blob, parity_excess(best, limit)
        plan["steps"].append({"op": name, "kept": "16x8" if kind == "int16" else "float",
                              "parity": _figures(best, limit)})
    plan["met"] = excess <= 1.0
    return quantized, plan
