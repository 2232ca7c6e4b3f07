"""Selective float fallback: find the ops int8 quantization hurts most and keep them float (a search over
:func:`~tfcompress.export.to_tflite` with ``float_fallback=``, built on :mod:`tfcompress.export.denylist`).

:func:`find_sensitive_layers` runs ``tf.lite.experimental.QuantizationDebugger`` on the int8 conversion and
ranks every quantized op by ``rmse / scale`` (the quantization error in units of the quantization step;
~0.3 is the error of ideal rounding, larger means the op's range or inputs suit int8 badly).
:func:`export_with_fallback` re-exports with the worst ops kept float (``denylisted_nodes``), one more at a
time, until the parity tolerance holds: by default the op whose float fallback most improves the measured
model-level parity (greedy), since the worst per-op error often never reaches the output.

Example:
    >>> import numpy as np, os, tempfile
    >>> from tfcompress import keras
    >>> x = keras.Input((4,), name="x")
    >>> m = keras.Model({"x": x}, keras.layers.Dense(1, name="logit")(keras.layers.Dense(8, name="h")(x)))
    >>> rep = {"x": np.random.RandomState(0).randn(64, 4).astype("float32")}
    >>> table = find_sensitive_layers(m, rep, top_k=2)
    >>> list(table.columns)[:3]
    ['tensor_name', 'op_name', 'keras_layer']
"""
import csv
import io
import os
import tempfile
import warnings

import numpy as np

from ..errors import TFCompressError, check
from .converter import convert, converter_for, representative_list
from .denylist import _INTERPRETER_DEPRECATED, quantization_debugger
from .parity import ParityError, objective_argument, parity_excess, parity_report
from .tflite import to_tflite
from .tflite_model import TFLiteModel


def _keras_layer(tensor_name, model):
    names = {l.name for l in model.layers}
    for part in tensor_name.replace(";", "/").split("/"):
        if part in names:
            return part
        if part.startswith("quant_") and part[6:] in names:
            return part[6:]
    return ""


def find_sensitive_layers(model, representative, top_k=None, *, num_calibration=100):
    """The int8-quantized ops of ``model`` ranked by quantization error (worst first), as a DataFrame with
    ``tensor_name`` (what ``float_fallback=`` takes), ``op_name``, ``keras_layer``, ``rmse_scale``,
    ``max_abs_error``, ``scale``, ``can_fallback``. ``top_k`` keeps the first rows.

    Example:
        >>> # find_sensitive_layers(student, sample_inputs(train, spec, 100), top_k=5)
    """
    import pandas as pd

    with converter_for(model, mode="int8", representative=representative, num_calibration=num_calibration,
                       int8_io=False) as converter:
        samples = representative_list(converter, model)
        dbg = quantization_debugger(converter, samples)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_INTERPRETER_DEPRECATED)
            dbg.run()
    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)
    buf.seek(0)
    rows = list(csv.DictReader(buf))
    table = pd.DataFrame({
        "tensor_name": [r["tensor_name"] for r in rows],
        "op_name": [r["op_name"] for r in rows],
        "keras_layer": [_keras_layer(r["tensor_name"], model) for r in rows],
        "rmse_scale": [float(np.sqrt(float(r["mean_squared_error"]))) / float(r["scale"]) if float(r["scale"])
                       else 0.0 for r in rows],
        "max_abs_error": [float(r["max_abs_error"]) for r in rows],
        "scale": [float(r["scale"]) for r in rows],
    })
    # the op writing a model output is named after the signature ("StatefulPartitionedCall:0"), which
    # the quantizer cannot match: it cannot be kept float by name
    table["can_fallback"] = ~table["tensor_name"].str.startswith("StatefulPartitionedCall")
    table = table.sort_values("rmse_scale", ascending=False, kind="stable").reset_index(drop=True)
    return table.head(top_k) if top_k else table


