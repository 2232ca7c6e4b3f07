"""What a task (CTR ranking, review text, product images, recommendation) declares for the pipeline.

A :class:`Task` is a recipe: its data (``load`` returns its :class:`TaskData` class), its teacher and
student builders, its loss and quality metric, and, as plain attributes with defaults here, its stage list
(``stages``, :class:`~tfcompress.stages.Stage` objects), how its results are timed (``latency``) and tabled
(``table``), its report sections (``report_sections``) and its data check (``check_data``).
:class:`~tfcompress.pipeline.Pipeline` runs any task the same way.

Example:
    >>> from tfcompress.tasks import get_task
    >>> task = get_task("ctr")
    >>> task.metric, task.objective, [s.name for s in task.stages][:2]
    ('auc', 'binary', ['teacher', 'baseline'])
"""
import dataclasses
import inspect
import warnings
from dataclasses import dataclass

import numpy as np

from .._keras import keras
from ..errors import TFCompressError
from ..stages import (STANDARD_STAGES, DistillationVerdict, KerasVsTFLite, Latency, Table, TeacherVsFinal,
                      is_jsonable)

#: quality figures where lower is better (the rest, e.g. auc and accuracy, are higher-is-better)
LOWER_IS_BETTER = ("rmse", "mae", "logloss", "mse")


@dataclass
class TaskData:
    """The datasets and held-out arrays a run uses (the same test split for every stage). A task's data
    class adds its own typed fields (e.g. the feature spec) to these.

    Example:
        >>> d = TaskData(None, None, {}, np.zeros(2), {}, {}, 1, "two rows")
        >>> d.sidecar(), d.metadata
        ({}, {})
    """

    train_ds: object
    val_ds: object
    test_inputs: object
    test_labels: np.ndarray
    calibration_inputs: object
    latency_inputs: object
    steps_per_epoch: int
    description: str

    @property
    def metadata(self):
        """The task's own fields as a dict (``{name: value}``), as older code read them."""
        base = {f.name for f in dataclasses.fields(TaskData)}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in base}

    def validation_arrays(self):
        """``(inputs, labels)`` of the validation split as arrays (the batches of ``val_ds`` joined: a dict
        of arrays, or one array, as the models take them), or None without ``val_ds``; computed once.

        Example:
            >>> import tensorflow as tf
            >>> ds = tf.data.Dataset.from_tensor_slices(({"x": np.arange(5.0)}, np.arange(5))).batch(2)
            >>> x, y = TaskData(None, ds, {}, np.zeros(2), {}, {}, 1, "").validation_arrays()
            >>> x["x"].tolist(), y.tolist()
            ([0.0, 1.0, 2.0, 3.0, 4.0], [0, 1, 2, 3, 4])
        """
        if self.val_ds is None:
            return None
        if "_validation" not in self.__dict__:
            xs, ys = [], []
            for x, y in self.val_ds:
                xs.append(x)
                ys.append(np.asarray(y))
            if isinstance(xs[0], dict):
                inputs = {k: np.concatenate([np.asarray(x[k]) for x in xs]) for k in xs[0]}
            else:
                inputs = np.concatenate([np.asarray(x) for x in xs])
            self.__dict__["_validation"] = (inputs, np.concatenate(ys).reshape(-1))
        return self.__dict__["_validation"]

    def sidecar(self):
        """The facts written into each ``.tflite`` file's sidecar JSON: the task's own fields that are set
        and JSON-able (e.g. the feature spec as a dict, the class names)."""
        return {k: v for k, v in self.metadata.items() if v is not None and is_jsonable(v)}


