"""int8 accuracy recovery at export: the options of ``to_tflite(mode="int8", recovery=...)``.

===================  ==========================================================================================
option               what it does
===================  ==========================================================================================
``bias-correction``  the Keras model's Dense/Conv biases absorb the mean output shift of int8 weight rounding
                     (:mod:`~tfcompress.export.bias_correction`), measured on the calibration rows
``percentile``       activation ranges from the 0.01 / 99.99 percentiles instead of min/max
``mse``              activation ranges that minimise the int8 rounding + clipping error
``mixed``            the most sensitive ops (measured on ``validation`` rows) kept in 16x8 or float until the
                     parity limit holds (:mod:`~tfcompress.export.mixed_precision`)
===================  ==========================================================================================

``percentile``, ``mse`` and ``mixed`` quantize with the LiteRT Quantizer on ranges measured over every
calibration value (:mod:`~tfcompress.export.activation_ranges`; softmax inputs floored at max - 12);
``bias-correction`` alone keeps the TFLite converter. :func:`recover_int8` returns the bytes and the record
the sidecar keeps (what each option changed).

Example:
    >>> check_recovery(("bias-correction",), "int8")
    ('bias-correction',)
    >>> check_recovery(("magic",), "int8")
    Traceback (most recent call last):
    ...
    tfcompress.errors.TFCompressError: unknown recovery option 'magic': use any of bias-correction, percentile, mse, mixed
"""
from ..choices import RECOVERY_OPTIONS
from ..errors import TFCompressError
from .activation_ranges import SOFTMAX_SPAN, activation_ranges, clipped
from .bias_correction import bias_corrected
from .calibration import stacked
from .converter import convert, representative_samples
from .mixed_precision import mixed_precision
from .savedmodel import serving_signature
from .static_int8 import quantize_static

_PARITY_KEYS = ("max_abs", "mean_abs")


def check_recovery(recovery, mode, float_fallback=None):
    """``recovery`` as a tuple of known option names, checked against ``mode``; one line if not.

    Example:
        >>> check_recovery(["percentile"], "int8")
        ('percentile',)
    """
    if isinstance(recovery, str):
        recovery = (recovery,)
    if recovery is None:
        return ()
    try:
        names = tuple(dict.fromkeys(recovery))
    except TypeError:
        raise TFCompressError(f"recovery= must be a tuple of option names from {RECOVERY_OPTIONS}, got "
                              f"{type(recovery).__name__}") from None
    for name in names:
        if name not in RECOVERY_OPTIONS:
            raise TFCompressError(f"unknown recovery option {name!r}: use any of {', '.join(RECOVERY_OPTIONS)}")
    if names and mode != "int8":
        raise TFCompressError(f"recovery {list(names)} applies to mode='int8' only, not {mode!r}: drop recovery= "
                              "or export int8")
    if "percentile" in names and "mse" in names:
        raise TFCompressError("recovery options 'percentile' and 'mse' both choose the activation ranges: pick one")
    if float_fallback and set(names) - {"bias-correction"}:
        raise TFCompressError("float_fallback= works with the converter's calibration; with recovery "
                              f"{list(names)} use 'mixed' (it keeps the sensitive ops float) instead")
    return names


def _rows(data, model, limit):
    specs, _ = serving_signature(model)
    return stacked(representative_samples(data, specs, limit=limit))


def _limit(tolerance):
    limit = {k: v for k, v in (tolerance or {}).items() if k in _PARITY_KEYS}
    return limit or {"max_abs": 0.05}


def recover_int8(model, recovery, *, representative, num_calibration=200, int8_io=True, per_channel=True,
                 validation=None, tolerance=None, objective="binary", progress=False, float_fallback=None):
    """``(bytes, record)``: the int8 TFLite bytes of ``model`` with the ``recovery`` options (see the module
    docstring) and what each did. ``validation`` (held-out inputs) is needed by ``mixed``; its limit is the
    ``max_abs`` / ``mean_abs`` part of ``tolerance`` (default ``{"max_abs": 0.05}``). ``float_fallback`` (op
    names kept float by the converter) goes with ``bias-correction`` alone.

    Example:
        >>> # blob, record = recover_int8(student, ("bias-correction", "percentile"), representative=rows)
    """
    recovery = check_recovery(recovery, "int8", float_fallback)
    if representative is None:
        raise TFCompressError("int8 recovery needs representative= (a few hundred real rows)")
    rows = _rows(representative, model, num_calibration)
    record, source = {}, model
    if "bias-correction" in recovery:
        source, shifts = bias_corrected(model, rows, per_channel=per_channel)
        record["bias-correction"] = {"layers_corrected": sorted(shifts),
                                     "mean_abs_shift": {k: round(v, 6) for k, v in shifts.items()}}
    if not set(recovery) - {"bias-correction"}:
        blob = convert(source, mode="int8", representative=representative, num_calibration=num_calibration,
                       int8_io=int8_io, progress=progress, per_channel=per_channel, float_fallback=float_fallback)
        return blob, record
    f32 = convert(source, mode="float32")
    method = next((m for m in ("percentile", "mse") if m in recovery), "minmax")
    ranges = activation_ranges(f32, rows, method=method)
    narrowed = clipped(ranges, activation_ranges(f32, rows, method="minmax")) if method != "minmax" else []
    record["calibration"] = {"backend": "ai_edge_quantizer", "ranges": method, "softmax_span": SOFTMAX_SPAN,
                             "rows": len(next(iter(rows.values())))}
    if method != "minmax":
        record[method] = {"tensors_clipped": len(narrowed), "of": len(ranges), "clipped": narrowed[:50]}
    if "mixed" not in recovery:
        return quantize_static(f32, ranges, {k: v[:8] for k, v in rows.items()}, per_channel=per_channel), record
    if validation is None:
        raise TFCompressError("recovery 'mixed' needs validation= (held-out inputs by name) to measure each "
                              "op's sensitivity")
    blob, plan = mixed_precision(model, f32, ranges, rows, validation=_rows(validation, model, 5000),
                                 objective=objective, limit=_limit(tolerance), per_channel=per_channel)
    record["mixed"] = plan
    return blob, record
