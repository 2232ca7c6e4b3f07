"""Your own teacher: a trained model given to ``tfcompress run --teacher PATH`` (``RunConfig(teacher_model=)``,
``tfcompress.pipeline.run(config, teacher=model)``) instead of one trained by the ``teacher`` stage.

:func:`load_teacher` takes a tf_keras model or ``.keras``/``.h5`` file, a SavedModel folder (with or
without Keras metadata), a Keras 3 model or ``.keras`` file, or a ``.tflite`` file, and returns an
:class:`OwnTeacher`: its inputs (checked against the data's by :meth:`OwnTeacher.check_inputs`), whether it
outputs logits or probabilities (detected, or given), and its logits. A tf_keras model runs in the
distiller's graph; anything else (Keras 3, a SavedModel without Keras metadata, TFLite) is distilled
offline from its cached outputs (:func:`~tfcompress.stages.teacher_cache.teacher_cache`). Keras 3 is never
mixed with tf_keras in one graph: it is exported to a SavedModel first.

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> x = keras.Input((), name="price")
    >>> h = keras.layers.Reshape((1,))(x)
    >>> t = load_teacher(keras.Model(x, keras.layers.Dense(1, activation="sigmoid")(h)))
    >>> t.kind, t.output, t.in_graph
    ('tf_keras', 'probabilities', True)
    >>> t.check_inputs({"price": np.zeros(3, "float32")})
    >>> t.check_inputs({"cost": np.zeros(3, "float32")})
    Traceback (most recent call last):
    ...
    tfcompress.errors.TFCompressError: your teacher's inputs do not match the data: missing ['price']; the data has ['cost']: name the teacher's keras.Input(name=...) after the data's columns
"""
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .._keras import keras, tf
from ..errors import TFCompressError, check
from .teacher_cache import teacher_cache  # noqa: F401  (re-exported: the cache of an offline teacher's outputs)

#: probabilities are clipped to [EPS, 1 - EPS] before they become logits
EPS = 1e-7
OUTPUTS = ("logits", "probabilities")
KINDS = ("tf_keras", "keras3", "saved_model", "tflite")
STUDENT_INIT = "from-teacher:"


@dataclass
class OwnTeacher:
    """A teacher given by the user. ``kind`` is one of :data:`KINDS`; ``model`` the tf_keras model that gives
    logits (``kind == "tf_keras"`` only); ``path`` the SavedModel folder or ``.tflite`` file run offline;
    ``inputs`` ``{name: (dtype kind, per-example shape)}``; ``output`` ``"logits"`` or ``"probabilities"``.

    Example:
        >>> OwnTeacher("tflite", "t.tflite", path="t.tflite").in_graph
        False
    """

    kind: str
    source: object
    model: object = None
    path: str = None
    inputs: dict = field(default_factory=dict)
    output: str = None
    given_output: str = None
    cache: dict = None

    @property
    def in_graph(self):
        """True when the distiller can run the teacher in its graph (a tf_keras model)."""
        return self.kind == "tf_keras"

    @property
    def label(self):
        """A short description: the path given, or the in-memory model's name."""
        return teacher_label(self.source)

    def check_inputs(self, data_inputs):
        """Raise one line listing the teacher's inputs that ``data_inputs`` (a dict) lacks or mistypes."""
        if not isinstance(data_inputs, dict):
            data_inputs = {"input": np.asarray(data_inputs)}
        missing = [n for n in self.inputs if n not in data_inputs]
        mistyped = [why for n, want in self.inputs.items() if n in data_inputs
                    for why in [_mismatch(n, want, np.asarray(data_inputs[n]))] if why]
        if not missing and not mistyped:
            return
        parts = ([f"missing {missing}"] if missing else []) + ([f"mistyped {mistyped}"] if mistyped else [])
        fix = ("name the teacher's keras.Input(name=...) after the data's columns" if missing else
               "give the teacher inputs of the data's dtypes and shapes")
        raise TFCompressError(f"your teacher's inputs do not match the data: {'; '.join(parts)}; the data has "
                              f"{sorted(data_inputs)}: {fix}")

    def raw_function(self):
        """``batch (dict of arrays) -> NumPy outputs`` of the teacher as given."""
        if self.in_graph:
            return lambda x: np.asarray(self.model(_only(x, self.inputs), training=False))
        from ..distill import teacher_function

        fn, _ = teacher_function(self.path)
        return lambda x: np.asarray(fn(_only(x, self.inputs)))

    def logit_function(self):
        """``batch -> logits`` (probabilities turned into clipped log-odds / logs)."""
        raw, output = self.raw_function(), self.output
        return lambda x: to_logits(raw(x), output)

    def logits(self, inputs, batch_size=4096):
        """The teacher's logits on ``inputs`` (a dict of arrays), in batches."""
        fn = self.logit_function()
        n = len(next(iter(inputs.values())))
        return np.concatenate([fn({k: v[i:i + batch_size] for k, v in inputs.items()})
                               for i in range(0, n, batch_size)], 0)


