"""QAT configs for the layers of the text models that tfmot 0.8.1 has no 8-bit config for.

* :class:`LayerNormQuantizeConfig` — ``LayerNormalization``: gamma/beta stay float (the converter folds
  them into the int8 graph), the output is fake-quantized to 8 bits so the next layer sees int8 ranges.

``MultiHeadAttention`` gets no config: tfmot's ``QuantizeWrapper`` builds a wrapped layer from ONE input shape,
and attention is called on (query, value), so wrapping it fails in ``quantize_apply``. QAT leaves it float
(:data:`FLOAT_REASONS` says why, :func:`tfcompress.quantize.layer_plan` reports it) and the int8 converter
quantizes its projections by calibration at export.

:func:`config_for` returns the config for a layer (or ``None``); :func:`tfcompress.quantize.quantize_aware`
uses it, and :func:`tfcompress.quantize.layer_plan` reports it.

Example:
    >>> from tfcompress._keras import keras
    >>> type(config_for(keras.layers.LayerNormalization())).__name__
    'LayerNormQuantizeConfig'
    >>> config_for(keras.layers.Dense(2)) is None
    True
"""
from .._keras import keras, tfmot

_q = tfmot.quantization.keras


def _activation_quantizer():
    return _q.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)


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


CONFIGS = {
    "LayerNormalization": LayerNormQuantizeConfig,
}


FLOAT_REASONS = {
    "MultiHeadAttention": "MultiHeadAttention: tfmot's QuantizeWrapper cannot wrap a layer called on "
                          "(query, value); left float in QAT, its projections are quantized by calibration "
                          "at int8 export",
}


def float_reason(layer):
    """Why QAT leaves ``layer`` float although a user may expect otherwise, or ``None``."""
    return FLOAT_REASONS.get(type(layer).__name__)


def config_for(layer):
    """The tfcompress QAT config for ``layer`` (a new instance), or ``None`` when it has none.

    Example:
        >>> from tfcompress._keras import keras
        >>> config_for(keras.layers.MultiHeadAttention(2, 4)) is None
        True
    """
    cls = CONFIGS.get(type(layer).__name__)
    if cls is None or not isinstance(layer, getattr(keras.layers, type(layer).__name__)):
        return None
    return cls()


def custom_objects():
    """Names → classes, for ``quantize_scope`` / loading a QAT model."""
    return {c.__name__: c for c in (OutputQuantizeConfig, LayerNormQuantizeConfig)}
