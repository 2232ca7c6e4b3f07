"""Review and product-title text classification data.

:func:`load_reviews` reads the Women's Clothing E-Commerce Reviews CSV (plain or zipped, from any path)
into texts and integer labels. Label choices:

- ``"recommend"``: the ``Recommended IND`` column (0 = not recommended, 1 = recommended);
- ``"sentiment"``: ``Rating`` >= 4 -> 1 (positive), ``Rating`` <= 2 -> 0 (negative); rating 3 rows are
  dropped as neutral;
- ``"department"``: ``Department Name`` mapped to class ids (sorted names); rows without one are dropped;
- any other column name: its values mapped to class ids (``classes=`` declares the allowed values).

Rows with empty text are dropped; ``data.dropped`` counts every drop. :func:`load_text_table` reads any
table with a text column and a label column (CSV, TSV with or without header, Parquet, a DataFrame) the same
way. :func:`titles_task` gives a product-title -> category task from the built-in synthetic shop, with no
files at all.

Example:
    >>> t = titles_task()
    >>> len(t.texts) == len(t.labels), t.class_names[0]
    (True, 'shirt')
"""
import io
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import TFCompressError
from .paths import find_dataset, missing_data_message
from .synthetic import CATEGORIES, make_ecommerce
from .tables import read_table

REVIEWS_CSV = "Womens Clothing E-Commerce Reviews.csv"
PRESETS = {
    "recommend": ("Recommended IND", ("not recommended", "recommended")),
    "sentiment": ("Rating", ("negative", "positive")),
    "department": ("Department Name", None),
}


@dataclass
class TextData:
    """Texts with integer labels ``0..len(class_names)-1`` (-1: no label, a transfer row); ``frame`` holds
    the kept rows of the source."""

    texts: list
    labels: np.ndarray
    class_names: list
    frame: pd.DataFrame
    dropped: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.texts)

    @property
    def num_classes(self):
        return len(self.class_names)

    def class_counts(self):
        """``{class name: count}`` of the labels."""
        counts = np.bincount(self.labels[self.labels >= 0], minlength=len(self.class_names))
        return dict(zip(self.class_names, counts.tolist()))


def _read_csv(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        pick = [n for n in (REVIEWS_CSV + ".zip", REVIEWS_CSV) if n in names] or \
            [n for n in names if n.endswith((".csv", ".csv.zip"))]
        if not pick:
            raise TFCompressError(f"folder {path!r} has no .csv or .csv.zip file: {missing_data_message('reviews')}")
        path = os.path.join(path, pick[0])
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if n.lower().endswith(".csv") and "__MACOSX" not in n]
                if not members:
                    raise TFCompressError(f"zip {path!r} holds no .csv file: pass a CSV or a zipped CSV")
                with zf.open(members[0]) as f:
                    return pd.read_csv(io.BytesIO(f.read()))
        return pd.read_csv(path)
    except TFCompressError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as e:
        raise TFCompressError(f"cannot read reviews CSV {path!r} ({type(e).__name__}: {e}): check the file") from None


def _need(df, cols):
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise TFCompressError(
            f"reviews data has no column(s) {missing}; available columns: {list(df.columns)}")


def load_reviews(path=None, *, text_column="Review Text", label="recommend", title_column="Title",
                 include_title=False, classes=None):
    """Load review texts and integer labels as :class:`TextData` (see the module doc for ``label``).

    ``path`` is a CSV, a zipped CSV, a folder holding one, or a DataFrame; by default the shared data folder
    is searched (there is no TFDS copy of this dataset). ``include_title=True`` prepends ``title_column``
    to each text. ``classes`` declares the allowed values of a custom label column (in label-id order);
    a value outside them is an error.

    Example:
        >>> df = pd.DataFrame({"Review Text": ["love it", "", "meh", "awful"], "Rating": [5, 4, 3, 1]})
        >>> d = load_reviews(df, label="sentiment")
        >>> d.texts, d.labels.tolist(), d.dropped
        (['love it', 'awful'], [1, 0], {'empty_text': 1, 'neutral_rating': 1})
    """
    df = _reviews_frame(path)
    column, names = PRESETS.get(label, (label, None))
    _need(df, [text_column, column] + ([title_column] if include_title else []))
    if len(df) == 0:
        raise TFCompressError("reviews data has no rows")
    dropped = {}
    df, text = _review_texts(df, text_column, title_column if include_title else None, dropped)
    if label == "sentiment":
        df, text, labels = _sentiment_labels(df, text, df[column], dropped)
    else:
        df, text, labels, declared = _class_labels(df, text, column, label, classes, dropped)
        if names is None:
            names = [str(v) for v in declared]
    if len(labels) == 0:
        raise TFCompressError(f"no rows left after dropping {dropped}: check the text and label columns")
    return TextData(texts=text.tolist(), labels=labels, class_names=list(names),
                    frame=df.reset_index(drop=True), dropped=dropped)