def teacher_label(source):
    """How a teacher is named in the report: its path, or ``<name: in-memory Keras model>``.

    Example:
        >>> teacher_label("models/t.keras"), teacher_label(None)
        ('models/t.keras', None)
    """
    if source is None or isinstance(source, (str, os.PathLike)):
        return None if source is None else os.fspath(source)
    package = type(source).__module__.split(".")[0]
    return f"<{getattr(source, 'name', type(source).__name__)}: in-memory {package} model>"


def to_logits(values, output):
    """``values`` as logits: unchanged for ``"logits"``; probabilities as clipped log-odds (one column) or
    clipped logs (several classes).

    Example:
        >>> [round(float(v), 2) for v in to_logits(np.array([[0.5], [1.0]]), "probabilities").ravel()]
        [0.0, 16.12]
    """
    if output != "probabilities":
        return np.asarray(values, np.float32)
    z = np.asarray(values, np.float64)
    if z.ndim == 1 or z.shape[-1] == 1:
        p = np.clip(z, EPS, 1 - EPS)
        return (np.log(p) - np.log1p(-p)).astype(np.float32)
    return np.log(np.clip(z, EPS, 1.0)).astype(np.float32)


def _only(x, inputs):
    """The batch's arrays the teacher takes (all of them when its input names are unknown)."""
    return {k: v for k, v in x.items() if k in inputs} if isinstance(x, dict) and inputs else x


def _kind_of(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "OSU":
        return "string"
    return "float" if dtype.kind == "f" else "int"


def _mismatch(name, want, array):
    """Why ``array`` cannot feed the teacher input ``name`` wanting ``(kind, shape)``, or None."""
    kind, shape = want
    have = _kind_of(array.dtype)
    if have != kind and not (kind == "float" and have == "int"):
        return f"{name}: the data has {have} ({array.dtype}), the teacher wants {kind}"
    known = [d for d in shape if d is not None]
    row = int(np.prod(array.shape[1:])) if array.ndim > 1 else 1
    if len(known) == len(shape) and int(np.prod(known or [1])) != row:
        return f"{name}: the data has shape {tuple(array.shape[1:])} per row, the teacher wants {tuple(shape)}"
    return None


# --- loading ------------------------------------------------------------------------------------------


def load_teacher(source, output=None):
    """An :class:`OwnTeacher` for ``source``: a tf_keras model, a Keras 3 model, or a path (``.keras``/``.h5``
    file, SavedModel folder, ``.tflite`` file). ``output`` (``"logits"``/``"probabilities"``) overrides what
    is detected from a final sigmoid/softmax (values on data: :func:`detect_output`).

    Example:
        >>> load_teacher("no/such/teacher.keras")
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: --teacher 'no/such/teacher.keras' does not exist: give a .keras/.h5 file, a SavedModel folder or a .tflite file
    """
    check(output in (None,) + OUTPUTS, f"--teacher-output {output!r} is not one of {list(OUTPUTS)}")
    if isinstance(source, keras.Model):
        return _tf_keras_teacher(source, source, output)
    if not isinstance(source, (str, os.PathLike)):
        if type(source).__module__.split(".")[0] == "keras":  # a Keras 3 model in memory
            return _keras3_teacher(source, output)
        raise TFCompressError(f"--teacher must be a path or a Keras model, got {type(source).__name__}")
    path = os.path.expanduser(os.fspath(source))
    check(os.path.exists(path), f"--teacher {source!r} does not exist: give a .keras/.h5 file, a SavedModel "
                                "folder or a .tflite file")
    if path.endswith(".tflite"):
        return _offline("tflite", source, path, output)
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "keras_metadata.pb")):
        return _offline("saved_model", source, path, output)
    if path.endswith(".keras") and _keras_major(path) >= 3:
        return _keras3_teacher(source, output)
    return _tf_keras_teacher(_load_tf_keras(path), source, output)


