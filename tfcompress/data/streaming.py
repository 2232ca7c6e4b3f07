"""One streaming pass over a folder or glob of shards: the vocabularies, label counts and time cuts of an
interactions log too large to load.

:func:`shard_files` finds the shards (Parquet, CSV or TFRecord, one format) of ``--data``;
:func:`scan_shards` reads them once, batch by batch, and returns :class:`ShardStats`: rows per file, each
id column's vocabulary (values seen at least ``min_count`` times, most frequent first, ids ``1..n``; id 0
is "rare or unknown", as in :class:`~tfcompress.data.Schema`) or, for an id space with more than
``max_vocab`` distinct values, hashing into ``hash_buckets`` buckets instead (the counts are dropped as soon
as the threshold is passed, so memory stays bounded), the positive labels, and time quantiles from a
systematic sample of at most ``TIME_SAMPLE`` timestamps.

Parquet is read with ``pyarrow.parquet.ParquetFile.iter_batches`` and CSV with ``pyarrow.dataset``: only the
columns asked for, batch by batch in C++ (the GIL released); TFRecord shards are
read with ``tf.data`` (``TFRecordDataset`` + ``parse_example``), TensorFlow's own format.

Example:
    >>> import tempfile, pandas as pd
    >>> d = tempfile.mkdtemp()
    >>> for k in range(2):
    ...     pd.DataFrame({"u": [1, 2, 2, 3 + k], "i": ["a", "b", "b", "a"], "y": [0, 1, 1, 0],
    ...                   "t": [k * 10 + j for j in range(4)]}).to_parquet(f"{d}/p{k}.parquet")
    >>> files, fmt = shard_files(d)
    >>> st = scan_shards(files, fmt, ids=("u", "i"), label="y", time="t", min_count=2)
    >>> st.rows, st.vocabulary["u"], st.vocabulary["i"], st.positives
    (8, ['2', '1'], ['a', 'b'], 4)
"""
import glob
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import TFCompressError
from .columns import value_key
from .schema_infer import _sort_key

#: shard file endings and their format
SHARD_EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tfrecord": "tfrecord",
                    ".tfrecords": "tfrecord"}
#: id columns with more distinct values than this are hashed (their vocabulary would not fit a phone or RAM)
MAX_VOCAB = 1_000_000
#: buckets of a hashed id column (bucket 0 stays "unknown")
HASH_BUCKETS = 1_000_000
#: the most timestamps the pass keeps for its quantiles
TIME_SAMPLE = 1_000_000
BATCH_ROWS = 65_536
#: rows per Parquet read (smaller reads keep the decoded column buffers small)
PARQUET_ROWS = 16_384
_REDUCE_AT = 4_000_000


def shard_files(data):
    """``(files, format)`` of a shard folder or glob (sorted; hidden files and ``manifest.json`` skipped).
    An empty folder, files of several formats or of no known format are one-line errors.

    Example:
        >>> shard_files("/no/such/*.parquet")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        TFCompressError: --data '/no/such/*.parquet' matches no file: ...
    """
    key = os.path.expanduser(str(data).strip())
    if os.path.isdir(key):
        files = [os.path.join(key, n) for n in os.listdir(key) if not n.startswith((".", "_"))
                 and n != "manifest.json" and os.path.isfile(os.path.join(key, n))]
    else:
        files = [f for f in glob.glob(key) if os.path.isfile(f)]
    if not files:
        raise TFCompressError(f"--data {data!r} matches no file: give a folder or glob of Parquet, CSV or "
                              "TFRecord shards (e.g. tfcompress data make --out DIR)")
    formats = {f: SHARD_EXTENSIONS.get(os.path.splitext(f)[1].lower()) for f in files}
    unknown = sorted(os.path.basename(f) for f, k in formats.items() if k is None)
    if unknown:
        raise TFCompressError(f"--data {data!r} holds files that are not shards ({', '.join(unknown[:3])}): "
                              f"keep only {', '.join(SHARD_EXTENSIONS)} files there")
    kinds = sorted(set(formats.values()))
    if len(kinds) > 1:
        raise TFCompressError(f"--data {data!r} mixes shard formats ({', '.join(kinds)}): keep one format per "
                              "folder")
    return sorted(files), kinds[0]


def is_shard_source(data):
    """Whether ``--data`` names shards: a glob, or a folder that is not a MovieLens folder (no ratings.csv).

    Example:
        >>> is_shard_source("logs/*.parquet"), is_shard_source("movielens")
        (True, False)
    """
    if not isinstance(data, (str, os.PathLike)):
        return False
    key = os.path.expanduser(str(data).strip())
    if os.path.isdir(key):
        return not os.path.isfile(os.path.join(key, "ratings.csv"))
    return any(ch in key for ch in "*?[") and not os.path.exists(key)


