"""MovieLens (and any user-item log) as CTR-style interactions with a :class:`FeatureSpec`.

:func:`interactions_from_frame` turns any DataFrame or table file with user, item (and time) columns into dense
categorical ids (1..n, 0 = unknown) plus a binary ``click`` label; :func:`load_movielens` reads GroupLens
ml-latest-small (zip, extracted folder or ``ratings.csv``) through it, with TFDS as a last resort.

Example:
    >>> df = pd.DataFrame({"u": ["a", "a", "b"], "i": [10, 20, 10], "t": [1, 2, 3], "r": [5, 2, 4]})
    >>> data = interactions_from_frame(df, user="u", item="i", time="t", rating="r")
    >>> data.events[["user_id", "item_id", "click"]].values.tolist()
    [[1, 1, 1], [1, 2, 0], [2, 1, 1]]
    >>> train, test = leave_last_out(data.events)
    >>> len(train), len(test)
    (2, 1)
"""
import io
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import TFCompressError
from .paths import find_dataset, missing_data_message, tfds_load
from .spec import Feature, FeatureSpec
from .synthetic import time_split
from .tables import read_table

N_HOUR = 24
#: the strings a 0/1 label may hold (lower case), and their values
BINARY_VALUES = {"0": 0, "1": 1, "false": 0, "true": 1, "no": 0, "yes": 1, "n": 0, "y": 1, "f": 0, "t": 1}
NO_GENRE = "(no genres listed)"


@dataclass
class Interactions:
    """User-item events with dense ids, their :class:`FeatureSpec` and maps back to the original ids.

    ``user_ids`` / ``item_ids`` are Series indexed by dense id (1..n) holding the original id;
    ``vocabularies`` holds the same for each side feature (e.g. ``"genre"``).
    """

    events: pd.DataFrame
    spec: FeatureSpec
    user_ids: pd.Series
    item_ids: pd.Series
    vocabularies: dict = field(default_factory=dict)

    def split(self, fractions=(0.8, 0.1, 0.1)):
        """Time-ordered parts (earliest events first), via :func:`tfcompress.data.synthetic.time_split`."""
        return time_split(self.events, fractions)

    def leave_last_out(self, n=1):
        """``(train, test)`` with each user's last ``n`` interactions in test; see :func:`leave_last_out`."""
        return leave_last_out(self.events, n)

    def encode_users(self, original_ids):
        """Dense ids for original user ids (0 for users never seen)."""
        return _encode(self.user_ids, original_ids)

    def encode_items(self, original_ids):
        """Dense ids for original item ids (0 for items never seen)."""
        return _encode(self.item_ids, original_ids)


def _encode(vocab, values):
    lookup = pd.Series(vocab.index.to_numpy(), index=vocab.to_numpy())
    return pd.Series(values).map(lookup).fillna(0).astype(np.int32).to_numpy()


def _dense_ids(values):
    """Map values to 1..n (sorted order); NaN -> 0. Returns (ids, Series dense id -> original)."""
    codes, uniques = pd.factorize(values, sort=True)
    ids = (codes + 1).astype(np.int32)  # factorize gives -1 for NaN -> 0
    vocab = pd.Series(np.asarray(uniques), index=pd.RangeIndex(1, len(uniques) + 1))
    return ids, vocab


