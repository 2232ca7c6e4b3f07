"""Every QAT ``QuantizeConfig`` of tfcompress, and the one map from layer class to config that QAT uses.

* :class:`CrossQuantizeConfig` — :class:`~tfcompress.models.Cross`: 8-bit symmetric kernel, 8-bit output.
* :class:`LayerNormQuantizeConfig` — ``LayerNormalization``: gamma/beta stay float (the converter folds
  them into the int8 graph), the output is fake-quantized to 8 bits so the next layer sees int8 ranges.
* :class:`DensePrunePreserveQuantizeConfig`, :class:`ClusterPreserveQuantizeConfig` — ``Dense`` / ``Conv2D``
  under the sparsity- and cluster-preserving schemes: one kernel quantizer per layer.
* :class:`EmbeddingQuantizeConfig`, :class:`OutputQuantizeConfig`, :class:`KernelQuantizeConfig` — building
  blocks (an 8-bit table; an 8-bit output only; a kernel + activation base).

:data:`QUANTIZE_CONFIGS` maps a layer class to the config it gets under each ``preserve`` scheme;
:func:`config_for` reads it. ``MultiHeadAttention`` gets no config: tfmot's ``QuantizeWrapper`` builds a
wrapped layer from ONE input shape, and attention is called on (query, value), so wrapping it fails in
``quantize_apply``. QAT leaves it (and ``Embedding``) float (:data:`FLOAT_REASONS` says why,
:func:`tfcompress.quantize.layer_plan` reports it) and the int8 converter quantizes them by calibration at
export.

Example:
    >>> from tfcompress import keras
    >>> type(config_for(keras.layers.LayerNormalization())).__name__
    'LayerNormQuantizeConfig'
    >>> config_for(keras.layers.Dense(2)) is None
    True
"""
from .._keras import keras, tfmot
from ..models.layers import Cross
from ..models.preprocessing import NumericNormalization
from ..models.registry import custom_objects  # noqa: F401  (its old home here)

_q = tfmot.quantization.keras


def _activation_quantizer():
    return _q.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)


def _symmetric_weight_quantizer():
    return _q.quantizers.LastValueQuantizer(num_bits=8, per_axis=False, symmetric=True, narrow_range=True)


def _prune_preserve_weights_quantizer():
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.prune_preserve import (
        prune_preserve_quantize_registry as ppr,
    )
    return ppr.PrunePreserveDefault8BitWeightsQuantizer()


def _cluster_preserve_quantizer(preserve_sparsity, conv):
    from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
        cluster_preserve_quantize_registry as cpr,
    )
    cls = cpr.ClusterPreserveDefault8BitConvWeightsQuantizer if conv else cpr.ClusterPreserveDefault8BitWeightsQuantizer
    return cls(preserve_sparsity)


@keras.utils.register_keras_serializable(package="tfcompress")
class OutputQuantizeConfig(_q.QuantizeConfig):
    """Fake-quantize only a layer's output (8-bit, asymmetric); weights are left to the converter.

    Example:
        >>> OutputQuantizeConfig().get_config()
        {}
    """

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_activation_quantizer()]

    def get_config(self):
        return {}


@keras.utils.register_keras_serializable(package="tfcompress")
class LayerNormQuantizeConfig(OutputQuantizeConfig):
    """QAT config for ``LayerNormalization``: 8-bit output, float gamma/beta.

    Example:
        >>> LayerNormQuantizeConfig().get_config()
        {}
    """


@keras.utils.register_keras_serializable(package="tfcompress")
class CrossQuantizeConfig(_q.QuantizeConfig):
    """QAT config for :class:`~tfcompress.models.Cross`: 8-bit symmetric kernel, 8-bit output.

    With ``preserve_sparsity=True`` the kernel quantizer keeps pruned zeros at zero (tfmot's
    sparsity-preserving QAT quantizer), as the collaborative-optimization scheme does for ``Dense``.

    Example:
        >>> CrossQuantizeConfig(preserve_sparsity=True).get_config()
        {'preserve_sparsity': True}
    """

    def __init__(self, preserve_sparsity=False):
        self.preserve_sparsity = preserve_sparsity

    def _kernel_quantizer(self):
        if self.preserve_sparsity:
            return _prune_preserve_weights_quantizer()
        return _symmetric_weight_quantizer()

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, self._kernel_quantizer())]

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_activation_quantizer()]

    def get_config(self):
        return {"preserve_sparsity": self.preserve_sparsity}


@keras.utils.register_keras_serializable(package="tfcompress")
class EmbeddingQuantizeConfig(_q.QuantizeConfig):
    """QAT config for ``Embedding``: the table fake-quantized to 8 bits (symmetric), so int8 TFLite keeps it
    as an int8 table; the lookup output shares the table's scale and needs no quantizer of its own.

    Example:
        >>> EmbeddingQuantizeConfig().get_config()
        {}
    """

    def get_weights_and_quantizers(self, layer):
        return [(layer.embeddings, _symmetric_weight_quantizer())]

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


