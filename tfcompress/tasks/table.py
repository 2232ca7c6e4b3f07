"""The table task: any table with a label (CSV, TSV, Parquet or a pandas DataFrame) → a DCN-v2 teacher and
student built from its :class:`~tfcompress.data.Schema`.

``--data FILE`` is read by :func:`~tfcompress.data.read_table` (``--sep``, ``--no-header``); the column
roles come from the config (``--label``, ``--user``, ``--item``, ``--time``, ``--text``, ``--features``,
``--drop``, ``--label-threshold``) or are inferred, and the first progress line says what was assumed
(:meth:`Schema.roles_line`). The label's objective decides the output and the metric: binary (AUC),
multiclass (accuracy) or regression (RMSE, lower is better). Numbers go into the model raw: missing-value
fill, clipping and normalization are layers inside it (:class:`~tfcompress.models.NumericNormalization`,
statistics from the training split only), so the ``.tflite`` takes raw numbers; strings become ids
through the vocabulary JSON written beside the ``.tflite`` files. The schema is saved as ``schema.json``
in the run folder.

Example:
    >>> import pandas as pd
    >>> from tfcompress.pipeline import RunConfig
    >>> df = pd.DataFrame({"price": [i * 1.5 for i in range(40)], "size": ["S", "M"] * 20,
    ...                    "sold": [i * 0.25 for i in range(40)]})
    >>> cfg = RunConfig(data=df, label="sold", quick=True).validate()
    >>> cfg.task.name, cfg.task.objective, cfg.task.metric, cfg.split
    ('table', 'regression', 'rmse', 'random')
"""
import os
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import TFCompressError
from ..models import ctr_student, ctr_teacher
from .base import Task, TaskData

#: the report's quality metric of each label objective
METRICS = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}
VOCABULARY_FILE = "table_vocabulary.json"
SCHEMA_FILE = "schema.json"


@dataclass
class TableData(TaskData):
    """The table task's data: the splits, the :class:`~tfcompress.data.Schema` (``schema``), its feature
    spec (``spec``; ``feature_spec`` as a dict for the sidecar), the split used and the label's classes."""

    schema: object = None
    spec: object = None
    feature_spec: dict = None
    split: str = None
    objective: str = None
    classes: list = field(default_factory=list)
    target_mean: float = None


class TableTask(Task):
    """Any labelled table: DCN-v2 teacher and student (embedding widths from vocabulary sizes, numbers
    normalized inside the model); AUC, accuracy or RMSE on a held-out split that fits the data."""

    name = "table"
    objective = "binary"
    metric = "auc"
    teacher_builder = staticmethod(ctr_teacher)
    student_builder = staticmethod(ctr_student)
    data_args = ("spec",)
    data_class = TableData
    int8_io = False  # the .tflite takes raw float numbers (NaN for missing): preprocessing is inside it

    def __init__(self):
        self.schema, self.parts, self.notes, self._key = None, None, [], None

    def defaults(self, quick):
        if quick:
            return dict(events=20_000, batch_size=128, teacher_epochs=2, student_epochs=2, prune_epochs=1,
                        qat_epochs=1, learning_rate=3e-3, student_learning_rate=1e-2, calibration_samples=100,
                        latency_runs=30)
        return dict(events=200_000, batch_size=256, teacher_epochs=10, student_epochs=10, prune_epochs=2,
                    qat_epochs=2, learning_rate=1e-3, student_learning_rate=3e-3, calibration_samples=300,
                    latency_runs=300)

    def teacher_kwargs(self, quick):
        return dict(embedding_dim=16, cross_layers=1, hidden=(64, 32)) if quick else {}

    def student_kwargs(self, quick):
        return dict(embedding_dim=4, cross_layers=1, hidden=(16,)) if quick else dict(embedding_dim=4, hidden=(32,))

    def model_args(self, data):
        return {"spec": data.schema}  # a Schema: the builders put its normalization inside the model

    def _build(self, builder, role, data, kwargs):
        """The builder's model; for regression its output bias starts at the training targets' mean."""
        model = super()._build(builder, role, data, kwargs)
        if self.objective == "regression" and data.target_mean is not None:
            model.get_layer("logit").bias.assign([data.target_mean])
        return model

    # --- data ----------------------------------------------------------------------------------------
    def resolve_data(self, config):
        """Read and check the table (one clear error before anything is written), fix the objective and
        metric, print dropped columns as warning lines; returns the split the run will use."""
        from ..data.tables import SPLITS

        if config.data is None:
            raise TFCompressError("the table task needs --data: a CSV, TSV or Parquet file, or a pandas "
                                  "DataFrame (RunConfig(data=frame)), with a label column (--label)")
        if config.split is not None and config.split not in SPLITS:
            raise TFCompressError(f"split {config.split!r} is not one of {SPLITS}")
        self.prepare(config)
        return {"split": self.parts.how}

    def prepare(self, config):
        """The :class:`~tfcompress.data.Schema` of ``config.data`` with the config's roles, and the table's
        split (``self.parts``: :func:`~tfcompress.data.split_table`); cached."""
        from ..data import Schema, read_table, split_table

        key = _data_key(config)
        if self.schema is not None and key == self._key:
            return self.schema
        frame = read_table(config.data, sep=config.sep, header="infer" if config.header is None else config.header)
        options = dict(label=config.label, user=config.user, item=config.item, time=config.time,
                       text=config.text, features=config.features, drop=tuple(config.drop or ()),
                       label_threshold=config.label_threshold)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            schema = Schema.infer(frame, **options)
        if schema.label is None:
            raise TFCompressError(f"no label column found among {list(frame.columns)}: name it with --label "
                                  "(label=) so the table task knows what to predict")
        self.notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        frame = self._rows_with_label(frame, schema)
        for note in self.notes:
            print(f"tfcompress: warning: {note}", file=sys.stderr, flush=True)
        parts = split_table(frame, schema, how=config.split or "auto", seed=config.seed)
        schema = _fitted_on_train(schema, parts.train)
        self.parts, self.schema, self._key = parts, schema, key
        self.objective, self.metric = schema.objective, METRICS[schema.objective]
        return schema

    def _rows_with_label(self, frame, schema):
        missing = frame[schema.label].isna()
        if missing.all() or len(frame) - int(missing.sum()) < 10:
            raise TFCompressError(f"label {schema.label!r} is set on only {int((~missing).sum())} rows: give at "
                                  "least 10 labelled rows")
        if missing.any():
            self.notes.append(f"label {schema.label!r} is missing on {int(missing.sum())} rows: left out")
            frame = frame[~missing].reset_index(drop=True)
        return frame

    def load(self, config):
        from ..data import frame_to_inputs, labels_of, sample_inputs, to_dataset

        schema = self.prepare(config)
        spec, parts = schema.to_feature_spec(), self.parts
        train, val, test = (schema.encode_frame(p) for p in parts[:3])
        schema.save(os.path.join(config.out, SCHEMA_FILE))
        bs = config.batch_size
        return TableData(
            train_ds=to_dataset(train, spec, batch_size=bs, shuffle=True, seed=config.seed),
            val_ds=to_dataset(val, spec, batch_size=4096),
            test_inputs=_filled(frame_to_inputs(test, spec), schema),
            test_labels=labels_of(test, spec),
            calibration_inputs=_filled(sample_inputs(train, spec, config.calibration_samples, seed=config.seed),
                                       schema),
            latency_inputs=_filled(sample_inputs(test, spec, 1, seed=config.seed + 1), schema),
            steps_per_epoch=int(np.ceil(len(train) / bs)),
            description=_description(schema, config.data, parts, labels_of(train, spec)),
            schema=schema, spec=spec, feature_spec=spec.to_dict(), split=parts.how, objective=schema.objective,
            classes=list(schema.classes),
            target_mean=float(labels_of(train, spec).mean()) if schema.objective == "regression" else None,
        )

    def write_assets(self, data, folder):
        """The vocabulary JSON (column → id, and the numbers' fill and statistics) beside the ``.tflite``."""
        return {"vocabulary": data.schema.vocabulary_json(os.path.join(folder, VOCABULARY_FILE))}


