"""Quantization-aware training (QAT) on tfmot, including the collaborative-optimization schemes.

:func:`quantize_aware` annotates every layer tfmot can quantize (plus the model zoo's custom layers
through the configs of :mod:`tfcompress.quantize.configs`, e.g. :class:`~tfcompress.models.Cross`), leaves
the rest in float and says which and why (:func:`float_layers`), and applies one of tfmot's schemes:

==========================  ==============================================================
``preserve=None``           plain 8-bit QAT (``Default8BitQuantizeScheme``)
``preserve="sparsity"``     sparsity-preserving QAT (PQAT): pruned zeros stay zero
``preserve="clusters"``     cluster-preserving QAT (CQAT): the number of unique weights stays
``preserve="both"``         sparsity- and cluster-preserving QAT (PCQAT)
==========================  ==============================================================

Example:
    >>> from tfcompress import keras
    >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="h"), keras.layers.Dense(1)])
    >>> q = quantize_aware(m)
    >>> type(q.get_layer("quant_h")).__name__
    'QuantizeWrapperV2'
"""
import re

from .._keras import keras, tfmot
from ..errors import TFCompressError
from ..models.registry import custom_objects
from ..models.utils import copy_model
from .configs import config_for, float_reason

_q = tfmot.quantization.keras
PRESERVE = (None, "sparsity", "clusters", "both")


def _scheme(preserve):
    combine = tfmot.experimental.combine
    if preserve is None:
        return _q.default_8bit.Default8BitQuantizeScheme()
    if preserve == "sparsity":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    if preserve == "clusters":
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
    return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)


def _registry():
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as reg,
    )
    return reg.Default8BitQuantizeRegistry()


def layer_plan(model, layers=None, *, preserve=None):
    """For each layer, how QAT treats it: ``(name, action, reason)`` with action in
    ``quantize``, ``custom`` (a tfcompress QuantizeConfig) or ``float``."""
    registry = _registry()
    plan = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        selected = layers is None or (re.search(layers, layer.name) if isinstance(layers, str)
                                      else layer.name in layers)
        if not selected:
            plan.append((layer.name, "float", "not selected"))
        elif config_for(layer) is not None:
            plan.append((layer.name, "custom", type(config_for(layer)).__name__))
        elif float_reason(layer):
            plan.append((layer.name, "float", float_reason(layer)))
        elif registry.supports(layer):
            plan.append((layer.name, "quantize", "tfmot default 8-bit"))
        elif isinstance(layer, keras.layers.BatchNormalization):
            plan.append((layer.name, "quantize", "folded into the preceding layer by tfmot's transforms"))
        else:
            plan.append((layer.name, "float", f"tfmot has no 8-bit config for {type(layer).__name__}"))
    return plan


def float_layers(model, layers=None):
    """The layers QAT leaves in float, with the reason: ``{name: reason}``."""
    return {n: why for n, action, why in layer_plan(model, layers) if action == "float"}


def quantize_aware(model, *, preserve=None, layers=None):
    """A QAT copy of ``model``: fake-quantized 8-bit weights and activations, ready to fine-tune and
    convert to int8 TFLite. ``layers`` (regex or list of names) limits QAT to some layers."""
    if preserve not in PRESERVE:
        raise TFCompressError(f"preserve={preserve!r} is not one of {PRESERVE}")
    if isinstance(layers, (list, tuple, set)):
        names = [l.name for l in model.layers]
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise TFCompressError(f"no layer named {unknown} in model {model.name!r}; layers are {names}")
    actions = {name: (action, why) for name, action, why in layer_plan(model, layers)}

    def annotate(layer):
        if actions.get(layer.name, ("float", ""))[0] == "float":
            return layer
        config = config_for(layer, preserve)  # None: tfmot's own 8-bit config
        return _q.quantize_annotate_layer(layer, quantize_config=config)

    base = copy_model(model)
    own = {type(l).__name__: type(l) for l in model.submodules if isinstance(l, keras.layers.Layer)}
    with _q.quantize_scope({**own, **custom_objects()}):  # the model's own layer classes rebuild too
        annotated = keras.models.clone_model(base, clone_function=annotate)
        try:
            return _q.quantize_apply(annotated, scheme=_scheme(preserve))
        except (ValueError, TypeError, RuntimeError, AttributeError, KeyError) as e:
            raise TFCompressError(_qat_failed(model, preserve, e)) from e


def _qat_failed(model, preserve, error):
    """One line: why tfmot failed, naming the model's custom layers (the usual cause) and the fix."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    custom = sorted({f"{l.name} ({type(l).__name__})" for l in model.submodules if isinstance(l, keras.layers.Layer)
                     and not type(l).__module__.startswith(("tf_keras.", "keras.", "tensorflow"))
                     and config_for(l) is None})
    hint = (f"; custom layer(s) {custom} cannot be rebuilt: give each a get_config() with its __init__ "
            "arguments, pass them in tfmot's quantize_scope, or give them a QuantizeConfig") if custom else ""
    return (f"tfmot could not apply QAT ({preserve or 'plain'} scheme) to model {model.name!r}: "
            f"{type(error).__name__} {first}{hint}")