def sample_frame(files, fmt, rows=2000):
    """The first ``rows`` rows of the first shard, every column, as a DataFrame (to find the column roles).

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> pd.DataFrame({"u": [1, 2], "i": [3, 4]}).to_csv(f"{d}/a.csv", index=False)
        >>> list(sample_frame([f"{d}/a.csv"], "csv").columns)
        ['u', 'i']
    """
    if fmt == "tfrecord":
        from .._keras import tf

        records = [tf.train.Example.FromString(r.numpy()).features.feature
                   for r in tf.data.TFRecordDataset(files[0]).take(rows)]
        return pd.DataFrame([{n: list(getattr(f[n], f[n].WhichOneof("kind")).value)[0] for n in f}
                             for f in records])
    import pyarrow.dataset as pads

    try:
        return pads.dataset(files[0], format=fmt).head(rows).to_pandas()
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds
        raise TFCompressError(f"cannot read shard {os.path.basename(files[0])!r} as {fmt}: {_first_line(e)}") from None


@dataclass
class ShardStats:
    """What one pass found: ``rows`` (all, and per file), each id column's ``vocabulary`` (keys, id ``i + 1``
    for ``vocabulary[i]``) and ``counts`` (rows per key), the id columns ``hashed`` (with their buckets), the
    ``positives`` of the label, the ``time_sample`` (sorted), the ``columns`` and their types."""

    files: list
    format: str
    rows: int = 0
    file_rows: list = field(default_factory=list)
    vocabulary: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    hashed: dict = field(default_factory=dict)
    positives: int = 0
    time_sample: np.ndarray = None
    types: dict = field(default_factory=dict)

    def time_cuts(self, fractions=(0.8, 0.1, 0.1)):
        """The timestamps that cut the rows into parts of ``fractions`` (train is ``time < cuts[0]``).

        Example:
            >>> ShardStats([], "csv", time_sample=np.arange(100)).time_cuts()
            [80, 90]
        """
        if self.time_sample is None or not len(self.time_sample):
            raise TFCompressError("the shards have no time column to split by: use --split user")
        q = np.cumsum(fractions)[:-1]
        return [int(self.time_sample[min(len(self.time_sample) - 1, int(p * len(self.time_sample) + 1e-9))])
                for p in q]

    def time_share(self, lo=None, hi=None):
        """The share of rows with ``lo <= time < hi`` (from the sample)."""
        t = self.time_sample
        inside = np.ones(len(t), bool) if lo is None else t >= lo
        return float(np.mean(inside & (t < hi if hi is not None else True)))


def scan_shards(files, fmt, *, ids=(), label=None, time=None, min_count=1, max_vocab=MAX_VOCAB,
                hash_buckets=HASH_BUCKETS, threshold=None):
    """One pass over ``files`` (of format ``fmt``): vocabularies of the ``ids`` columns (``min_count``;
    hashed into ``hash_buckets`` above ``max_vocab`` distinct values), positives of ``label`` (``value >=
    threshold`` when given, else the value as 0/1) and a sample of ``time``. A shard that lacks one of
    these columns, or gives one another type, is a one-line error."""
    needed = [c for c in (*ids, label, time) if c]
    stats = ShardStats(list(files), fmt)
    counters = {c: _Counter(max_vocab) for c in ids}
    times = _TimeSample(TIME_SAMPLE)
    for path in files:
        rows = 0
        for batch in read_batches(path, fmt, needed, stats.types):
            rows += len(batch[needed[0]])
            for c in ids:
                counters[c].update(batch[c])
            if label:
                y = batch[label].astype("float64")
                stats.positives += int(np.sum(y >= threshold) if threshold is not None else np.sum(y))
            if time:
                times.update(batch[time])
        stats.file_rows.append(rows)
    stats.rows = sum(stats.file_rows)
    for c, counter in counters.items():
        counter.reduce()
        if counter.counts is None:
            stats.hashed[c] = int(hash_buckets)
        else:
            stats.vocabulary[c], stats.counts[c] = counter.vocabulary(min_count)
    stats.time_sample = np.sort(times.values()) if time else None
    return stats


def read_batches(path, fmt, columns, types):
    """Yield dicts column -> NumPy array of ``columns`` of one shard, batch by batch; ``types`` (column ->
    type name, filled from the first shard) must match (a one-line error otherwise)."""
    if fmt == "tfrecord":
        yield from _tfrecord_batches(path, columns, types)
        return
    if fmt == "parquet":
        yield from _parquet_batches(path, columns, types)
        return
    import pyarrow.dataset as pads

    try:
        dataset = pads.dataset(path, format=fmt)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds
        raise TFCompressError(f"cannot read shard {os.path.basename(path)!r} as {fmt}: {_first_line(e)}") from None
    _check_types(path, {n: str(dataset.schema.field(n).type) for n in dataset.schema.names}, columns, types)
    for batch in dataset.to_batches(columns=list(columns), batch_size=BATCH_ROWS):
        yield {c: _numpy(batch.column(c)) for c in columns}


def _parquet_batches(path, columns, types):
    """Parquet through ``ParquetFile.iter_batches``: one file, one reader, ``PARQUET_ROWS`` rows at a time
    (the dataset scanner reads ahead across row groups in its own thread pool: 1,810 MB peak over 10^7 rows
    read four shards at once, against 1,033 MB this way)."""
    import pyarrow.parquet as pq

    try:
        shard = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds
        raise TFCompressError(f"cannot read shard {os.path.basename(path)!r} as parquet: {_first_line(e)}") from None
    schema = shard.schema_arrow
    _check_types(path, {n: str(schema.field(n).type) for n in schema.names}, columns, types)
    for batch in shard.iter_batches(batch_size=PARQUET_ROWS, columns=list(columns)):
        yield {c: _numpy(batch.column(c)) for c in columns}


