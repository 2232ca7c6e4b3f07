"""A table's schema: every column's kind, role, vocabulary, missing-value fill and normalization statistics.

:meth:`Schema.infer` reads them off a DataFrame (see :mod:`tfcompress.data.schema_infer`); the schema is a
plain dataclass the user may print, edit, save and load before training. It turns a DataFrame into model
inputs (:meth:`Schema.encode`: int32 ids, raw float32 numbers), describes those inputs to the model
builders (:meth:`Schema.to_feature_spec`) and writes the one JSON file a phone app needs to do the same
mapping (:meth:`Schema.vocabulary_json`). Id 0 of every vocabulary is "missing or unknown".

Column kinds: ``numeric`` (float, or int with many values), ``categorical`` (strings, booleans, few-valued
ints), ``id`` (users, items, many-valued categories), ``text`` (long strings; not a model input here),
``time`` (dates or epoch seconds; a numeric input of seconds unless it is the time role).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"price": [3.5, None, 5.25, 4.0], "color": ["red", "blue", "red", None],
    ...                    "bought": [True, False, True, False]})
    >>> schema = Schema.infer(df)
    >>> schema.roles_line()
    'label=bought (binary), features: 1 numeric, 1 categorical'
    >>> x, y = schema.encode(df)
    >>> x["color"].tolist(), y.tolist()
    ([1, 2, 1, 0], [1.0, 0.0, 1.0, 0.0])
"""
import json
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd

from .._io import write_json
from ..errors import TFCompressError
from ..objectives import LABEL_OBJECTIVES
from .columns import KINDS, OOV_ID, Column, input_name, value_key
from .schema_infer import infer_fields
from .spec import Feature, FeatureSpec

OBJECTIVES = LABEL_OBJECTIVES


