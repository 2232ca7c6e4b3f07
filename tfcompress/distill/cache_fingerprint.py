"""Fingerprints of a teacher cache: which teacher made it and from which data, so a stale cache is refused.

* Teacher: a hash of the weights (shapes, dtypes, values; not the layer names) of anything with
  ``get_weights`` (tf_keras, Keras 3), of the file of a ``.tflite`` teacher, of every file of a SavedModel
  folder; ``"callable"`` for a plain function (nothing to hash: it always matches another callable).
* Data: for input shard files, each file's name (not its folder), size and content hash
  (:func:`~tfcompress._io.hash_file`); for a dataset, a hash of its elements (features and labels, in order,
  independent of the batch size) — computed while the cache is written, and by a pass without the teacher
  when a cache is checked.

Example:
    >>> import numpy as np, tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices((np.arange(6.0), np.arange(6))).batch(4)
    >>> dataset_fingerprint(ds) == dataset_fingerprint(ds.unbatch().batch(5))
    True
    >>> teacher_fingerprint(lambda x: x)
    'callable'
"""
import hashlib
import json
import os

import numpy as np

from .._io import hash_file, path_sha256
from .._keras import tf
from ..errors import TFCompressError

CALLABLE = "callable"


def digest(obj):
    """``"sha256:<16 hex>"`` of a JSON-able object (sorted keys).

    Example:
        >>> digest({"b": 1, "a": 2}) == digest({"a": 2, "b": 1}), len(digest([1]))
        (True, 23)
    """
    text = json.dumps(obj, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(text).hexdigest()[:16]


def teacher_fingerprint(teacher):
    """The fingerprint of a teacher (see the module docstring): of its weights, its file or folder, or
    ``"callable"``.

    Example:
        >>> teacher_fingerprint(lambda x: x)
        'callable'
    """
    if isinstance(teacher, (str, os.PathLike)):
        return "sha256:" + path_sha256(os.fspath(teacher))[:16]
    if callable(getattr(teacher, "get_weights", None)):
        h = hashlib.sha256()
        for w in teacher.get_weights():
            w = np.ascontiguousarray(w)
            h.update(f"{w.dtype}{w.shape}".encode())
            h.update(w.tobytes())
        return "sha256:" + h.hexdigest()[:16]
    return CALLABLE


def file_fingerprint(path):
    """``{"file": name, "bytes": size, "sha256": 16 hex}`` of one input shard file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TFCompressError(f"input shard {path!r} does not exist: give existing shard files")
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path),
            "sha256": hash_file(hashlib.sha256(), path).hexdigest()[:16]}


def split_batch(batch):
    """``(features, labels or None)`` of a batch ``x``, ``(x,)`` or ``(x, y, ...)``, as NumPy."""
    if isinstance(batch, tuple) and len(batch) >= 2:
        x, y = batch[0], batch[1]
    else:
        x, y = (batch[0] if isinstance(batch, tuple) else batch), None
    return tf.nest.map_structure(np.asarray, x), (None if y is None else np.asarray(y))


class ElementHasher:
    """A hash of arrays fed batch by batch: one digest per key, so the batch size does not change it."""

    def __init__(self):
        self.digests, self.kinds = {}, {}

    def update(self, arrays):
        """Feed a dict name -> array (rows first)."""
        for k, v in arrays.items():
            v = np.asarray(v)
            h = self.digests.setdefault(k, hashlib.sha256())
            self.kinds[k] = f"{v.dtype}{v.shape[1:]}"
            if v.dtype.kind in "OSU":
                for item in v.ravel():
                    b = item if isinstance(item, bytes) else str(item).encode()
                    h.update(len(b).to_bytes(8, "little") + b)
            else:
                h.update(np.ascontiguousarray(v).tobytes())

    def fingerprint(self):
        return digest({k: [self.kinds[k], self.digests[k].hexdigest()] for k in sorted(self.digests)})


def rows_of(x, y):
    """The dict of arrays a batch's features and labels are hashed as."""
    rows = {f"x/{k}": v for k, v in x.items()} if isinstance(x, dict) else {"x/input": x}
    if y is not None:
        rows["y"] = y
    return rows


def dataset_fingerprint(dataset):
    """A hash of a dataset's elements (one pass over it)."""
    hasher = ElementHasher()
    for batch in dataset:
        hasher.update(rows_of(*split_batch(batch)))
    return hasher.fingerprint()


def is_file_list(source):
    """Whether ``source`` is a list of input shard file paths."""
    return isinstance(source, (list, tuple)) and bool(source) and \
        all(isinstance(s, (str, os.PathLike)) for s in source)


def part_fingerprints(data):
    """The per-part data fingerprints of a check's ``data``: file dicts for shard files, element hashes for a
    list of datasets, or ``None`` (with the whole fingerprint) for one dataset: ``(parts, whole)``."""
    if is_file_list(data):
        parts = [file_fingerprint(f) for f in data]
    elif isinstance(data, (list, tuple)):
        parts = [dataset_fingerprint(d) for d in data]
    else:
        return None, dataset_fingerprint(data)
    return parts, digest(parts)


def check_fingerprints(path, manifest, teacher=None, data=None):
    """Raise one line when ``teacher`` or ``data`` (given) is not what the cache at ``path`` was made from."""
    fix = "delete the folder or pass overwrite=True to cache_teacher_outputs"
    have = manifest.get("fingerprints")
    if have is None:
        raise TFCompressError(f"teacher cache {path!r} has no fingerprints (an older tfcompress wrote it): {fix}")
    if teacher is not None:
        now = teacher_fingerprint(teacher)
        if now != have["teacher"]:
            raise TFCompressError(f"teacher cache {path!r} was made by another teacher (cached {have['teacher']}, "
                                  f"yours {now}): {fix}")
    if data is not None:
        parts, whole = part_fingerprints(data)
        if whole != have["data"]:
            cached = [p.get("data") for p in manifest.get("parts", [])]
            changed = [_name(n, i) for i, n in enumerate(parts or []) if i >= len(cached) or cached[i] != n]
            which = f"; changed: {', '.join(changed[:3])}" if changed else ""
            raise TFCompressError(f"teacher cache {path!r} was made from other data (cached {have['data']}, "
                                  f"yours {whole}{which}): {fix}")


def _name(fp, index):
    return f"shard {fp['file']!r}" if isinstance(fp, dict) else f"part {index}"