def _reviews_frame(path):
    """A copy of the DataFrame ``path``, or the reviews CSV found from ``path`` (default: the shared folder)."""
    if isinstance(path, pd.DataFrame):
        return path.copy()
    local = find_dataset("reviews", path)
    if local is None:
        raise TFCompressError(missing_data_message("reviews"))
    return _read_csv(local)


def _review_texts(df, text_column, title_column, dropped):
    """The rows with a non-empty text (``title. text`` when ``title_column``) and those texts."""
    text = df[text_column].fillna("").astype(str).str.strip()
    if title_column is not None:
        title = df[title_column].fillna("").astype(str).str.strip()
        text = (title + ". " + text).where((title != "") & (text != ""), title + text)
    empty = text == ""
    if empty.all():
        raise TFCompressError(f"all {len(df)} rows have an empty {text_column!r}: pick the column holding the text")
    dropped["empty_text"] = int(empty.sum())
    return df[~empty], text[~empty]


def _sentiment_labels(df, text, values, dropped):
    """Rating 4-5 → 1, 1-2 → 0, neutral 3 dropped: the kept rows, their texts and labels."""
    rating = pd.to_numeric(values, errors="coerce")
    bad = rating.isna() | ~rating.isin([1, 2, 3, 4, 5])
    if bad.any():
        raise TFCompressError(
            f"Rating must be 1..5, found {sorted(map(str, values[bad].unique()[:5]))}: check the column")
    keep = rating != 3
    dropped["neutral_rating"] = int((~keep).sum())
    df, text, rating = df[keep], text[keep], rating[keep]
    return df, text, (rating >= 4).astype(np.int64).to_numpy()


def _class_labels(df, text, column, label, classes, dropped):
    """Label ids of ``column`` in the declared class order (rows with no label dropped): the kept rows, their
    texts, labels and the declared classes."""
    values = df[column]
    missing = values.isna()
    if missing.any():
        dropped["missing_label"] = int(missing.sum())
        df, text, values = df[~missing], text[~missing], values[~missing]
    if label == "recommend":
        declared = [0, 1]
    elif classes is not None:
        declared = list(classes)
    else:
        declared = sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v))
    outside = ~values.isin(declared)
    if outside.any():
        raise TFCompressError(
            f"label column {column!r} has values {sorted(map(str, values[outside].unique()[:5]))} outside the "
            f"declared classes {declared}: fix the data or pass classes=[...]")
    labels = values.map({v: i for i, v in enumerate(declared)}).astype(np.int64).to_numpy()
    return df, text, labels, declared


def load_text_table(table, *, text=None, label=None, label_threshold=None, sep=None, header="infer",
                    blank_labels="drop"):
    """:class:`TextData` of any table with a text column and a label column: a DataFrame, or a CSV / TSV /
    Parquet file read by :func:`~tfcompress.data.read_table` (``sep``, ``header`` as there; a file without
    header has columns ``column_1, column_2, ...``). ``text`` defaults to the string column with the
    longest texts, ``label`` to the other column (of two), else the label :meth:`Schema.infer
    <tfcompress.data.Schema.infer>` assumes. Labels: 0/1, booleans, yes/no, class names (multi-class,
    in sorted order), or numbers with ``label_threshold`` (``value >= threshold`` is class 1). Rows with
    an empty text are dropped, and so are rows with an empty label (``dropped`` counts them) unless
    ``blank_labels="keep"``: then their label is -1 (transfer rows, which a teacher labels).

    Example:
        >>> df = pd.DataFrame({"sentence": ["a lovely dress", "far too small", "", "great fit"],
        ...                    "ok": ["yes", "no", "yes", "yes"]})
        >>> d = load_text_table(df)
        >>> d.texts, d.labels.tolist(), d.class_names, d.dropped
        (['a lovely dress', 'far too small', 'great fit'], [1, 0, 1], ['no', 'yes'], {'empty_text': 1})
        >>> load_text_table(df.assign(ok=["yes", "no", "yes", None]), blank_labels="keep").labels.tolist()
        [1, 0, -1]
    """
    if blank_labels not in ("drop", "keep"):
        raise TFCompressError(f"blank_labels = {blank_labels!r} must be 'drop' or 'keep'")
    frame = read_table(table, sep=sep, header=header)
    text, label = text_columns(frame, text=text, label=label)
    dropped = {}
    df, texts = _review_texts(frame, text, None, dropped)
    missing = (df[label].isna() | (df[label].astype(str).str.strip() == "")).to_numpy()
    if missing.any() and blank_labels == "drop":
        dropped["missing_label"] = int(missing.sum())
        df, texts, missing = df[~missing], texts[~missing], missing[~missing]
    known, names = _table_labels(df[label][~missing], label, label_threshold)
    labels = np.full(len(df), -1, np.int64)
    labels[~missing] = known
    return TextData(texts=texts.tolist(), labels=labels, class_names=names, frame=df.reset_index(drop=True),
                    dropped=dropped)


