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
from .utils import check_functional

__all__ = ["QREmbedding", "HashedEmbedding", "MixedDimEmbedding", "LowRankEmbedding", "RowInt8Embedding",
           "RowInt4Embedding", "quantize_tables", "safe_ids", "make_embedding", "EMBEDDING_KINDS", "embedding_params",
           "embedding_bytes", "tflite_embedding_bytes"]

EMBEDDING_KINDS = ("full", "qr", "hash", "mixed", "lowrank", "int8row", "int4row")


def safe_ids(ids, vocab_size):
    """int32 ids with everything outside ``[0, vocab_size)`` replaced by 0 (the out-of-vocabulary id).

    Example:
        >>> safe_ids(np.array([1, 7, -2]), 5).numpy().tolist()
        [1, 0, 0]
    """
    ids = tf.cast(ids, tf.int32)
    bad = tf.logical_or(tf.less(ids, 0), tf.greater_equal(ids, int(vocab_size)))
    return tf.where(bad, tf.zeros_like(ids), ids)


def _check_sizes(name, vocab_size, output_dim):
    if int(vocab_size) < 2 or int(output_dim) < 1:
        raise TFCompressError(f"{name}: vocab_size must be >= 2 and output_dim >= 1, "
                              f"got vocab_size={vocab_size}, output_dim={output_dim}")


# These layers have no tensor-dependent Python control flow. Keras runs ``call`` through AutoGraph when a
# model is traced, and AutoGraph failed on them at random there (helper methods called with an extra
# argument; ``super()`` in an initializer built inside ``call``). So AutoGraph leaves them alone.
def _no_autograph(fn):
    # a TF decorator, so Keras still reads the original signature (no ``training`` argument)
    return tf.__internal__.decorator.make_decorator(fn, tf.autograph.experimental.do_not_convert(fn))


