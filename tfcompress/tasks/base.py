"""What a task (CTR ranking, review text, product images, ...) supplies to the pipeline.

A :class:`Task` knows its data, its teacher and student builders, its loss and its quality metric; the
:class:`~tfcompress.pipeline.Pipeline` stages (teacher, distill, prune, QAT, export, report) are the same
for every task.

Example:
    >>> from tfcompress.tasks import get_task
    >>> get_task("ctr").metric
    'auc'
"""
import inspect
from dataclasses import dataclass, field

import numpy as np

from .._keras import keras
from ..errors import TFCompressError


@dataclass
class TaskData:
    """The datasets and held-out arrays a pipeline run uses (the same test split for every stage)."""

    train_ds: object
    val_ds: object
    test_inputs: object
    test_labels: np.ndarray
    calibration_inputs: object
    latency_inputs: object
    steps_per_epoch: int
    description: str
    metadata: dict = field(default_factory=dict)


class Task:
    """Base class: subclasses set ``name``/``output``/``metric`` and implement ``load`` and the builders."""

    name = "task"
    output = "binary"       # "binary" (one logit) or "multiclass" (class logits)
    metric = "auc"          # the report's quality column: "auc" or "accuracy"
    teacher_builder = None  # functions (data, **kwargs) -> keras.Model; see build_teacher/build_student
    student_builder = None
    data_args = ()          # builder arguments the task fills in from the data (not user options)

    # --- defaults --------------------------------------------------------------------------------------
    def defaults(self, quick):
        """RunConfig field values for this task (full or quick run)."""
        raise NotImplementedError

    def teacher_kwargs(self, quick):
        return {}

    def student_kwargs(self, quick):
        return {}

    # --- data and models -------------------------------------------------------------------------------
    def load(self, config):
        """Return a :class:`TaskData` for ``config`` (a resolved RunConfig)."""
        raise NotImplementedError

    def build_teacher(self, data, **kwargs):
        return self._build(type(self).teacher_builder, "teacher", data, kwargs)

    def build_student(self, data, **kwargs):
        return self._build(type(self).student_builder, "student", data, kwargs)

    def model_args(self, data):
        """Positional/keyword arguments every builder of this task needs from the data."""
        return {}

    def _build(self, builder, role, data, kwargs):
        check_builder_kwargs(builder, kwargs, f"{self.name} {role}", exclude=self.data_args)
        return builder(**self.model_args(data), **kwargs)

    def check_options(self, teacher, student):
        """Raise a clear error for model options the builders don't take."""
        check_builder_kwargs(type(self).teacher_builder, teacher, f"{self.name} teacher", exclude=self.data_args)
        check_builder_kwargs(type(self).student_builder, student, f"{self.name} student", exclude=self.data_args)

    def write_assets(self, data, folder):
        """Write what the app needs beside the model (e.g. a tokenizer); return ``{name: path}``."""
        return {}

    # --- training and evaluation -----------------------------------------------------------------------
    def loss(self):
        if self.output == "binary":
            return keras.losses.BinaryCrossentropy(from_logits=True)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def keras_metrics(self):
        if self.metric == "auc":
            return [keras.metrics.AUC(from_logits=True, name="auc")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    @property
    def monitor(self):
        return f"val_{self.metric}"

    def evaluate(self, logits, labels):
        """Quality of ``logits`` against ``labels``: ``{metric: ..., "logloss": ...}``."""
        from ..bench import metrics

        z = np.asarray(logits, np.float64)
        y = np.asarray(labels).reshape(-1)
        if self.output == "binary":
            p = np.clip(1.0 / (1.0 + np.exp(-z.reshape(-1))), 1e-7, 1 - 1e-7)
            return {"auc": metrics.auc(y, p), "logloss": metrics.logloss(y, p)}
        z = z - z.max(-1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
        return {"accuracy": metrics.accuracy(y, p), "logloss": metrics.logloss(y, np.clip(p, 1e-7, 1.0))}


def check_builder_kwargs(builder, kwargs, what, exclude=()):
    """Raise a clear error if ``kwargs`` has keys ``builder`` does not take (``exclude``: filled by the task)."""
    params = inspect.signature(builder).parameters
    known = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
             and n not in exclude and n != "name"]
    bad = sorted(set(kwargs) - set(known))
    if bad:
        raise TFCompressError(f"unknown {what} option(s) {bad}; known: {known}")
