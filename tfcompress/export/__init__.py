"""Export: SavedModels, TFLite in every mode, the LiteRT runner, and parity checks."""
from .parity import ParityError, compare_outputs, parity_report
from .runner import TFLiteModel
from .savedmodel import saved_model, serving_function, serving_signature
from .tflite import MODES, convert, converter_for, read_sidecar, representative_samples, to_tflite
from .debugger import export_with_fallback, find_sensitive_layers
from .litert_quantizer import RECIPES as LITERT_RECIPES, quantize_with_litert

__all__ = ["saved_model", "serving_function", "serving_signature", "to_tflite", "convert", "MODES",
           "representative_samples", "read_sidecar", "TFLiteModel", "parity_report", "compare_outputs",
           "ParityError", "converter_for", "find_sensitive_layers", "export_with_fallback",
           "quantize_with_litert", "LITERT_RECIPES"]
