"""The training stages of the standard recipe: ``teacher``, ``baseline`` (the student alone) and ``distill``.

Each trains a Keras model of the task (:mod:`tfcompress.tasks`), evaluates it on the test split, writes
a SavedModel and records a :class:`~tfcompress.stages.StageResult`.

Example:
    >>> TeacherStage().name, DistillStage().requires
    ('teacher', ('teacher',))
"""
import time

from .._keras import keras
from ..callbacks import EarlyStoppingOnDisk
from ..errors import TFCompressError
from ..optimizers import adam_for
from .base import Stage, StageResult
from .pretrained_teacher import (TEST_LOGITS, check_pretrained_options, fit_pretrained_teacher,
                                 init_student_embeddings, offline_datasets, pretrained_folder)
from .teacher_source import detect_output, load_teacher, logits_model, student_share, teacher_cache

#: the ``extra`` key of the teacher result holding the user's teacher
OWN_TEACHER = "own_teacher"
#: the note on the teacher row when the user gave the teacher
OWN_TEACHER_NOTE = "your teacher, not trained here"


def early_stopping(task):
    """Stop when the task's validation metric stops improving; keep the best weights (on disk, the student's
    only when distilling: :class:`~tfcompress.callbacks.EarlyStoppingOnDisk`)."""
    mode = getattr(task, "metric_mode", "max")  # "min" for rmse
    return EarlyStoppingOnDisk(task.monitor, mode=mode, patience=1)


def record_keras(context, name, model, started, note):
    """Evaluate ``model`` on the test split, save it as a SavedModel, record and return its result."""
    from ..bench import size
    from ..export import saved_model

    data, task = context.data, context.task
    logits = model.predict(data.test_inputs, batch_size=8192, verbose=0)
    figures = task.evaluate(logits, data.test_labels)
    path = saved_model(model, context.path(context.config.savedmodels_dir, name))
    result = StageResult(name=name, format="keras", model=model, path=path, params=size.count_params(model),
                         sparsity=size.keras_sparsity(model), quality=figures, extra={TEST_LOGITS: logits})
    return _record(context, result, started, note)


def _record(context, result, started, note):
    context.record(result)
    metric = context.task.metric
    context.progress(result.name, f"{note}; test {metric} {result.quality[metric]:.4f}, {result.params:,} params",
                     started)
    return result


def teacher_model(context):
    """The trained teacher of the run (a Keras model), or None."""
    found = context.find(TeacherStage.result)
    return found.model if found is not None else None


def jit_compile_for(config):
    """Whether the train steps are XLA-compiled (``config.jit_compile``: True, False, or None for auto,
    which is off for now).

    Example:
        >>> from types import SimpleNamespace
        >>> jit_compile_for(SimpleNamespace(jit_compile=None)), jit_compile_for(SimpleNamespace(jit_compile=True))
        (False, True)
    """
    return bool(getattr(config, "jit_compile", None))


def fit_on_labels(context, model, epochs, lr, callbacks=()):
    """Compile ``model`` with the task's loss and metrics and fit it on the training split."""
    task, data = context.task, context.data
    model.compile(optimizer=adam_for(model, lr), loss=task.loss(), metrics=task.keras_metrics(),
                  jit_compile=jit_compile_for(context.config))
    return model.fit(data.train_ds, epochs=epochs, validation_data=data.val_ds, callbacks=list(callbacks),
                     verbose=context.fit_verbose)


def release_optimizer(context, model):
    """Recompile the trained ``model`` with a stateless optimizer, so that its Adam moments (two floats per
    weight: 172 MB for the 10^7-event shop's teacher) are freed; it still predicts, evaluates and saves.

    Example:
        >>> from types import SimpleNamespace
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> m.compile("adam", "mse")
        >>> task = SimpleNamespace(loss=lambda: "mse", keras_metrics=lambda: [])
        >>> release_optimizer(SimpleNamespace(task=task), m)
        >>> type(m.optimizer).__name__
        'SGD'
    """
    model.compile(optimizer=keras.optimizers.SGD(), loss=context.task.loss(), metrics=context.task.keras_metrics())


def fit_student(context, student, epochs, callbacks=(), lr=None):
    """Fit ``student`` by distillation from the run's teacher when there is one, else on labels."""
    from ..distill import Distiller

    from ..distill import OfflineDistiller, cached_dataset

    cfg, task, data = context.config, context.task, context.data
    lr = lr or cfg.student_learning_rate
    teacher, own, pretrained = teacher_model(context), own_teacher(context), offline_datasets(context)
    if teacher is None and pretrained is None and (own is None or own.in_graph):
        return fit_on_labels(context, student, epochs, lr, callbacks)
    kwargs = dict(alpha=cfg.alpha, temperature=cfg.temperature, objective=task.objective)
    if teacher is not None:
        model, train, val = Distiller(student, teacher, **kwargs), data.train_ds, data.val_ds
    elif pretrained is not None:  # a pretrained Keras 3 teacher: its cached logits, transfer rows included
        model, (train, val) = OfflineDistiller(student, **kwargs), pretrained
    else:  # a teacher tf_keras cannot run in its graph: distilled offline from its cached logits
        cache = teacher_cache(own, data, cfg.batch_size)
        model = OfflineDistiller(student, **kwargs)
        train = cached_dataset(cache["train"], batch_size=cfg.batch_size, shuffle=True, seed=cfg.seed)
        val = cached_dataset(cache["val"], batch_size=4096)
    model.compile(optimizer=adam_for(student, lr), metrics=task.keras_metrics(), jit_compile=jit_compile_for(cfg))
    return model.fit(train, epochs=epochs, validation_data=val, callbacks=list(callbacks), verbose=context.fit_verbose)


