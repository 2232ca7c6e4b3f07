"""Keras → a checked ``.tflite`` file: convert, optionally rewrite the flatbuffer, write a JSON sidecar, gate
on parity.

:func:`to_tflite` converts with :func:`~tfcompress.export.convert` (every mode is listed there), applies
``rewrite`` (a function from flatbuffer bytes to flatbuffer bytes, e.g. the top-K retrieval export's
per-tensor requantization) and writes the file. Every file gets a JSON sidecar (``NAME.json``) with the
input spec, the quantization of inputs and outputs, the mode, the objective, the source model, versions,
and parity figures when ``parity_data`` is given; the parity gate runs once, on the bytes as written.
A ``float32`` file of a model with :data:`BUFFER_OFFSET_MIN_BYTES` of weights or more (a big teacher's
reference file) keeps them after the flatbuffer's tables, so the converter holds one copy of them instead
of four (see :func:`~tfcompress.export.converter_for`); it loads in TFLite 2.14+ and LiteRT.

Example:
    >>> import os, tempfile, numpy as np
    >>> from tfcompress import keras
    >>> x = keras.Input((), name="price")
    >>> m = keras.Model({"price": x}, keras.layers.Dense(1, name="logit")(keras.layers.Reshape((1,))(x)))
    >>> path = to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="int8",
    ...                  representative={"price": np.linspace(-1, 1, 200, dtype="float32")})
    >>> TFLiteModel(path).signature()["inputs"]["price"]["dtype"]
    'int8'
    >>> read_sidecar(path)["objective"]
    'binary'
"""
import json
import os

from .. import __version__, tflite_file
from .._io import ensure_dir, write_bytes, write_json
from .._keras import tf
from ..errors import TFCompressError
from .calibration import check_calibration, stacked, vocabulary
from .converter import convert, representative_samples
from .parity import ParityError, objective_argument, parity_report, report_exceeds
from .recovery import check_recovery, recover_int8
from .savedmodel import serving_signature
from .tflite_model import TFLiteModel, sidecar_path

DEFAULT_DIR = "tflite_export"
#: float32 files of models with this many bytes of weights or more store them after the flatbuffer's tables
BUFFER_OFFSET_MIN_BYTES = 64 * 2**20


def to_tflite(model, path=None, *, mode="int8", representative=None, num_calibration=200, int8_io=True,
              name=None, parity_data=None, tolerance=None, objective="binary", progress=False, metadata=None,
              float_fallback=None, rewrite=None, task=None, validation=None, per_channel=True, recovery=(),
              buffer_offset=None):
    """Convert ``model`` and write ``path`` (default ``tflite_export/NAME.tflite``) plus a JSON sidecar.

    ``rewrite``: a function ``bytes -> bytes`` applied to the converted flatbuffer before anything is
    written. With ``parity_data`` (a dict of held-out inputs, optionally with ``labels``) the TFLite model
    is run against the Keras model (``objective``: ``binary``, ``multiclass``, ``regression`` or
    ``ranking``, see :func:`compare_outputs`); if ``tolerance`` (dict of limits, e.g. ``{"max_abs": 0.05}``)
    is exceeded, the file is kept as ``NAME.tflite.rejected`` and :class:`ParityError` is raised. Returns
    the path. ``task=`` is a deprecated alias of ``objective=``.

    Before an int8/int16x8 conversion the calibration rows are checked (:mod:`~tfcompress.export.calibration`):
    NaN/inf, too few rows or ids outside the model's vocabulary are an error, a constant input or (with
    ``validation``, held-out inputs) a range far narrower than the validation data's a warning.

    ``per_channel=False``: one int8 scale per weight tensor (many NPUs need it). ``recovery`` (``int8``
    only): a tuple of :data:`tfcompress.choices.RECOVERY_OPTIONS` — ``"bias-correction"``, ``"percentile"``
    or ``"mse"`` activation ranges, ``"mixed"`` int8/16x8/float by measured sensitivity (needs
    ``validation``; its limit is ``tolerance``'s ``max_abs``/``mean_abs``, default 0.05), see
    :mod:`tfcompress.export.recovery`; the sidecar's ``recovery`` entry says what each option changed.
    ``buffer_offset`` (``float32``): the weights after the flatbuffer's tables (see
    :func:`~tfcompress.export.converter_for`); ``None``, the default, does so from
    :data:`BUFFER_OFFSET_MIN_BYTES` of weights on and without ``rewrite``.

    Example:
        >>> import os, tempfile
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)], name="tiny")
        >>> p = to_tflite(m, os.path.join(tempfile.mkdtemp(), "t.tflite"), mode="float32",
        ...               rewrite=lambda blob: blob + bytes(8))  # any flatbuffer rewrite
        >>> read_sidecar(p)["size_bytes"] == os.path.getsize(p)
        True
    """
    objective = objective_argument(objective, task, "to_tflite")
    name = name or model.name
    path = _target(path, name)
    recovery = check_recovery(recovery, mode, float_fallback)
    vocab = vocabulary(model)
    if representative is not None and mode in ("int8", "int16x8"):
        _check_calibration(model, representative, num_calibration, vocab, validation)
    record = None
    if recovery:
        blob, record = recover_int8(model, recovery, representative=representative, num_calibration=num_calibration,
                                    int8_io=int8_io, per_channel=per_channel, validation=validation,
                                    tolerance=tolerance, objective=objective, progress=progress,
                                    float_fallback=float_fallback)
    else:
        offset = buffer_offset if buffer_offset is not None else (
            mode == "float32" and rewrite is None and model.count_params() * 4 >= BUFFER_OFFSET_MIN_BYTES)
        blob = convert(model, mode=mode, representative=representative, num_calibration=num_calibration,
                       int8_io=int8_io, progress=progress, float_fallback=float_fallback, per_channel=per_channel,
                       buffer_offset=offset)
    if rewrite is not None:
        blob = _rewritten(blob, rewrite)
    write_bytes(path, blob)
    tfl = TFLiteModel(path)
    sidecar = _sidecar(model, tfl, name=name, mode=mode, objective=objective, size=len(blob))
    if vocab:
        sidecar["vocabulary"] = vocab
    if float_fallback:
        sidecar["float_fallback"] = list(float_fallback)
    if mode not in ("float32", "float16"):
        sidecar["per_channel"] = per_channel
    if recovery:
        sidecar["recovery"] = {"options": list(recovery), **record}
    if metadata:
        sidecar.update(metadata)
    if parity_data is not None:
        sidecar["parity"] = parity_report(model, tfl, parity_data, objective=objective)
        _parity_gate(path, sidecar, tolerance)
    write_json(sidecar_path(path), sidecar)
    return path