def _keras_major(path):
    """The major Keras version that wrote a ``.keras`` file (2 when unknown)."""
    try:
        with zipfile.ZipFile(path) as z:
            version = json.loads(z.read("metadata.json")).get("keras_version", "2")
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return 2
    return int(str(version).split(".")[0] or 2)


def _load_tf_keras(path):
    from ..models.registry import custom_objects

    try:
        return keras.models.load_model(path, compile=False, custom_objects=custom_objects())
    except (ValueError, TypeError, OSError, ImportError) as e:
        raise TFCompressError(f"--teacher {path!r} could not be loaded by tf_keras: "
                              f"{str(e).strip().splitlines()[0][:200]}") from None


def _tf_keras_teacher(model, source, output):
    check(getattr(model, "inputs", None), f"your teacher {model.name!r} has no defined inputs (a subclassed model "
          "never called): build it with keras.Input (functional API), or give it as a SavedModel folder")
    inputs = {name: (_kind_of(t.dtype.as_numpy_dtype), tuple(t.shape[1:]))
              for name, t in zip(model.input_names, model.inputs)}
    found = "probabilities" if final_activation(model) in ("sigmoid", "softmax") else None
    return OwnTeacher("tf_keras", source, model=model, inputs=inputs, output=output or found, given_output=output)


def final_activation(model):
    """The name of the activation of ``model``'s (only) output layer, or None.

    Example:
        >>> from tfcompress import keras
        >>> final_activation(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")]))
        'sigmoid'
    """
    if len(model.outputs or ()) != 1:
        return None
    layer = model.layers[-1] if isinstance(model, keras.Sequential) else \
        model.get_layer(model.outputs[0].node.layer.name)
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", None)


def logits_model(teacher):
    """A tf_keras model giving ``teacher``'s logits: the model itself, its clone with the final sigmoid/softmax
    made linear, or the model followed by a clipped log-odds layer."""
    model = teacher.model
    if teacher.output != "probabilities":
        return model
    if final_activation(model) in ("sigmoid", "softmax"):
        last = model.layers[-1] if isinstance(model, keras.Sequential) else model.outputs[0].node.layer

        def clone(layer):
            config = layer.get_config()
            if layer is last:
                config["activation"] = "linear"
            return type(layer).from_config(config)

        from ..models.registry import custom_objects

        with keras.utils.custom_object_scope(custom_objects()):
            new = keras.models.clone_model(model, clone_function=clone)
        new.set_weights(model.get_weights())
        return new
    multi = model.outputs[0].shape[-1] not in (None, 1)
    out = keras.layers.Lambda(lambda p: tf.math.log(tf.clip_by_value(p, EPS, 1.0)) if multi else
                              tf.math.log(tf.clip_by_value(p, EPS, 1 - EPS)) -
                              tf.math.log1p(-tf.clip_by_value(p, EPS, 1 - EPS)), name="to_logits")(model.outputs[0])
    return keras.Model(model.inputs, out, name=f"{model.name}_logits")


