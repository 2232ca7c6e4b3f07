"""Latency of Keras models and ``.tflite`` files, measured fairly.

Each call is timed on its own with ``time.perf_counter_ns``; the result is a :class:`LatencyStats`
with percentiles in microseconds. :func:`compare_latency` interleaves the models (round-robin, shuffled
order each round) so that machine drift hits all of them alike.

Callers pass real input rows (a dict name -> NumPy array with a leading batch axis); nothing is drawn
here.

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> from tfcompress.bench import latency
    >>> x = keras.Input((4,), name="x")
    >>> model = keras.Model(x, keras.layers.Dense(1)(x))
    >>> stats = latency.keras_latency(model, {"x": np.ones((8, 4), "float32")}, runs=10, warmup=2)
    >>> stats.runs, stats.batch_size
    (10, 8)
"""
import dataclasses
import os
import random
import time

import numpy as np

from .. import tflite_file
from .._keras import tf
from ..errors import TFCompressError

__all__ = ["LatencyStats", "keras_latency", "savedmodel_latency", "tflite_latency", "compare_latency",
           "gpu_devices"]


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Per-call latency percentiles in microseconds, for calls on ``batch_size`` rows.

    Example:
        >>> s = LatencyStats.from_samples([100.0, 200.0, 300.0], batch_size=2)
        >>> s.p50_us, s.runs, round(s.throughput_per_s)
        (200.0, 3, 10000)
    """

    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    std_us: float
    runs: int
    batch_size: int
    samples_us: tuple = dataclasses.field(default=(), repr=False, compare=False)

    @classmethod
    def from_samples(cls, samples_us, batch_size):
        """Summarize a list of per-call times in microseconds."""
        s = np.asarray(samples_us, dtype=np.float64)
        if s.size == 0:
            raise TFCompressError("no latency samples: run at least once (runs >= 1)")
        p50, p90, p99 = np.percentile(s, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(s.mean()), float(s.std()),
                   int(s.size), int(batch_size), tuple(float(v) for v in s))

    @property
    def throughput_per_s(self):
        """Rows per second at the mean latency."""
        return self.batch_size * 1e6 / self.mean_us if self.mean_us > 0 else float("inf")

    def to_dict(self, samples=False):
        """The statistics (and throughput) as a plain dict; ``samples=True`` adds the raw times."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "samples_us"}
        d["throughput_per_s"] = self.throughput_per_s
        if samples:
            d["samples_us"] = list(self.samples_us)
        return d


# ---------------------------------------------------------------------------------------------------
# Inputs and devices


def gpu_devices():
    """Names of the GPUs TensorFlow can see (an empty list on a CPU-only machine).

    Example:
        >>> isinstance(gpu_devices(), list)
        True
    """
    return [d.name for d in tf.config.list_logical_devices("GPU")]


def _check_device(device):
    device = device or "/CPU:0"
    try:
        spec = tf.DeviceSpec.from_string(device)
    except (ValueError, TypeError):
        raise TFCompressError(f"device {device!r} is not a device name: use e.g. '/CPU:0'") from None
    kind, index = (spec.device_type or "CPU").upper(), spec.device_index or 0
    if kind == "GPU" and not gpu_devices():
        raise TFCompressError(f"device {device!r} requested but no GPU is visible to TensorFlow: "
                              "use device='/CPU:0' or install a GPU build with drivers")
    visible = [tf.DeviceSpec.from_string(d.name) for d in tf.config.list_logical_devices()]
    if not any(v.device_type == kind and (v.device_index or 0) == index for v in visible):
        raise TFCompressError(f"device {device!r} is not visible: use one of "
                              f"{[f'/{v.device_type}:{v.device_index}' for v in visible]}")
    return f"/{kind}:{index}"


def _check_inputs(inputs):
    """Validate ``inputs`` (dict name -> array, or one array); return (dict of arrays, batch size)."""
    if isinstance(inputs, dict):
        if not inputs:
            raise TFCompressError("inputs is empty: pass a dict of input name -> NumPy array")
        arrays = {str(k): np.asarray(v) for k, v in inputs.items()}
    else:
        arrays = {None: np.asarray(inputs)}
    batches = {k: (a.shape[0] if a.ndim else None) for k, a in arrays.items()}
    if None in batches.values() or len(set(batches.values())) != 1:
        raise TFCompressError(f"every input needs the same leading batch axis, got shapes "
                              f"{ {k: a.shape for k, a in arrays.items()} }")
    batch = next(iter(batches.values()))
    if batch < 1:
        raise TFCompressError("inputs have batch size 0: pass at least one row")
    return arrays, int(batch)


