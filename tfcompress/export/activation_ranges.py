"""Activation ranges for int8 calibration, measured on a float ``.tflite`` file: min/max, percentile or MSE.

The TFLite converter calibrates every activation with its min/max; one outlier then stretches the range and
coarsens the int8 step of every other value. :func:`activation_ranges` runs the float file on the calibration
rows (every intermediate tensor kept) and gives each float activation tensor a range:

=============  =============================================================================================
``minmax``     the smallest and largest value seen (what the converter does)
``percentile`` the ``100 - p`` and ``p`` percentiles (``p = 99.99``): rare outliers are clipped
``mse``        ``[a * min, a * max]`` with the factor ``a`` in (0.3, 1] whose int8 rounding + clipping error
               (mean squared, over the calibration values) is smallest
=============  =============================================================================================

With every method, a SOFTMAX input keeps only the top :data:`SOFTMAX_SPAN` below its largest value (anything
further down has weight below ``exp(-SOFTMAX_SPAN)``), and so do the operands of the ADD that feeds it: an
attention padding mask adds -1e9, which would otherwise stretch the scores' int8 step to ~4e6 and flatten
the attention. The ranges are ``{tensor name: (min, max)}``; :mod:`tfcompress.export.static_int8` quantizes
with them.

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> from tfcompress.export import convert
    >>> m = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(3, name="h")])
    >>> x = np.random.RandomState(0).randn(5000, 4).astype("float32")
    >>> x[0, 0] = 40.0  # one outlier value
    >>> blob = convert(m, mode="float32")
    >>> hi = {k: activation_ranges(blob, {"x": x}, method=k)["serving_default_x:0"][1]
    ...       for k in ("minmax", "percentile")}
    >>> hi["minmax"] == 40.0, hi["percentile"] < 10
    (True, True)
"""
import warnings

import numpy as np

from .. import tflite_file
from ..errors import TFCompressError

METHODS = ("minmax", "percentile", "mse")
PERCENTILE = 99.99
#: how far below its largest value a SOFTMAX input's range reaches (exp(-12) ~ 6e-6)
SOFTMAX_SPAN = 12.0
_MAX_VALUES = 200_000  # values per tensor kept for the percentile / MSE search (a random subsample)


def tensor_values(blob, inputs):
    """``{tensor name: float32 values (flat)}`` of every float activation tensor of the float model ``blob``
    run once on ``inputs`` (a dict of arrays by input name, all rows in one batch).

    Example:
        >>> # tensor_values(convert(model, mode="float32"), {"x": rows})["serving_default_x:0"].shape
    """
    from ai_edge_quantizer.utils import tfl_interpreter_utils as tiu

    interp = tiu.create_tfl_interpreter(bytes(blob), use_xnnpack=False, num_threads=1, preserve_all_tensors=True)
    runner = interp.get_signature_runner()
    feed = {}
    for name, detail in runner.get_input_details().items():
        if name not in inputs:
            raise TFCompressError(f"calibration rows lack model input {name!r}; they have {sorted(inputs)}")
        feed[name] = np.asarray(inputs[name]).astype(detail["dtype"])
    runner(**feed)
    with warnings.catch_warnings():  # it opens an interpreter that keeps every tensor, and says so
        warnings.filterwarnings("ignore", message=".*preserve_all_tensors")
        constants = set(tiu.get_constant_tensor_names(bytes(blob)))
    rng = np.random.default_rng(0)
    out = {}
    for name, values in tiu.get_tensor_name_to_content_map(interp).items():
        if name in constants or name.endswith("_scratch_buffer") or \
                not np.issubdtype(np.asarray(values).dtype, np.floating):
            continue
        flat = np.asarray(values, np.float32).reshape(-1)
        out[name] = flat if flat.size <= _MAX_VALUES else rng.choice(flat, _MAX_VALUES, replace=False)
    return out


def _fake_quant_error(values, lo, hi, levels=255):
    scale = max(hi - lo, 1e-12) / levels
    q = np.clip(np.round((values - lo) / scale), 0, levels) * scale + lo
    return float(np.mean((q - values) ** 2))


def value_range(values, method="minmax"):
    """``(min, max)`` of ``values`` by ``method`` (see the module docstring); the range always holds 0.

    Example:
        >>> v = np.concatenate([np.linspace(-1, 1, 10000), [50.0]])
        >>> value_range(v, "minmax")[1], value_range(v, "mse")[1] < 50
        (50.0, True)
    """
    if method not in METHODS:
        raise TFCompressError(f"activation range method {method!r} is not one of {METHODS}")
    v = np.asarray(values, np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 0.0
    lo, hi = float(min(v.min(), 0.0)), float(max(v.max(), 0.0))
    if method == "percentile":
        lo = float(min(np.percentile(v, 100.0 - PERCENTILE), 0.0))
        hi = float(max(np.percentile(v, PERCENTILE), 0.0))
    elif method == "mse" and hi > lo:
        factors = np.linspace(0.3, 1.0, 36)
        errors = [_fake_quant_error(v, a * lo, a * hi) for a in factors]
        a = float(factors[int(np.argmin(errors))])
        lo, hi = a * lo, a * hi
    return lo, hi


def activation_ranges(blob, inputs, *, method="minmax"):
    """``{tensor name: (min, max)}`` of the float activation tensors of the float ``.tflite`` bytes ``blob``
    on the calibration rows ``inputs`` (dict of arrays by input name), by ``method`` (module docstring).

    Example:
        >>> # activation_ranges(convert(model, mode="float32"), calibration_rows, method="percentile")
    """
    values = tensor_values(blob, inputs)
    ranges = {name: value_range(v, method) for name, v in values.items()}
    return _softmax_inputs_limited(blob, ranges)


def _softmax_inputs_limited(blob, ranges):
    """Ranges with each SOFTMAX input (and the operands of the ADD producing it) floored at max - span."""
    interp = tflite_file.interpreter(content=blob, xnnpack=False)
    names = {d["index"]: d["name"] for d in interp.get_tensor_details()}
    op_list = tflite_file.ops(interp)
    producer = {int(o): op for op in op_list for o in op["outputs"]}
    out = dict(ranges)
    for op in op_list:
        if op["op_name"] != "SOFTMAX":
            continue
        index = int(op["inputs"][0])
        tied = [index]
        if index in producer and producer[index]["op_name"] == "ADD":
            tied += [int(i) for i in producer[index]["inputs"] if int(i) >= 0]
        hi = out.get(names[index], (0.0, 0.0))[1]
        for t in tied:
            if names.get(t) in out:
                lo_t, hi_t = out[names[t]]
                out[names[t]] = (max(lo_t, min(hi - SOFTMAX_SPAN, 0.0)), hi_t)
    return out


def clipped(ranges, reference):
    """The names of the tensors whose range in ``ranges`` is narrower than in ``reference`` (e.g. min/max).

    Example:
        >>> clipped({"a": (-1.0, 1.0), "b": (0.0, 2.0)}, {"a": (-1.0, 1.0), "b": (0.0, 9.0)})
        ['b']
    """
    return sorted(n for n, (lo, hi) in ranges.items()
                  if n in reference and (hi - lo) < 0.999 * (reference[n][1] - reference[n][0]))
