"""Evaluation rows for a benchmark: the built-in shop's test split, a DataFrame or a ``.csv``/``.parquet`` file.

:func:`load_data` reads them into a :class:`BenchData` (input arrays, labels and the objective they
imply); :func:`check_data_fits` checks that the rows have every input the models take, with ids inside
their vocabularies.

Example:
    >>> import pandas as pd
    >>> from tfcompress.bench import load_data
    >>> d = load_data(pd.DataFrame({"x": [0.1, 0.2], "y": [1.0, 3.5]}), label="y")
    >>> d.objective, sorted(d.arrays)
    ('regression', ['x'])
"""
import dataclasses
import json
import os

import numpy as np
import pandas as pd

from ..errors import TFCompressError

__all__ = ["BenchData", "load_data", "check_data_fits"]


@dataclasses.dataclass
class BenchData:
    """Evaluation rows: ``arrays`` (dict column -> array, every column of the frame but the label),
    ``labels`` or None, ``objective`` (``"binary"``, ``"multiclass"``, ``"regression"`` or None without
    labels) and a ``description``. ``task`` is a read-only alias of ``objective``.

    Example:
        >>> import pandas as pd
        >>> from tfcompress.bench import load_data
        >>> d = load_data(pd.DataFrame({"x": [0.5, 1.5, 2.5], "label": [0, 1, 1]}))
        >>> d.objective, d.sample(2)["x"].shape
        ('binary', (2,))
    """

    frame: pd.DataFrame
    arrays: dict
    labels: object
    objective: object
    description: str

    @property
    def task(self):
        """The old name of :attr:`objective` (read-only)."""
        return self.objective

    def sample(self, n, seed=0):
        """``n`` real rows (drawn with a fixed seed) as a dict column -> array."""
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self.frame), size=n, replace=len(self.frame) < n)
        return {k: v[idx] for k, v in self.arrays.items()}


def _frame_arrays(frame):
    arrays = {}
    for col in frame.columns:
        values = frame[col].to_numpy()
        if np.issubdtype(values.dtype, np.integer):
            arrays[col] = values.astype(np.int32)
        elif np.issubdtype(values.dtype, np.floating) or values.dtype == bool:
            arrays[col] = values.astype(np.float32)
    return arrays


def _objective_of(labels):
    values = np.unique(labels)
    if np.all(np.isin(values, (0, 1))):
        return "binary"
    if np.issubdtype(labels.dtype, np.integer) or np.all(values == np.round(values)):
        return "multiclass"
    return "regression"


def load_data(data="builtin", *, events=20_000, seed=0, label=None, max_rows=None):
    """Evaluation rows for a benchmark: ``"builtin"`` (the synthetic shop's test split), an
    :class:`~tfcompress.data.EcommerceData`, a DataFrame, or the path of a ``.csv`` / ``.parquet`` file.

    ``label`` names the label column (default ``click`` or ``label`` when present; without one, quality
    is not measured).

    Example:
        >>> d = load_data("builtin", events=2000)
        >>> d.objective, "user_id" in d.arrays
        ('binary', True)
    """
    frame, spec, description = _read_rows(data, events, seed)
    if len(frame) == 0:
        raise TFCompressError("the data has no rows: pass a file with at least one row")
    if max_rows and len(frame) > max_rows:
        frame = frame.iloc[:max_rows].reset_index(drop=True)
    if label is None:
        label = spec.label if spec is not None else next((c for c in ("click", "label") if c in frame.columns), None)
    elif label not in frame.columns:
        raise TFCompressError(f"label column {label!r} is not in the data (columns: {list(frame.columns)})")
    labels = objective = None
    if label is not None and label in frame.columns:
        labels = frame[label].to_numpy()
        objective = spec.objective if spec is not None else _objective_of(labels)
        labels = labels.astype(np.int32 if objective == "multiclass" else np.float64)
    arrays = _frame_arrays(frame.drop(columns=[label]) if label in frame.columns else frame)
    return BenchData(frame, arrays, labels, objective, description)


