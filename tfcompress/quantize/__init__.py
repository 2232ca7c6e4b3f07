"""Quantization-aware training: plain, sparsity-preserving, cluster-preserving and both."""
from .configs import LayerNormQuantizeConfig, OutputQuantizeConfig, config_for
from .qat import PRESERVE, float_layers, layer_plan, quantize_aware

__all__ = ["quantize_aware", "float_layers", "layer_plan", "PRESERVE", "config_for", "LayerNormQuantizeConfig",
           "OutputQuantizeConfig"]
