"""SavedModels with a serving signature that names every input and output.

The SavedModel holds the model's variables and the ``serving_default`` signature only (no optimizer
state); load it with ``tf.saved_model.load`` or convert it with the TFLite converter.

Example:
    >>> import tempfile, os
    >>> from tfcompress import keras
    >>> x = keras.Input((), name="user_id", dtype="int32")
    >>> m = keras.Model({"user_id": x}, keras.layers.Dense(1, name="logit")(
    ...     keras.layers.Embedding(10, 2)(x)))
    >>> path = saved_model(m, os.path.join(tempfile.mkdtemp(), "m"))
    >>> sorted(serving_signature(m)[0])
    ['user_id']
"""
import os

from .._io import atomic_path
from .._keras import tf
from ..errors import TFCompressError

DEFAULT_DIR = "savedmodels"


def serving_signature(model):
    """``(input_specs, output_names)``: a dict name -> ``tf.TensorSpec`` for the model's inputs, and the
    names its outputs get in the signature (the output layers' names).

    Example:
        >>> from tfcompress import keras
        >>> x = keras.Input((3,), name="x")
        >>> specs, outputs = serving_signature(keras.Model({"x": x}, keras.layers.Dense(1, name="logit")(x)))
        >>> specs["x"].shape.as_list(), outputs
        ([None, 3], ['logit'])
    """
    if not getattr(model, "inputs", None):
        raise TFCompressError(f"model {model.name!r} has no defined inputs: build it with keras.Input")
    specs = {name: tf.TensorSpec(t.shape, t.dtype, name=name) for name, t in zip(model.input_names, model.inputs)}
    outputs = [o.node.layer.name if hasattr(o, "node") else o._keras_history.layer.name for o in model.outputs]
    outputs = [_strip_quant_prefix(n) for n in outputs]
    return specs, outputs


def _strip_quant_prefix(name):
    return name[len("quant_"):] if name.startswith("quant_") else name


def serving_function(model):
    """A ``tf.function`` taking a dict of named inputs and returning a dict of named outputs.

    Example:
        >>> from tfcompress import keras
        >>> x = keras.Input((3,), name="x")
        >>> serve = serving_function(keras.Model({"x": x}, keras.layers.Dense(1, name="logit")(x)))
        >>> list(serve({"x": tf.zeros((2, 3))}))
        ['logit']
    """
    specs, out_names = serving_signature(model)

    @tf.function(input_signature=[specs])
    def serve(inputs):
        out = model(inputs, training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        return dict(zip(out_names, out))

    return serve


def saved_model(model, path=None, *, name=None):
    """Save ``model`` as a SavedModel at ``path`` (default ``savedmodels/NAME``) with a
    ``serving_default`` signature of named inputs/outputs; written atomically. Returns the path.

    Example:
        >>> import os, tempfile
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1)])
        >>> path = saved_model(m, os.path.join(tempfile.mkdtemp(), "m"))
        >>> list(tf.saved_model.load(path).signatures)
        ['serving_default']
    """
    path = os.fspath(path) if path is not None else os.path.join(DEFAULT_DIR, name or model.name)
    serve = serving_function(model)
    # Save a module holding only the model's variables and the signature: no optimizer slots (which
    # triple the size of an Adam-trained model) and no training graph.
    module = tf.Module(name=model.name)
    module.model_variables = list(model.variables)
    module.serve = serve
    with atomic_path(path, is_dir=True) as tmp:
        tf.saved_model.save(module, tmp, signatures={"serving_default": serve.get_concrete_function()})
    return path
