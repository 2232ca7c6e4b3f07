"""Compressed embedding tables: where the bytes of a recommendation model are.

A 70,000-id table at 16 dimensions is 1.1M parameters while the MLP above it has a few thousand, so
pruning or int8 of the dense part barely moves the file. These tf_keras layers shrink the table itself.
All take int ids of any shape and return ``ids.shape + (output_dim,)``; every one maps ids outside
``[0, vocab_size)`` (negative, or too large) to row/bucket 0, the "unknown" id of
:class:`~tfcompress.data.FeatureSpec`, with int32 ops only (LESS, GREATER_EQUAL, SELECT_V2), so a phone
never crashes on a new id. Each has ``table_params`` (parameters in its tables) and ``table_bytes(bits)``.

==========================  ===================================================  =====================
layer                       idea                                                 parameters
==========================  ===================================================  =====================
``QREmbedding``             quotient-remainder (Shi et al., 2020): two small     (V/m + m)·d
                            tables, rows combined by product (or sum)
``HashedEmbedding``         hashing trick: ``id mod B`` or a multiplicative      B·d
                            hash (int32-safe), for huge or open id spaces
``MixedDimEmbedding``       frequency-aware: frequent ids wide, rare ids narrow  Σ n_b·d_b + proj + V
                            (projected to ``output_dim``); ``from_frequencies``  (int32 rank map)
``LowRankEmbedding``        V×r table times an r×d projection                    (V + d)·r
``RowInt8Embedding``        per-row int8 table + a float scale per row; kept     V·d bytes + 4V
                            int8 in every TFLite mode (``from_embedding``)
``RowInt4Embedding``        per-row int4, two values packed per int8 byte,       V·d/2 bytes + 4V
                            unpacked after the GATHER with int32 ops
==========================  ===================================================  =====================

:func:`quantize_tables` swaps the trained tables of a whole model for per-row int8 or int4 ones.

A plain ``keras.layers.Embedding`` converted with ``to_tflite(mode="int8")`` keeps its table int8 too (one
scale per tensor; the GATHER runs on int8): see :func:`tflite_embedding_bytes`, which reads the tensor
dtypes of a converted file.

This module holds the trainable kinds and :func:`make_embedding`; the shared base (OOV-safe ids, table
accounting) is :mod:`~tfcompress.models.embedding_base`, the per-row tables :mod:`~tfcompress.models.row_tables`
and the byte counts :mod:`~tfcompress.models.embedding_sizes`, all importable from here too.

Example:
    >>> import numpy as np
    >>> layer = QREmbedding(10_000, 16)
    >>> layer(np.array([3, 10**6, -5])).shape
    TensorShape([3, 16])
    >>> layer.table_params, 10_000 * 16
    (3200, 160000)
"""
import math

import numpy as np

from .._keras import keras, tf
from ..errors import TFCompressError
from .embedding_base import SafeEmbedding, _Compressed, _no_autograph, safe_ids
from .embedding_sizes import embedding_bytes, embedding_params, tflite_embedding_bytes  # noqa: F401
from .row_tables import RowInt4Embedding, RowInt8Embedding, quantize_tables  # noqa: F401

__all__ = ["QREmbedding", "HashedEmbedding", "MixedDimEmbedding", "LowRankEmbedding", "RowInt8Embedding",
           "RowInt4Embedding", "quantize_tables", "safe_ids", "make_embedding", "EMBEDDING_KINDS",
           "embedding_params", "embedding_bytes", "tflite_embedding_bytes", "SafeEmbedding"]

EMBEDDING_KINDS = ("full", "qr", "hash", "mixed", "lowrank", "int8row", "int4row")


