"""Checks of the rows an int8 file is calibrated on, and of the inputs a ``.tflite`` model is run on.

An int8 file takes its input and activation ranges from the calibration rows: a NaN, a constant column, a
handful of rows or rows unlike the real data give a file that is silently wrong. :func:`check_calibration`
raises one :class:`~tfcompress.errors.TFCompressError` line (NaN/inf, fewer than ``MIN_SAMPLES`` rows,
categorical ids outside the model's vocabulary) or warns one line (a constant input, fewer than
``WARN_SAMPLES`` rows, a range covering less than ``MIN_COVERAGE`` of the validation data's 1st-99th
percentile range).
:func:`check_inputs` does the same for ``TFLiteModel.predict``: strings or NaN where numbers belong are an
error; ids outside the vocabulary go to the out-of-vocabulary id when the model has one, else an error.

Example:
    >>> import numpy as np
    >>> check_calibration({"price": np.linspace(0, 1, 200)}, validation={"price": np.linspace(0, 1, 50)})
    >>> check_calibration({"price": np.array([0.5, np.nan] * 100)})
    Traceback (most recent call last):
    ...
    tfcompress.errors.TFCompressError: calibration input 'price' has 100 NaN/inf value(s) in 200 row(s): drop or impute them before converting (they give the int8 file a wrong input scale)
"""
import warnings

import numpy as np

from ..errors import TFCompressError

MIN_SAMPLES = 10     # fewer calibration rows: an error
WARN_SAMPLES = 100   # fewer (when the data ran out before the rows asked for): a warning
MIN_COVERAGE = 0.9   # share of the validation data's 1st-99th percentile range calibration should cover


def vocabulary(model):
    """``{input name: {"size": rows, "oov": 0 or None}}`` of the model inputs that feed an embedding table
    directly (``oov`` is 0 when the table maps unknown ids to row 0 itself), and ``{"fills_missing": True}``
    for inputs that feed a ``NumericNormalization`` layer (it replaces NaN/inf with its fill value).

    Example:
        >>> from tfcompress import keras
        >>> x = keras.Input((), name="item", dtype="int32")
        >>> vocabulary(keras.Model({"item": x}, keras.layers.Embedding(50, 4)(x)))
        {'item': {'size': 50, 'oov': None}}
    """
    out = {}
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ != "InputLayer":
            continue
        for node in layer.outbound_nodes:
            table = node.outbound_layer
            if type(table).__name__ == "NumericNormalization":  # fills NaN/inf itself, inside the model
                out[layer.name] = {"fills_missing": True}
                continue
            size = getattr(table, "input_dim", None) or getattr(table, "vocab_size", None)
            if isinstance(size, int):
                safe = type(table).__module__.startswith("tfcompress.models")
                out[layer.name] = {"size": size, "oov": 0 if safe else None}
    return out


def stacked(samples):
    """Single-row sample dicts (as the converter reads them) -> ``{name: array of every row}``.

    Example:
        >>> stacked([{"x": np.zeros((1, 2))}, {"x": np.ones((1, 2))}])["x"].shape
        (2, 2)
    """
    samples = list(samples)
    return {n: np.concatenate([s[n] for s in samples]) for n in samples[0]} if samples else {}


def check_calibration(arrays, *, vocab=None, validation=None, requested=None):
    """Check calibration ``arrays`` (``{input name: array}``) before an int8 conversion: an error for
    NaN/inf, fewer than ``MIN_SAMPLES`` rows or ids outside ``vocab`` (see :func:`vocabulary`); a warning
    for a constant input, fewer than ``WARN_SAMPLES`` rows (when fewer than ``requested`` were found) and a
    range covering less than ``MIN_COVERAGE`` of ``validation``'s (a dict of arrays or a DataFrame).

    Example:
        >>> check_calibration({"x": np.arange(5.0)})
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: calibration data has 5 row(s): give at least 10 (a few hundred real rows is usual)
    """
    rows = min((len(a) for a in arrays.values()), default=0)
    if rows < MIN_SAMPLES:
        raise TFCompressError(f"calibration data has {rows} row(s): give at least {MIN_SAMPLES} (a few hundred "
                              f"real rows is usual)")
    if rows < WARN_SAMPLES and (requested is None or rows < requested):
        warnings.warn(f"calibration data has only {rows} rows: int8 ranges from so few are rough; give a few "
                      f"hundred", UserWarning, stacklevel=4)
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.dtype.kind == "f":
            _check_finite(f"calibration input {name!r}", values, rows)
            if values.size > 1 and np.all(values == values.flat[0]):
                warnings.warn(f"calibration input {name!r} is constant ({values.flat[0]:g} everywhere): its int8 "
                              f"range is one value; calibrate on rows where it varies", UserWarning, stacklevel=4)
        size = (vocab or {}).get(name, {}).get("size")
        if size and values.dtype.kind in "iu":
            _check_ids(f"calibration input {name!r}", values, size, "calibrate on ids the model knows")
    if validation is not None:
        _check_coverage(arrays, validation)


