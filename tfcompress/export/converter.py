"""The TFLite converter, configured for every post-training mode, with representative data fed by input name.

=============  ===============================================================================
mode           what the converter does
=============  ===============================================================================
``float32``    no quantization
``float16``    float16 weights (dequantized at load)
``dynamic``    int8 weights, float activations (dynamic-range quantization)
``int8``       full integer: int8 weights and activations, calibrated on representative data;
               float inputs/outputs become int8 unless ``int8_io=False`` (id inputs stay int32)
``int16x8``    int16 activations, int8 weights (more accurate; fewer kernels support it)
=============  ===============================================================================

``per_channel=False`` (the quantized modes) stores one scale per weight tensor instead of one per output
channel, which many NPUs require (less accurate).

A QAT model (from :func:`tfcompress.quantize.quantize_aware`) converts with ``mode="int8"``: its
fake-quant ranges are used, and layers QAT left in float are calibrated on the representative data.
:func:`convert` returns the bytes; :func:`tfcompress.export.to_tflite` writes them as a checked file.

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> m = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])
    >>> blob = convert(m, mode="int8", representative={"x": np.random.RandomState(0).randn(20, 2)})
    >>> blob[4:8]
    b'TFL3'
"""
import contextlib
import os
import re
import tempfile
import warnings

import numpy as np

from .. import tflite_file
from .._keras import tf
from ..errors import TFCompressError
from .denylist import _INTERPRETER_DEPRECATED, quantize_with_denylist
from .savedmodel import saved_model, serving_signature

MODES = ("float32", "float16", "dynamic", "int8", "int16x8")


