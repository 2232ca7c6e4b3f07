"""Review and product-title text classification data.

:func:`load_reviews` reads the Women's Clothing E-Commerce Reviews CSV (plain or zipped, from any path)
into texts and integer labels. Label choices:

- ``"recommend"``: the ``Recommended IND`` column (0 = not recommended, 1 = recommended);
- ``"sentiment"``: ``Rating`` >= 4 -> 1 (positive), ``Rating`` <= 2 -> 0 (negative); rating 3 rows are
  dropped as neutral;
- ``"department"``: ``Department Name`` mapped to class ids (sorted names); rows without one are dropped;
- any other column name: its values mapped to class ids (``classes=`` declares the allowed values).

Rows with empty text are dropped; ``data.dropped`` counts every drop. :func:`titles_task` gives a
product-title -> category task from the built-in synthetic shop, with no files at all.

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

REVIEWS_CSV = "Womens Clothing E-Commerce Reviews.csv"
PRESETS = {
    "recommend": ("Recommended IND", ("not recommended", "recommended")),
    "sentiment": ("Rating", ("negative", "positive")),
    "department": ("Department Name", None),
}


@dataclass
class TextData:
    """Texts with integer labels ``0..len(class_names)-1``; ``frame`` holds the kept rows of the source."""

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
        counts = np.bincount(self.labels, minlength=len(self.class_names))
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
    if isinstance(path, pd.DataFrame):
        df = path.copy()
    else:
        local = find_dataset("reviews", path)
        if local is None:
            raise TFCompressError(missing_data_message("reviews"))
        df = _read_csv(local)
    column, names = PRESETS.get(label, (label, None))
    _need(df, [text_column, column] + ([title_column] if include_title else []))
    if len(df) == 0:
        raise TFCompressError("reviews data has no rows")
    dropped = {}

    text = df[text_column].fillna("").astype(str).str.strip()
    if include_title:
        title = df[title_column].fillna("").astype(str).str.strip()
        text = (title + ". " + text).where((title != "") & (text != ""), title + text)
    empty = text == ""
    if empty.all():
        raise TFCompressError(f"all {len(df)} rows have an empty {text_column!r}: pick the column holding the text")
    dropped["empty_text"] = int(empty.sum())
    df, text = df[~empty], text[~empty]

    values = df[column]
    if label == "sentiment":
        rating = pd.to_numeric(values, errors="coerce")
        bad = rating.isna() | ~rating.isin([1, 2, 3, 4, 5])
        if bad.any():
            raise TFCompressError(
                f"Rating must be 1..5, found {sorted(map(str, values[bad].unique()[:5]))}: check the column")
        keep = rating != 3
        dropped["neutral_rating"] = int((~keep).sum())
        df, text, rating = df[keep], text[keep], rating[keep]
        labels = (rating >= 4).astype(np.int64).to_numpy()
    else:
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
        if names is None:
            names = [str(v) for v in declared]
    if len(labels) == 0:
        raise TFCompressError(f"no rows left after dropping {dropped}: check the text and label columns")
    return TextData(texts=text.tolist(), labels=labels, class_names=list(names),
                    frame=df.reset_index(drop=True), dropped=dropped)


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
