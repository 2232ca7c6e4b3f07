"""Custom layers of the model zoo, each made ready for tfmot pruning and quantization-aware training.

* :class:`Cross` — a DCN-v2 feature-cross layer, ``x0 * (x @ W + b) + x`` (Wang et al., 2021, the layer
  TensorFlow Recommenders ships as ``tfrs.layers.dcn.Cross``). It owns its ``kernel`` and ``bias`` so that
  it can be a tfmot ``PrunableLayer`` and carry a ``QuantizeConfig``.

Their QAT configs live in :mod:`tfcompress.quantize.configs` (``CrossQuantizeConfig`` for :class:`Cross`).

Example:
    >>> from tfcompress import keras
    >>> x0 = keras.Input((4,))
    >>> y = Cross(name="cross")([x0, x0])
    >>> keras.Model(x0, y).count_params()
    20
"""
import importlib
import warnings

from .._keras import keras, tf, tfmot
from .registry import custom_objects  # noqa: F401  (its old home; built from the Keras registry)


@keras.utils.register_keras_serializable(package="tfcompress")
class Cross(keras.layers.Layer, tfmot.sparsity.keras.PrunableLayer):
    """DCN-v2 cross layer: ``x0 * (x @ kernel + bias) + x``; call on ``[x0, x]`` (or ``x0`` alone)."""

    def __init__(self, use_bias=True, kernel_initializer="glorot_uniform", kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        shape = input_shape[0] if isinstance(input_shape, (list, tuple)) and isinstance(
            input_shape[0], (list, tuple, tf.TensorShape)) else input_shape
        dim = int(shape[-1])
        self.kernel = self.add_weight("kernel", shape=(dim, dim), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, trainable=True)
        self.bias = self.add_weight("bias", shape=(dim,), initializer="zeros", trainable=True) \
            if self.use_bias else None
        super().build(input_shape)

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)):
            x0, x = inputs
        else:
            x0 = x = inputs
        prod = tf.matmul(x, self.kernel)
        if self.bias is not None:
            prod = prod + self.bias
        return x0 * prod + x

    def get_prunable_weights(self):
        return [self.kernel]

    def get_config(self):
        config = super().get_config()
        config.update({
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        })
        return config


_MOVED = ("CrossQuantizeConfig", "EmbeddingQuantizeConfig", "DensePrunePreserveQuantizeConfig",
          "KernelQuantizeConfig")
"""QAT configs that moved to :mod:`tfcompress.quantize.configs` (still importable from here, with a warning)."""


def _moved(name, module="tfcompress.models.layers"):
    """A QuantizeConfig class that moved to :mod:`tfcompress.quantize.configs`, with a DeprecationWarning."""
    if name not in _MOVED:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(f"{module}.{name} moved to tfcompress.quantize.{name}", DeprecationWarning,
                  stacklevel=3)
    # resolved on use only: the models floor never imports quantize, the deprecated name reaches up to it
    return getattr(importlib.import_module("tfcompress.quantize.configs"), name)


def __getattr__(name):  # tfcompress.models.layers.CrossQuantizeConfig & co.: deprecated
    return _moved(name)