def _offline(kind, source, path, output):
    if kind == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        try:
            runner = Interpreter(model_path=path).get_signature_runner()
        except ValueError as e:
            raise TFCompressError(f"--teacher {path!r} is not a .tflite file with one signature: "
                                  f"{str(e).strip().splitlines()[0][:160]}") from None
        inputs = {n: (_kind_of(d["dtype"]), tuple(int(s) for s in d["shape"][1:]))
                  for n, d in runner.get_input_details().items()}
    else:
        fn = tf.saved_model.load(path).signatures.get("serving_default")
        check(fn is not None, f"--teacher {path!r} has no 'serving_default' signature: export it with one")
        inputs = {n: (_kind_of(s.dtype.as_numpy_dtype), tuple(s.shape[1:]))
                  for n, s in fn.structured_input_signature[1].items()}
    return OwnTeacher(kind, source, path=path, inputs=inputs, output=output, given_output=output)


def _keras3_teacher(source, output):
    """A Keras 3 model (or ``.keras`` file) exported to a SavedModel folder, run offline."""
    try:
        import keras as keras3
    except ImportError:
        keras3 = None
    if keras3 is None or not str(keras3.__version__).startswith("3"):
        raise TFCompressError("your teacher is a Keras 3 model but Keras 3 is not installed: pip install 'keras>=3'")
    model = source if not isinstance(source, (str, os.PathLike)) else \
        keras3.saving.load_model(os.path.expanduser(os.fspath(source)), compile=False)
    folder = os.path.join(tempfile.mkdtemp(prefix="tfcompress_keras3_teacher_"), "saved_model")
    model.export(folder, format="tf_saved_model", verbose=False)
    act = getattr(getattr(model.layers[-1], "activation", None), "__name__", None)
    teacher = _offline("saved_model", source, folder, output or
                       ("probabilities" if act in ("sigmoid", "softmax") else None))
    teacher.kind, teacher.given_output = "keras3", output
    return teacher


def detect_output(teacher, sample):
    """Set and return ``teacher.output``: as given or found from a final activation, else ``"probabilities"``
    when its outputs on ``sample`` (a dict of arrays) all lie in [0, 1] (and sum to 1 per row for several
    classes), else ``"logits"``."""
    if teacher.output is None:
        out = np.asarray(teacher.raw_function()(sample), np.float64)
        in_range = bool(np.all((out >= 0) & (out <= 1)))
        sums = out.ndim > 1 and out.shape[-1] > 1
        teacher.output = "probabilities" if in_range and (not sums or np.allclose(out.sum(-1), 1, atol=1e-3)) \
            else "logits"
    return teacher.output


def student_share(student_init):
    """The share of the teacher's parameters in ``--student from-teacher:SHARE`` (None: no such student).

    Example:
        >>> student_share("from-teacher:0.25"), student_share(None)
        (0.25, None)
        >>> student_share("teacher/4")
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: --student 'teacher/4' must be from-teacher:SHARE with 0 < SHARE <= 1, e.g. from-teacher:0.25
    """
    if student_init is None:
        return None
    text = str(student_init).strip()
    bad = (f"--student {student_init!r} must be {STUDENT_INIT}SHARE with 0 < SHARE <= 1, "
           f"e.g. {STUDENT_INIT}0.25")
    check(text.startswith(STUDENT_INIT), bad)
    try:
        share = float(text[len(STUDENT_INIT):])
    except ValueError:
        raise TFCompressError(bad) from None
    check(0 < share <= 1, bad)
    return share


def record_given_tflite(context, name, given):
    """Copy the user's ``.tflite`` teacher (the ``given`` teacher result) into the run's TFLite folder as
    result ``name`` (its figures are the teacher's: the same file); return the recorded result."""
    import shutil

    from .base import StageResult

    path = context.path(context.config.tflite_dir, name) + ".tflite"
    shutil.copyfile(given.path, path)
    return context.record(StageResult(name=name, format="tflite", model=path, path=path, params=given.params,
                                      quality=dict(given.quality),
                                      extra={"note": f"your .tflite teacher, copied from {given.path}"}))
