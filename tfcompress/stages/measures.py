"""What a task declares about measuring its results after the stages: :class:`Latency` (how each result is
timed, batch 1, interleaved) and :class:`Table` (one report row per result).

Example:
    >>> import os, tempfile
    >>> from tfcompress.stages import StageResult
    >>> path = os.path.join(tempfile.mkdtemp(), "m.bin")
    >>> _ = open(path, "wb").write(bytes(100))
    >>> row = Table().row(StageResult("teacher", "keras", path=path, quality={"auc": 0.712345678}))
    >>> row["size_bytes"], row["auc"]
    (100, 0.71235)
"""
import time


class Latency:
    """Batch-1 latency of every result, measured interleaved (:func:`tfcompress.bench.compare_latency`):
    a Keras result as its model, a TFLite one as its file, all on the data's ``latency_inputs``.

    A task whose models take different inputs (or need wrapping to be timed) subclasses this and
    overrides :meth:`group` and :meth:`candidate`.

    Example:
        >>> Latency().group(None, None)
        'model'
    """

    def group(self, result, context):
        """Results of one group are timed together, on the same inputs (:meth:`inputs`)."""
        return "model"

    def inputs(self, group, context):
        """The batch-1 inputs of ``group``."""
        return context.data.latency_inputs

    def candidate(self, result, context):
        """``(kind, object)`` that :func:`~tfcompress.bench.compare_latency` times for ``result``."""
        if result.format == "savedmodel":  # a teacher given as a SavedModel (or a Keras 3 model exported)
            return ("savedmodel", result.path)
        return ("keras", result.model) if result.format == "keras" else ("tflite", result.path)

    def note(self, context, count, runs):
        """The progress line's message."""
        return f"{count} models x {runs} interleaved batch-1 runs"

    def run(self, context):
        """Time every result of ``context``; store each one's stats in ``result.extra["latency"]``."""
        from ..bench import compare_latency

        started = time.perf_counter()
        groups = {}
        for r in context.results:
            groups.setdefault(self.group(r, context), {})[f"{r.name}/{r.format}"] = self.candidate(r, context)
        runs = context.config.latency_runs
        stats = {}
        for group, candidates in groups.items():
            stats.update(compare_latency(candidates, self.inputs(group, context), runs=runs,
                                         warmup=max(5, runs // 10), threads=1))
        for r in context.results:
            r.extra["latency"] = stats[f"{r.name}/{r.format}"]
        context.progress("latency", self.note(context, len(stats), runs), started)
        return stats


def sparsity_column(result):
    """The ``sparsity`` column: the share of zero weights (4 decimals).

    Example:
        >>> from tfcompress.stages import StageResult
        >>> sparsity_column(StageResult("s", "keras", sparsity=0.123456))
        {'sparsity': 0.1235}
    """
    return {"sparsity": round(float(result.sparsity), 4) if result.sparsity is not None else None}


class Table:
    """The report's table: per result its name, format, params, bytes (plain and gzipped), the ``columns``
    (functions ``result -> {column: value}``, default the sparsity), the quality figures (``quality``: the
    columns to show, ``None`` for every figure the result has) and the batch-1 latency.

    Example:
        >>> import os, tempfile
        >>> from tfcompress.stages import StageResult
        >>> path = os.path.join(tempfile.mkdtemp(), "m.bin")
        >>> _ = open(path, "wb").write(bytes(100))
        >>> t = Table(columns=(), quality=("auc", "hr@10"))
        >>> row = t.row(StageResult("s", "keras", path=path, quality={"auc": 0.5}))
        >>> row["hr@10"], "sparsity" in row
        (None, False)
    """

    def __init__(self, columns=(sparsity_column,), quality=None):
        self.columns = tuple(columns)
        self.quality = None if quality is None else tuple(quality)

    def row(self, result):
        """One row of the table for ``result`` (a :class:`~tfcompress.stages.StageResult`)."""
        from ..bench import size

        lat = result.extra.get("latency")
        row = {"name": result.name, "format": result.format, "params": result.params,
               "size_bytes": size.file_bytes(result.path), "gzip_bytes": size.gzip_bytes(result.path)}
        for column in self.columns:
            row.update(column(result))
        names = result.quality if self.quality is None else self.quality
        row.update({q: round(float(result.quality[q]), 5) if q in result.quality else None for q in names})
        row["latency_p50_us"] = round(lat.p50_us, 2) if lat else None
        row["latency_p90_us"] = round(lat.p90_us, 2) if lat else None
        return row

    def rows(self, results):
        """The table's rows, one per result, in order."""
        return [self.row(r) for r in results]