def _to_seconds(col, name):
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.astype(np.int64)
    try:
        dt = pd.to_datetime(col, utc=True)
    except (ValueError, TypeError):
        raise TFCompressError(
            f"time column {name!r} is neither numbers (unix seconds) nor dates, e.g. {col.iloc[0]!r}: convert it"
        ) from None
    return (dt - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def interactions_from_frame(df, *, user, item, time, label=None, rating=None, threshold=4.0,
                            side_features=(), min_interactions=1):
    """Turn a DataFrame (or CSV path) of user-item events into :class:`Interactions`.

    ``user``, ``item``, ``time`` name the columns (time: unix seconds or dates; ``time=None`` for a log
    without time: ``timestamp`` is then the row's position in the file and there is no ``hour``). The
    binary ``click`` is the ``label`` column (0/1, booleans, yes/no), else ``rating >= threshold``, else 1
    for every row (implicit feedback).
    ``side_features`` are extra categorical columns (names, or ``(name, group)`` pairs) mapped to 1..n with
    0 for missing. Users with fewer than ``min_interactions`` events are dropped. The output has
    ``user_id``, ``item_id``, ``timestamp``, ``hour`` (1..24, UTC), ``click``, ``rating`` (if given) and the
    side features, sorted by time.

    Example:
        >>> df = pd.DataFrame({"u": [7, 7, 9], "i": ["x", "y", "x"], "t": [0, 7200, 3600], "buy": [1, 0, 1]})
        >>> d = interactions_from_frame(df, user="u", item="i", time="t", label="buy")
        >>> d.events.hour.tolist(), d.spec["item_id"].vocab_size
        ([1, 2, 3], 3)
        >>> d = interactions_from_frame(df.assign(buy=["yes", "no", "yes"]), user="u", item="i", time=None, label="buy")
        >>> d.events.timestamp.tolist(), d.events.click.tolist(), d.spec.names
        ([0, 1, 2], [1, 0, 1], ['user_id', 'item_id'])
    """
    df = _read_frame(df)
    sides = [(s, "context") if isinstance(s, str) else tuple(s) for s in side_features]
    _check_columns(df, {"user": user, "item": item, "time": time, "label": label, "rating": rating}, sides)
    if min_interactions > 1:
        counts = df.groupby(user)[user].transform("size")
        df = df[counts >= min_interactions]
        if len(df) == 0:
            raise TFCompressError(f"no user has min_interactions={min_interactions} events: lower it")

    out = pd.DataFrame(index=df.index)
    out["user_id"], user_vocab = _dense_ids(df[user].to_numpy())
    out["item_id"], item_vocab = _dense_ids(df[item].to_numpy())
    if time is None:  # no time: the file's order stands for it (leave-last-out takes each user's last row)
        out["timestamp"] = np.arange(len(df), dtype=np.int64)
    else:
        out["timestamp"] = _to_seconds(df[time], time).to_numpy()
        out["hour"] = ((out["timestamp"] // 3600) % N_HOUR + 1).astype(np.int32)
    _add_rating_and_click(out, df, label, rating, threshold)

    features = [
        Feature("user_id", "categorical", len(user_vocab) + 1, "user"),
        Feature("item_id", "categorical", len(item_vocab) + 1, "item"),
    ]
    vocabularies = {}
    for name, group in sides:
        out[name], vocab = _dense_ids(df[name].to_numpy())
        vocabularies[name] = vocab
        features.append(Feature(name, "categorical", max(2, len(vocab) + 1), group))
    if time is not None:
        features.append(Feature("hour", "categorical", N_HOUR + 1, "context"))

    out = out.sort_values("timestamp", kind="stable").reset_index(drop=True)
    metadata = {"positive_threshold": threshold} if rating is not None and label is None else {}
    if time is None:
        metadata["no_time"] = True  # the rows keep the file's order; splits go by user, not time
    spec = FeatureSpec(features, label="click", objective="binary", metadata=metadata)
    return Interactions(events=out, spec=spec, user_ids=user_vocab, item_ids=item_vocab, vocabularies=vocabularies)


def _read_frame(df):
    """``df`` itself, or the table file it names (:func:`~tfcompress.data.read_table`); a clear error for
    anything else."""
    if isinstance(df, (str, os.PathLike)):
        path = os.fspath(df)
        if not os.path.exists(path):
            raise TFCompressError(f"interactions file {path!r} does not exist: pass a CSV path or a DataFrame")
        df = read_table(path)
    if not isinstance(df, pd.DataFrame):
        raise TFCompressError(f"expected a pandas DataFrame or a CSV path, got {type(df).__name__}")
    return df


def _check_columns(df, needed, sides):
    """Raise a clear error for a missing column, an empty user/item/time value, or no rows."""
    needed = dict(needed)
    needed.update({f"side feature {s}": s for s, _ in sides})
    missing = [f"{role}={col!r}" for role, col in needed.items() if col is not None and col not in df.columns]
    if missing:
        raise TFCompressError(
            f"interactions data is missing column(s) {', '.join(missing)}; it has {list(df.columns)}")
    for role in [r for r in ("user", "item", "time") if needed[r] is not None]:
        n_na = int(df[needed[role]].isna().sum())
        if n_na:
            raise TFCompressError(f"{role} column {needed[role]!r} has {n_na} empty values: drop or fill them first")
    if len(df) == 0:
        raise TFCompressError("interactions data has no rows")


def _add_rating_and_click(out, df, label, rating, threshold):
    """Set ``out["rating"]`` (if ``rating``) and ``out["click"]``: the 0/1 ``label``, else rating >= threshold,
    else 1 (implicit feedback)."""
    if rating is not None:
        r = pd.to_numeric(df[rating], errors="coerce")
        if r.isna().any():
            raise TFCompressError(f"rating column {rating!r} has {int(r.isna().sum())} empty or non-numeric values")
        out["rating"] = r.astype(np.float32).to_numpy()
    if label is not None:
        lab = df[label].map(lambda v: BINARY_VALUES.get(str(v).strip().lower(), v) if isinstance(v, str) else v)
        bad = ~lab.isin([0, 1, True, False])
        if bad.any():
            raise TFCompressError(f"label column {label!r} must hold 0/1, booleans or yes/no, found "
                                  f"{sorted(map(str, df[label][bad].unique()[:5]))}: name a rating with --label "
                                  "and --label-threshold, or another label column")
        out["click"] = lab.astype(np.int32).to_numpy()
    elif rating is not None:
        out["click"] = (out["rating"] >= threshold).astype(np.int32)
    else:
        out["click"] = np.ones(len(out), np.int32)


def leave_last_out(events, n=1, *, user_column="user_id", time_column="timestamp"):
    """Split ``events`` into ``(train, test)``: each user's last ``n`` interactions by time go to test.

    Every user keeps at least one interaction in train, so users with fewer than 2 interactions stay
    wholly in train (and a user with ``k <= n`` interactions gives only ``k - 1`` to test). Ties in time
    keep the input order. Both parts come back sorted by time.

    Example:
        >>> ev = pd.DataFrame({"user_id": [1, 1, 1, 2], "timestamp": [3, 1, 2, 5]})
        >>> train, test = leave_last_out(ev)
        >>> test.values.tolist(), len(train)
        ([[1, 3]], 3)
    """
    if int(n) != n or n < 1:
        raise TFCompressError(f"leave_last_out n = {n!r} must be a whole number >= 1")
    for c in (user_column, time_column):
        if c not in events.columns:
            raise TFCompressError(f"events have no column {c!r}; they have {list(events.columns)}")
    df = events.sort_values([user_column, time_column], kind="stable")
    from_end = df.groupby(user_column).cumcount(ascending=False)
    size = df.groupby(user_column)[user_column].transform("size")
    is_test = (from_end < n) & (from_end < size - 1)
    train = df[~is_test].sort_values(time_column, kind="stable").reset_index(drop=True)
    test = df[is_test].sort_values(time_column, kind="stable").reset_index(drop=True)
    return train, test


# ---------------------------------------------------------------- MovieLens files


def _read_member(zf, suffix):
    names = [n for n in zf.namelist() if n.endswith(suffix) and "__MACOSX" not in n]
    if not names:
        return None
    with zf.open(sorted(names, key=len)[0]) as f:
        return pd.read_csv(io.BytesIO(f.read()))


def _read_movielens_files(path):
    """(ratings, movies or None) from a zip, a folder (with CSVs or a zip) or a ratings CSV."""
    if os.path.isdir(path):
        for sub in ("", "ml-latest-small"):
            r = os.path.join(path, sub, "ratings.csv")
            if os.path.isfile(r):
                return _read_movielens_files(r)
        zips = sorted(f for f in os.listdir(path) if f.endswith(".zip"))
        if zips:
            return _read_movielens_files(os.path.join(path, zips[0]))
        raise TFCompressError(
            f"folder {path!r} has no ratings.csv or MovieLens zip: {missing_data_message('movielens-small')}")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                ratings = _read_member(zf, "ratings.csv")
                movies = _read_member(zf, "movies.csv")
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise TFCompressError(f"MovieLens zip {path!r} is unreadable ({e}): download it again") from None
        if ratings is None:
            raise TFCompressError(f"zip {path!r} has no ratings.csv member: pass the MovieLens zip")
        return ratings, movies
    ratings = pd.read_csv(path)
    movies_path = os.path.join(os.path.dirname(path), "movies.csv")
    movies = pd.read_csv(movies_path) if os.path.isfile(movies_path) else None
    return ratings, movies


def _movielens_from_tfds():
    ds = tfds_load("movielens-small", split="train")
    import tensorflow_datasets as tfds

    rows = {"userId": [], "movieId": [], "rating": [], "timestamp": [], "genre": []}
    for ex in tfds.as_numpy(ds):
        rows["userId"].append(int(ex["user_id"]))
        rows["movieId"].append(int(ex["movie_id"]))
        rows["rating"].append(float(ex["user_rating"]))
        rows["timestamp"].append(int(ex["timestamp"]))
        g = ex["movie_genres"]
        rows["genre"].append(int(g[0]) if len(g) else -1)
    df = pd.DataFrame(rows)
    names = np.asarray(_tfds_genre_names(), dtype=object)
    df["genre"] = [names[g] if g >= 0 else np.nan for g in df["genre"]]
    return df


def _tfds_genre_names():
    import tensorflow_datasets as tfds

    info = tfds.builder("movielens/latest-small-ratings").info
    return info.features["movie_genres"].feature.names


def load_movielens(path=None, *, positive_threshold=4.0, min_interactions=1, use_tfds=True):
    """Load GroupLens ml-latest-small as :class:`Interactions` (``click`` = rating >= ``positive_threshold``).

    ``path`` may be the zip, an extracted folder or ``ratings.csv`` (genres from a sibling ``movies.csv``);
    by default the shared data folder is searched, then TFDS ``movielens/latest-small-ratings`` is tried
    (needs internet). ``genre`` is the movie's first listed genre (1..n; 0 = none listed or unknown movie).

    Example:
        >>> data = load_movielens()  # doctest: +SKIP
        >>> len(data.events), data.spec["user_id"].vocab_size  # doctest: +SKIP
        (100836, 611)
    """
    local = find_dataset("movielens-small", path)
    if local is not None:
        ratings, movies = _read_movielens_files(local)
        if movies is not None:
            if not {"movieId", "genres"} <= set(movies.columns):
                raise TFCompressError(f"movies.csv needs columns movieId, genres; it has {list(movies.columns)}")
            first = movies["genres"].astype(str).str.split("|").str[0].replace(NO_GENRE, np.nan)
            genres = pd.DataFrame({"movieId": movies["movieId"], "genre": first}).drop_duplicates("movieId")
            ratings = ratings.merge(genres,
                                    on="movieId", how="left")
        else:
            ratings = ratings.assign(genre=np.nan)
    elif use_tfds:
        ratings = _movielens_from_tfds()
    else:
        raise TFCompressError(missing_data_message("movielens-small"))
    data = interactions_from_frame(
        ratings, user="userId", item="movieId", time="timestamp", rating="rating",
        threshold=positive_threshold, side_features=[("genre", "item")], min_interactions=min_interactions)
    data.spec.metadata["source"] = "movielens-small"
    return data
