"""What a distiller reads from its models: checks of the models, named layer outputs, scored lists.

A distillation loss names the outputs it needs (``"layer"``, or ``"layer[i]"`` for the i-th output of a
layer with several). The :class:`~tfcompress.distill.Distiller` builds one :class:`Tap` per model (a
functional model returning ``[output, layer outputs...]``), so each model runs once per step, and hands the
losses a :class:`BatchOutputs`. With ``lists=True`` a pointwise model scores list-shaped batches
(``{name: [batch, list]}`` -> scores ``[batch, list]``; the layer outputs stay one row per candidate).

Example:
    >>> from tfcompress import keras
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="h"), keras.layers.Dense(1)])
    >>> out, layers = Tap(m, ["h"], "student")(np.ones((2, 4), "float32"), training=False)
    >>> tuple(out.shape), tuple(layers["h"].shape)
    ((2, 1), (2, 3))
"""
import numpy as np

from .._keras import keras, tf
from ..errors import TFCompressError

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def check_model(role, m, *, functional=False):
    """Raise a clear error unless ``m`` is a built tf_keras Model (functional if asked)."""
    if not isinstance(m, keras.Model):
        hint = (" (a Keras 3 model? use tfcompress.distill.cache_teacher_outputs for an offline teacher)"
                if hasattr(m, "predict") else "")
        raise TFCompressError(f"the {role} must be a tf_keras Model, got {type(m).__name__}{hint}")
    if not m.built:
        raise TFCompressError(f"the {role} {m.name!r} is not built: call it on data or give it an Input")
    if functional and not getattr(m, "_is_graph_network", False):
        raise TFCompressError(f"the {role} {m.name!r} is a subclassed model: intermediate layers can only be "
                              "matched in functional or Sequential models")
    return m


def check_outputs(teacher, student, objective):
    """Raise a clear error if teacher and student outputs differ in shape or are probabilities."""
    t_shape, s_shape = _shape(teacher), _shape(student)
    if t_shape is None or s_shape is None:  # a subclassed model never called symbolically: checked by TF later
        return
    if t_shape != s_shape:
        kind = "outputs" if objective == "regression" else "logits"
        raise TFCompressError(f"teacher {teacher.name!r} output shape {t_shape} does not match student "
                              f"{student.name!r} output shape {s_shape}: both must produce the same {kind}")
    if objective == "multiclass" and (not t_shape or t_shape[-1] in (None, 1)):
        raise TFCompressError(f"objective 'multiclass' needs one logit per class, the outputs have shape {t_shape}: "
                              "use objective='binary' for one sigmoid logit")
    if objective in ("binary", "multiclass"):
        for role, m in (("teacher", teacher), ("student", student)):
            act = _final_activation(m)
            if act in _PROBABILITY_ACTIVATIONS:
                raise TFCompressError(
                    f"the {role} {m.name!r} ends in a {act} activation (probabilities): distillation needs "
                    "logits, rebuild its last layer with activation=None")


def _shape(m):
    try:
        shape = m.output_shape
    except (AttributeError, RuntimeError):
        return None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    return tuple(shape[1:]) if isinstance(shape, tuple) else shape


def _final_activation(m):
    layer = m.layers[-1] if getattr(m, "layers", None) else None
    act = getattr(layer, "activation", None)
    if layer is not None and type(layer).__name__ in ("Softmax", "Activation"):
        act = getattr(layer, "activation", None) or tf.nn.softmax
    name = getattr(act, "__name__", "")
    return name if name in _PROBABILITY_ACTIVATIONS else None


def find_layer(model, name, role):
    """``model.get_layer(name)`` with an error that lists the candidate layer names."""
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise TFCompressError(f"the {role} {model.name!r} has no layer {name!r}; its layers are {names}")
    return model.get_layer(name)


def layer_output(model, spec, role):
    """The symbolic output named by ``spec``: ``"layer"`` or ``"layer[i]"`` (the i-th output of a layer with
    several, e.g. ``MultiHeadAttention(..., return_attention_scores=True)`` -> ``"mha[1]"`` attention maps)."""
    name, index = spec, None
    if spec.endswith("]") and "[" in spec:
        name, _, idx = spec[:-1].rpartition("[")
        try:
            index = int(idx)
        except ValueError:
            raise TFCompressError(f"bad layer output {spec!r}: use 'layer' or 'layer[i]'") from None
    out = find_layer(model, name, role).output
    if index is None:
        if isinstance(out, (list, tuple)):
            raise TFCompressError(f"layer {name!r} of the {role} has {len(out)} outputs: name one as '{name}[i]'")
        return out
    if not isinstance(out, (list, tuple)) or not 0 <= index < len(out):
        n = len(out) if isinstance(out, (list, tuple)) else 1
        raise TFCompressError(f"layer {name!r} of the {role} has {n} output(s), no output [{index}]")
    return out[index]


def by_head(out, names):
    """A model's outputs as ``{head name: tensor}`` (dict outputs as they are, lists zipped with ``names``)."""
    if isinstance(out, dict):
        return out
    out = out if isinstance(out, (list, tuple)) else [out]
    return dict(zip(names, out))


def width(tensor):
    """The number of values per example of a symbolic tensor."""
    return int(np.prod([d for d in tensor.shape[1:]]))


def _flatten_lists(x):
    return tf.nest.map_structure(lambda v: tf.reshape(v, tf.concat([[-1], tf.shape(v)[2:]], 0)), x)


class Tap:
    """Calls ``model`` once and returns ``(output, {spec: layer output})`` for the layer ``specs``.

    With ``lists=True`` the batch is list-shaped: it is flattened to rows, scored, and the output reshaped
    to ``[batch, list]``."""

    def __init__(self, model, specs, role, lists=False):
        self.model, self.specs, self.lists = model, tuple(specs), bool(lists)
        self._call = model
        if self.specs:
            check_model(role, model, functional=True)
            outs = [layer_output(model, s, role) for s in self.specs]
            self._call = keras.Model(model.input, [model.output] + outs, name=f"{model.name}_tap")

    def __call__(self, x, training):
        shape = tf.shape(tf.nest.flatten(x)[0]) if self.lists else None
        out = self._call(_flatten_lists(x) if self.lists else x, training=training)
        layers = {}
        if self.specs:
            out, layers = out[0], dict(zip(self.specs, out[1:]))
        if self.lists:
            out = tf.reshape(out, shape[:2])
        return out, layers


class BatchOutputs:
    """The outputs of one batch as the losses read them: ``student`` (logits, or ``{head: logits}``),
    ``student_layers`` ``{spec: tensor}``, ``teachers`` (one output per teacher; the cached outputs for an
    offline distiller) and ``teacher_layers`` (one ``{spec: tensor}`` per teacher)."""

    def __init__(self, student, student_layers, teachers, teacher_layers):
        self.student, self.student_layers = student, student_layers
        self.teachers, self.teacher_layers = teachers, teacher_layers
