"""One column of a :class:`~tfcompress.data.Schema`: its kind, role, vocabulary and statistics, and the
keys and input names every vocabulary and model input uses.

Example:
    >>> c = Column("Color", "categorical", vocabulary=["red", "blue"])
    >>> c.input, c.ids(["blue", "green", None]).tolist()
    ('color', [2, 0, 0])
"""
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import TFCompressError
from .tables import parse_time

KINDS = ("numeric", "categorical", "id", "text", "time")
ROLES = ("feature", "label", "user", "item", "time", "text")
OOV_ID = 0


def value_key(value):
    """The vocabulary key of one cell: None when missing; ``"True"``/``"False"`` for booleans; integers
    (also integral floats such as ``3.0``) without a decimal point; other values as ``str``.

    Example:
        >>> [value_key(v) for v in (3, 3.0, 2.5, True, "red", float("nan"), None)]
        ['3', '3', '2.5', 'True', 'red', None, None]
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return None
        return str(int(value)) if float(value).is_integer() and abs(value) < 2 ** 53 else repr(float(value))
    return str(value)


def input_name(column):
    """A Keras-safe input name for a column: lower case, runs of other characters become ``_``.

    Example:
        >>> input_name("Positive Feedback Count")
        'positive_feedback_count'
    """
    name = re.sub(r"[^0-9a-zA-Z]+", "_", str(column)).strip("_").lower() or "column"
    return f"c_{name}" if name[0].isdigit() else name


@dataclass
class Column:
    """One column: ``kind`` (see the module), ``role``, the model input ``input`` name, the
    ``vocabulary`` (keys, id ``i + 1`` for ``vocabulary[i]``; values seen fewer than ``min_count`` times
    map to id 0), and for numbers the ``fill`` for missing values, ``mean``/``std`` after fill and the
    seen range ``low``/``high``. ``missing``: how many cells were missing."""

    name: str
    kind: str
    role: str = "feature"
    input: str = ""
    dtype: str = ""
    vocabulary: list = field(default_factory=list)
    min_count: int = 1
    fill: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    low: float = 0.0
    high: float = 0.0
    missing: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise TFCompressError(f"column {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.role not in ROLES:
            raise TFCompressError(f"column {self.name!r}: role {self.role!r} is not one of {ROLES}")
        self.input = self.input or input_name(self.name)

    @property
    def is_input(self):
        """Whether the column is a model input (text and the time role are not)."""
        return self.kind != "text" and self.role in ("feature", "user", "item")

    @property
    def is_ids(self):
        return self.kind in ("categorical", "id")

    def ids(self, values):
        """int32 ids of ``values`` (0 for missing or unknown)."""
        lookup = {k: i + 1 for i, k in enumerate(self.vocabulary)}
        keys = pd.Series(values).map(value_key)
        return keys.map(lookup).fillna(OOV_ID).to_numpy().astype("int32")

    def numbers(self, values):
        """float32 raw numbers of ``values`` (times as epoch seconds); NaN where missing or unparsable."""
        s = pd.Series(values)
        if self.kind == "time" or pd.api.types.is_datetime64_any_dtype(s):
            return parse_time(s).to_numpy().astype("float32")
        return pd.to_numeric(s, errors="coerce").to_numpy().astype("float32")

    def line(self):
        """One line of the printed schema."""
        if self.is_ids:
            what = f"{len(self.vocabulary)} values (+OOV id 0, min_count {self.min_count})"
        elif self.kind == "text":
            what = "text"
        else:
            what = f"fill {self.fill:.4g}, mean {self.mean:.4g}, std {self.std:.4g}, range [{self.low:.4g}, {self.high:.4g}]"
        miss = f", {self.missing} missing" if self.missing else ""
        return f"{self.name:<28} {self.kind:<11} {self.role:<8} {what}{miss}"