@dataclass
class Schema:
    """The columns of a table, their roles, the label's ``objective`` and ``classes`` (binary: the
    negative and positive value; multiclass: the class names in id order; regression: empty), an optional
    ``label_threshold`` (label = value >= threshold) and the columns ``dropped`` with the reason."""

    columns: list
    label: str = None
    objective: str = None
    classes: list = field(default_factory=list)
    label_threshold: float = None
    user: str = None
    item: str = None
    time: str = None
    text: str = None
    dropped: dict = field(default_factory=dict)

    def __post_init__(self):
        self.columns = [c if isinstance(c, Column) else Column(**c) for c in self.columns]
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise TFCompressError(f"objective {self.objective!r} is not one of {OBJECTIVES}")

    @classmethod
    def infer(cls, frame, **options):
        """The schema of DataFrame ``frame``. Keywords (see :func:`tfcompress.data.schema_infer.infer_fields`):
        ``label``/``user``/``item``/``time``/``text`` name role columns (inferred when None; ``label=False``
        for no label); ``features`` keeps only those columns as features; ``drop`` drops columns; ``kinds``
        forces kinds (``{"zip": "categorical"}``); ``objective`` forces ``binary``/``multiclass``/
        ``regression``; ``label_threshold`` makes a binary label of ``value >= threshold``; ``min_count``:
        rarer values share the OOV id 0; ``max_categories``: ints with more values are numeric.

        Example:
            >>> import pandas as pd
            >>> s = Schema.infer(pd.DataFrame({"x": [1.5, 2.5, 3.5], "y": ["a", "b", "a"]}), label="y")
            >>> s.objective, s.classes
            ('binary', ['a', 'b'])
        """
        return cls(**infer_fields(frame, **options))

    def __getitem__(self, name):
        for c in self.columns:
            if c.name == name:
                return c
        raise TFCompressError(f"the schema has no column {name!r}; it has {[c.name for c in self.columns]}")

    @property
    def inputs(self):
        """The columns that are model inputs, in table order."""
        return [c for c in self.columns if c.is_input]

    def __str__(self):
        head = f"Schema: {self.roles_line()}"
        rows = [c.line() if c.role != "label" else self._label_line(c) for c in self.columns]
        rows += [f"{name:<28} dropped     ({why})" for name, why in self.dropped.items()]
        return "\n".join([head] + rows)

    def _label_line(self, c):
        if self.label_threshold is not None:
            what = f"{self.objective}: value >= {self.label_threshold:g} is positive"
        elif self.objective == "binary":
            what = f"binary: {self.classes[0]!r} -> 0, {self.classes[1]!r} -> 1"
        elif self.objective == "multiclass":
            shown = ", ".join(repr(k) for k in self.classes[:6]) + (", ..." if len(self.classes) > 6 else "")
            what = f"multiclass: {len(self.classes)} classes ({shown})"
        else:
            what = "regression target"
        miss = f", {c.missing} missing" if c.missing else ""
        return f"{c.name:<28} {c.kind:<11} {c.role:<8} {what}{miss}"

    def roles_line(self):
        """One line saying what was assumed: the label and objective, the roles and the features by kind."""
        parts = [f"label={self.label} ({self.objective})" if self.label else "no label"]
        parts += [f"{r}={getattr(self, r)}" for r in ("user", "item", "time", "text") if getattr(self, r)]
        kinds = [c.kind for c in self.columns if c.role == "feature" and c.is_input]
        counts = ", ".join(f"{kinds.count(k)} {k}" for k in KINDS if kinds.count(k))
        line = ", ".join(parts) + f", features: {counts or 'none'}"
        return line + (f", dropped: {', '.join(self.dropped)}" if self.dropped else "")

    def to_dict(self):
        """A JSON-safe dict (:meth:`from_dict` reads it back)."""
        d = asdict(self)
        d["columns"] = [asdict(c) for c in self.columns]
        return d

    @classmethod
    def from_dict(cls, d):
        """The schema of a :meth:`to_dict` dict (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        extra = sorted(set(d) - known)
        if extra:
            raise TFCompressError(f"schema dict has unknown keys {extra}; known: {sorted(known)}")
        return cls(**d)

    def save(self, path):
        """Write the schema as JSON to ``path``; returns the path."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path):
        """Read a schema written by :meth:`save`."""
        try:
            with open(path, encoding="utf-8") as f:
                return cls.from_dict(json.load(f))
        except (OSError, ValueError) as e:
            raise TFCompressError(f"cannot read a schema from {path!r}: {e}") from None

    def to_feature_spec(self):
        """The :class:`~tfcompress.data.FeatureSpec` of the model inputs (ids: ``vocab_size`` = vocabulary
        + 1 for the OOV id; numbers: their fill, mean and std) for the model builders."""
        feats = []
        for c in self.inputs:
            group = c.role if c.role in ("user", "item") else "context"
            if c.is_ids:
                feats.append(Feature(c.input, "categorical", vocab_size=len(c.vocabulary) + 1, group=group))
            else:
                feats.append(Feature(c.input, "numeric", group=group, mean=c.mean, std=c.std, fill=c.fill))
        if not feats:
            raise TFCompressError("the schema has no model inputs: keep at least one numeric, categorical or "
                                  "id column (see schema.dropped)")
        label = input_name(self.label) if self.label else "label"
        k = len(self.classes) if self.objective == "multiclass" else 1
        return FeatureSpec(feats, label=label, objective=self.objective or "binary", num_classes=k,
                           metadata={"source": "schema"})

    def encode(self, frame):
        """``(inputs, labels)``: a dict input name -> array (int32 ids, raw float32 numbers with NaN kept
        for the model's fill) of ``frame``'s rows, and the labels (None when ``frame`` has no label
        column). Unknown values and missing cells become id 0; missing input columns are an error."""
        missing = [c.name for c in self.inputs if c.name not in frame.columns]
        if missing:
            raise TFCompressError(f"the table lacks columns {missing} the schema needs; it has "
                                  f"{list(frame.columns)}")
        x = {c.input: c.ids(frame[c.name]) if c.is_ids else c.numbers(frame[c.name]) for c in self.inputs}
        has_label = self.label is not None and self.label in frame.columns
        return x, (self.encode_labels(frame[self.label]) if has_label else None)

    def encode_frame(self, frame):
        """:meth:`encode` as a DataFrame (columns: the input names, and the spec's label when ``frame`` has
        the label), which :func:`tfcompress.data.to_dataset` reads with :meth:`to_feature_spec`."""
        x, y = self.encode(frame)
        out = pd.DataFrame(x)
        if y is not None:
            out[self.to_feature_spec().label] = y
        return out

    def encode_labels(self, values):
        """The label values as float32 (binary 0/1, regression) or int32 class ids (multiclass)."""
        s = pd.Series(values).reset_index(drop=True)
        if self.objective == "regression":
            y = pd.to_numeric(s, errors="coerce")
        elif self.label_threshold is not None:
            num = pd.to_numeric(s, errors="coerce")
            y = (num >= self.label_threshold).astype("float64").where(num.notna())
        else:
            y = s.map(value_key).map({k: i for i, k in enumerate(self.classes)})
        bad = y.isna().to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise TFCompressError(
                f"label {self.label!r} is missing or unknown on {int(bad.sum())} rows (first: row {first}, "
                f"value {s.iloc[first]!r}; known: {self.classes or 'numbers'}): drop those rows first")
        return y.to_numpy().astype("int32" if self.objective == "multiclass" else "float32")

    def vocabulary_json(self, path):
        """Write the JSON a serving app reads to build the model inputs, and return its path:
        ``{"oov_id": 0, "key_format": ..., "columns": {column: {"input", "kind", "vocabulary": {value: id}}
        or {"input", "kind", "fill", "mean", "std"}}, "label": ...}``."""
        cols = {}
        for c in self.inputs:
            entry = {"input": c.input, "kind": c.kind}
            if c.is_ids:
                entry["vocabulary"] = {k: i + 1 for i, k in enumerate(c.vocabulary)}
            else:
                entry.update(fill=c.fill, mean=c.mean, std=c.std, low=c.low, high=c.high)
            cols[c.name] = entry
        doc = {"oov_id": OOV_ID, "key_format": value_key.__doc__.split(":", 1)[1].split("\n\n")[0].strip(),
               "columns": cols, "label": self.label, "objective": self.objective, "classes": self.classes}
        return write_json(path, doc)
