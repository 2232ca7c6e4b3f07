"""An interactions log streamed from shards: its :class:`FeatureSpec`, the encoding of raw columns into model
inputs inside ``tf.data``, and splits that need no table in memory.

A :class:`ShardLog` comes from the shop's manifest (:func:`~tfcompress.data.write_shop_shards`: the spec and
the time cuts are written there) or from one streaming pass (:func:`~tfcompress.data.scan_shards`: the user
and item vocabularies, ids hashed above ``max_vocab`` distinct values, the hour of the time column, the
label or ``rating >= threshold``). Splits: ``time`` (train before the first cut, validation before the
second, test after; the cuts are time quantiles) or ``user`` (a user's hash picks the part: about 10% of the
users are test, 10% validation). :meth:`ShardLog.held_out` reads the shards once (in Python, not through
``tf.data``) for the validation and test rows (at most ``HOLDOUT_ROWS`` each, a systematic sample beyond) and
a calibration sample of train.

Example:
    >>> import tempfile
    >>> from tfcompress.data import write_shop_shards
    >>> out = tempfile.mkdtemp()
    >>> _ = write_shop_shards(2000, out, shard_rows=1000)
    >>> log = open_shop_log(out)
    >>> ds = log.dataset(0, batch_size=64)
    >>> x, y = next(iter(ds))
    >>> sorted(x) == sorted(log.spec.names), int(y.shape[0])
    (True, 64)
    >>> held = log.held_out(calibration=10)
    >>> held.counts, len(held.calibration["user_id"])
    ([1600, 200, 200], 10)
"""
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import TFCompressError
from .shards import read_manifest
from .spec import Feature, FeatureSpec
from .streaming import scan_shards

#: validation and test rows kept in memory, at most (a systematic sample of a larger part)
HOLDOUT_ROWS = 500_000
#: the user split: hash buckets, and which are test and validation
USER_BUCKETS, TEST_BUCKETS, VAL_BUCKETS = 10, (0,), (1,)
PARTS = ("train", "validation", "test")


@dataclass
class HeldOut:
    """The arrays one pass over the shards gives: validation and test ``(inputs, labels)``, a calibration
    sample of train inputs, and the rows of each part (``counts``: train, validation, test)."""

    validation: tuple
    test: tuple
    calibration: dict
    counts: list