def _check_runs(runs, warmup):
    for name, value, low in (("runs", runs, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise TFCompressError(f"{name} must be an integer >= {low}, got {value!r}")


# ---------------------------------------------------------------------------------------------------
# Runners: zero-argument callables that run the model once and return the elapsed nanoseconds


def _timed(forward, feed, device):
    """A runner: call ``forward(feed)`` on ``device``, force the result, return the nanoseconds."""
    def run():
        start = time.perf_counter_ns()
        with tf.device(device):
            out = forward(feed)
        tf.nest.map_structure(lambda t: t.numpy(), out)
        return time.perf_counter_ns() - start

    return run


def _keras_runner(model, inputs, device=None):
    if not callable(model):
        raise TFCompressError(f"expected a Keras model, got {type(model).__name__}")
    device = _check_device(device)
    arrays, batch = _check_inputs(inputs)
    with tf.device(device):
        feed = {k: tf.constant(v) for k, v in arrays.items()}
        if None in feed:
            feed = feed[None]

        @tf.function(reduce_retracing=True)
        def forward(x):
            return model(x, training=False)

    return _timed(forward, feed, device), batch


def _serving_function(model):
    """``(fn, owner)``: the ``serving_default`` concrete function of a loaded SavedModel (or of its folder
    path) and the loaded object, which must stay referenced while ``fn`` is used (it owns the variables)."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise TFCompressError(f"{path!r} is not a SavedModel folder (no saved_model.pb): "
                                  "pass a folder written by tf.saved_model.save")
        model = tf.saved_model.load(path)
    signatures = getattr(model, "signatures", None)
    if not signatures or "serving_default" not in signatures:
        raise TFCompressError("the SavedModel has no 'serving_default' signature: save it with "
                              "tfcompress.export.saved_model or signatures={'serving_default': ...}")
    return signatures["serving_default"], model


def _savedmodel_runner(model, inputs, device=None):
    fn, owner = _serving_function(model)
    device = _check_device(device)
    arrays, batch = _check_inputs(inputs)
    specs = fn.structured_input_signature[1]
    if None in arrays:
        if len(specs) != 1:
            raise TFCompressError(f"the SavedModel has inputs {sorted(specs)}: pass a dict name -> array")
        arrays = {next(iter(specs)): arrays[None]}
    missing = [name for name in specs if name not in arrays]
    if missing:
        raise TFCompressError(f"the SavedModel needs inputs {missing} that are not in inputs "
                              f"(given: {sorted(arrays)}): pass them by these names")
    with tf.device(device):
        feed = {name: tf.constant(arrays[name].astype(spec.dtype.as_numpy_dtype, copy=False))
                for name, spec in specs.items()}

        @tf.function(reduce_retracing=True)
        def forward(x):
            return fn(**x)

        forward.owner = owner  # keep the SavedModel's variables alive as long as the runner

    return _timed(forward, feed, device), batch


def _tflite_interpreter(model, threads, xnnpack):
    """A LiteRT interpreter for a ``.tflite`` path or model bytes (see :func:`tfcompress.tflite_file.interpreter`)."""
    if isinstance(model, (bytes, bytearray)):
        return tflite_file.interpreter(content=model, num_threads=threads, xnnpack=xnnpack)
    return tflite_file.interpreter(model, num_threads=threads, xnnpack=xnnpack)


def _input_indices(interpreter):
    """Map input name -> tensor index, by signature names when there is a signature, else by tensor
    names with ``serving_default_`` and ``:0`` stripped."""
    signatures = interpreter.get_signature_list()
    if signatures:
        runner = interpreter.get_signature_runner(next(iter(signatures)))
        return {name: d["index"] for name, d in runner.get_input_details().items()}
    names = {}
    for d in interpreter.get_input_details():
        name = d["name"]
        name = name[len("serving_default_"):] if name.startswith("serving_default_") else name
        names[name.split(":")[0]] = d["index"]
    return names


def _to_input_dtype(name, array, detail):
    dtype = np.dtype(detail["dtype"])
    if dtype in (np.int8, np.uint8) and np.issubdtype(array.dtype, np.floating):
        scale, zero_point = detail["quantization"]
        if not scale:
            raise TFCompressError(f"input {name!r} is {dtype} without a quantization scale: "
                                  "pass integer values")
        info = np.iinfo(dtype)
        q = np.round(array / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)
    if np.issubdtype(dtype, np.integer) and np.issubdtype(array.dtype, np.floating):
        raise TFCompressError(f"input {name!r} expects {dtype} ids but got floats: pass integers")
    return array.astype(dtype, copy=False)


def _tflite_runner(model, inputs, threads=1, xnnpack=True):
    arrays, batch = _check_inputs(inputs)
    interpreter = _tflite_interpreter(model, threads, xnnpack)
    indices = _input_indices(interpreter)
    if None in arrays:  # a bare array for a one-input model
        if len(indices) != 1:
            raise TFCompressError(f"the model has inputs {sorted(indices)}: pass a dict name -> array")
        arrays = {next(iter(indices)): arrays[None]}
    lookup = {}
    for key in arrays:
        short = key[len("serving_default_"):] if key.startswith("serving_default_") else key
        lookup.setdefault(key, key)
        lookup.setdefault(short.split(":")[0], key)
    missing = [name for name in indices if name not in lookup]
    if missing:
        raise TFCompressError(f"the TFLite model needs inputs {missing} that are not in inputs "
                              f"(given: {sorted(arrays)}): pass them by these names")
    for name, index in indices.items():
        interpreter.resize_tensor_input(index, arrays[lookup[name]].shape, strict=False)
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_input_details()}
    feed = [(index, _to_input_dtype(name, arrays[lookup[name]], details[index]))
            for name, index in indices.items()]

    def run():
        start = time.perf_counter_ns()
        for index, value in feed:
            interpreter.set_tensor(index, value)
        interpreter.invoke()
        return time.perf_counter_ns() - start

    return run, batch


def _measure(runners, runs, warmup, seed=0, progress=None):
    """Run every runner ``warmup`` then ``runs`` times, round-robin in a shuffled order per round.

    ``progress`` (optional) is called with the number of calls done after each round."""
    _check_runs(runs, warmup)
    rng = random.Random(seed)
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name][0]()
    samples = {name: [] for name in names}
    for _ in range(runs):
        rng.shuffle(names)
        for name in names:
            samples[name].append(runners[name][0]() / 1e3)
        if progress is not None:
            progress(len(names))
    return {name: LatencyStats.from_samples(samples[name], runners[name][1]) for name in runners}


# ---------------------------------------------------------------------------------------------------
# Public measurements


def keras_latency(model, inputs, *, runs=200, warmup=20, device=None):
    """Latency of ``model(inputs)`` through a compiled ``tf.function`` on ``device`` (default CPU).

    Each timed call includes turning the result into NumPy, so asynchronous work is counted.

    Example:
        >>> import numpy as np
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> keras_latency(m, np.ones((4, 3), "float32"), runs=5, warmup=1).runs
        5
    """
    return _measure({"model": _keras_runner(model, inputs, device)}, runs, warmup)["model"]


def savedmodel_latency(model, inputs, *, runs=200, warmup=20, device=None):
    """Latency of a SavedModel's ``serving_default`` signature (a folder path or a loaded SavedModel).

    Inputs are fed by the signature's names and cast to its dtypes; each timed call includes turning
    the outputs into NumPy.

    Example:
        >>> # savedmodel_latency("savedmodels/ctr_teacher", {"user_id": ids, ...}, runs=50).p50_us
    """
    return _measure({"model": _savedmodel_runner(model, inputs, device)}, runs, warmup)["model"]


def tflite_latency(path, inputs, *, runs=200, warmup=20, threads=1, xnnpack=True):
    """Latency of a ``.tflite`` file (path or bytes) with the LiteRT interpreter.

    Inputs are matched to the model's inputs by name (signature names such as ``user_id``, or tensor
    names such as ``serving_default_user_id:0``), the model is resized to the batch, and float inputs
    are quantized when the model takes int8/uint8. Only ``set_tensor`` + ``invoke`` are timed.
    ``xnnpack=False`` runs the plain builtin kernels without the default XNNPACK delegate.

    Example:
        >>> # tflite_latency("model.tflite", {"user_id": ids, "item_id": items}, threads=2).p50_us
    """
    return _measure({"model": _tflite_runner(path, inputs, threads, xnnpack)}, runs, warmup)["model"]


def compare_latency(candidates, inputs, *, runs=200, warmup=20, threads=1, device=None, seed=0,
                    xnnpack=True, progress=None):
    """Latency of several models measured interleaved: ``{name: (kind, obj)}`` -> ``{name: LatencyStats}``.

    ``kind`` is ``"keras"`` (obj: a Keras model), ``"savedmodel"`` (obj: a SavedModel folder or loaded
    SavedModel) or ``"tflite"`` (obj: a .tflite path or bytes). Every
    round runs each model once, in a freshly shuffled order, so drift in machine speed is shared.
    TensorFlow (Keras, SavedModel) and TFLite models are measured in two separate interleaved blocks:
    TensorFlow's thread pools
    keep spinning for a while after each call, and a TFLite call right after a Keras call was measured
    here ~10x slower (115 µs instead of 10 µs for a small int8 CTR model).

    Example:
        >>> import numpy as np
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        >>> out = compare_latency({"a": ("keras", m), "b": ("keras", m)}, np.ones((2, 3), "float32"),
        ...                       runs=3, warmup=1)
        >>> sorted(out)
        ['a', 'b']
    """
    if not isinstance(candidates, dict) or not candidates:
        raise TFCompressError("candidates must be a non-empty dict name -> (kind, model)")
    runners = {}
    for name, entry in candidates.items():
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            raise TFCompressError(f"candidate {name!r} must be a (kind, model) pair, "
                                  f"got {type(entry).__name__}")
        kind, obj = entry
        if kind == "keras":
            runners[name] = _keras_runner(obj, inputs, device)
        elif kind == "savedmodel":
            runners[name] = _savedmodel_runner(obj, inputs, device)
        elif kind == "tflite":
            runners[name] = _tflite_runner(obj, inputs, threads, xnnpack)
        else:
            raise TFCompressError(f"candidate {name!r} has kind {kind!r}: use 'keras', 'savedmodel' "
                                  "or 'tflite'")
    results = {}
    for kinds in (("keras", "savedmodel"), ("tflite",)):
        block = {name: runners[name] for name, (k, _) in candidates.items() if k in kinds}
        if block:
            results.update(_measure(block, runs, warmup, seed=seed, progress=progress))
    return {name: results[name] for name in candidates}