def _check_finite(what, values, rows):
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise TFCompressError(f"{what} has {bad} NaN/inf value(s) in {rows} row(s): drop or impute them before "
                              f"converting (they give the int8 file a wrong input scale)")


def _check_ids(what, ids, size, fix):
    outside = (ids < 0) | (ids >= size)
    if outside.any():
        raise TFCompressError(f"{what} has {int(outside.sum())} id(s) outside the vocabulary [0, {size}) "
                              f"(min {ids.min()}, max {ids.max()}): {fix}")


def _check_coverage(arrays, validation):
    import pandas as pd

    if isinstance(validation, pd.DataFrame):
        validation = {c: validation[c].to_numpy() for c in validation.columns}
    for name, values in arrays.items():
        if name not in validation or np.asarray(values).dtype.kind != "f":
            continue
        val = np.asarray(validation[name], dtype=np.float64)
        val = val[np.isfinite(val)]
        vlo, vhi = np.percentile(val, [1, 99]) if val.size else (0.0, 0.0)  # a few outliers do not count
        if vhi <= vlo:
            continue
        lo, hi = float(np.min(values)), float(np.max(values))
        share = max(0.0, min(hi, vhi) - max(lo, vlo)) / (vhi - vlo)
        if share < MIN_COVERAGE:
            warnings.warn(f"calibration input {name!r} spans [{lo:g}, {hi:g}], {share:.0%} of the validation "
                          f"data's range [{vlo:g}, {vhi:g}] (1st-99th percentile): calibrate on rows drawn like "
                          f"the data the model will see", UserWarning, stacklevel=5)


def check_inputs(arrays, details, vocab=None):
    """Check (and return) the input ``arrays`` of a ``.tflite`` model whose input tensors are ``details``
    (``{name: interpreter details}``): strings where numbers belong and NaN/inf are errors (but for inputs
    whose ``vocab`` entry says the model ``fills_missing`` itself); ids outside ``vocab`` (see
    :func:`vocabulary`) go to its out-of-vocabulary id when there is one, else an error.

    Example:
        >>> details = {"item": {"dtype": np.int32}}
        >>> check_inputs({"item": np.array([3, 99])}, details, {"item": {"size": 50, "oov": 0}})["item"].tolist()
        [3, 0]
    """
    out = {}
    for name, values in arrays.items():
        want = np.dtype(details[name]["dtype"])
        if values.dtype.kind in "USO" and want.kind in "iuf":
            example = str(next(iter(values.ravel()), ""))
            raise TFCompressError(f"input {name!r} holds text (e.g. {example!r}); the model takes "
                                  f"{want.name} numbers: map the values to ids as in training")
        entry = (vocab or {}).get(name) or {}
        if values.dtype.kind == "f" and not entry.get("fills_missing"):
            _check_finite(f"input {name!r}", values, len(values))
        if entry.get("size") and want.kind in "iu" and values.dtype.kind in "iuf":
            values = _in_vocabulary(name, values, entry)
        out[name] = values
    return out


def _in_vocabulary(name, values, entry):
    size, oov = int(entry["size"]), entry.get("oov")
    if values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0):
        raise TFCompressError(f"input {name!r} holds fractions; it takes whole ids in [0, {size})")
    outside = (values < 0) | (values >= size)
    if not outside.any():
        return values
    if oov is None:
        _check_ids(f"input {name!r}", values, size, "map unknown ids to the id the model was trained with for them")
    return np.where(outside, oov, values)
