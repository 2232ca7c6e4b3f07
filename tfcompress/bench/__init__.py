"""Measure what compression gained and lost: quality metrics, size, latency and a report.

Example:
    >>> from tfcompress import bench
    >>> bench.metrics.auc([0, 1], [0.2, 0.7])
    1.0
    >>> bench.Report([{"name": "int8", "auc": 0.8}]).frame.shape
    (1, 2)
"""
from . import latency, metrics, report, runner, size
from .latency import (LatencyStats, compare_latency, gpu_devices, keras_latency, savedmodel_latency,
                      tflite_latency)
from .metrics import (accuracy, auc, bootstrap_diff, hit_rate_at_k, logloss, ndcg_at_k, recall_at_k,
                      rmse)
from .report import Report, latency_plot, pareto_front, pareto_plot, sparsity_plot
from .runner import BenchModel, BenchResult, load_data, load_model, run_bench, tflite_peak_memory
from .size import (count_params, file_bytes, gzip_bytes, keras_layer_sparsity, keras_sparsity,
                   tflite_layer_sparsity, tflite_params, tflite_sparsity)

__all__ = [
    "metrics", "size", "latency", "report", "runner",
    "run_bench", "load_model", "load_data", "BenchModel", "BenchResult", "tflite_peak_memory",
    "auc", "logloss", "accuracy", "rmse", "ndcg_at_k", "hit_rate_at_k", "recall_at_k",
    "bootstrap_diff",
    "file_bytes", "gzip_bytes", "count_params", "keras_sparsity", "keras_layer_sparsity",
    "tflite_sparsity", "tflite_layer_sparsity", "tflite_params",
    "LatencyStats", "keras_latency", "savedmodel_latency", "tflite_latency", "compare_latency", "gpu_devices",
    "Report", "pareto_front", "pareto_plot", "latency_plot", "sparsity_plot",
]
