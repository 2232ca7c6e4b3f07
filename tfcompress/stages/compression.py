"""The compression stages of the standard recipe: ``prune`` (structured pruning of whole units to
``structured_share``, low-rank factorization keeping ``lowrank_energy``, magnitude pruning to
``target_sparsity``, each when set, then fine-tuned by distillation) and ``qat`` (quantization-aware
training, sparsity-preserving after pruning).

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
    """``prune``: shrink the student (``structured_share`` of its Dense/Conv2D units removed by
    :func:`tfcompress.prune.prune_units`, then its dense kernels factorized keeping ``lowrank_energy`` of
    their spectral energy by :func:`tfcompress.prune.factorize`, each when set), then tfmot magnitude
    pruning to ``target_sparsity`` (PolynomialDecay with a frequency derived from the step count; none at
    0), fine-tuned by distillation, then stripped."""

    name = "prune"
    result = "student_pruned"
    resumable = True  # the stripped model has the student's architecture (unless shrunk: then rerun)

    def rebuild(self, context, result):
        cfg = context.config
        if cfg.structured_share is not None or cfg.lowrank_energy is not None:
            return None  # a shrunk architecture: rerun the stage
        return context.task.build_student(context.data, **cfg.student)
    requires = _STUDENT
    needs = "a student"

    def run(self, context):
        from .. import prune

        started = time.perf_counter()
        cfg = context.config
        source = latest_student(context)
        model, notes = shrink(source.model, cfg.structured_share, cfg.lowrank_energy)
        total = cfg.prune_epochs * context.data.steps_per_epoch
        callbacks = []
        if cfg.target_sparsity > 0:
            model = prune.prune_low_magnitude(model, cfg.target_sparsity, total_steps=total)
            callbacks = prune.pruning_callbacks()
            notes.append(f"pruned to {cfg.target_sparsity:.0%} over {total} steps")
        fit_student(context, model, cfg.prune_epochs, callbacks=callbacks, lr=cfg.student_learning_rate / 3)
        if cfg.target_sparsity > 0:
            model = prune.strip_pruning(model)
        result = record_keras(context, self.result, model, started, "; ".join(notes) or "fine-tuned")
        result.extra["pruned_from"] = source.name
        return result


def shrink(model, structured_share=None, lowrank_energy=None):
    """``(model, notes)``: ``model`` with ``structured_share`` of its units removed (structured pruning)
    and its dense kernels factorized keeping ``lowrank_energy`` of their energy, each when not None (the
    model itself when both are None); ``notes`` says what was done.

    Example:
        >>> from tfcompress import keras
        >>> x = keras.Input((16,), name="x")
        >>> h = keras.layers.Dense(32, activation="relu", name="h")(x)
        >>> m = keras.Model(x, keras.layers.Dense(1, name="out")(h))
        >>> small, notes = shrink(m, structured_share=0.5)
        >>> small.count_params() < m.count_params(), notes
        (True, ['50% of units removed (577 -> 289 params)'])
    """
    from ..prune import factorize, prune_units

    notes = []
    if structured_share is not None:
        before = model.count_params()
        model, _ = prune_units(model, structured_share)
        notes.append(f"{structured_share:.0%} of units removed ({before:,} -> {model.count_params():,} params)")
    if lowrank_energy is not None:
        before = model.count_params()
        model, _ = factorize(model, energy=lowrank_energy, include_embeddings=False)
        notes.append(f"low-rank at {lowrank_energy:.0%} energy ({before:,} -> {model.count_params():,} params)")
    return model, notes


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
