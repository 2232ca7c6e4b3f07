"""Models to benchmark, from their files: Keras ``.keras``/``.h5`` files, SavedModel folders and ``.tflite`` files.

:func:`load_model` opens any of them behind one small interface (:class:`BenchModel`: input names and
dtypes, ``cast``, ``predict``, a latency ``candidate``); :func:`load_models` opens several with unique
names and checks that they take the same inputs.

Example:
    >>> import os, tempfile
    >>> from tfcompress import keras
    >>> from tfcompress.bench import load_model
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(1)]).save(path)
    >>> m = load_model(path)
    >>> m.name, m.kind, sorted(m.inputs)
    ('m', 'keras', ['x'])
"""
import dataclasses
import os

import numpy as np

from ..errors import TFCompressError

__all__ = ["BenchModel", "load_model", "load_models", "check_same_inputs"]

_TFLITE_MAGIC = b"TFL3"


@dataclasses.dataclass
class BenchModel:
    """One model to benchmark: ``kind`` is ``"keras"``, ``"savedmodel"`` or ``"tflite"``.

    ``inputs`` maps input name -> NumPy dtype the model is fed with (floats for quantized TFLite inputs:
    they are quantized on the way in).

    Example:
        >>> import numpy as np
        >>> m = BenchModel("m", "keras", "m.keras", None, {"x": np.dtype("float32")})
        >>> m.cast({"x": [1, 2]})["x"].dtype, m.is_tensorflow
        (dtype('float32'), True)
    """

    name: str
    kind: str
    path: str
    obj: object
    inputs: dict

    @property
    def is_tensorflow(self):
        """True for models that run in TensorFlow (Keras, SavedModel), which can use a GPU."""
        return self.kind in ("keras", "savedmodel")

    def cast(self, arrays):
        """The model's inputs taken from ``arrays`` (dict name -> array) and cast to its dtypes."""
        return {name: np.asarray(arrays[name]).astype(dtype, copy=False) for name, dtype in self.inputs.items()}

    def candidate(self):
        """``(kind, obj)`` for :func:`tfcompress.bench.compare_latency`."""
        return self.kind, self.obj

    def predict(self, arrays, batch_size=4096):
        """The model's (first) output on ``arrays`` as a float64 NumPy array with a leading row axis."""
        feed = self.cast(arrays)
        if self.kind == "tflite":
            out = self.obj.predict(feed, batch_size=batch_size)
        elif self.kind == "keras":
            out = self.obj.predict(feed, batch_size=batch_size, verbose=0)
        else:
            fn = self.obj.signatures["serving_default"]
            n = len(next(iter(feed.values())))
            parts = []
            for start in range(0, n, batch_size):
                res = fn(**{k: v[start:start + batch_size] for k, v in feed.items()})
                parts.append(res[sorted(res)[0]].numpy())
            out = np.concatenate(parts)
        if isinstance(out, dict):
            out = out[sorted(out)[0]]
        if isinstance(out, (list, tuple)):
            out = out[0]
        return np.asarray(out, dtype=np.float64)