@dataclass
class ShardLog:
    """Shards of interactions and how to read them: ``columns`` read (with their type families), the model
    ``spec``, the ``split`` (``time`` with ``cuts``, or ``user``) and the raw ``roles`` (``user``, ``item``,
    ``time``, ``label``; ``threshold`` for a rating); ``vocabulary`` / ``hashed`` of the encoded ids (none
    for the shop, whose ids are already encoded); ``shares``: the expected share of rows in each part."""

    files: list
    format: str
    types: dict
    spec: FeatureSpec
    rows: int
    positives: int
    split: str
    roles: dict
    cuts: list = None
    vocabulary: dict = field(default_factory=dict)
    hashed: dict = field(default_factory=dict)
    shares: tuple = (0.8, 0.1, 0.1)
    source: str = ""
    encoded: bool = False

    @property
    def columns(self):
        return list(self.types)

    def split_words(self):
        """What the description says of the split."""
        if self.split == "time":
            return f"by time: cut at {self.cuts[0]:,} and {self.cuts[1]:,} of {self.roles['time']!r}"
        return "by hashed user id: about 10% of the users test, 10% validation"

    def notes(self):
        """Lines for the description: the id columns hashed, and why."""
        return [f"{c!r} has too many distinct values to keep: hashed into {b:,} buckets"
                for c, b in self.hashed.items()]

    def transform(self):
        """A function raw batch -> ``(inputs, labels, part)`` for ``tf.data`` (ids looked up or hashed)."""
        return batch_transform(self)

    def dataset(self, part, *, batch_size, shuffle=False, seed=0):
        """The ``(inputs, label)`` batches of part ``part`` (0 train, 1 validation, 2 test), streamed."""
        from .shard_dataset import shard_dataset

        return shard_dataset(self.files, self.format, self.columns, self.types, self.transform(), part=part,
                             batch_size=batch_size, shuffle=shuffle, seed=seed)

    def held_out(self, *, calibration=100, cap=HOLDOUT_ROWS):
        """One pass: the validation and test arrays (at most ``cap`` rows each), ``calibration`` train rows
        (kept: a second call with the same arguments reads nothing)."""
        kept = self.__dict__.setdefault("_held", {})
        if (calibration, cap) not in kept:
            kept[(calibration, cap)] = self._read_held_out(calibration, cap)
        return kept[(calibration, cap)]

    def _read_held_out(self, calibration, cap):
        from .._keras import tf
        from .shard_dataset import raw_batches

        transform = self.transform()
        wanted = [max(1, int(calibration)), cap, cap]
        keep = [_Keeper(max(1, int(np.ceil(self.rows * s / w)))) for s, w in zip(self.shares, wanted)]
        for batch in raw_batches(self.files, self.format, self.columns, self.types):
            x, y, p = transform({c: tf.constant(v) for c, v in batch.items()})
            x, y, p = {n: v.numpy() for n, v in x.items()}, y.numpy(), p.numpy()
            for k, keeper in enumerate(keep):
                mask = p == k
                keeper.update({n: v[mask] for n, v in x.items()}, y[mask])
        counts = [k.seen for k in keep]
        empty = [PARTS[i] for i, c in enumerate(counts) if c == 0]
        if empty:
            raise TFCompressError(f"the {' and '.join(empty)} part of the {self.split} split of {self.source} "
                                  f"is empty ({self.rows} rows): give more rows or another --split")
        (cal, _), val, test = (k.arrays() for k in keep)
        return HeldOut(val, test, {n: v[:int(calibration)] for n, v in cal.items()}, counts)

    def task_fields(self, *, batch_size, calibration, seed=0):
        """The :class:`~tfcompress.tasks.TaskData` fields of a run: train streamed from the shards (parallel
        interleave, a shuffle buffer), validation and test read once into arrays by :meth:`held_out`,
        ``calibration`` rows spread over train, the steps of an epoch and the description line."""
        from .._keras import tf

        held = self.held_out(calibration=calibration)
        (val_x, val_y), (test_x, test_y) = held.validation, held.test
        sampled = " (validation/test: a systematic sample)" if max(held.counts[1:]) > HOLDOUT_ROWS else ""
        notes = "".join(f"; {n}" for n in self.notes())
        return dict(
            train_ds=self.dataset(0, batch_size=batch_size, shuffle=True, seed=seed),
            val_ds=tf.data.Dataset.from_tensor_slices((val_x, val_y)).batch(4096),
            test_inputs=test_x, test_labels=test_y, calibration_inputs=held.calibration,
            latency_inputs={k: v[:1] for k, v in test_x.items()},
            steps_per_epoch=int(np.ceil(held.counts[0] / batch_size)),
            description=(f"{self.rows:,} interactions streamed from {self.source} ({held.counts[0]:,} train / "
                         f"{held.counts[1]:,} validation / {held.counts[2]:,} test, {self.split_words()}){sampled}, "
                         f"click rate {self.positives / self.rows:.1%}{notes}"))


class _Keeper:
    """Rows at every ``stride``-th position of a stream of batches."""

    def __init__(self, stride):
        self.stride, self.seen, self.x, self.y = stride, 0, [], []

    def update(self, x, y):
        start = (-self.seen) % self.stride
        # copies: a strided view would keep the whole batch it was cut from alive (all of train, for a sample)
        self.x.append({n: v[start::self.stride].copy() for n, v in x.items()})
        self.y.append(y[start::self.stride].copy())
        self.seen += len(y)

    def arrays(self):
        names = self.x[0] if self.x else {}
        return {n: np.concatenate([b[n] for b in self.x]) for n in names}, np.concatenate(self.y or [np.zeros(0)])


def open_shop_log(folder, split="time"):
    """The :class:`ShardLog` of a shop shard folder (its manifest gives the spec and the time cuts).

    Example:
        >>> import tempfile
        >>> open_shop_log(tempfile.mkdtemp()) is None
        True
    """
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    spec = FeatureSpec.from_dict(manifest["spec"])
    files = [os.path.join(folder, s["file"]) for s in manifest["shards"]]
    names = [*spec.names, spec.label, "timestamp"]
    shares = (0.8, 0.1, 0.1) if split == "time" else _user_shares()
    return ShardLog(files, manifest["format"], {n: "number" for n in names}, spec, manifest["events"],
                    sum(s["clicks"] for s in manifest["shards"]), split,
                    {"user": "user_id", "time": "timestamp", "label": spec.label}, cuts=manifest["time_split"],
                    shares=shares, encoded=True,
                    source=f"{len(files)} {manifest['format']} shards of the built-in shop (seed {manifest['seed']})")


def _user_shares():
    test, val = len(TEST_BUCKETS) / USER_BUCKETS, len(VAL_BUCKETS) / USER_BUCKETS
    return (1 - test - val, val, test)


