"""The compression stages of the standard recipe: ``prune`` (magnitude pruning, fine-tuned by distillation)
and ``qat`` (quantization-aware training, sparsity-preserving after pruning).

Both start from the latest student of the run (:func:`latest_student`).

Example:
    >>> PruneStage().requires
    (('distill', 'baseline'),)
"""
import time

from .base import Stage
from .training import BaselineStage, DistillStage, fit_student, record_keras

_STUDENT = ((DistillStage.name, BaselineStage.name),)


class PruneStage(Stage):
    """``prune``: tfmot magnitude pruning of the student to ``target_sparsity`` (PolynomialDecay with a
    frequency derived from the step count), fine-tuned by distillation, then stripped."""

    name = "prune"
    result = "student_pruned"
    resumable = True  # the stripped model has the student's architecture

    def rebuild(self, context, result):
        return context.task.build_student(context.data, **context.config.student)
    requires = _STUDENT
    needs = "a student"

    def run(self, context):
        from .. import prune

        started = time.perf_counter()
        cfg = context.config
        source = latest_student(context)
        total = cfg.prune_epochs * context.data.steps_per_epoch
        pruned = prune.prune_low_magnitude(source.model, cfg.target_sparsity, total_steps=total)
        fit_student(context, pruned, cfg.prune_epochs, callbacks=prune.pruning_callbacks(),
                    lr=cfg.student_learning_rate / 3)
        result = record_keras(context, self.result, prune.strip_pruning(pruned), started,
                              f"pruned to {cfg.target_sparsity:.0%} over {total} steps")
        result.extra["pruned_from"] = source.name
        return result


class QATStage(Stage):
    """``qat``: quantization-aware training of the latest student (tfmot collaborative optimization:
    sparsity-preserving when it was pruned)."""

    name = "qat"
    result = "student_qat"
    requires = _STUDENT
    needs = "a student"

    def run(self, context):
        from ..quantize import quantize_aware

        started = time.perf_counter()
        cfg = context.config
        source = latest_student(context)
        preserve = "sparsity" if source.name == PruneStage.result else None
        model = quantize_aware(source.model, preserve=preserve)
        fit_student(context, model, cfg.qat_epochs, lr=cfg.student_learning_rate / 10)
        result = record_keras(context, self.result, model, started,
                              f"QAT ({'sparsity-preserving' if preserve else 'plain'}) fine-tuned")
        result.extra["scheme"] = preserve or "plain"
        return result


#: the student results of the standard recipe, the most finished first
STUDENT_RESULTS = (QATStage.result, PruneStage.result, DistillStage.result, BaselineStage.result)


def latest_student(context):
    """The most finished Keras student of the run (QAT, else pruned, else distilled, else alone), or None."""
    return context.first(STUDENT_RESULTS)
