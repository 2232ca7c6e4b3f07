"""Small model utilities shared by the compression stages.

Example:
    >>> from tfcompress import keras
    >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> c = copy_model(m)
    >>> c is not m and all((a == b).all() for a, b in zip(c.get_weights(), m.get_weights()))
    True
"""
from .._keras import keras
from ..errors import TFCompressError
from .registry import custom_objects


def check_functional(model, what="tfmot"):
    """Raise a clear error unless ``model`` is a functional or Sequential tf_keras model."""
    if not isinstance(model, keras.Model):
        raise TFCompressError(f"expected a tf_keras Model, got {type(model).__name__} (Keras 3 models "
                              "are not supported by tfmot: build the model with tfcompress.keras)")
    if not getattr(model, "_is_graph_network", False) and not isinstance(model, keras.Sequential):
        raise TFCompressError(
            f"model {model.name!r} is a subclassed Model, which {what} cannot wrap: build it with the "
            "functional API (keras.Input ... keras.Model(inputs, outputs)) or keras.Sequential")


def copy_model(model):
    """An independent copy of a functional/Sequential ``model`` with the same weights."""
    check_functional(model)
    with keras.utils.custom_object_scope(custom_objects()):
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone
