"""Measure what compression gained and lost: quality metrics, size, latency and a report.

A benchmark is three measurements of the same models on the same rows, then a report:
:func:`measure_quality` (metrics and bootstrap intervals against a baseline), :func:`measure_footprint`
(bytes, parameters, sparsity, peak memory), :func:`measure_latency_grid` (batch sizes x devices x threads
x XNNPACK, interleaved) and :func:`assemble_report`; :func:`run_bench` composes them.

Example:
    >>> from tfcompress import bench
    >>> bench.metrics.auc([0, 1], [0.2, 0.7])
    1.0
    >>> bench.Report([{"name": "int8", "auc": 0.8}]).frame.shape
    (1, 2)
"""
from .. import metrics
from ..metrics import (accuracy, auc, bootstrap_diff, hit_rate_at_k, logloss, ndcg_at_k, recall_at_k,
                       rmse)
from . import latency, plots, report, size
from .assemble import BenchResult, assemble_report, write_bench_report
from .eval_data import BenchData, check_data_fits, load_data
from .footprint import measure_footprint, tflite_peak_memory
from .latency import (LatencyStats, compare_latency, gpu_devices, keras_latency, savedmodel_latency,
                      tflite_latency)
from .latency_grid import LATENCY_COLUMNS, grid_settings, measure_latency_grid
from .model_files import BenchModel, check_same_inputs, load_model, load_models
from .plots import latency_plot, pareto_front, pareto_plot, sparsity_plot
from .quality import measure_quality
from .report import Report, format_value
from .session import run_bench
from .size import (count_params, file_bytes, gzip_bytes, keras_layer_sparsity, keras_sparsity,
                   tflite_layer_sparsity, tflite_params, tflite_sparsity)

__all__ = [
    "metrics", "size", "latency", "report", "plots",
    "run_bench", "measure_quality", "measure_footprint", "measure_latency_grid", "assemble_report",
    "write_bench_report", "grid_settings", "LATENCY_COLUMNS",
    "load_model", "load_models", "check_same_inputs", "BenchModel", "load_data", "check_data_fits", "BenchData",
    "BenchResult", "tflite_peak_memory",
    "auc", "logloss", "accuracy", "rmse", "ndcg_at_k", "hit_rate_at_k", "recall_at_k",
    "bootstrap_diff",
    "file_bytes", "gzip_bytes", "count_params", "keras_sparsity", "keras_layer_sparsity",
    "tflite_sparsity", "tflite_layer_sparsity", "tflite_params",
    "LatencyStats", "keras_latency", "savedmodel_latency", "tflite_latency", "compare_latency", "gpu_devices",
    "Report", "format_value", "pareto_front", "pareto_plot", "latency_plot", "sparsity_plot",
]
