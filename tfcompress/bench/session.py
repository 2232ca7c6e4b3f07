"""A benchmark session over a mix of models: Keras files, SavedModels and ``.tflite`` files side by side.

:func:`run_bench` is the composition of the bench's parts: it opens the models
(:func:`~tfcompress.bench.load_models`) and the rows (:func:`~tfcompress.bench.load_data`), measures
quality on the same rows for every model with bootstrap differences against a baseline
(:func:`~tfcompress.bench.measure_quality`), size, structure and peak interpreter memory
(:func:`~tfcompress.bench.measure_footprint`) and latency interleaved across models for every batch
size / device / thread count / XNNPACK setting (:func:`~tfcompress.bench.measure_latency_grid`),
then assembles the report (:func:`~tfcompress.bench.assemble_report`) and writes it with plots.

Example:
    >>> import os, tempfile
    >>> from tfcompress import keras
    >>> from tfcompress.bench import run_bench
    >>> from tfcompress.data import make_ecommerce
    >>> from tfcompress.models import ctr_student
    >>> shop = make_ecommerce(events=2000, seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> ctr_student(shop.spec, embedding_dim=2, hidden=(4,)).save(path)
    >>> result = run_bench([path], data=shop, batches=(1,), runs=5, warmup=1, progress=False)
    >>> sorted(result.models["name"])
    ['m']
"""
from .assemble import assemble_report, write_bench_report
from .eval_data import BenchData, check_data_fits, load_data
from .footprint import measure_footprint
from .latency_grid import grid_settings, measure_latency_grid
from .model_files import load_models
from .quality import measure_quality

__all__ = ["run_bench"]


def run_bench(models, data="builtin", *, events=20_000, seed=0, label=None, batches=(1, 32),
              threads=(1,), xnnpack=(True,), runs=100, warmup=None, baseline=None, out=None,
              memory=True, bootstrap=200, max_eval_rows=20_000, progress=True, title="tfcompress bench"):
    """Benchmark several models on the same real rows; returns a :class:`~tfcompress.bench.BenchResult`.

    Args:
        models: paths (``.tflite``, SavedModel folder, ``.keras``/``.h5``) or :class:`BenchModel` objects.
        data: ``"builtin"``, an ``EcommerceData``, a DataFrame, a ``.csv``/``.parquet`` path or a
            :class:`BenchData`.
        batches, threads, xnnpack: the configurations to time (lists; threads/XNNPACK apply to TFLite).
        runs, warmup: timed and warm-up calls per configuration, interleaved across models.
        baseline: the model name (file name without extension) the quality differences refer to;
            default the first model.
        out: folder for report.md/csv/json/html and the plots (None: nothing written).
        memory: measure the peak memory of a TFLite interpreter process per ``.tflite`` model.
        progress: show a tqdm bar on stderr.

    Keras and SavedModel latency is measured on the CPU and on every visible GPU; without a GPU each
    of those models gets a row with device ``GPU`` saying no GPU is visible.
    """
    batches, threads, xnnpack, warmup = grid_settings(batches, threads, xnnpack, runs, warmup)
    loaded = load_models(models)
    if not isinstance(data, BenchData):
        data = load_data(data, events=events, seed=seed, label=label, max_rows=max_eval_rows)
    check_data_fits(loaded, data)
    baseline = baseline or loaded[0].name
    quality = measure_quality(loaded, data, baseline=baseline, bootstrap=bootstrap, seed=seed)
    footprint, layers = measure_footprint(loaded, threads=threads[0],
                                          memory_inputs=data.sample(batches[-1], seed) if memory else None)
    grid, samples = measure_latency_grid(loaded, data, batches=batches, threads=threads, xnnpack=xnnpack,
                                         runs=runs, warmup=warmup, seed=seed, progress=progress)
    result = assemble_report(footprint, quality, grid, layers=layers, samples=samples, data=data,
                             baseline=baseline, batches=batches, threads=threads, xnnpack=xnnpack, runs=runs,
                             warmup=warmup, bootstrap=bootstrap, title=title)
    if out is not None:
        result.paths = write_bench_report(result.report, out, samples=samples,
                                          paths_by_model=dict(zip(result.models["name"], result.models["path"])))
    return result
