"""Compression by pruning and its relatives.

* :mod:`~tfcompress.prune.unstructured` — tfmot magnitude pruning with schedules that really prune on short
  runs, m-by-n (2:4) sparsity, the XNNPACK pruning policy; :func:`strip_pruning` before export.
* :mod:`~tfcompress.prune.structured` — remove whole Dense units / Conv2D filters: a smaller, faster model.
* :mod:`~tfcompress.prune.lowrank` — truncated-SVD factorization of Dense kernels and Embedding tables.
* :mod:`~tfcompress.prune.cluster` — tfmot weight clustering.
* :mod:`~tfcompress.prune.sparsity` — the one sparsity measure (Keras and TFLite, per layer and overall),
  m-by-n patterns and unique values.
"""
from .cluster import cluster_weights, strip_clustering
from .lowrank import choose_rank, factorize, truncated_svd
from .sparsity import (is_m_by_n, keras_layer_sparsity, keras_sparsity, layer_sparsity, m_by_n_violations,
                       sparsity_report, tflite_layer_sparsity, tflite_sparsity, tflite_unique_values,
                       unique_values)
from .structured import fine_tune, prune_units, shrinkable_layers, unit_importance
from .unstructured import (
    check_m_by_n,
    constant_schedule,
    derived_frequency,
    is_prunable,
    polynomial_schedule,
    prune_low_magnitude,
    prune_m_by_n,
    pruning_callbacks,
    select_layers,
    strip,
    strip_pruning,
)

__all__ = ["prune_low_magnitude", "polynomial_schedule", "constant_schedule", "derived_frequency",
           "pruning_callbacks", "strip_pruning", "strip", "layer_sparsity", "select_layers", "is_prunable",
           "prune_m_by_n", "check_m_by_n",
           "prune_units", "unit_importance", "shrinkable_layers", "fine_tune",
           "factorize", "choose_rank", "truncated_svd",
           "cluster_weights", "strip_clustering",
           "sparsity_report", "keras_sparsity", "keras_layer_sparsity", "tflite_sparsity", "tflite_layer_sparsity",
           "m_by_n_violations", "is_m_by_n", "unique_values", "tflite_unique_values"]