def _check_types(path, found, columns, types):
    missing = [c for c in columns if c not in found]
    if missing:
        raise TFCompressError(f"shard {os.path.basename(path)!r} lacks column(s) {missing} (it has "
                              f"{sorted(found)}): every shard needs the same columns")
    found = {c: type_family(found[c]) for c in columns}
    for c in columns:
        if types.setdefault(c, found[c]) != found[c]:
            raise TFCompressError(f"column {c!r} is {found[c]} in shard {os.path.basename(path)!r} but "
                                  f"{types[c]} in the first shard: write every shard with the same types")


def type_family(name):
    """``"number"``, ``"time"`` or ``"string"``: what a pyarrow or TFRecord type name holds (ints and floats
    are both numbers, so a CSV shard with an empty cell still matches).

    Example:
        >>> type_family("int64"), type_family("float_list"), type_family("large_string")
        ('number', 'number', 'string')
    """
    name = str(name)
    if name.startswith(("timestamp", "date")):
        return "time"
    if name.startswith(("int", "uint", "float", "double", "bool", "decimal", "halffloat")):
        return "number"
    return "string"


def _numpy(array):
    """A pyarrow column as NumPy: int64 ids, float64 numbers (NaN for nulls), object strings (None)."""
    import pyarrow as pa

    t = array.type
    if pa.types.is_integer(t) and array.null_count == 0:
        return array.to_numpy().astype(np.int64)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return array.cast(pa.timestamp("s")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return array.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(array.to_pylist(), dtype=object)


def _tfrecord_batches(path, columns, types):
    from .._keras import tf

    first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    if first is None:
        return
    example = tf.train.Example.FromString(first.numpy()).features.feature
    found = {n: example[n].WhichOneof("kind") for n in example}
    _check_types(path, found, columns, types)
    dtypes = {"int64_list": tf.int64, "float_list": tf.float32, "bytes_list": tf.string}
    spec = {c: tf.io.FixedLenFeature([], dtypes[found[c]]) for c in columns}
    ds = tf.data.TFRecordDataset(path).batch(BATCH_ROWS).map(lambda s: tf.io.parse_example(s, spec))
    try:
        for batch in ds.as_numpy_iterator():
            yield {c: v.astype(object) if v.dtype.kind in "SO" else v for c, v in batch.items()}
    except tf.errors.InvalidArgumentError as e:
        raise TFCompressError(f"shard {os.path.basename(path)!r}: a record lacks a column or has another "
                              f"type ({_first_line(e)}): every record needs {list(columns)}") from None


def _first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


class _Counter:
    """Rows per value of one id column, batch by batch; drops its counts (``counts = None``) once more than
    ``limit`` distinct values were seen."""

    def __init__(self, limit):
        self.limit, self.parts, self.size, self.counts = limit, [], 0, pd.Series(dtype="int64")

    def update(self, values):
        if self.counts is None:
            return
        v = pd.Series(values)
        if v.dtype == object:
            v = v.map(lambda x: x.decode() if isinstance(x, bytes) else x)
        part = v.dropna().value_counts()
        self.parts.append(part)
        self.size += len(part)
        if self.size > _REDUCE_AT:
            self.reduce()

    def reduce(self):
        """Merge the batch counts (and drop them all past the limit)."""
        if self.counts is None or not self.parts:
            return
        merged = pd.concat([self.counts, *self.parts])
        self.counts = merged.groupby(level=0, sort=False).sum()
        self.parts, self.size = [], len(self.counts)
        if len(self.counts) > self.limit:
            self.counts = None

    def vocabulary(self, min_count):
        """``(keys, counts)``: the keys seen ``min_count`` times, most frequent first (ties by value)."""
        keys = self.counts.index.map(value_key)
        counts = pd.Series(self.counts.to_numpy(), index=keys).groupby(level=0).sum()
        counts = counts[counts >= min_count]
        order = sorted(counts.index, key=lambda k: (-counts[k], _sort_key(k)))
        return order, [int(counts[k]) for k in order]


class _TimeSample:
    """A systematic sample of timestamps: every ``stride``-th row, the stride doubling whenever the sample
    passes twice its cap (so it stays between cap and 2·cap values, spread evenly over all rows)."""

    def __init__(self, cap):
        self.cap, self.stride, self.seen, self.kept = cap, 1, 0, []

    def update(self, values):
        values = np.asarray(values, dtype="float64")
        start = (-self.seen) % self.stride
        self.kept.append(values[start::self.stride])
        self.seen += len(values)
        if sum(len(k) for k in self.kept) > 2 * self.cap:
            joined = np.concatenate(self.kept)
            self.kept, self.stride = [joined[::2]], self.stride * 2

    def values(self):
        v = np.concatenate(self.kept) if self.kept else np.zeros(0)
        return v[np.isfinite(v)]