class KernelQuantizeConfig(_q.QuantizeConfig):
    """Base QAT config for layers with a ``kernel`` and an ``activation`` (``Dense``, ``Conv2D``): the kernel
    through :meth:`kernel_quantizer` (subclasses choose it), the activation through tfmot's default 8-bit
    moving-average quantizer.

    Example:
        >>> issubclass(DensePrunePreserveQuantizeConfig, KernelQuantizeConfig)
        True
    """

    def kernel_quantizer(self):
        raise NotImplementedError

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, self.kernel_quantizer())]

    def get_activations_and_quantizers(self, layer):
        return [(layer.activation, _activation_quantizer())]

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
    re-create configs from ``get_config``), unlike the quantizer the PQAT registry patches in.

    Example:
        >>> DensePrunePreserveQuantizeConfig().get_config()
        {}
    """

    def kernel_quantizer(self):
        return _prune_preserve_weights_quantizer()


@keras.utils.register_keras_serializable(package="tfcompress")
class ClusterPreserveQuantizeConfig(KernelQuantizeConfig):
    """QAT config for a clustered ``Dense`` / ``Conv2D`` that keeps the number of unique weights (CQAT) and,
    with ``preserve_sparsity=True``, the zeros (PCQAT).

    tfmot 0.8.1's cluster-preserving registry hands ONE weight quantizer to every layer; a layer without zeros
    switches its ``preserve_sparsity`` off for all of them, so the pruned zeros of the other layers are lost in
    fine-tuning. This config gives each layer its own quantizer.

    Example:
        >>> ClusterPreserveQuantizeConfig(preserve_sparsity=True).get_config()
        {'preserve_sparsity': True, 'conv': False}
    """

    def __init__(self, preserve_sparsity=False, conv=False):
        self.preserve_sparsity = bool(preserve_sparsity)
        self.conv = bool(conv)

    def kernel_quantizer(self):
        return _cluster_preserve_quantizer(self.preserve_sparsity, self.conv)

    def get_config(self):
        return {"preserve_sparsity": self.preserve_sparsity, "conv": self.conv}


# ---------------------------------------------------------------------------------------------------
# The one map: layer class -> its config under each scheme


def _keeps_zeros(preserve):
    return preserve in ("sparsity", "both")


def _cross(preserve):
    return CrossQuantizeConfig(preserve_sparsity=_keeps_zeros(preserve))


def _layer_norm(preserve):
    return LayerNormQuantizeConfig()


def _kernel(conv):
    """``Dense`` / ``Conv2D``: tfmot's own config under plain QAT (None); one kernel quantizer per layer
    under the preserving schemes (tfmot 0.8.1's shared quantizers lose zeros in fine-tuning)."""
    def make(preserve):
        # tfmot 0.8.1's PQAT scheme handed the second of two stacked Dense layers a plain weight quantizer
        # (its zeros were lost in fine-tuning), so Dense gets an explicit config; Conv2D keeps tfmot's
        if preserve == "sparsity" and not conv:
            return DensePrunePreserveQuantizeConfig()
        if preserve in ("clusters", "both"):
            return ClusterPreserveQuantizeConfig(preserve_sparsity=_keeps_zeros(preserve), conv=conv)
        return None

    return make


QUANTIZE_CONFIGS = {
    Cross: _cross,
    keras.layers.LayerNormalization: _layer_norm,
    keras.layers.Dense: _kernel(conv=False),
    keras.layers.Conv2D: _kernel(conv=True),
}
"""``{layer class: preserve -> QuantizeConfig or None}``, matched on the exact class. ``None`` means
tfmot's own 8-bit config. Layers with a config under plain QAT (``preserve=None``) are the ones tfmot lacks
one for (``custom`` in :func:`tfcompress.quantize.layer_plan`)."""

FLOAT_REASONS = {
    keras.layers.Embedding: "Embedding: tfmot would fake-quantize its int32 id input; the int8 converter "
                            "quantizes the table at export",
    NumericNormalization: "NumericNormalization: fills, clips and scales the raw float input; fake-quantizing "
                          "its input would lose NaN (missing), so it stays float and its output is quantized "
                          "after the concatenation",
    keras.layers.MultiHeadAttention: "MultiHeadAttention: tfmot's QuantizeWrapper cannot wrap a layer called "
                                     "on (query, value); left float in QAT, its projections are quantized by "
                                     "calibration at int8 export",
}
"""``{layer class: why QAT leaves it float}`` for layers a user may expect to be quantized (subclasses too)."""


def float_reason(layer):
    """Why QAT leaves ``layer`` float although a user may expect otherwise, or ``None``.

    Example:
        >>> from tfcompress import keras
        >>> float_reason(keras.layers.Embedding(10, 2)).split(":")[0]
        'Embedding'
    """
    return next((why for cls, why in FLOAT_REASONS.items() if isinstance(layer, cls)), None)


def config_for(layer, preserve=None):
    """The tfcompress QAT config for ``layer`` under the ``preserve`` scheme (a new instance), or ``None``
    when tfmot's own config (or none: the layer stays float) applies.

    Example:
        >>> from tfcompress import keras
        >>> config_for(keras.layers.MultiHeadAttention(2, 4)) is None
        True
        >>> type(config_for(keras.layers.Dense(2), preserve="sparsity")).__name__
        'DensePrunePreserveQuantizeConfig'
    """
    make = QUANTIZE_CONFIGS.get(type(layer))
    return make(preserve) if make is not None else None
