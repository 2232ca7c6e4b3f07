"""The built-in shop written as shards: Parquet, CSV or TFRecord files plus a small manifest.

:func:`write_shop_shards` draws the shop chunk by chunk (:func:`~tfcompress.data.synthetic.ecommerce_chunks`)
and writes ``part-00000.<ext>``, ``part-00001.<ext>``, ... of ``shard_rows`` rows each, so memory stays
bounded by one shard (and one chunk); the rows are the same whatever ``shard_rows`` and ``format`` are (the
``fingerprint`` of the manifest says so). Each shard is written under a temporary name and renamed; the
manifest (``manifest.json``: schema, rows per shard, seed, time split, fingerprint) comes last, so a folder
with a manifest is complete. :func:`read_manifest` reads it back.

Example:
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> m = write_shop_shards(2000, out, shard_rows=800, format="csv")
    >>> [s["rows"] for s in m["shards"]], sorted(os.listdir(out))[-1]
    ([800, 800, 400], 'part-00002.csv')
    >>> read_manifest(out)["fingerprint"] == m["fingerprint"]
    True
"""
import hashlib
import json
import os

import pandas as pd

from .._io import atomic_path, ensure_dir, write_json
from ..errors import TFCompressError
from .synthetic import ecommerce_chunks

SHARD_FORMATS = {"parquet": ".parquet", "csv": ".csv", "tfrecord": ".tfrecord"}
MANIFEST = "manifest.json"
MANIFEST_KIND = "tfcompress-shop-shards"
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def write_shop_shards(events, out, *, seed=0, shard_rows=1_000_000, format="parquet", click_rate=0.05):  # noqa: A002
    """Write the built-in shop of ``events`` impressions (seed ``seed``) into folder ``out`` (new or empty) as
    ``format`` shards of ``shard_rows`` rows; returns the manifest (a dict, also ``out/manifest.json``).

    Example:
        >>> import tempfile
        >>> manifest = write_shop_shards(1000, tempfile.mkdtemp(), shard_rows=400)
        >>> [s["rows"] for s in manifest["shards"]]
        [400, 400, 200]
    """
    if format not in SHARD_FORMATS:
        raise TFCompressError(f"shard format {format!r} is not one of {', '.join(SHARD_FORMATS)}")
    shard_rows = _whole(shard_rows, "shard_rows")
    if shard_rows < 100:
        raise TFCompressError(f"shard_rows = {shard_rows} is too small: give at least 100 rows per shard")
    spec, chunks = ecommerce_chunks(events, seed, click_rate=click_rate)  # checks events and click_rate
    out = os.fspath(out)
    if os.path.isdir(out) and os.listdir(out):
        raise TFCompressError(f"--out {out!r} is not empty: give a new or empty folder for the shards")
    ensure_dir(out, "shard folder")
    digest = _Fingerprint()
    shards, time = [], _TimeCuts(int(events))
    try:
        for frame in _shard_frames(chunks, shard_rows):
            name = f"part-{len(shards):05d}{SHARD_FORMATS[format]}"
            with atomic_path(os.path.join(out, name)) as tmp:
                _WRITERS[format](frame, tmp)
            digest.update(frame)
            time.update(frame["timestamp"].to_numpy())
            shards.append({"file": name, "rows": len(frame), "clicks": int(frame[spec.label].sum())})
    except BaseException:  # no half-written folder: the shards written so far go too
        for s in shards:
            os.remove(os.path.join(out, s["file"]))
        raise
    manifest = {"kind": MANIFEST_KIND, "version": 1, "format": format, "events": int(events), "seed": int(seed),
                "click_rate": click_rate, "shard_rows": shard_rows, "shards": shards, "spec": spec.to_dict(),
                "columns": {c: str(t) for c, t in frame.dtypes.items()}, "time_split": time.cuts,
                "fingerprint": digest.hexdigest()}
    write_json(os.path.join(out, MANIFEST), manifest)
    return manifest


def read_manifest(folder):
    """The manifest of a shop shard folder (a dict), or None when ``folder`` has no ``manifest.json``; a
    manifest whose shards are missing is a one-line error.

    Example:
        >>> import tempfile
        >>> read_manifest(tempfile.mkdtemp()) is None
        True
    """
    path = os.path.join(os.fspath(folder), MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise TFCompressError(f"cannot read the shard manifest {path!r}: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        raise TFCompressError(f"{path!r} is not a tfcompress shop manifest: remove it, or write the shards "
                              "again with tfcompress data make")
    gone = [s["file"] for s in manifest["shards"] if not os.path.isfile(os.path.join(folder, s["file"]))]
    if gone:
        raise TFCompressError(f"shard folder {folder!r} lacks {len(gone)} shard(s) its manifest lists (first: "
                              f"{gone[0]}): write it again with tfcompress data make")
    return manifest


def _whole(value, name):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TFCompressError(f"{name} must be a whole number, got {value!r}") from None


def _shard_frames(chunks, shard_rows):
    """Frames of ``shard_rows`` rows (the last fewer) cut from the stream of chunk frames."""
    buffered, count = [], 0
    for chunk in chunks:
        buffered.append(chunk)
        count += len(chunk)
        while count >= shard_rows:
            joined = pd.concat(buffered, ignore_index=True)
            yield joined.iloc[:shard_rows].reset_index(drop=True)
            rest = joined.iloc[shard_rows:].reset_index(drop=True)
            buffered, count = [rest], len(rest)
    if count:
        yield pd.concat(buffered, ignore_index=True)


class _Fingerprint:
    """sha256 of the rows, column by column in order: the same for any cut into shards and any format."""

    def __init__(self):
        self.columns = {}

    def update(self, frame):
        for c in frame.columns:
            self.columns.setdefault(c, hashlib.sha256()).update(frame[c].to_numpy().tobytes())

    def hexdigest(self):
        top = hashlib.sha256()
        for c in sorted(self.columns):
            top.update(f"{c}:{self.columns[c].hexdigest()};".encode())
        return top.hexdigest()


class _TimeCuts:
    """The timestamps where the time-ordered rows cut into train / validation / test (``SPLIT_FRACTIONS``,
    as :func:`~tfcompress.data.time_split` cuts them): train is ``timestamp < cuts[0]``, test ``>= cuts[1]``."""

    def __init__(self, events):
        self.at = [int(events * sum(SPLIT_FRACTIONS[:i + 1]) + 1e-9) for i in range(2)]
        self.seen, self.cuts = 0, [None, None]

    def update(self, timestamps):
        for i, row in enumerate(self.at):
            if self.seen <= row < self.seen + len(timestamps):
                self.cuts[i] = int(timestamps[row - self.seen])
        self.seen += len(timestamps)


def _write_parquet(frame, path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _write_csv(frame, path):
    frame.to_csv(path, index=False)


def _write_tfrecord(frame, path):
    from .._keras import tf

    ints = [c for c in frame.columns if frame[c].dtype.kind in "iub"]
    with tf.io.TFRecordWriter(path) as writer:
        for row in frame.itertuples(index=False):
            feature = {c: (tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)])) if c in ints else
                           tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)])))
                       for c, v in zip(frame.columns, row)}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


_WRITERS = {"parquet": _write_parquet, "csv": _write_csv, "tfrecord": _write_tfrecord}