def export_with_fallback(model, path, *, representative, parity_data, tolerance, max_float=5,
                         objective="binary", num_calibration=200, name=None, strategy="greedy", candidates=8,
                         task=None):
    """Export int8 and check parity; while ``tolerance`` is exceeded, keep ops float and re-export, up to
    ``max_float`` ops. Returns ``(path, float_ops)``; raises :class:`ParityError` (file kept as
    ``.rejected``) if the tolerance cannot be met.

    ``strategy="greedy"`` (default): the ``candidates`` worst ops of :func:`find_sensitive_layers` are
    each tried float (in memory / a temp dir), the one that lowers the parity figure the tolerance is on
    the most is kept, and the search repeats from there. Stops early with ``ParityError`` when no
    candidate helps (the error is spread over the whole network). ``strategy="ranked"``: keep the 1, 2, ...
    worst-ranked ops float regardless of their measured effect. The sidecar records ``float_fallback``
    and ``fallback_steps`` (the parity before / after each kept op). ``objective`` as in
    :func:`~tfcompress.export.to_tflite`; ``task=`` is its deprecated alias.

    Example:
        >>> # path, kept = export_with_fallback(student, "tflite_export/s.tflite", representative=rep,
        >>> #                                   parity_data=held_out, tolerance={"max_abs": 0.01})
    """
    objective = objective_argument(objective, task, "export_with_fallback")
    check(isinstance(tolerance, dict) and tolerance, "export_with_fallback needs tolerance= (e.g. "
                                                      "{'max_abs': 0.01})")
    check(strategy in ("greedy", "ranked"), f"strategy must be 'greedy' or 'ranked', not {strategy!r}")
    path = os.fspath(path)
    common = dict(mode="int8", representative=representative, num_calibration=num_calibration, int8_io=False,
                  parity_data=parity_data, tolerance=tolerance, objective=objective, name=name)
    try:
        return to_tflite(model, path, **common), []
    except ParityError:
        pass
    table = find_sensitive_layers(model, representative, num_calibration=num_calibration)
    ranked = list(table[table["can_fallback"]]["tensor_name"])
    if not ranked:
        raise TFCompressError(f"no quantized op of model {model.name!r} to keep float")
    if strategy == "greedy":
        return _greedy(model, path, ranked[:max(1, int(candidates))], common, max_float)
    last = None
    for k in range(1, min(max_float, len(ranked)) + 1):
        kept = ranked[:k]
        try:
            out = to_tflite(model, path, float_fallback=kept, metadata={"fallback_step": k}, **common)
            _drop_rejected(path)
            return out, kept
        except ParityError as e:
            last = e
    raise ParityError(f"{os.path.basename(path)} fails parity even with the {len(kept)} most sensitive ops "
                      f"float ({last}); raise max_float or loosen the tolerance")


def _trial_parity(model, common, float_ops):
    """Parity report of an int8 conversion with ``float_ops`` kept float, converted in memory and run from a
    temp dir (nothing is written beside the target)."""
    blob = convert(model, mode="int8", representative=common["representative"],
                   num_calibration=common["num_calibration"], int8_io=False, float_fallback=list(float_ops) or None)
    with tempfile.TemporaryDirectory() as tmp:
        trial = os.path.join(tmp, "trial.tflite")
        with open(trial, "wb") as f:
            f.write(blob)
        return parity_report(model, TFLiteModel(trial), common["parity_data"],
                             objective=common["objective"])


def _greedy(model, path, pool, common, max_float):
    tol = common["tolerance"]
    figures = lambda r: {k: r[k] for k in tol}  # noqa: E731
    report = _trial_parity(model, common, [])
    best_excess = parity_excess(report, tol)
    kept, steps = [], [{"float_ops": [], "parity": figures(report)}]
    while best_excess > 1.0 and len(kept) < max_float and len(kept) < len(pool):
        trials = []
        for op in pool:
            if op in kept:
                continue
            r = _trial_parity(model, common, kept + [op])
            trials.append((parity_excess(r, tol), op, r))
        excess, op, r = min(trials, key=lambda t: t[0])
        if excess >= best_excess * 0.99:  # no single op helps by even 1%
            where = "no single op" if not kept else f"after keeping {kept} float, no further op"
            raise ParityError(
                f"{os.path.basename(path)} fails parity ({figures(report)}): {where} of the "
                f"{len(pool)} most sensitive ones improves it when kept float, so the int8 error is spread "
                f"across the whole network; loosen the tolerance or use mode='dynamic'/'float16'")
        kept.append(op)
        best_excess, report = excess, r
        steps.append({"float_ops": list(kept), "parity": figures(r)})
    if best_excess > 1.0:
        raise ParityError(f"{os.path.basename(path)} fails parity even with {len(kept)} ops float "
                          f"({figures(report)}, steps {steps}); raise max_float or loosen the tolerance")
    out = to_tflite(model, path, float_fallback=kept,
                    metadata={"fallback_strategy": "greedy", "fallback_steps": steps}, **common)
    _drop_rejected(path)
    return out, kept


def _drop_rejected(path):
    for p in (path + ".rejected", path + ".rejected.json"):
        if os.path.exists(p):
            os.remove(p)
