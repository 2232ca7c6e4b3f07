"""Per-row quantized tables: a frozen int8 or int4 table with one float scale per row, made from a trained
table, and :func:`quantize_tables` that swaps a whole model's tables for them.

Example:
    >>> import numpy as np
    >>> table = np.random.default_rng(0).normal(size=(50, 8)).astype("float32")
    >>> RowInt8Embedding.from_embedding(table).table_bytes(), RowInt4Embedding.from_embedding(table).table_bytes()
    (600, 400)
"""
import numpy as np

from .._keras import keras, tf
from ..errors import TFCompressError
from .embedding_base import _Compressed, _no_autograph, safe_ids
from .utils import check_functional


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