def _data_key(config):
    """What the cached schema and split depend on (a DataFrame by identity)."""
    data = config.data
    data = ("frame", id(data)) if not isinstance(data, (str, os.PathLike)) else os.fspath(data)
    fields = ("sep", "header", "label", "user", "item", "time", "text", "features", "drop", "label_threshold",
              "split", "seed")
    return (data,) + tuple(getattr(config, f) for f in fields)


def _fitted_on_train(schema, train):
    """``schema`` (read off the whole table, which the split needs) with the numbers' fill, mean, std and
    range refit on the training rows only, so the validation and test rows do not shift the model's
    normalization. The vocabularies stay those of the whole table: the ids are then exactly what
    ``Schema.infer(frame, ...)`` gives, which a teacher of your own can be trained on (a value seen only
    outside train keeps its id; its embedding row is simply never trained)."""
    from ..data import Schema

    numeric = [c.name for c in schema.inputs if not c.is_ids]
    if not numeric:
        return schema
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a column constant on train keeps its whole-table statistics
        fitted = Schema.infer(train[numeric].reset_index(drop=True), label=False,
                              kinds={n: schema[n].kind for n in numeric})
    stats = {c.name: c for c in fitted.columns}
    for c in schema.columns:
        if c.name in stats:
            f = stats[c.name]
            c.fill, c.mean, c.std, c.low, c.high = f.fill, f.mean, f.std, f.low, f.high
    return schema


def _filled(inputs, schema):
    """``inputs`` with missing numbers replaced by their fill, as the model's preprocessing does: the same
    outputs, and what int8 calibration accepts (it refuses NaN)."""
    out = dict(inputs)
    for c in schema.inputs:
        if not c.is_ids:
            x = out[c.input]
            out[c.input] = np.where(np.isfinite(x), x, np.float32(c.fill)).astype(x.dtype)
    return out


def _source(data):
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return "a DataFrame"
    return os.path.basename(os.fspath(data))


def _description(schema, data, parts, train_labels):
    """The data step's progress line: the roles line first, then rows, split and label."""
    n = sum(len(p) for p in parts[:3])
    if schema.objective == "binary":
        label = f"positive rate {float(np.mean(train_labels)):.1%}"
    elif schema.objective == "multiclass":
        label = f"{len(schema.classes)} classes"
    else:
        label = f"target mean {float(np.mean(train_labels)):.4g}, std {float(np.std(train_labels)):.4g}"
    return (f"{schema.roles_line()} | {n:,} rows from {_source(data)} ({len(parts.train):,} train / "
            f"{len(parts.val):,} validation / {len(parts.test):,} test, {parts.how} split), {label}")