def _check_calibration(model, representative, num_calibration, vocab, validation):
    specs, _ = serving_signature(model)
    arrays = stacked(representative_samples(representative, specs, limit=num_calibration))
    held_out = None
    if validation is not None:
        try:
            held_out = stacked(representative_samples(validation, specs, limit=5000))
        except TFCompressError:  # held-out data not by input name (e.g. image arrays): no range check
            held_out = None
    check_calibration(arrays, vocab=vocab, validation=held_out, requested=num_calibration)


def _target(path, name):
    """The file path to write, its folder created (before the slow conversion)."""
    path = os.fspath(path) if path is not None else os.path.join(DEFAULT_DIR, f"{name}.tflite")
    if os.path.isdir(path):
        raise TFCompressError(f"TFLite path {path!r} is a folder: give a file name ending in .tflite")
    ensure_dir(os.path.dirname(os.path.abspath(path)))
    return path


def _rewritten(blob, rewrite):
    if not callable(rewrite):
        raise TFCompressError(f"rewrite= must be a function bytes -> bytes, got {type(rewrite).__name__}")
    out = rewrite(blob)
    what = f"rewrite {getattr(rewrite, '__name__', type(rewrite).__name__)!r}"
    if not isinstance(out, (bytes, bytearray)):
        raise TFCompressError(f"{what} returned {type(out).__name__}: it must return the new flatbuffer bytes")
    try:
        tflite_file.interpreter(content=out, xnnpack=False)
    except TFCompressError as e:
        raise TFCompressError(f"{what} returned {e}") from None
    return bytes(out)


def _sidecar(model, tfl, *, name, mode, objective, size):
    input_specs, _ = serving_signature(model)
    signature = tfl.signature()
    return {
        "name": name,
        "mode": mode,
        "source_model": model.name,
        "objective": objective,
        "inputs": signature["inputs"],
        "outputs": signature["outputs"],
        "keras_inputs": {n: {"dtype": s.dtype.name, "shape": [d if d is not None else -1 for d in s.shape]}
                         for n, s in input_specs.items()},
        "size_bytes": size,
        "versions": {"tfcompress": __version__, "tensorflow": tf.__version__},
    }


def _parity_gate(path, sidecar, tolerance):
    """Keep the file as ``.rejected`` (with its sidecar) and raise if its parity exceeds ``tolerance``."""
    failed = report_exceeds(sidecar["parity"], tolerance)
    if failed:
        rejected = path + ".rejected"
        os.replace(path, rejected)
        write_json(rejected + ".json", sidecar)
        raise ParityError(f"{os.path.basename(path)} fails parity ({failed}); kept as {rejected}")


def read_sidecar(path):
    """The JSON sidecar written beside a ``.tflite`` file (see :func:`to_tflite`).

    Example:
        >>> # read_sidecar("tflite_export/student.tflite")["parity"]["max_abs"]
    """
    with open(sidecar_path(path)) as f:
        return json.load(f)
