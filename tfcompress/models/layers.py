"""Custom layers of the model zoo, each made ready for tfmot pruning and quantization-aware training.

* :class:`Cross` — a DCN-v2 feature-cross layer, ``x0 * (x @ W + b) + x`` (Wang et al., 2021, the layer
  TensorFlow Recommenders ships as ``tfrs.layers.dcn.Cross``). It owns its ``kernel`` and ``bias`` so that
  it can be a tfmot ``PrunableLayer`` and carry a ``QuantizeConfig``.
* :class:`CrossQuantizeConfig` and :class:`EmbeddingQuantizeConfig` — the QAT configs tfmot lacks.

Example:
    >>> from tfcompress._keras import keras
    >>> x0 = keras.Input((4,))
    >>> y = Cross(name="cross")([x0, x0])
    >>> keras.Model(x0, y).count_params()
    20
"""
from .._keras import keras, tf, tfmot

_q = tfmot.quantization.keras


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


@keras.utils.register_keras_serializable(package="tfcompress")
class CrossQuantizeConfig(_q.QuantizeConfig):
    """QAT config for :class:`Cross`: 8-bit symmetric kernel, 8-bit output.

    With ``preserve_sparsity=True`` the kernel quantizer keeps pruned zeros at zero (tfmot's
    sparsity-preserving QAT quantizer), as the collaborative-optimization scheme does for ``Dense``.
    """

    def __init__(self, preserve_sparsity=False):
        self.preserve_sparsity = preserve_sparsity

    def _kernel_quantizer(self):
        if self.preserve_sparsity:
            return _prune_preserve_weights_quantizer()
        return _q.quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True, narrow_range=True)

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, self._kernel_quantizer())]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_q.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                     narrow_range=False)]

    def get_config(self):
        return {"preserve_sparsity": self.preserve_sparsity}


@keras.utils.register_keras_serializable(package="tfcompress")
class EmbeddingQuantizeConfig(_q.QuantizeConfig):
    """QAT config for ``Embedding``: the table fake-quantized to 8 bits (symmetric), so int8 TFLite keeps it
    as an int8 table; the lookup output shares the table's scale and needs no quantizer of its own."""

    def get_weights_and_quantizers(self, layer):
        return [(layer.embeddings, _q.quantizers.LastValueQuantizer(num_bits=8, per_axis=False,
                                                                    symmetric=True, narrow_range=True))]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        layer.embeddings = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def _prune_preserve_weights_quantizer():
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        prune_preserve_quantize_registry as ppr,
    )
    return ppr.PrunePreserveDefault8BitWeightsQuantizer()


class KernelQuantizeConfig(_q.QuantizeConfig):
    """Base QAT config for layers with a ``kernel`` and an ``activation`` (``Dense``, ``Conv2D``): the kernel
    through :meth:`kernel_quantizer` (subclasses choose it), the activation through tfmot's default 8-bit
    moving-average quantizer."""

    def kernel_quantizer(self):
        raise NotImplementedError

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, self.kernel_quantizer())]

    def get_activations_and_quantizers(self, layer):
        return [(layer.activation, _q.quantizers.MovingAverageQuantizer(
            num_bits=8, per_axis=False, symmetric=False, narrow_range=False))]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


@keras.utils.register_keras_serializable(package="tfcompress")
class DensePrunePreserveQuantizeConfig(KernelQuantizeConfig):
    """QAT config for ``Dense`` that keeps pruned zeros at zero: tfmot's sparsity-preserving 8-bit kernel
    quantizer, and the default 8-bit activation quantizer. It survives tfmot's graph transforms (which
    re-create configs from ``get_config``), unlike the quantizer the PQAT registry patches in."""

    def kernel_quantizer(self):
        return _prune_preserve_weights_quantizer()


def custom_objects():
    """The custom objects a tfcompress model may hold (for ``load_model`` and tfmot scopes)."""
    from .text import text_custom_objects

    return {"Cross": Cross, "CrossQuantizeConfig": CrossQuantizeConfig,
            "EmbeddingQuantizeConfig": EmbeddingQuantizeConfig,
            "DensePrunePreserveQuantizeConfig": DensePrunePreserveQuantizeConfig, **text_custom_objects()}
