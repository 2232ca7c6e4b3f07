"""Schema inference: each column's kind, the roles (label, user, item, time, text) and the statistics.

Kinds: booleans, strings with few values and ints with at most ``max_categories`` values are
``categorical``; ints named like an id (``user_id``, ``Clothing ID``) and many-valued strings are ``id``;
strings of several words are ``text``; dates, and epoch numbers in a column named like a time, are
``time``; other numbers are ``numeric``. Roles not given are inferred from names and kinds. Bad input
raises one :class:`~tfcompress.errors.TFCompressError` line naming the column; a column that cannot help
(constant, all missing, a row index) is dropped with one warning line.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user_id": [1, 1, 2, 2], "book_id": [5, 6, 5, 7], "rating": [4, 2, 5, 3]})
    >>> s = infer_fields(df)
    >>> s["user"], s["item"], s["label"], s["objective"]
    ('user_id', 'book_id', 'rating', 'regression')
"""
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ..errors import TFCompressError
from .columns import Column, value_key
from .tables import parse_time

_EXACT_LABELS = {"label", "labels", "target", "y", "click", "clicked", "purchase", "purchased", "revenue",
                 "converted", "conversion", "class", "outcome", "churn", "sentiment"}
_LABEL_STEMS = ("label", "target", "click", "purchas", "revenue", "convert", "recommend", "churn", "fraud",
                "outcome", "sentiment")
_RATING_WORDS = {"rating", "ratings", "stars", "score"}
_USER_WORDS = {"user", "userid", "customer", "customerid", "visitor", "member", "buyer", "client", "reviewer",
               "uid", "account"}
_ITEM_WORDS = {"item", "itemid", "product", "productid", "movie", "movieid", "book", "bookid", "isbn", "sku",
               "asin", "article", "track", "song", "video", "listing"}
_TIME_WORDS = {"time", "timestamp", "date", "datetime", "ts", "created", "epoch"}
_BOOL_WORDS = {"true", "false", "yes", "no", "y", "n", "t", "f"}
_POSITIVE = {"true", "yes", "y", "t", "1", "positive", "pos", "click", "clicked", "bought", "purchased"}
_ROLES = ("label", "user", "item", "time", "text")