def text_columns(frame, *, text=None, label=None):
    """``(text, label)`` column names of a text table (see :func:`load_text_table`); a one-line error
    naming the columns and the flags when one cannot be found.

    Example:
        >>> text_columns(pd.DataFrame({"column_1": ["a long sentence here", "short"], "column_2": [1, 0]}))
        ('column_1', 'column_2')
    """
    cols = list(frame.columns)
    for role, name in (("text", text), ("label", label)):
        if name is not None and name not in cols:
            raise TFCompressError(f"--{role} {name!r}: no such column; the table has {cols}")
    if text is None:
        strings = [c for c in cols if c != label and _holds_strings(frame[c])]
        if not strings:
            raise TFCompressError(f"the table has no text column (columns {cols}): name it with --text COLUMN")
        text = max(strings, key=lambda c: frame[c].dropna().astype(str).str.len().mean())
    if label is None:
        others = [c for c in cols if c != text]
        label = others[0] if len(others) == 1 else _inferred_label(frame, text)
    if label is None or label == text:
        raise TFCompressError(f"no label column found beside the text {text!r} (columns {cols}): name it with "
                              "--label COLUMN")
    return text, label


def _holds_strings(s):
    values = s.dropna()
    return len(values) > 0 and (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)) and \
        bool(values.map(lambda v: isinstance(v, str)).all())


def _inferred_label(frame, text):
    import warnings

    from .schema import Schema

    sample = frame.sample(min(len(frame), 2000), random_state=0) if len(frame) > 2000 else frame
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Schema.infer(sample, text=text, min_count=2).label
    except TFCompressError:
        return None


def _table_labels(values, name, threshold):
    """``(label ids, class names)`` of a label column by :meth:`Schema.infer`'s label rules; numbers with
    many values need a threshold."""
    from .schema import Schema

    if threshold is not None:
        schema = Schema.infer(values.to_frame(), label=name, label_threshold=threshold)
        return schema.encode_labels(values).astype(np.int64), [f"< {threshold:g}", f">= {threshold:g}"]
    schema = Schema.infer(values.to_frame(), label=name)
    if schema.objective == "regression":
        if values.nunique() > 20:
            raise TFCompressError(f"label {name!r} holds numbers with {values.nunique()} values: give "
                                  "--label-threshold X (value >= X is class 1) or a class column")
        schema = Schema.infer(values.to_frame(), label=name, objective="multiclass")
    return schema.encode_labels(values).astype(np.int64), [str(c) for c in schema.classes]


def titles_task(data=None, *, events=300_000, seed=0):
    """Product title -> category classification from the built-in synthetic shop (no files needed).

    The default shop has about 2,000 items, so about 2,000 titles over 20 categories.

    ``data`` is an :class:`~tfcompress.data.synthetic.EcommerceData` (default: ``make_ecommerce(events, seed)``).
    Labels are ``category - 1``; ``class_names`` are the category names.

    Example:
        >>> t = titles_task(events=2000)
        >>> t.texts[0].split()[-1] == t.class_names[t.labels[0]]
        True
    """
    if data is None:
        data = make_ecommerce(events=events, seed=seed)
    items = getattr(data, "items", None)
    if items is None or not {"title", "category"} <= set(items.columns):
        raise TFCompressError("titles_task needs EcommerceData whose items have 'title' and 'category' columns")
    labels = items["category"].to_numpy().astype(np.int64) - 1
    return TextData(texts=items["title"].astype(str).tolist(), labels=labels, class_names=list(CATEGORIES),
                    frame=items.reset_index(drop=True), dropped={})
