"""Export: SavedModels, TFLite in every mode, the LiteRT runner, and parity checks."""
from .parity import ParityError, compare_outputs, parity_report
from .runner import TFLiteModel
from .savedmodel import saved_model, serving_function, serving_signature
from .tflite import MODES, convert, read_sidecar, representative_samples, to_tflite

__all__ = ["saved_model", "serving_function", "serving_signature", "to_tflite", "convert", "MODES",
           "representative_samples", "read_sidecar", "TFLiteModel", "parity_report", "compare_outputs",
           "ParityError"]
