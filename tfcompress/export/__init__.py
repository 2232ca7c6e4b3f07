"""Export: SavedModels, TFLite in every mode, the LiteRT runner, parity checks, float fallback and the
top-K retrieval file.

Modules, bottom up: ``savedmodel`` · ``tflite_model`` (:class:`TFLiteModel`) · ``parity`` · ``denylist``
(ops kept float) · ``converter`` (:func:`convert`) · ``tflite`` (:func:`to_tflite`: a checked file) ·
``fallback`` (:func:`export_with_fallback`) · ``retrieval_topk`` · ``litert_quantizer``; int8 recovery:
``bias_correction`` · ``activation_ranges`` · ``static_int8`` · ``mixed_precision`` · ``recovery``.
"""
from .parity import OBJECTIVES, ParityError, compare_outputs, parity_report
from .tflite_model import TFLiteModel
from .savedmodel import saved_model, serving_function, serving_signature
from .converter import MODES, convert, converter_for, representative_samples
from .bias_correction import bias_corrected, quantized_kernel
from .activation_ranges import activation_ranges, value_range
from .static_int8 import quantize_static
from .mixed_precision import mixed_precision
from .recovery import check_recovery, recover_int8
from .denylist import quantize_with_denylist
from .tflite import read_sidecar, sidecar_path, to_tflite
from .fallback import export_with_fallback, find_sensitive_layers
from .retrieval_topk import export_retrieval_tflite, requantize_candidates, requantize_per_tensor
from .litert_quantizer import RECIPES as LITERT_RECIPES, quantize_with_litert

__all__ = ["saved_model", "serving_function", "serving_signature", "to_tflite", "convert", "MODES",
           "representative_samples", "read_sidecar", "sidecar_path", "TFLiteModel", "parity_report",
           "compare_outputs", "ParityError", "OBJECTIVES", "converter_for", "quantize_with_denylist",
           "find_sensitive_layers", "export_with_fallback", "export_retrieval_tflite", "requantize_candidates",
           "requantize_per_tensor", "quantize_with_litert", "LITERT_RECIPES", "bias_corrected", "quantized_kernel",
           "activation_ranges", "value_range", "quantize_static", "mixed_precision", "check_recovery",
           "recover_int8"]