class _Compressed(keras.layers.Layer):
    """Shared bookkeeping: vocab_size, output_dim, table accounting."""

    def __init__(self, vocab_size, output_dim, embeddings_initializer="uniform", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        _check_sizes(type(self).__name__, vocab_size, output_dim)
        self.vocab_size = int(vocab_size)
        self.output_dim = int(output_dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    @_no_autograph
    def _table(self, name, rows, cols):
        init = type(self.embeddings_initializer).from_config(self.embeddings_initializer.get_config())
        return self.add_weight(name, shape=(int(rows), int(cols)), initializer=init, trainable=True)

    @property
    def table_params(self):
        """Parameters held by this layer (tables, projections, index maps); builds the layer if needed."""
        self._ensure_built()
        return int(sum(int(np.prod(w.shape)) for w in self.weights))

    def table_bytes(self, bits=32):
        """Bytes of the layer's weights when stored at ``bits`` per value (int32 index maps stay 4 bytes)."""
        self._ensure_built()
        total = 0
        for w in self.weights:
            n = int(np.prod(w.shape))
            total += n * 4 if w.dtype in (tf.int32, "int32") else math.ceil(n * bits / 8)
        return int(total)

    def _ensure_built(self):
        if not self.built:
            self.build(tf.TensorShape([None]))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape).concatenate([self.output_dim])

    def get_config(self):
        config = super().get_config()
        config.update({"vocab_size": self.vocab_size, "output_dim": self.output_dim,
                       "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer)})
        return config


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


class _RowQuantized(_Compressed):
    """A frozen table stored as ``bits``-bit integers with one float scale per row (symmetric,
    ``scale = max|row| / (2**(bits-1) - 1)``); subclasses set ``bits``. Built from a trained table with
    :meth:`from_embedding`. The integer table stays integer in every TFLite mode. Float32 and dynamic-range
    files keep the scales float; a full-int8 file stores them, like every float tensor it quantizes, as
    int8 with one range, so rows whose scale is far below the largest lose precision there (measured: a
    model that outputs the rows of a table whose row norms span 1000x has a median row error of 18 % as an
    int8 file, its int8 output range included, and 0 % as a float32 file)."""

    bits = 8

    def __init__(self, vocab_size, output_dim, values=None, scales=None, **kwargs):
        super().__init__(vocab_size, output_dim, **kwargs)
        self._values = None if values is None else np.asarray(values, np.int8)
        self._scales = None if scales is None else np.asarray(scales, np.float32)

    @classmethod
    def from_embedding(cls, embedding, **kwargs):
        """From a ``keras.layers.Embedding`` (or any layer with one 2-D weight) or a (V, d) array."""
        table = embedding
        if isinstance(embedding, keras.layers.Layer):
            mats = [w for w in embedding.get_weights() if np.ndim(w) == 2]
            if len(mats) != 1:
                raise TFCompressError(f"layer {embedding.name!r} has no single 2-D table to quantize")
            table = mats[0]
            kwargs.setdefault("name", embedding.name)
        table = np.asarray(table, np.float32)
        if table.ndim != 2:
            raise TFCompressError(f"{cls.__name__} needs a (vocab, dim) table, got shape {table.shape}")
        qmax = 2 ** (cls.bits - 1) - 1
        scales = np.abs(table).max(axis=1) / qmax
        scales[scales == 0] = 1.0
        q = np.clip(np.round(table / scales[:, None]), -qmax, qmax).astype(np.int8)
        return cls(table.shape[0], table.shape[1], values=cls._pack(q), scales=scales, **kwargs)

    @staticmethod
    def _pack(q):
        return q

    def _stored_shape(self):
        return (self.vocab_size, self.output_dim)

    def build(self, input_shape):
        shape = self._stored_shape()
        values = self._values if self._values is not None else np.zeros(shape, np.int8)
        if tuple(values.shape) != shape:
            raise TFCompressError(f"{type(self).__name__}: values have shape {values.shape}, expected {shape}")
        scales = self._scales if self._scales is not None else np.ones(self.vocab_size, np.float32)
        self.values = self.add_weight("values", shape=shape, dtype=tf.int8, trainable=False,
                                      initializer=keras.initializers.Constant(values))
        self.scales = self.add_weight("scales", shape=scales.shape, trainable=False,
                                      initializer=keras.initializers.Constant(scales))
        super().build(input_shape)

    def table_bytes(self, bits=None):
        """Bytes: the stored integer table plus a 4-byte scale per row (``bits`` is ignored)."""
        return int(np.prod(self._stored_shape()) + 4 * self.vocab_size)

    def _unpack(self, rows):
        return tf.cast(rows, tf.float32)

    @_no_autograph
    def call(self, ids):
        ids = safe_ids(ids, self.vocab_size)
        return self._unpack(tf.gather(self.values, ids)) * tf.expand_dims(tf.gather(self.scales, ids), -1)

    def get_config(self):
        config = super().get_config()
        values = self.values.numpy() if self.built else self._values
        scales = self.scales.numpy() if self.built else self._scales
        config.update({"values": None if values is None else values.tolist(),
                       "scales": None if scales is None else scales.tolist()})
        return config


@keras.utils.register_keras_serializable(package="tfcompress")
class RowInt8Embedding(_RowQuantized):
    """A frozen per-row int8 table: ``E[id] = q[id] * scale[id]`` with ``q`` int8 and one float scale per
    row (symmetric, ``scale = max|row| / 127``). The int8 table stays int8 in every TFLite mode (float32,
    dynamic, int8), so even a float model ships 4x smaller tables. Not trainable: make it from a trained
    table with :meth:`from_embedding` (or a whole model's tables with :func:`quantize_tables`).

    Example:
        >>> table = np.random.default_rng(0).normal(size=(50, 8)).astype("float32")
        >>> layer = RowInt8Embedding.from_embedding(table)
        >>> float(np.abs(layer(np.arange(50)).numpy() - table).max()) < 0.03
        True
    """


@keras.utils.register_keras_serializable(package="tfcompress")
class RowInt4Embedding(_RowQuantized):
    """A frozen per-row int4 table: values in [-7, 7] with one float scale per row, two values packed in
    each int8 byte, so the table costs V·d/2 bytes + 4V. No TFLite kernel gathers int4, so the layer
    gathers the packed int8 rows and unpacks them with int32 ops (FLOOR_MOD, FLOOR_DIV): it runs in every
    runtime and every TFLite mode, and only the looked-up rows are unpacked. The unpacking ops cost a few
    KB of file per table (4.7 KB measured in a small int8 list-ranking file), so int4 pays off for tables
    of thousands of rows, not for small ones. Make it from a trained table with :meth:`from_embedding` (or
    a whole model's tables with :func:`quantize_tables`).

    Example:
        >>> table = np.random.default_rng(0).normal(size=(50, 8)).astype("float32")
        >>> layer = RowInt4Embedding.from_embedding(table)
        >>> err = np.abs(layer(np.arange(50)).numpy() - table).max(1)
        >>> bool(np.all(err <= np.abs(table).max(1) / 7 / 2 + 1e-6)), layer.table_bytes()
        (True, 400)
    """

    bits = 4

    @staticmethod
    def _pack(q):
        nib = q.astype(np.int16) + 8  # [1, 15]
        if nib.shape[1] % 2:
            nib = np.concatenate([nib, np.full((nib.shape[0], 1), 8, np.int16)], axis=1)
        byte = nib[:, 0::2] + 16 * nib[:, 1::2]  # [0, 255]
        return np.where(byte > 127, byte - 256, byte).astype(np.int8)

    def _stored_shape(self):
        return (self.vocab_size, (self.output_dim + 1) // 2)

    def _unpack(self, rows):
        u = tf.math.floormod(tf.cast(rows, tf.int32), 256)
        both = tf.stack([tf.math.floormod(u, 16), tf.math.floordiv(u, 16)], axis=-1)  # [..., d/2, 2]
        shape = tf.concat([tf.shape(rows)[:-1], [2 * self._stored_shape()[1]]], 0)
        vals = tf.reshape(both, shape)[..., :self.output_dim]
        return tf.cast(vals - 8, tf.float32)


@keras.utils.register_keras_serializable(package="tfcompress")
class SafeEmbedding(keras.layers.Embedding):
    """``keras.layers.Embedding`` that maps ids outside ``[0, input_dim)`` to 0 instead of failing."""

    def call(self, inputs):
        return super().call(safe_ids(inputs, self.input_dim))

    @property
    def table_params(self):
        return int(self.input_dim * self.output_dim)

    def table_bytes(self, bits=32):
        return int(math.ceil(self.table_params * bits / 8))


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


def quantize_tables(model, bits=8, *, min_vocab=0):
    """A copy of the functional ``model`` whose trained ``Embedding`` tables with at least ``min_vocab`` rows
    are frozen per-row ``bits``-bit tables (:class:`RowInt8Embedding` for 8, :class:`RowInt4Embedding`
    for 4); every other layer, and every smaller table, keeps its weights (a model without such a table
    comes back as an unchanged copy). Post-training: no data needed, and the copy converts to TFLite in
    any mode with the tables kept at ``bits`` bits.

    Example:
        >>> inp = keras.Input((), dtype="int32", name="item_id")
        >>> m = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Embedding(1000, 8, name="emb")(inp)))
        >>> q = quantize_tables(m, bits=4)
        >>> type(q.get_layer("emb")).__name__, q.get_layer("emb").table_bytes()
        ('RowInt4Embedding', 8000)
        >>> ids = np.arange(1000)
        >>> bool(np.abs(q.predict(ids, verbose=0) - m.predict(ids, verbose=0)).max() < 0.05)
        True
    """
    classes = {8: RowInt8Embedding, 4: RowInt4Embedding}
    if bits not in classes:
        raise TFCompressError(f"bits={bits!r}: per-row tables are 8 or 4 bits")
    check_functional(model, what="quantize_tables (for a TwoTower, call model.quantize_tables(bits))")
    replaced = set()

    def clone(layer):
        if isinstance(layer, keras.layers.Embedding) and layer.input_dim >= int(min_vocab):
            replaced.add(layer.name)
            return classes[bits].from_embedding(layer)
        return layer.__class__.from_config(layer.get_config())

    new = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name not in replaced and layer.weights:
            new.get_layer(layer.name).set_weights(layer.get_weights())
    return new


def embedding_params(model):
    """Parameters in the model's embedding tables (Embedding layers and the layers of this module).

    Example:
        >>> m = keras.Sequential([keras.Input((), dtype="int32"), keras.layers.Embedding(10, 3)])
        >>> embedding_params(m)
        30
    """
    return _embedding_weights(model, lambda w: 1)


def embedding_bytes(model):
    """Bytes of the model's embedding tables at their stored dtypes (float32 4 bytes a value, the int8
    values of per-row tables 1, packed int4 two values a byte).

    Example:
        >>> m = keras.Sequential([keras.Input((), dtype="int32"), keras.layers.Embedding(10, 3)])
        >>> embedding_bytes(m), embedding_bytes(quantize_tables(m, bits=4))  # 10 x 2 packed bytes + 10 scales
        (120, 60)
    """
    return _embedding_weights(model, lambda w: tf.as_dtype(w.dtype).size)


def _embedding_weights(model, per_value):
    total = 0
    for layer in _all_layers(model):
        if isinstance(layer, (_Compressed, keras.layers.Embedding)):
            total += int(sum(int(np.prod(w.shape)) * per_value(w) for w in layer.weights))
    return total


def _all_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def tflite_embedding_bytes(path):
    """``{"total": file bytes, "embedding": bytes of constant tables read by GATHER ops, "dtypes": {...}}``
    of a ``.tflite`` file (the ``dtypes`` of those tables tell whether they stayed int8).

    Example:
        >>> # tflite_embedding_bytes("model.tflite")["dtypes"]  -> {"...emb_item_id...": "int8", ...}
    """
    import os

    from ..export.runner import _interpreter

    interp = _interpreter(os.fspath(path))
    details = {d["index"]: d for d in interp.get_tensor_details()}
    seen, out_bytes, dtypes = set(), 0, {}
    for op in interp._get_ops_details():  # noqa: SLF001 - the only op-level view the interpreter offers
        if op["op_name"] not in ("GATHER", "EMBEDDING_LOOKUP"):
            continue
        idx = int(op["inputs"][0 if op["op_name"] == "GATHER" else 1])
        if idx in seen or idx not in details:
            continue
        d = details[idx]
        try:
            interp.get_tensor(idx)
        except ValueError:
            continue  # not a constant
        if not len(d["shape"]) or d["shape"].size == 0:
            continue
        seen.add(idx)
        nbytes = int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize
        if nbytes < 64:
            continue
        out_bytes += nbytes
        dtypes[d["name"]] = np.dtype(d["dtype"]).name
    return {"total": os.path.getsize(path), "embedding": int(out_bytes), "dtypes": dtypes}
