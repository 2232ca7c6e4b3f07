"""What every embedding table of tfcompress shares: out-of-vocabulary-safe ids and table accounting.

Every table maps ids outside ``[0, vocab_size)`` (negative, or too large) to row 0, the "unknown" id of
:class:`~tfcompress.data.FeatureSpec`, with int32 ops only (LESS, GREATER_EQUAL, SELECT_V2), so a phone never
crashes on a new id; each has ``table_params`` and ``table_bytes(bits)``.

Example:
    >>> import numpy as np
    >>> safe_ids(np.array([1, 7, -2]), 5).numpy().tolist()
    [1, 0, 0]
    >>> SafeEmbedding(10, 4)(np.array([3, 99])).shape
    TensorShape([2, 4])
"""
import math

import numpy as np

from .._keras import keras, tf
from ..errors import TFCompressError


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
class SafeEmbedding(keras.layers.Embedding):
    """``keras.layers.Embedding`` that maps ids outside ``[0, input_dim)`` to 0 instead of failing.

    Example:
        >>> layer = SafeEmbedding(5, 2)
        >>> bool((layer(np.array([7])).numpy() == layer(np.array([0])).numpy()).all()), layer.table_params
        (True, 10)
    """

    def call(self, inputs):
        return super().call(safe_ids(inputs, self.input_dim))

    @property
    def table_params(self):
        return int(self.input_dim * self.output_dim)

    def table_bytes(self, bits=32):
        return int(math.ceil(self.table_params * bits / 8))
