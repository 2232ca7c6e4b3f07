"""The report of a run with a pretrained (Keras 3) teacher: its row is format ``keras3``, its ``size_bytes``
are its weights' bytes (there is no float32 ``.tflite`` of a Keras 3 model: the export stage writes none),
its latency the Keras 3 forward at batch 1 timed by the teacher stage (``keras3_p50_b32_ms``: batch 32), so
"pretrained teacher → int8 student" reads off one table.

Example:
    >>> from tfcompress.stages import StageResult
    >>> pretrained_column(StageResult("t", FORMAT, extra={"weight_bytes": 64, "keras3_p50_b32_ms": 9.5}))
    {'sparsity': None, 'weight_bytes': 64, 'keras3_p50_b32_ms': 9.5}
"""
from .measures import Latency, Table, sparsity_column
from .pretrained_teacher import FORMAT
from .sections import TeacherVsFinal


class PretrainedLatency(Latency):
    """Batch-1 latency as :class:`~tfcompress.stages.Latency`, except a pretrained teacher's: its Keras 3
    forward, timed by the teacher stage (it cannot run in the tf_keras latency harness)."""

    def run(self, context):
        everything = list(context.results)
        context.results[:] = [r for r in everything if r.format != FORMAT]
        try:
            return super().run(context) if context.results else {}
        finally:
            context.results[:] = everything


def pretrained_column(result):
    """The sparsity column; on a pretrained teacher's row also its weights' bytes and Keras 3 batch-32 p50.

    Example:
        >>> from tfcompress.stages import StageResult
        >>> pretrained_column(StageResult("s", "tflite", sparsity=0.5))
        {'sparsity': 0.5}
    """
    if result.format != FORMAT:
        return sparsity_column(result)
    return {**sparsity_column(result), "weight_bytes": result.extra.get("weight_bytes"),
            "keras3_p50_b32_ms": result.extra.get("keras3_p50_b32_ms")}


class PretrainedTable(Table):
    """The report table, where a pretrained teacher's ``size_bytes`` are its weights' bytes (and its
    ``gzip_bytes`` those of its checkpoint folder)."""

    def row(self, result):
        row = super().row(result)
        if result.format == FORMAT:
            row["size_bytes"] = int(result.extra["weight_bytes"])
        return row


class PretrainedVsFinal(TeacherVsFinal):
    """Summary: the teacher (float32 TFLite, or a pretrained Keras 3 teacher's weights) vs the int8 student."""

    def figures(self, context, rows):
        by = {(r["name"], r["format"]): r for r in rows or ()}
        if ("teacher", FORMAT) not in by or (self.final, "tflite") not in by:
            return super().figures(context, rows)
        renamed = [dict(r, format="savedmodel") if (r["name"], r["format"]) == ("teacher", FORMAT) else r
                   for r in rows]
        figures = super().figures(context, renamed)
        figures["baseline_format"] = "Keras 3 pretrained checkpoint: no float32 file, its size is its weights'"
        return figures
