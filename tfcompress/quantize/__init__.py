"""Quantization-aware training: plain, sparsity-preserving, cluster-preserving and both.

Every ``QuantizeConfig`` of tfcompress lives in :mod:`~tfcompress.quantize.configs`, with the one map from
layer class to config (:data:`~tfcompress.quantize.configs.QUANTIZE_CONFIGS`) that
:func:`quantize_aware` uses; :func:`custom_objects` (the Keras registry of the ``tfcompress`` package)
reloads a saved model with any tfcompress layer or config.
"""
from ..models.registry import custom_objects
from .configs import (QUANTIZE_CONFIGS, ClusterPreserveQuantizeConfig, CrossQuantizeConfig,
                      DensePrunePreserveQuantizeConfig, EmbeddingQuantizeConfig, KernelQuantizeConfig,
                      LayerNormQuantizeConfig, OutputQuantizeConfig, config_for)
from .qat import PRESERVE, float_layers, layer_plan, quantize_aware

__all__ = ["quantize_aware", "float_layers", "layer_plan", "PRESERVE", "config_for", "QUANTIZE_CONFIGS",
           "custom_objects", "LayerNormQuantizeConfig", "OutputQuantizeConfig", "CrossQuantizeConfig",
           "EmbeddingQuantizeConfig", "KernelQuantizeConfig", "DensePrunePreserveQuantizeConfig",
           "ClusterPreserveQuantizeConfig"]
