"""An on-disk cache of a pretrained teacher's outputs, so reruns and student seeds do not pay it again.

An entry is one NumPy array keyed by :class:`CacheKey`: the encoder's fingerprint, the sha256 of the
texts, the head spec (``"frozen"`` for the encoder's own embeddings), the sequence length, the seed and
what the array is (``"embeddings"``, ``"logits"``, ``"weights"``). Each entry is ``<digest>.npy`` and a
small ``<digest>.json`` manifest (checkpoint, counts, shape), both written atomically (tmp + rename).
The folder is ``$TFCOMPRESS_CACHE``, else ``~/.cache/tfcompress/teachers``.

Example:
    >>> import tempfile
    >>> import numpy as np
    >>> cache = TeacherOutputCache(tempfile.mkdtemp())
    >>> key = CacheKey("f" * 64, texts_sha256(["a", "b"]), "frozen", 128, None, "embeddings", "minilm", 2)
    >>> cache.get(key) is None
    True
    >>> cache.put(key, np.ones((2, 3), np.float32)).shape
    (2, 3)
    >>> cache.get(key).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
"""
import dataclasses
import hashlib
import json
import os

import numpy as np

from .._io import atomic_path, ensure_dir, write_json
from ..errors import check

ENV_VAR = "TFCOMPRESS_CACHE"
WHAT = ("embeddings", "logits", "weights")


def default_folder():
    """``$TFCOMPRESS_CACHE``, else ``~/.cache/tfcompress/teachers``.

    Example:
        >>> default_folder().endswith("teachers") or bool(os.environ.get(ENV_VAR))
        True
    """
    return os.path.expanduser(os.environ.get(ENV_VAR) or os.path.join("~", ".cache", "tfcompress", "teachers"))


def texts_sha256(texts, labels=None):
    """The sha256 (hex) of a list of texts (each with its length, so no two lists collide), and labels.

    Example:
        >>> texts_sha256(["ab", "c"]) != texts_sha256(["a", "bc"])
        True
    """
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    if labels is not None:
        digest.update(b"labels\0" + np.asarray(labels, np.int64).tobytes())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class CacheKey:
    """What one cached array is. ``checkpoint`` and ``count`` go to the manifest, not the identity.

    Example:
        >>> CacheKey("0" * 64, "1" * 64, "probe", 128, 0, "logits").digest() == \
CacheKey("0" * 64, "1" * 64, "probe", 128, 0, "logits", "other name", 5).digest()
        True
    """
    fingerprint: str
    texts: str
    head: str
    sequence_length: int
    seed: object
    what: str
    checkpoint: str = None
    count: int = None

    def __post_init__(self):
        check(self.what in WHAT, f"cache key what = {self.what!r} must be one of {', '.join(WHAT)}")

    def identity(self):
        return {"fingerprint": self.fingerprint, "texts": self.texts, "head": self.head,
                "sequence_length": int(self.sequence_length), "seed": self.seed, "what": self.what}

    def digest(self):
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()


def cache_key(encoder, texts, *, head, seed, what, labels=None):
    """The :class:`CacheKey` of ``what`` an ``encoder`` (anything with ``fingerprint``, ``sequence_length``,
    ``name``) gives for ``texts`` under ``head`` and ``seed``.

    Example:
        >>> from types import SimpleNamespace
        >>> enc = SimpleNamespace(fingerprint="0" * 64, sequence_length=64, name="tiny")
        >>> cache_key(enc, ["x"], head="frozen", seed=None, what="embeddings").count
        1
    """
    return CacheKey(encoder.fingerprint, texts_sha256(texts, labels), head, encoder.sequence_length, seed,
                    what, encoder.name, len(texts))


class TeacherOutputCache:
    """Arrays on disk keyed by :class:`CacheKey` (see the module's example)."""

    def __init__(self, folder=None):
        self.folder = os.fspath(folder) if folder is not None else default_folder()

    def _path(self, key, ext):
        return os.path.join(self.folder, f"{key.digest()}{ext}")

    def get(self, key):
        """The cached array for ``key``, or None (also for an unreadable entry, which the next put replaces)."""
        path = self._path(key, ".npy")
        if not os.path.isfile(path):
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put(self, key, array):
        """Store ``array`` under ``key`` (atomically) with its manifest; return the array."""
        array = np.asarray(array)
        ensure_dir(self.folder, "teacher cache folder")
        with atomic_path(self._path(key, ".npy")) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
        write_json(self._path(key, ".json"), {**key.identity(), "checkpoint": key.checkpoint,
                                              "count": key.count, "shape": list(array.shape),
                                              "dtype": str(array.dtype)})
        return array

    def fetch(self, key, compute):
        """``get(key)``, or ``put(key, compute())`` on a miss."""
        hit = self.get(key)
        return hit if hit is not None else self.put(key, compute())

    def __repr__(self):
        return f"TeacherOutputCache({self.folder!r})"


def fetch(cache, key, compute):
    """``cache.fetch(key, compute)``, or ``compute()`` when ``cache`` is None.

    Example:
        >>> fetch(None, None, lambda: 3)
        3
    """
    return compute() if cache is None else cache.fetch(key, compute)