def own_teacher(context):
    """The :class:`~tfcompress.stages.teacher_source.OwnTeacher` the user gave the run, or None."""
    found = context.find(TeacherStage.result, None)
    return found.extra.get(OWN_TEACHER) if found is not None else None


def build_student(context):
    """The run's student, untrained: built by the task for the data, or (``--student from-teacher:SHARE``)
    by structured width pruning of the run's tf_keras teacher to that share of its parameters."""
    cfg = context.config
    share = student_share(cfg.student_init)
    if share is None:
        return init_student_embeddings(context, context.task.build_student(context.data, **cfg.student))
    from ..prune.structured import prune_to_share

    teacher = teacher_model(context)
    if teacher is None:
        own = own_teacher(context)
        kind = f"a {own.kind} model" if own is not None else "missing"
        raise TFCompressError(f"--student {cfg.student_init} prunes the teacher, which must be a tf_keras "
                              f"functional model; the teacher is {kind}: drop --student or give a tf_keras teacher")
    if share >= 1:
        from ..models.utils import copy_model

        return copy_model(teacher)
    try:
        student, _ = prune_to_share(teacher, share)
    except TFCompressError as e:
        raise TFCompressError(f"--student {cfg.student_init}: {e}") from None
    return student


class TeacherStage(Stage):
    """``teacher``: train the task's large teacher on labels, early stopping on the validation metric."""

    name = "teacher"
    result = "teacher"
    resumable = True

    def rebuild(self, context, result):
        if context.config.teacher_model is not None:
            return None  # your teacher: loaded again (cheap), not rebuilt
        return context.task.build_teacher(context.data, **context.config.teacher)

    def run(self, context):
        started = time.perf_counter()
        cfg = context.config
        check_pretrained_options(cfg, context.task.name)
        if pretrained_folder(cfg) is not None:
            return fit_pretrained_teacher(context, started)
        if cfg.teacher_model is not None:
            return self.given(context, started)
        model = context.task.build_teacher(context.data, **cfg.teacher)
        h = fit_on_labels(context, model, cfg.teacher_epochs, cfg.learning_rate, [early_stopping(context.task)])
        release_optimizer(context, model)
        return record_keras(context, self.result, model, started, f"trained {len(h.epoch)} epoch(s)")

    def given(self, context, started):
        """Load, check and evaluate the user's teacher (``config.teacher_model``); no training."""
        from ..bench import size

        cfg, data = context.config, context.data
        own = load_teacher(cfg.teacher_model, cfg.teacher_output)
        own.check_inputs(data.test_inputs)
        sample = {k: v[:256] for k, v in data.test_inputs.items()} if isinstance(data.test_inputs, dict) \
            else data.test_inputs[:256]
        how = "given" if own.given_output else "detected"
        note = f"{OWN_TEACHER_NOTE} ({own.label}, {own.kind}, {detect_output(own, sample)} {how})"
        if own.in_graph:
            result = record_keras(context, self.result, logits_model(own), started, note)
            result.extra.update({OWN_TEACHER: own, "note": OWN_TEACHER_NOTE})
            return result
        logits = own.logits(data.test_inputs)
        params = size.tflite_params(own.path) if own.kind == "tflite" else _saved_model_params(own.path)
        result = StageResult(name=self.result, format="tflite" if own.kind == "tflite" else "savedmodel",
                             model=own.path, path=own.path, params=params,
                             quality=context.task.evaluate(logits, data.test_labels),
                             extra={TEST_LOGITS: logits, OWN_TEACHER: own, "note": OWN_TEACHER_NOTE})
        return _record(context, result, started, note + "; distilled offline from its cached outputs")


def _saved_model_params(path):
    from .._keras import tf

    return int(sum(v.shape.num_elements() for v in tf.saved_model.load(path).variables))


class BaselineStage(Stage):
    """``baseline``: train the student alone on labels (the "no distillation" reference)."""

    name = "baseline"
    result = "student_alone"
    resumable = True

    def rebuild(self, context, result):
        return build_student(context)

    def run(self, context):
        started = time.perf_counter()
        cfg = context.config
        model = build_student(context)
        h = fit_on_labels(context, model, cfg.student_epochs, cfg.student_learning_rate,
                          [early_stopping(context.task)])
        return _mark(context, record_keras(context, self.result, model, started,
                                           f"student alone, {len(h.epoch)} epoch(s)"))


class DistillStage(Stage):
    """``distill``: train a fresh student with :class:`~tfcompress.distill.Distiller` from the teacher."""

    name = "distill"
    result = "student_distilled"
    resumable = True

    def rebuild(self, context, result):
        return build_student(context)
    requires = (TeacherStage.name,)
    needs = "the model it learns from"

    def run(self, context):
        started = time.perf_counter()
        cfg = context.config
        student = build_student(context)
        h = fit_student(context, student, cfg.student_epochs, callbacks=[early_stopping(context.task)])
        note = f"distilled (alpha {cfg.alpha:g}, T {cfg.temperature:g}), {len(h.epoch)} epoch(s)"
        return _mark(context, record_keras(context, self.result, student, started, note))


def student_init_note(context):
    """``"student from teacher, 25% of its parameters"`` for ``--student from-teacher:0.25``, else None."""
    share = student_share(context.config.student_init)
    return None if share is None else f"student from teacher, {share:.0%} of its parameters"


def _mark(context, result):
    note = student_init_note(context)
    if note:
        result.extra["student_init"] = note
    return result