def _read_rows(data, events, seed):
    """``(frame, spec or None, description)`` of the rows ``data`` names (see :func:`load_data`)."""
    if isinstance(data, str) and data == "builtin":
        from ..data import make_ecommerce

        data = make_ecommerce(events, seed)
    if hasattr(data, "split") and hasattr(data, "spec"):
        description = f"built-in synthetic shop ({len(data.events):,} events, seed {data.seed}), test split"
        return data.split()[2], data.spec, description
    if isinstance(data, pd.DataFrame):
        return data.reset_index(drop=True), None, f"DataFrame ({len(data):,} rows)"
    if not isinstance(data, (str, os.PathLike)):
        raise TFCompressError(f"data must be 'builtin', a DataFrame or a .csv/.parquet path, got "
                              f"{type(data).__name__}")
    path = os.fspath(data)
    if not os.path.isfile(path):
        raise TFCompressError(f"data file {path!r} does not exist: pass builtin, a .csv or a .parquet file")
    if not path.endswith((".parquet", ".csv")):
        raise TFCompressError(f"data file {path!r} is neither .csv nor .parquet: convert it first")
    try:
        frame = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise TFCompressError(f"cannot read data file {path!r} ({first})") from None
    return frame, None, f"{os.path.basename(path)} ({len(frame):,} rows)"


def check_data_fits(models, data):
    """Raise a :class:`~tfcompress.errors.TFCompressError` naming the model inputs the data lacks, or the
    ids outside a model's vocabulary (read from a ``.tflite`` file's sidecar).

    Example:
        >>> import pandas as pd
        >>> from tfcompress.bench import BenchModel, load_data
        >>> m = BenchModel("m", "keras", "m.keras", None, {"x": "float32", "z": "float32"})
        >>> check_data_fits([m], load_data(pd.DataFrame({"x": [1.0], "label": [1]})))
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: the data lacks columns ['z'] that the models take as inputs (it has ['x']): pass data with these columns
    """
    needed = sorted(set().union(*(m.inputs for m in models)))
    for name in needed:
        _check_column(data, name, any("int" in str(m.inputs.get(name, "")) for m in models))
    missing = [n for n in needed if n not in data.arrays]
    if missing:
        have = sorted(data.arrays)
        raise TFCompressError(f"the data lacks columns {missing} that the models take as inputs "
                              f"(it has {have}): pass data with these columns")
    for m in models:
        for name, vocab in _vocab_sizes(m).items():
            values = data.arrays.get(name)
            if values is not None and len(values) and (values.min() < 0 or values.max() >= vocab):
                raise TFCompressError(f"data column {name!r} has ids in [{values.min()}, {values.max()}] but model "
                                      f"{m.name} knows [0, {vocab}): use the data the model was trained on "
                                      "(for the built-in shop: the same --events and --seed)")


def _check_column(data, name, ids):
    """One clear error for a model input column that holds text (not numbers), or NaN where ids belong."""
    if name not in data.frame.columns:
        return
    column = data.frame[name]
    if name not in data.arrays:  # read as text: some value is not a number
        numbers = pd.to_numeric(column, errors="coerce")
        rows = np.flatnonzero(numbers.isna() & column.notna())
        if len(rows):
            raise TFCompressError(f"data column {name!r} holds {column.iloc[rows[0]]!r} (row {rows[0]}), not a "
                                  "number: the models take numbers there; fix or drop such rows")
        return
    rows = np.flatnonzero(column.isna().to_numpy())
    if ids and len(rows):
        raise TFCompressError(f"data column {name!r} holds NaN (empty) ids in {len(rows)} row(s), first row "
                              f"{rows[0]}: the models take whole-number ids there; fill or drop those rows")


def _vocab_sizes(m):
    """name -> vocabulary size of categorical inputs, from a .tflite sidecar's feature_spec or Keras embeddings."""
    if m.kind == "tflite":
        sidecar = os.path.splitext(m.path)[0] + ".json"
        try:
            with open(sidecar) as f:
                spec = json.load(f).get("feature_spec") or {}
        except (OSError, ValueError):
            return {}
        return {f["name"]: int(f["vocab_size"]) for f in spec.get("features", [])
                if f.get("kind") == "categorical" and f.get("vocab_size")}
    return {}