def scanned_log(data, files, fmt, roles, *, split, threshold=None, min_count=1, **limits):
    """The :class:`ShardLog` of generic shards ``files`` (of ``--data`` ``data``) after one streaming pass
    (:func:`~tfcompress.data.scan_shards`; ``limits``: its ``max_vocab`` and ``hash_buckets``); ``roles``
    names the ``user``, ``item``, ``time`` (or None) and ``label`` columns (a rating with ``threshold``).
    Features: ``user_id`` and ``item_id`` (vocabulary + the OOV id, or the hash buckets) and ``hour`` with a
    time. A label that is not 0/1 numbers (or a rating), or has one value only, is a one-line error."""
    label = roles["label"]
    stats = scan_shards(files, fmt, ids=(roles["user"], roles["item"]), label=label, time=roles["time"],
                        min_count=min_count, threshold=threshold, **limits)
    if stats.types[label] != "number" or not 0 < stats.positives < stats.rows:
        raise TFCompressError(f"--data {data!r}: label {label!r} must be 0/1 numbers (or a rating) with clicks "
                              f"and non-clicks; found {stats.positives} positives in {stats.rows} rows")
    features = []
    for name, role in (("user_id", "user"), ("item_id", "item")):
        column = roles[role]
        size = stats.hashed.get(column) or len(stats.vocabulary[column]) + 1
        features.append(Feature(name, "categorical", max(2, size), role))
    if roles.get("time"):
        features.append(Feature("hour", "categorical", 25, "context"))
    meta = {} if roles.get("time") else {"no_time": True}
    spec = FeatureSpec(features, label="click", objective="binary", metadata=meta)
    cuts = stats.time_cuts() if split == "time" else None
    shares = ((stats.time_share(hi=cuts[0]), stats.time_share(cuts[0], cuts[1]), stats.time_share(lo=cuts[1]))
              if split == "time" else _user_shares())
    types = {c: stats.types[c] for c in dict.fromkeys(r for r in roles.values() if r)}
    return ShardLog(stats.files, stats.format, types, spec, stats.rows, stats.positives, split,
                    dict(roles, threshold=threshold), cuts=cuts, vocabulary=dict(stats.vocabulary),
                    hashed=dict(stats.hashed), shares=shares,
                    source=f"{len(stats.files)} {stats.format} shards in {data}")


def batch_transform(log):
    """The ``tf.data`` function of :meth:`ShardLog.transform`: raw columns -> ``(inputs, labels, part)``."""
    from .._keras import tf

    spec, roles, threshold = log.spec, log.roles, log.roles.get("threshold")
    ids = {} if log.encoded else {name: (roles[role], _id_encoder(tf, log, roles[role]))
                                  for name, role in (("user_id", "user"), ("item_id", "item"))}

    def transform(batch):
        if log.encoded:
            x = {f.name: tf.cast(batch[f.name], f.dtype) for f in spec.features}
        else:
            x = {name: encode(_keys(tf, batch[column])) for name, (column, encode) in ids.items()}
            if roles.get("time"):
                seconds = tf.cast(batch[roles["time"]], tf.int64)
                x["hour"] = tf.cast(tf.math.floormod(seconds // 3600, 24) + 1, tf.int32)
        y = batch[roles["label"]]
        y = tf.cast(y >= threshold if threshold is not None else y, tf.float32)
        return x, y, _part(tf, log, batch)

    return transform


def _keys(tf, values):
    """Vocabulary keys of a batch, as :func:`~tfcompress.data.value_key` writes them (ints without ``.0``)."""
    return values if values.dtype == tf.string else tf.strings.as_string(tf.cast(values, tf.int64))


def _id_encoder(tf, log, column):
    """keys -> int32 ids of ``column``: its vocabulary (unknown: 0) or its hash buckets (``1..B-1``)."""
    if column in log.hashed:
        buckets = log.hashed[column]
        return lambda k: tf.cast(tf.strings.to_hash_bucket_fast(k, buckets - 1) + 1, tf.int32)
    keys = log.vocabulary[column]
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string), tf.range(1, len(keys) + 1, dtype=tf.int64)),
        default_value=0)
    return lambda k: tf.cast(table.lookup(k), tf.int32)


def _part(tf, log, batch):
    """0 train, 1 validation, 2 test for each row of ``batch``."""
    if log.split == "time":
        t = tf.cast(batch[log.roles["time"]], tf.float64)
        return tf.where(t < log.cuts[0], 0, tf.where(t < log.cuts[1], 1, 2))
    bucket = tf.strings.to_hash_bucket_fast(_keys(tf, batch[log.roles["user"]]), USER_BUCKETS)
    test = tf.reduce_any(tf.equal(bucket[:, None], tf.constant(TEST_BUCKETS, tf.int64)), axis=1)
    val = tf.reduce_any(tf.equal(bucket[:, None], tf.constant(VAL_BUCKETS, tf.int64)), axis=1)
    return tf.where(test, 2, tf.where(val, 1, 0))