class Task:
    """Base class: subclasses set ``name``/``objective``/``metric`` and the builders, and implement
    ``defaults`` and ``load``; the other attributes have defaults here (the standard recipe)."""

    name = "task"
    objective = "binary"    # what the model outputs: "binary" (one logit), "multiclass" (class logits) or
    #                         "regression" (one value)
    metric = "auc"          # the report's quality column: "auc", "accuracy" or "rmse"
    teacher_builder = None  # functions (data, **kwargs) -> keras.Model; see build_teacher/build_student
    student_builder = None
    data_args = ()          # builder arguments the task fills in from the data (not user options)
    data_class = TaskData   # what load() returns
    int8_io = True          # the int8 file's float inputs/outputs become int8 (False: raw float numbers in)
    stages = STANDARD_STAGES
    latency = Latency()
    table = Table()
    report_sections = (TeacherVsFinal(), DistillationVerdict(), KerasVsTFLite())

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("output"), str):  # a subclass written for the old attribute name
            warnings.warn(f"{cls.__name__}.output is deprecated: set objective = {cls.output!r}",
                          DeprecationWarning, stacklevel=2)
            cls.objective = cls.__dict__["output"]
            del cls.output

    @property
    def higher_is_better(self):
        """Whether a larger :attr:`metric` is better (``rmse``, ``mae``, ``logloss``: lower is better).

        Example:
            >>> from tfcompress.tasks import get_task
            >>> get_task("ctr").higher_is_better, get_task("ctr").metric_mode
            (True, 'max')
        """
        return self.metric not in LOWER_IS_BETTER

    @property
    def metric_mode(self):
        """``"max"`` or ``"min"``: how early stopping and the report compare :attr:`metric`."""
        return "max" if self.higher_is_better else "min"

    @property
    def output(self):
        """Deprecated name of :attr:`objective`."""
        return self.objective

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"

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
        """Return this task's :attr:`data_class` for ``config`` (a resolved RunConfig)."""
        raise NotImplementedError

    def check_data(self, data):
        """Raise one clear error when ``--data`` (``data``) is unusable, before anything is written."""

    def resolve_data(self, config):
        """Called once by ``RunConfig.validate`` with the filled config: check the data and the config's data
        options (one clear error, before anything is written) and return ``{field: value}`` for config fields
        the data decides (e.g. the split used). The default checks ``config.data`` with :meth:`check_data`."""
        self.check_data(config.data)
        return {}

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
        if self.objective == "binary":
            return keras.losses.BinaryCrossentropy(from_logits=True)
        if self.objective == "regression":
            return keras.losses.MeanSquaredError()
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def keras_metrics(self):
        if self.metric == "auc":
            return [keras.metrics.AUC(from_logits=True, name="auc")]
        if self.metric == "rmse":
            return [keras.metrics.RootMeanSquaredError(name="rmse")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    @property
    def monitor(self):
        return f"val_{self.metric}"

    def evaluate(self, logits, labels):
        """Quality of ``logits`` against ``labels``: ``{metric: ..., "logloss": ...}``."""
        from ..bench import metrics

        z = np.asarray(logits, np.float64)
        y = np.asarray(labels).reshape(-1)
        if self.objective == "binary":
            p = np.clip(1.0 / (1.0 + np.exp(-z.reshape(-1))), 1e-7, 1 - 1e-7)
            return {"auc": metrics.auc(y, p), "logloss": metrics.logloss(y, p)}
        if self.objective == "regression":
            pred = z.reshape(-1)
            return {"rmse": metrics.rmse(y, pred), "mae": float(np.mean(np.abs(pred - y.astype(np.float64))))}
        z = z - z.max(-1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
        return {"accuracy": metrics.accuracy(y, p), "logloss": metrics.logloss(y, np.clip(p, 1e-7, 1.0))}


def check_builder_kwargs(builder, kwargs, what, exclude=()):
    """Raise a clear error if ``kwargs`` has keys ``builder`` does not take (``exclude``: filled by the task).

    Example:
        >>> def build(spec, width=8): ...
        >>> check_builder_kwargs(build, {"depth": 2}, "toy student", exclude=("spec",))
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: unknown toy student option(s) ['depth']; known: ['width']
    """
    params = inspect.signature(builder).parameters
    known = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
             and n not in exclude and n != "name"]
    bad = sorted(set(kwargs) - set(known))
    if bad:
        raise TFCompressError(f"unknown {what} option(s) {bad}; known: {known}")
