"""Data for tfcompress: the built-in synthetic shop, feature specs and ``tf.data`` pipelines."""
from .spec import Feature, FeatureSpec
from .synthetic import EcommerceData, make_ecommerce, time_split
from .pipeline import to_dataset, frame_to_inputs, sample_inputs

__all__ = ["Feature", "FeatureSpec", "EcommerceData", "make_ecommerce", "time_split", "to_dataset",
           "frame_to_inputs", "sample_inputs"]