def representative_samples(data, input_specs, *, limit=200):
    """Yield up to ``limit`` single-example dicts ``{input_name: array[1, ...]}`` from ``data``: a dict of
    arrays, a DataFrame, or a ``tf.data.Dataset`` of feature dicts or ``(features, label)`` pairs.

    Example:
        >>> from tfcompress import keras
        >>> from tfcompress.export import serving_signature
        >>> specs, _ = serving_signature(keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)]))
        >>> [s["x"].shape for s in representative_samples({"x": np.zeros((5, 2))}, specs, limit=2)]
        [(1, 2), (1, 2)]
    """
    import pandas as pd

    names = sorted(input_specs)
    if isinstance(data, pd.DataFrame):
        missing = [n for n in names if n not in data.columns]
        if missing:
            raise TFCompressError(f"representative DataFrame lacks model inputs {missing}")
        data = {n: data[n].to_numpy() for n in names}
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        if missing:
            extra = sorted(str(k) for k in data if k not in input_specs and k != "labels")
            hint = f" (it has unexpected {extra}: rename them)" if extra else ""
            raise TFCompressError(f"representative data lacks model inputs {missing}{hint}; "
                                  f"the model takes {names}")
        arrays = {n: np.asarray(data[n]) for n in names}
        lengths = {n: len(a) for n, a in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise TFCompressError(f"representative inputs have different numbers of rows: {lengths}")
        n_rows = min(len(a) for a in arrays.values())
        for i in range(min(n_rows, limit)):
            yield {n: _cast(arrays[n][i:i + 1], input_specs[n]) for n in names}
        return
    if hasattr(data, "as_numpy_iterator"):
        count = 0
        for batch in data.as_numpy_iterator():
            feats = batch[0] if isinstance(batch, tuple) else batch
            if not isinstance(feats, dict):
                raise TFCompressError("representative tf.data.Dataset must yield dicts of features by input name")
            for sample in representative_samples(feats, input_specs, limit=limit - count):
                yield sample
                count += 1
            if count >= limit:
                return
        return
    raise TFCompressError(f"representative data must be a dict of arrays, a DataFrame or a tf.data.Dataset, "
                          f"got {type(data).__name__}")


def _cast(x, spec):
    want = spec.dtype.as_numpy_dtype
    expected = tuple(spec.shape[1:]) if spec.shape.rank is not None else None
    if expected is not None and (x.ndim != spec.shape.rank or any(
            e is not None and e != g for e, g in zip(expected, x.shape[1:]))):
        raise TFCompressError(f"representative input {spec.name!r} has shape {x.shape[1:]} per example; "
                              f"the model expects {expected}")
    if x.dtype.kind in "US" and np.dtype(want).kind in "iuf" or (
            x.dtype.kind == "f" and np.dtype(want).kind in "iu" and not np.all(np.mod(x, 1) == 0)):
        raise TFCompressError(f"representative input {spec.name!r} has dtype {x.dtype}; the model expects "
                              f"{np.dtype(want).name}: pass the values the model was trained on")
    try:
        return x.astype(want)
    except (TypeError, ValueError):
        raise TFCompressError(f"representative input {spec.name!r} has dtype {x.dtype} that cannot be cast "
                              f"to {np.dtype(want).name}") from None


def _configure(converter, mode, input_specs, representative, num_calibration, int8_io, progress, per_channel):
    if mode == "float32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if not per_channel:
        converter._experimental_disable_per_channel = True  # private: the only per-tensor weight switch
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return
    if mode == "dynamic":
        return
    if representative is None:
        raise TFCompressError(f"mode {mode!r} needs representative data (a few hundred real rows) to "
                              "calibrate activation ranges: pass representative=")
    samples = list(representative_samples(representative, input_specs, limit=num_calibration))
    if not samples:
        raise TFCompressError("representative data is empty")
    if progress:
        samples = _progress(samples, f"calibrating on {len(samples)} samples")
    converter.representative_dataset = lambda: iter(samples)
    if mode == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    else:  # int16x8
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int16
            converter.inference_output_type = tf.int16


def _progress(samples, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return samples
    return list(tqdm(samples, desc=desc, leave=False, disable=None))


@contextlib.contextmanager
def converter_for(model, *, mode="int8", representative=None, num_calibration=200, int8_io=True,
                  progress=False, per_channel=True, buffer_offset=False):
    """A configured ``tf.lite.TFLiteConverter`` for ``model`` in ``mode`` (valid inside the ``with``: it
    reads a temporary SavedModel). For tools that need the converter itself, e.g. the quantization debugger.

    ``buffer_offset=True`` (``float32`` only): the weights go after the flatbuffer's tables, which spares the
    converter three of its four copies of them (a 86 MB teacher: +428 → +106 MB while converting); TFLite
    2.14+ / LiteRT read such files, the flatbuffer rewrites and quantizers of this package do not.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])
        >>> with converter_for(m, mode="float16") as c:
        ...     blob = c.convert()
    """
    if mode not in MODES:
        raise TFCompressError(f"mode {mode!r} is not one of {MODES}")
    if not isinstance(per_channel, bool):
        raise TFCompressError(f"per_channel must be True or False, got {per_channel!r}")
    if not per_channel and mode in ("float32", "float16"):
        raise TFCompressError(f"per_channel=False (per-tensor int8 weights) applies to the quantized modes, not "
                              f"{mode!r}")
    if buffer_offset and mode != "float32":
        raise TFCompressError(f"buffer_offset=True applies to mode='float32', not {mode!r}")
    input_specs, _ = serving_signature(model)
    if representative is not None and mode in ("int8", "int16x8"):
        next(representative_samples(representative, input_specs, limit=1), None)  # bad data fails fast
    with tempfile.TemporaryDirectory(prefix="tfcompress-") as tmp:
        sm = saved_model(model, os.path.join(tmp, "sm"))
        converter = tf.lite.TFLiteConverter.from_saved_model(sm, signature_keys=["serving_default"])
        _configure(converter, mode, input_specs, representative, num_calibration, int8_io, progress, per_channel)
        converter._experimental_use_buffer_offset = bool(buffer_offset)  # private: the only switch for it
        yield converter


def convert(model, *, mode="int8", representative=None, num_calibration=200, int8_io=True, progress=False,
            float_fallback=None, per_channel=True, buffer_offset=False):
    """Convert ``model`` to TFLite bytes in ``mode`` (see the module docstring; ``per_channel=False``: one
    weight scale per tensor; ``buffer_offset``: see :func:`converter_for`).

    ``float_fallback`` (``int8`` only): TFLite tensor names (see
    :func:`tfcompress.export.find_sensitive_layers`) whose ops stay float; the file then has float I/O.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])
        >>> len(convert(m, mode="float16")) > 0
        True
    """
    if float_fallback:
        int8_io = False  # float ops at the edges need float I/O
    with converter_for(model, mode=mode, representative=representative, num_calibration=num_calibration,
                       int8_io=int8_io, progress=progress, per_channel=per_channel,
                       buffer_offset=buffer_offset) as converter:
        try:
            with warnings.catch_warnings():  # calibration uses tf.lite.Interpreter inside TensorFlow
                warnings.filterwarnings("ignore", message=_INTERPRETER_DEPRECATED)
                if float_fallback:
                    if mode != "int8":
                        raise TFCompressError(f"float_fallback works with mode='int8', not {mode!r}")
                    blob = quantize_with_denylist(converter, representative_list(converter, model),
                                                  list(float_fallback))
                else:
                    blob = converter.convert()
        except TFCompressError:
            raise
        except Exception as e:  # the converter raises many types, with long MLIR dumps
            raise TFCompressError(converter_error_message(model, mode, e)) from None
    if mode == "int16x8":
        _check_runs_in_subprocess(blob, model, mode)
    return blob


def representative_list(converter, model):
    """The converter's representative samples (dicts input name -> array[1, ...]), as a list.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])
        >>> with converter_for(m, mode="int8", representative={"x": np.zeros((3, 2))}) as c:
        ...     len(representative_list(c, m))
        3
    """
    return list(converter.representative_dataset())


_UNSUPPORTED = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_LOCATION = re.compile(r'fused\["(\w+):", "([^"@]+)')


def converter_error_message(model, mode, e):
    """One line for a converter failure: the op the TFLite builtins cannot express, the Keras layer it came
    from and what to do; otherwise the first error line of the converter.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)], name="tiny")
        >>> converter_error_message(m, "int8", RuntimeError("loc(x): error: 'tfl.foo' op is not supported"))
        "the TFLite converter failed for model 'tiny' in mode 'int8': 'tfl.foo' op is not supported"
    """
    text = str(e)
    m = _UNSUPPORTED.search(text)
    if m:
        op = m.group(1)
        layer = None
        for loc in _LOCATION.finditer(text):
            if loc.group(1) != op:
                continue
            parts = loc.group(2).split("/")
            names = {l.name: l for l in model.layers}
            layer = next((names[p] for p in parts if p in names), None)
            if layer is not None:
                break
        where = f" in Keras layer {layer.name!r} ({type(layer).__name__})" if layer is not None else ""
        return (f"the TFLite builtins cannot express TensorFlow op {op!r}{where} of model {model.name!r} "
                f"(mode {mode!r}): rewrite that layer with ops TFLite supports (see "
                "https://ai.google.dev/edge/litert/models/ops_compatibility) or move it out of the model")
    hint = ""
    if mode in ("int8", "int16x8") and "should be recorded during calibration" in text:
        hint = ("; calibration could not give every tensor a range (ops with data-dependent shapes, e.g. an "
                "attention padding mask): use mode='int8' with float fallback, 'dynamic' or 'float16' for this model"
                if mode == "int16x8" else
                "; calibration could not give every tensor a range: check the representative data covers every "
                "input, or use mode='dynamic'")
    return f"the TFLite converter failed for model {model.name!r} in mode {mode!r}: {_first_error_line(e)}{hint}"


def _first_error_line(e):
    text = str(e)
    for line in text.splitlines():
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


# the child runs LiteRT alone (no TensorFlow import, so it starts fast), hence its own Interpreter
_SMOKE = """
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
r = Interpreter(model_path=sys.argv[1]).get_signature_runner()
feed = {}
for n, d in r.get_input_details().items():
    shape = [2 if s < 0 else int(s) for s in d["shape_signature"]]
    feed[n] = np.zeros(shape, d["dtype"])
r(**feed)
"""


def _check_runs_in_subprocess(blob, model, mode):
    """Run ``blob`` once in a child process: some int16x8 kernels abort the whole process (no exception)."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix="tfcompress-") as tmp:
        path = os.path.join(tmp, "m.tflite")
        with open(path, "wb") as f:
            f.write(blob)
        try:
            proc = subprocess.run([sys.executable, "-c", _SMOKE, path], capture_output=True, text=True,
                                  timeout=300)
        except subprocess.TimeoutExpired:
            raise TFCompressError(f"the {mode} model of {model.name!r} did not finish one inference in 300 s "
                                  "on the LiteRT runtime: use mode='int8' or 'dynamic'") from None
    if proc.returncode != 0:
        ops = sorted(tflite_file.op_names(blob))
        raise TFCompressError(f"the LiteRT runtime crashed (exit code {proc.returncode}) running model "
                              f"{model.name!r} in mode {mode!r}: a kernel of {ops} lacks {mode} support "
                              "(attention's BATCH_MATMUL/SOFTMAX chain is a known case); use mode='int8' "
                              "or 'dynamic'")