def _unique_name(path, taken):
    base = os.path.basename(os.path.normpath(os.fspath(path)))
    for ext in (".tflite", ".keras", ".h5"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    name, i = base, 2
    while name in taken:
        name, i = f"{base}#{i}", i + 1
    return name


def load_model(path, name=None):
    """Open a ``.tflite`` file, a SavedModel folder or a Keras ``.keras``/``.h5`` file as a :class:`BenchModel`.

    Anything else (a missing path, a text file, a folder without ``saved_model.pb``) is a
    :class:`~tfcompress.errors.TFCompressError` naming the path.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "notes.tflite")
        >>> _ = open(p, "w").write("hello")
        >>> load_model(p)
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: ...notes.tflite' is not a TFLite model (no TFL3 header): ...
    """
    path = os.fspath(path)
    name = name or _unique_name(path, ())
    what = "pass a .tflite file, a SavedModel folder or a .keras/.h5 file"
    if not os.path.exists(path):
        raise TFCompressError(f"model {path!r} does not exist: {what}")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise TFCompressError(f"{path!r} is a folder but not a SavedModel (no saved_model.pb): {what}")
        return _load_savedmodel(path, name)
    with open(path, "rb") as f:
        head = f.read(8)
    if path.endswith(".tflite") or head[4:8] == _TFLITE_MAGIC:
        if head[4:8] != _TFLITE_MAGIC:
            raise TFCompressError(f"{path!r} is not a TFLite model (no TFL3 header): {what}")
        from ..export import TFLiteModel

        model = TFLiteModel(path)
        inputs = {}
        for n, d in model.inputs.items():
            dtype = np.dtype(d["dtype"])
            if dtype in (np.int8, np.uint8, np.int16) and d["quantization"][0]:
                dtype = np.dtype(np.float32)  # quantized on the way in by TFLiteModel / the latency runner
            inputs[n] = dtype
        return BenchModel(name, "tflite", path, model, inputs)
    if path.endswith((".keras", ".h5")):
        return _load_keras(path, name)
    raise TFCompressError(f"{path!r} is not a model file: {what}")


def _load_keras(path, name):
    from .._keras import keras
    from ..models import custom_objects

    try:
        with keras.utils.custom_object_scope(custom_objects()):
            model = keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001  (any reader failure means: not a readable Keras file)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise TFCompressError(f"{path!r} is not a readable Keras model ({first}): save it with "
                              "model.save('model.keras')") from None
    if not getattr(model, "inputs", None):
        raise TFCompressError(f"Keras model {path!r} has no defined inputs: build it with keras.Input")
    inputs = {n: np.dtype(t.dtype.as_numpy_dtype) for n, t in zip(model.input_names, model.inputs)}
    return BenchModel(name, "keras", path, model, inputs)


def _load_savedmodel(path, name):
    from .._keras import tf
    from .latency import _serving_function

    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise TFCompressError(f"{path!r} is not a readable SavedModel ({first})") from None
    fn, _ = _serving_function(loaded)
    inputs = {n: np.dtype(s.dtype.as_numpy_dtype) for n, s in fn.structured_input_signature[1].items()}
    return BenchModel(name, "savedmodel", path, loaded, inputs)


def check_same_inputs(models):
    """Raise a :class:`~tfcompress.errors.TFCompressError` naming the inputs that differ between models.

    Example:
        >>> a = BenchModel("a", "keras", "a", None, {"x": np.float32, "y": np.float32})
        >>> b = BenchModel("b", "keras", "b", None, {"x": np.float32})
        >>> check_same_inputs([a, b])
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: models take different inputs: b lacks ['y'] (a takes ['x', 'y']); compare models with the same signature
    """
    first = models[0]
    for other in models[1:]:
        lacks = sorted(set(first.inputs) - set(other.inputs))
        extra = sorted(set(other.inputs) - set(first.inputs))
        if lacks or extra:
            parts = []
            if lacks:
                parts.append(f"{other.name} lacks {lacks}")
            if extra:
                parts.append(f"{other.name} has extra {extra}")
            raise TFCompressError(f"models take different inputs: {', '.join(parts)} ({first.name} takes "
                                  f"{sorted(first.inputs)}); compare models with the same signature")


def load_models(models):
    """Open each of ``models`` (paths or :class:`BenchModel` objects) with a unique name (``m``, ``m#2``,
    ... for the same file twice) and check that they all take the same inputs; returns a list.

    Example:
        >>> a = BenchModel("a", "keras", "a", None, {"x": np.float32})
        >>> [m.name for m in load_models([a])]
        ['a']
    """
    if isinstance(models, (str, os.PathLike, BenchModel)):
        models = [models]
    if not models:
        raise TFCompressError("no models given: pass at least one model path")
    loaded, taken = [], set()
    for m in models:
        if not isinstance(m, BenchModel):
            m = load_model(m, _unique_name(m, taken))
        taken.add(m.name)
        loaded.append(m)
    check_same_inputs(loaded)
    return loaded