@keras.utils.register_keras_serializable(package="tfcompress")
class QREmbedding(_Compressed):
    """Quotient-remainder embedding (Shi et al., 2020): ``E_q[id // m] * E_r[id % m]`` (or ``+``).

    ``num_buckets`` = m (default ``ceil(sqrt(vocab_size))``): tables of ``ceil(V/m)`` and ``m`` rows, so
    every id gets a unique pair of rows. ``combiner`` is ``"mult"`` (the paper's best) or ``"add"``.

    Example:
        >>> QREmbedding(100, 4)(np.array([[1, 2]])).shape
        TensorShape([1, 2, 4])
    """

    def __init__(self, vocab_size, output_dim, num_buckets=None, combiner="mult", **kwargs):
        super().__init__(vocab_size, output_dim, **kwargs)
        if combiner not in ("mult", "add"):
            raise TFCompressError(f"QREmbedding combiner {combiner!r} must be 'mult' or 'add'")
        self.num_buckets = int(num_buckets or math.ceil(math.sqrt(self.vocab_size)))
        if not 1 <= self.num_buckets <= self.vocab_size:
            raise TFCompressError(f"QREmbedding num_buckets={num_buckets} must be in [1, vocab_size]")
        self.combiner = combiner

    def build(self, input_shape):
        self.quotient = self._table("quotient", math.ceil(self.vocab_size / self.num_buckets), self.output_dim)
        # with a product, remainder rows start near 1 so that each id starts as its quotient row
        init = keras.initializers.RandomUniform(0.8, 1.2) if self.combiner == "mult" else self.embeddings_initializer
        self.remainder = self.add_weight("remainder", shape=(self.num_buckets, self.output_dim),
                                         initializer=init, trainable=True)
        super().build(input_shape)

    @_no_autograph
    def call(self, ids):
        ids = safe_ids(ids, self.vocab_size)
        q = tf.gather(self.quotient, ids // self.num_buckets)
        r = tf.gather(self.remainder, ids % self.num_buckets)
        return q * r if self.combiner == "mult" else q + r

    def get_config(self):
        config = super().get_config()
        config.update({"num_buckets": self.num_buckets, "combiner": self.combiner})
        return config


@keras.utils.register_keras_serializable(package="tfcompress")
class HashedEmbedding(_Compressed):
    """The hashing trick: ``num_buckets`` rows shared by all ids; row 0 is reserved for id 0 / unknown.

    ``hash="mod"`` uses ``1 + (id - 1) mod (B - 1)``; ``hash="mult"`` first scrambles ids with a
    multiplicative hash ``(id mod P) * A mod P`` (P = 46337, A < P, so no int32 overflow) to spread
    consecutive ids. ``vocab_size`` bounds valid ids (others map to 0); for an open id space pass a large one.

    Example:
        >>> HashedEmbedding(10**9, 8, num_buckets=1000).table_params
        8000
    """

    PRIME = 46337

    def __init__(self, vocab_size, output_dim, num_buckets=1000, hash="mod", salt=40503, **kwargs):  # noqa: A002
        super().__init__(vocab_size, output_dim, **kwargs)
        if hash not in ("mod", "mult"):
            raise TFCompressError(f"HashedEmbedding hash {hash!r} must be 'mod' or 'mult'")
        if int(num_buckets) < 2:
            raise TFCompressError(f"HashedEmbedding num_buckets={num_buckets} must be >= 2")
        self.num_buckets, self.hash, self.salt = int(num_buckets), hash, int(salt) % self.PRIME or 1

    def build(self, input_shape):
        self.embeddings = self._table("embeddings", self.num_buckets, self.output_dim)
        super().build(input_shape)

    def bucket(self, ids):
        """Bucket of each id (0 for id 0 and out-of-vocabulary ids)."""
        ids = safe_ids(ids, self.vocab_size)
        h = ids - 1
        if self.hash == "mult":
            h = (h % self.PRIME) * self.salt % self.PRIME + (h // self.PRIME)
        b = 1 + h % (self.num_buckets - 1)
        return tf.where(tf.equal(ids, 0), tf.zeros_like(ids), b)

    @_no_autograph
    def call(self, ids):
        return tf.gather(self.embeddings, self.bucket(ids))

    def get_config(self):
        config = super().get_config()
        config.update({"num_buckets": self.num_buckets, "hash": self.hash, "salt": self.salt})
        return config


@keras.utils.register_keras_serializable(package="tfcompress")
class MixedDimEmbedding(_Compressed):
    """Frequency-aware mixed-dimension embedding: ids sorted by frequency fall into blocks of
    decreasing width ``dims``; each block's rows are projected to ``output_dim``.

    Build it with :meth:`from_frequencies` (counts per id). ``block_sizes`` are row counts per block
    (summing to ``vocab_size``) in frequency-rank order; the id -> rank map is an int32 weight (4 bytes per
    id, counted in ``table_bytes``). Row 0 (unknown) always sits in the widest block. For int8 TFLite,
    calibrate on ids from every block (rare ones too), else the narrow blocks' ranges are never seen.

    Example:
        >>> layer = MixedDimEmbedding.from_frequencies(np.arange(100), 16, dims=(16, 4))
        >>> layer(np.array([99, 1, 500])).shape
        TensorShape([3, 16])
    """

    def __init__(self, vocab_size, output_dim, block_sizes, dims, ranks=None, **kwargs):
        super().__init__(vocab_size, output_dim, **kwargs)
        self.block_sizes = [int(b) for b in block_sizes]
        self.dims = [int(d) for d in dims]
        if len(self.block_sizes) != len(self.dims) or sum(self.block_sizes) != self.vocab_size \
                or min(self.block_sizes) < 1 or min(self.dims) < 1:
            raise TFCompressError(f"MixedDimEmbedding: block_sizes {self.block_sizes} must be positive and sum to "
                                  f"vocab_size={self.vocab_size}, one per dim in {self.dims}")
        self._ranks_init = None if ranks is None else np.asarray(ranks, np.int32).tolist()

    @classmethod
    def from_frequencies(cls, counts, output_dim, *, dims=None, fractions=(0.1, 0.3, 0.6), **kwargs):
        """Build from ``counts[id]`` (length = vocab size; id 0 forced into the widest block).

        ``fractions`` of ids (most frequent first) get ``dims`` (default ``output_dim``, /2, /4).
        """
        counts = np.asarray(counts, np.float64)
        vocab = len(counts)
        if vocab < 2:
            raise TFCompressError("MixedDimEmbedding.from_frequencies needs counts for at least 2 ids")
        if dims is None:
            dims = [max(1, int(output_dim) // (2 ** i)) for i in range(len(fractions))]
        dims = list(dims)
        if len(fractions) != len(dims):
            fractions = [1.0 / len(dims)] * len(dims)
        sizes, remaining = [], vocab
        for f in fractions[:-1]:
            size = min(max(1, int(round(f * vocab))), remaining - 1)
            if size < 1:
                break
            sizes.append(size)
            remaining -= size
        sizes.append(remaining)
        dims = dims[:len(sizes)]
        key = counts.copy()
        key[0] = np.inf
        order = np.argsort(-key, kind="stable")  # rank -> id
        ranks = np.empty(vocab, np.int32)
        ranks[order] = np.arange(vocab, dtype=np.int32)
        return cls(vocab, output_dim, block_sizes=sizes, dims=dims, ranks=ranks, **kwargs)

    def build(self, input_shape):
        ranks = self._ranks_init if self._ranks_init is not None else np.arange(self.vocab_size)
        self.ranks = self.add_weight("ranks", shape=(self.vocab_size,), dtype=tf.int32, trainable=False,
                                     initializer=keras.initializers.Constant(np.asarray(ranks, np.int32)))
        self.tables, self.projections = [], []
        for b, (n, d) in enumerate(zip(self.block_sizes, self.dims)):
            self.tables.append(self._table(f"table_{b}", n, d))
            self.projections.append(None if d == self.output_dim else self.add_weight(
                f"projection_{b}", shape=(d, self.output_dim), initializer="glorot_uniform", trainable=True))
        super().build(input_shape)

    @_no_autograph
    def call(self, ids):
        rank = tf.gather(self.ranks, safe_ids(ids, self.vocab_size))
        out, start = None, 0
        for n, table, proj in zip(self.block_sizes, self.tables, self.projections):
            local = rank - start
            inside = tf.logical_and(tf.greater_equal(local, 0), tf.less(local, n))
            rows = tf.gather(table, tf.where(inside, local, tf.zeros_like(local)))
            if proj is not None:
                rows = tf.tensordot(rows, proj, axes=1)
            part = rows * tf.expand_dims(tf.cast(inside, rows.dtype), -1)
            out = part if out is None else out + part
            start += n
        return out

    def get_config(self):
        config = super().get_config()
        ranks = self.ranks.numpy().tolist() if self.built else self._ranks_init
        config.update({"block_sizes": self.block_sizes, "dims": self.dims, "ranks": ranks})
        return config


@keras.utils.register_keras_serializable(package="tfcompress")
class LowRankEmbedding(_Compressed):
    """Low-rank factorized table: ``E[id] = A[id] @ B`` with ``A`` of shape (V, rank), ``B`` (rank, d).

    Example:
        >>> LowRankEmbedding(1000, 32, rank=4)(np.array([1])).shape
        TensorShape([1, 32])
    """

    def __init__(self, vocab_size, output_dim, rank=4, **kwargs):
        super().__init__(vocab_size, output_dim, **kwargs)
        if not 1 <= int(rank) <= self.output_dim:
            raise TFCompressError(f"LowRankEmbedding rank={rank} must be in [1, output_dim={self.output_dim}]")
        self.rank = int(rank)

    def build(self, input_shape):
        self.factor = self._table("factor", self.vocab_size, self.rank)
        self.projection = self.add_weight("projection", shape=(self.rank, self.output_dim),
                                          initializer="glorot_uniform", trainable=True)
        super().build(input_shape)

    @_no_autograph
    def call(self, ids):
        return tf.tensordot(tf.gather(self.factor, safe_ids(ids, self.vocab_size)), self.projection, axes=1)

    def get_config(self):
        config = super().get_config()
        config["rank"] = self.rank
        return config


def make_embedding(kind, vocab_size, output_dim, *, name=None, frequencies=None, num_buckets=None, rank=None):
    """An embedding layer of ``kind`` in :data:`EMBEDDING_KINDS` with sensible defaults.

    ``"full"`` is an OOV-safe ``Embedding``; ``"qr"`` uses sqrt(V) buckets; ``"hash"`` V/8 buckets;
    ``"mixed"`` needs ``frequencies`` (counts per id); ``"lowrank"`` rank d/4. ``"int8row"`` / ``"int4row"``
    are made from a trained table (:func:`quantize_tables`), so here they give a trainable ``"full"`` one.

    Example:
        >>> make_embedding("hash", 8000, 16).num_buckets
        1000
    """
    if kind not in EMBEDDING_KINDS:
        raise TFCompressError(f"embedding kind {kind!r} is not one of {EMBEDDING_KINDS}")
    if kind in ("full", "int8row", "int4row"):
        return SafeEmbedding(int(vocab_size), int(output_dim), name=name)
    if kind == "qr":
        return QREmbedding(vocab_size, output_dim, num_buckets=num_buckets, name=name)
    if kind == "hash":
        return HashedEmbedding(vocab_size, output_dim, num_buckets=num_buckets or max(2, int(vocab_size) // 8),
                               name=name)
    if kind == "lowrank":
        return LowRankEmbedding(vocab_size, output_dim, rank=rank or max(1, int(output_dim) // 4), name=name)
    if frequencies is None:
        raise TFCompressError("embedding kind 'mixed' needs frequencies= (interaction counts per id)")
    freq = np.zeros(int(vocab_size))
    f = np.asarray(frequencies, np.float64)[:int(vocab_size)]
    freq[:len(f)] = f
    return MixedDimEmbedding.from_frequencies(freq, output_dim, name=name)