def tokens(name):
    """Lower-case words of a column name (``movieId`` -> ``['movie', 'id']``).

    Example:
        >>> tokens("Recommended IND"), tokens("movieId")
        (['recommended', 'ind'], ['movie', 'id'])
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [t.lower() for t in re.findall(r"[A-Za-z]+|[0-9]+", spaced)]


def _warn(message):
    warnings.warn(message, UserWarning, stacklevel=5)  # the caller of Schema.infer


def infer_fields(frame, *, label=None, user=None, item=None, time=None, text=None, features=None, drop=(),
                 kinds=None, objective=None, label_threshold=None, min_count=1, max_categories=20):
    """The fields of the :class:`~tfcompress.data.Schema` of DataFrame ``frame``, as a dict
    (:meth:`Schema.infer <tfcompress.data.Schema.infer>` is the public way in).

    The keywords are those of :meth:`Schema.infer <tfcompress.data.Schema.infer>`.

    Example:
        >>> import pandas as pd
        >>> infer_fields(pd.DataFrame({"x": [1.5, 2.5, 3.5], "y": ["a", "b", "a"]}), label="y")["classes"]
        ['a', 'b']
    """
    if not isinstance(frame, pd.DataFrame):
        raise TFCompressError(f"Schema.infer takes a pandas DataFrame, not {type(frame).__name__}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise TFCompressError(f"the table is empty ({frame.shape[0]} rows, {frame.shape[1]} columns): give "
                              "a table with a header line and rows")
    roles = {"label": label, "user": user, "item": item, "time": time, "text": text}
    _check_names(frame, roles, features, drop, kinds or {})
    dropped = _drop_unused(frame, roles, features, drop)
    kind = {c: _kind(frame[c], c, roles, kinds or {}, max_categories) for c in frame.columns if c not in dropped}
    _infer_roles(frame, kind, roles)
    schema = SimpleNamespace(columns=[], dropped=dropped, objective=None, classes=[], label_threshold=None,
                             **{r: roles[r] or None for r in _ROLES})
    if schema.label:
        _set_label(schema, frame[schema.label], kind[schema.label], objective, label_threshold)
    for name, k in kind.items():
        column = _column(frame[name], name, k, _role_of(name, roles), min_count)
        if column is not None:
            schema.columns.append(column)
        else:
            schema.dropped[name] = "one value"
    return vars(schema)


def _check_names(frame, roles, features, drop, kinds):
    cols = list(frame.columns)
    named = [(r, v) for r, v in roles.items() if v not in (None, False)]
    named += [("features", f) for f in (features or ())] + [("drop", d) for d in drop]
    named += [("kinds", k) for k in kinds]
    for role, name in named:
        if name not in cols:
            raise TFCompressError(f"{role} column {name!r} is missing: the table has {cols}")
    for role, name in named:
        if role in _ROLES and name in drop:
            raise TFCompressError(f"column {name!r} is both {role}= and in drop=: choose one")


def _drop_unused(frame, roles, features, drop):
    """Columns dropped before typing: ``drop=``, outside ``features=``, all missing, row indexes."""
    dropped = {d: "drop=" for d in drop}
    kept_roles = {v for v in roles.values() if v not in (None, False)}
    for c in frame.columns:
        if c in dropped or c in kept_roles:
            if c in kept_roles and frame[c].isna().all():
                raise TFCompressError(f"{_role_of(c, roles)} column {c!r} is empty (all values missing): "
                                      "fill it or choose another column")
            continue
        if features is not None and c not in features:
            dropped[c] = "not in features="
        elif frame[c].isna().all():
            dropped[c] = "all missing"
            _warn(f"column {c!r} is empty (all values missing): dropped")
        elif _is_row_index(frame[c], c):
            dropped[c] = "row index"
            _warn(f"column {c!r} is a row index (0, 1, 2, ...): dropped")
    return dropped


def _is_row_index(s, name):
    if str(name).startswith("Unnamed:"):
        return True
    if not pd.api.types.is_integer_dtype(s) or len(s) < 3:
        return False
    v = s.to_numpy()
    return bool(np.all(np.diff(v) == 1) and v[0] in (0, 1))


def _role_of(name, roles):
    for r in _ROLES:
        if roles.get(r) == name:
            return r
    return "feature"


def _kind(s, name, roles, kinds, max_categories):
    """The kind of column ``s`` (see the module docstring); mixed numbers and words are an error."""
    if name in kinds:
        return kinds[name]
    role = _role_of(name, roles)
    if role in ("user", "item"):
        return "id"
    if role in ("time", "text"):
        return _checked_time(s, name) if role == "time" else "text"
    values = s.dropna()
    if pd.api.types.is_bool_dtype(s) or values.map(type).isin([bool, np.bool_]).all():
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "time"
    if pd.api.types.is_numeric_dtype(s):
        return _numeric_kind(values, name, max_categories)
    _check_mixed(values, name)
    return _string_kind(values.astype(str), max_categories)


def _checked_time(s, name):
    if parse_time(s).notna().mean() < 0.5:
        raise TFCompressError(f"time column {name!r} does not hold dates or epoch seconds (e.g. "
                              f"{s.dropna().iloc[0]!r}): name another time= column or convert it")
    return "time"


def _numeric_kind(values, name, max_categories):
    words = tokens(name)
    integral = bool(np.all(np.mod(values.to_numpy(dtype="float64"), 1) == 0))
    if integral and set(words) & _TIME_WORDS and len(values) and 1e8 <= values.median() <= 4.2e12:
        return "time"
    if integral and values.nunique() <= max_categories:
        return "categorical"
    if integral and words and (words[-1] in ("id", "ids") or words[-1] in _USER_WORDS | _ITEM_WORDS):
        return "id"
    return "numeric"


def _check_mixed(values, name):
    """Numbers with a few words among them (``12, 7, 'n/a', 3``), or Python numbers and strings in one
    column, are an error naming those rows."""
    is_number = values.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)))
    if is_number.any() and not is_number.all():
        odd = values[~is_number] if is_number.mean() >= 0.5 else values[is_number]
    else:
        as_numbers = pd.to_numeric(values, errors="coerce")
        odd = values[as_numbers.isna()]
        if not (len(values) and as_numbers.notna().mean() >= 0.8 and 0 < odd.nunique() <= 5):
            return
    rows = ", ".join(str(i) for i in odd.index[:3])
    vals = ", ".join(repr(v) for v in pd.unique(odd)[:3])
    raise TFCompressError(f"column {name!r} mixes numbers and text: rows {rows} hold {vals}; fix or blank "
                          f"those cells, or drop the column (drop=[{name!r}])")


def _string_kind(values, max_categories):
    if not len(values):
        return "categorical"
    distinct = values.nunique()
    if set(values.str.lower().unique()) <= _BOOL_WORDS:
        return "categorical"
    sample = values.iloc[:2000]
    if sample.str.contains(r"\d").mean() > 0.95 and parse_time(sample).notna().mean() > 0.95:
        return "time"
    words = sample.str.split().str.len().mean()
    if (words >= 3 or sample.str.len().mean() >= 40) and distinct >= 0.3 * len(values):
        return "text"
    return "categorical" if distinct <= max(max_categories, 100) else "id"


def _infer_roles(frame, kind, roles):
    """Fill the roles left as None from column names and kinds (``label=False`` stays without label)."""
    taken = {v for v in roles.values() if v}
    free = [c for c in kind if c not in taken]

    def pick(candidates):
        name = next((c for c in candidates if c in free), None)
        if name is not None:
            free.remove(name)
        return name

    if roles["user"] is None:
        roles["user"] = pick(c for c in free if _names_an_id(c, kind[c], _USER_WORDS))
    if roles["item"] is None:
        roles["item"] = pick(c for c in free if _names_an_id(c, kind[c], _ITEM_WORDS))
    if roles["label"] is None:
        roles["label"] = pick(_label_candidates(frame, kind, free))
    if roles["item"] is None:
        roles["item"] = pick(c for c in free if kind[c] == "id" and "id" in tokens(c))
    if roles["time"] is None:
        roles["time"] = pick(c for c in free if kind[c] == "time")
    if roles["text"] is None:
        texts = sorted((c for c in free if kind[c] == "text"), key=lambda c: -frame[c].astype(str).str.len().mean())
        roles["text"] = pick(texts)
    for r in ("user", "item"):
        if roles[r]:
            kind[roles[r]] = "id"
    roles["label"] = roles["label"] or None


def _names_an_id(name, kind, words):
    """``user_id``, ``customerId``, ``user``, ``movie``, ``buyer_sku`` name an id column; ``VisitorType`` and
    ``ProductRelated`` (a count of pages) do not: the name must end in the role word or in ``id``."""
    t = tokens(name)
    return kind in ("id", "categorical") and bool(set(t) & words) and (t[-1] in ("id", "ids") or t[-1] in words)


def _label_candidates(frame, kind, free):
    """Label candidates, best first: named like a label, then like a rating, then the one boolean, then a
    last few-valued column."""
    usable = [c for c in free if kind[c] in ("categorical", "numeric")]
    norm = {c: "_".join(tokens(c)) for c in usable}
    out = [c for c in usable if norm[c] in _EXACT_LABELS]
    out += [c for c in usable if any(t.startswith(_LABEL_STEMS) for t in tokens(c))]
    out += [c for c in usable if set(tokens(c)) & _RATING_WORDS]
    booleans = [c for c in usable if frame[c].nunique() == 2 and _boolean_like(frame[c])]
    out += booleans if len(booleans) == 1 else []
    last = list(frame.columns)[-1]
    if last in usable and kind[last] == "categorical":
        out.append(last)
    return out


def _boolean_like(s):
    if pd.api.types.is_bool_dtype(s):
        return True
    keys = set(s.dropna().map(value_key).str.lower())
    return keys <= _BOOL_WORDS or keys <= {"0", "1"}


def _set_label(schema, s, kind, objective, threshold):
    """Set ``schema.objective``, ``classes`` and ``label_threshold`` from the label column ``s``."""
    name = schema.label
    keys = s.dropna().map(value_key).dropna()
    distinct = sorted(keys.unique(), key=_sort_key)
    if len(distinct) < 2:
        raise TFCompressError(f"label {name!r} has only one value ({distinct[0] if distinct else 'none'!r}): "
                              "a model cannot learn from it; give rows of both classes or another label=")
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    if threshold is not None:
        if not numeric:
            raise TFCompressError(f"label_threshold needs a numeric label; {name!r} holds {distinct[:3]}")
        y = s.dropna() >= threshold
        if y.nunique() < 2:
            raise TFCompressError(f"label_threshold={threshold} puts every row of {name!r} in one class: "
                                  f"choose a value inside [{s.min()}, {s.max()}]")
        schema.objective, schema.label_threshold, schema.classes = "binary", float(threshold), ["0", "1"]
        return
    rating = bool(set(tokens(name)) & _RATING_WORDS)
    if objective is None:
        if len(distinct) == 2:
            objective = "binary"
        elif numeric and (kind == "numeric" or rating):
            objective = "regression"
        else:
            objective = "multiclass"
    if objective == "multiclass" and len(distinct) > 1000:
        raise TFCompressError(f"label {name!r} has {len(distinct)} classes: too many for a classifier; give "
                              "objective='regression' or a coarser label")
    schema.objective = objective
    schema.classes = [] if objective == "regression" else _ordered_classes(distinct, objective)


def _sort_key(key):
    try:
        return (0, float(key), "")
    except ValueError:
        return (1, 0.0, key)


def _ordered_classes(distinct, objective):
    if objective == "binary" and len(distinct) == 2:
        pos = [k for k in distinct if k.lower() in _POSITIVE]
        if len(pos) == 1:
            return [k for k in distinct if k != pos[0]] + pos
    return list(distinct)


def _column(s, name, kind, role, min_count):
    """The :class:`Column` of ``s`` with its statistics, or None when it is constant (warned)."""
    column = Column(name=name, kind=kind, role=role, dtype=str(s.dtype), min_count=int(min_count),
                    missing=int(s.isna().sum()))
    if role == "label" or kind == "text":
        return column
    if column.is_ids:
        _fit_vocabulary(column, s, min_count)
        if len(column.vocabulary) < 1 or (s.nunique(dropna=False) < 2 and role == "feature"):
            _warn(f"column {name!r} has {'one value' if len(column.vocabulary) else 'no value seen min_count times'}:"
                  " dropped")
            return None
        return column
    x = column.numbers(s).astype("float64")
    finite = x[np.isfinite(x)]
    if not len(finite) or (role == "feature" and finite.min() == finite.max()):
        _warn(f"column {name!r} has one value: dropped")
        return None
    column.fill = float(np.median(finite))
    filled = np.where(np.isfinite(x), x, column.fill)
    std = float(filled.std())
    column.mean, column.std = float(filled.mean()), std if std > 1e-12 else 1.0
    column.low, column.high = float(finite.min()), float(finite.max())
    return column


def _fit_vocabulary(column, s, min_count):
    counts = s.dropna().map(value_key).dropna().value_counts()
    counts = counts[counts >= min_count]
    column.vocabulary = sorted(counts.index, key=lambda k: (-counts[k], _sort_key(k)))
    rows = int(s.notna().sum())
    if column.kind == "id" and rows >= 100 and len(counts) >= 0.9 * rows and min_count <= 1:
        raise TFCompressError(
            f"column {column.name!r} has {len(counts)} distinct values on {rows} rows: an id that almost never "
            f"repeats cannot be learned; hash it into fewer buckets, raise min_count, or drop it "
            f"(drop=[{column.name!r}])")
