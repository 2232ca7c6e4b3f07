"""Review/title text classifiers: a Transformer-encoder teacher and an int8-friendly CNN student.

Both are tf_keras functional models with one int32 input ``token_ids`` ``[batch, seq_len]`` (ids from
:mod:`tfcompress.data.text`, 0 = padding) and one output of class **logits** ``[batch, num_classes]``.

* :func:`text_teacher` — token + learned position embeddings, then ``blocks`` post-norm Transformer
  encoder blocks (``MultiHeadAttention`` with a padding mask, ``LayerNormalization``, a GELU feed-forward
  network); the output of block ``i`` is the layer named ``block_i`` (``[batch, seq_len, d_model]``) for
  hidden-state matching; a masked mean over tokens feeds the classifier.
* :func:`text_student` — ``kind="cnn"`` (default): embedding, one 1-D convolution over tokens (a ``Conv2D``
  with a ``(kernel_size, 1)`` kernel, which tfmot QAT supports) + ReLU, global max pooling, a small dense layer; ``kind="bag"``: embedding bag (mean of the token embeddings). Both convert to full int8
  TFLite with only ``TFLITE_BUILTINS_INT8`` ops (GATHER, CONV_2D, MAX/MEAN, FULLY_CONNECTED), prune with
  tfmot and take QAT (the Embedding stays float in QAT; the converter quantizes its table at export).
  ``kind="transformer"`` gives a one-block Transformer student (a small teacher, hidden state ``block_0``)
  for hidden-state matching; it converts with ``TFLITE_BUILTINS_INT8`` too, but with ~25 op kinds and a
  larger int8 error (layer norm, softmax and GELU in int8; see :func:`text_student`).

Example:
    >>> m = text_student(vocab_size=100, num_classes=3, seq_len=16)
    >>> m.input.name, m.input.dtype.name, m.output_shape
    ('token_ids', 'int32', (None, 3))
"""
from .._keras import keras, tf
from ..errors import TFCompressError

INPUT_NAME = "token_ids"
STUDENT_KINDS = ("cnn", "bag", "transformer")


def _positive(**values):
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) and not (hasattr(v, "__index__")):
            raise TFCompressError(f"{name} must be a positive integer, got {v!r}")
        if int(v) < 1:
            raise TFCompressError(f"{name} = {v} must be >= 1")
    return [int(v) for v in values.values()]


def _check_common(vocab_size, num_classes, seq_len):
    vocab_size, num_classes, seq_len = _positive(vocab_size=vocab_size, num_classes=num_classes, seq_len=seq_len)
    if vocab_size < 3:
        raise TFCompressError(f"vocab_size = {vocab_size} is too small: pass len(vocabulary) (>= 3)")
    if num_classes < 2:
        raise TFCompressError(f"num_classes = {num_classes} must be >= 2 (one logit per class)")
    return vocab_size, num_classes, seq_len


@keras.utils.register_keras_serializable(package="tfcompress")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned position vector to each of the ``seq_len`` positions of ``[batch, seq_len, dim]``.

    Example:
        >>> x = keras.Input((5, 4))
        >>> keras.Model(x, PositionEmbedding(5)(x)).count_params()
        20
    """

    def __init__(self, seq_len, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.seq_len = int(seq_len)
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-2] is not None and int(input_shape[-2]) != self.seq_len:
            raise TFCompressError(f"PositionEmbedding({self.seq_len}) got sequences of length {input_shape[-2]}")
        self.embeddings = self.add_weight("embeddings", shape=(self.seq_len, int(input_shape[-1])),
                                          initializer=self.initializer, trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        return inputs + tf.cast(self.embeddings, inputs.dtype)[tf.newaxis]

    def get_config(self):
        config = super().get_config()
        config.update({"seq_len": self.seq_len, "initializer": keras.initializers.serialize(self.initializer)})
        return config


@keras.utils.register_keras_serializable(package="tfcompress")
class PaddingMask(keras.layers.Layer):
    """``[batch, seq_len]`` ids -> attention mask ``[batch, 1, seq_len]`` (True where the id is not 0).

    Example:
        >>> PaddingMask()(tf.constant([[3, 0]])).numpy().tolist()
        [[[True, False]]]
    """

    def call(self, ids):
        return tf.not_equal(ids, 0)[:, tf.newaxis, :]


@keras.utils.register_keras_serializable(package="tfcompress")
class MaskedMean(keras.layers.Layer):
    """Mean of ``[batch, seq_len, dim]`` over the positions whose id (second input) is not 0.

    Example:
        >>> h = tf.constant([[[1.0], [3.0]]])
        >>> MaskedMean()([h, tf.constant([[5, 0]])]).numpy().tolist()
        [[1.0]]
    """

    def call(self, inputs):
        h, ids = inputs
        m = tf.cast(tf.not_equal(ids, 0), h.dtype)[..., tf.newaxis]
        return tf.reduce_sum(h * m, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)


def _encoder_block(x, mask, i, d_model, heads, ffn_dim, dropout):
    attn = keras.layers.MultiHeadAttention(heads, d_model // heads, dropout=dropout, name=f"attention_{i}")(
        x, x, attention_mask=mask)
    attn = keras.layers.Dropout(dropout, name=f"attention_dropout_{i}")(attn)
    x = keras.layers.LayerNormalization(epsilon=1e-6, name=f"attention_norm_{i}")(
        keras.layers.Add(name=f"attention_residual_{i}")([x, attn]))
    h = keras.layers.Dense(ffn_dim, activation="gelu", name=f"ffn_in_{i}")(x)
    h = keras.layers.Dense(d_model, name=f"ffn_out_{i}")(h)
    h = keras.layers.Dropout(dropout, name=f"ffn_dropout_{i}")(h)
    return keras.layers.LayerNormalization(epsilon=1e-6, name=f"block_{i}")(
        keras.layers.Add(name=f"ffn_residual_{i}")([x, h]))


def _transformer(vocab_size, num_classes, seq_len, d_model, heads, blocks, ffn_dim, dropout, name):
    d_model, heads, blocks = _positive(d_model=d_model, heads=heads, blocks=blocks)
    if d_model % heads:
        raise TFCompressError(f"d_model = {d_model} is not divisible by heads = {heads}: pick e.g. "
                              f"d_model={heads * max(1, d_model // heads)}")
    ffn_dim = int(ffn_dim or 4 * d_model)
    ids = keras.Input((seq_len,), dtype="int32", name=INPUT_NAME)
    x = keras.layers.Embedding(vocab_size, d_model, name="token_embedding")(ids)
    x = PositionEmbedding(seq_len, name="position_embedding")(x)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    mask = PaddingMask(name="padding_mask")(ids)
    for i in range(blocks):
        x = _encoder_block(x, mask, i, d_model, heads, ffn_dim, dropout)
    pooled = MaskedMean(name="pool")([x, ids])
    logits = keras.layers.Dense(num_classes, name="logits")(pooled)
    return keras.Model(ids, logits, name=name)


def text_teacher(vocab_size, num_classes, seq_len, d_model=128, heads=4, blocks=4, *, ffn_dim=None,
                 dropout=0.1, name="text_teacher"):
    """A Transformer-encoder text classifier: ``token_ids`` int32 ``[None, seq_len]`` -> logits.

    Hidden states: layers ``block_0`` ... ``block_{blocks-1}`` (``[batch, seq_len, d_model]``); use
    :func:`hidden_states` to get a model that outputs them.

    Example:
        >>> t = text_teacher(vocab_size=200, num_classes=2, seq_len=8, d_model=16, heads=2, blocks=2)
        >>> t.get_layer("block_1").output.shape.as_list(), t.output_shape
        ([None, 8, 16], (None, 2))
    """
    vocab_size, num_classes, seq_len = _check_common(vocab_size, num_classes, seq_len)
    return _transformer(vocab_size, num_classes, seq_len, d_model, heads, blocks, ffn_dim, dropout, name)


def text_student(vocab_size, num_classes, seq_len, *, kind="cnn", embed_dim=64, filters=64, kernel_size=3,
                 hidden=64, dropout=0.1, heads=2, name="text_student"):
    """A small text classifier that converts to int8 TFLite: ``token_ids`` int32 -> logits.

    ``kind``: ``"cnn"`` (Embedding -> token convolution (``filters``, ``kernel_size``) + ReLU -> GlobalMaxPool ->
    Dense(``hidden``) + ReLU -> logits), ``"bag"`` (Embedding -> GlobalAveragePool over all positions ->
    Dense(``hidden``) -> logits) or ``"transformer"`` (one encoder block of width ``embed_dim``, hidden state
    ``block_0``). All three convert to full int8 with ``TFLITE_BUILTINS_INT8`` only (the padding mask is an
    int32/bool NOT_EQUAL + CAST, allowed there). The ``cnn`` student (GATHER, CONV_2D, REDUCE_MAX,
    FULLY_CONNECTED) is the default: its int8 logits stay within ~0.01 of Keras, while the transformer's
    (BATCH_MATMUL, SOFTMAX, GELU, layer-norm arithmetic in int8, dynamic-shape ops) drift ~10x more.

    Example:
        >>> m = text_student(300, 4, 32, kind="bag")
        >>> [l.name for l in m.layers][:3]
        ['token_ids', 'token_embedding', 'pool']
    """
    vocab_size, num_classes, seq_len = _check_common(vocab_size, num_classes, seq_len)
    if kind not in STUDENT_KINDS:
        raise TFCompressError(f"text_student kind {kind!r} is not one of {STUDENT_KINDS}")
    embed_dim, hidden = _positive(embed_dim=embed_dim, hidden=hidden)
    if kind == "transformer":
        return _transformer(vocab_size, num_classes, seq_len, embed_dim, heads, 1, 2 * embed_dim, dropout, name)
    ids = keras.Input((seq_len,), dtype="int32", name=INPUT_NAME)
    x = keras.layers.Embedding(vocab_size, embed_dim, name="token_embedding")(ids)
    if kind == "cnn":
        filters, kernel_size = _positive(filters=filters, kernel_size=kernel_size)
        # A 1-D convolution over tokens written as Conv2D on [seq_len, 1, embed_dim]: tfmot QAT has an 8-bit
        # config for Conv2D but none for Conv1D (and TFLite runs Conv1D as CONV_2D anyway).
        x = keras.layers.Reshape((seq_len, 1, embed_dim), name="as_image")(x)
        x = keras.layers.Conv2D(filters, (kernel_size, 1), padding="same", activation="relu", name="conv")(x)
        x = keras.layers.GlobalMaxPooling2D(name="pool")(x)
    else:
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(hidden, activation="relu", name="hidden")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(ids, logits, name=name)


def hidden_states(model, blocks=None):
    """A model from ``token_ids`` to ``[logits, block_0, block_1, ...]`` (hidden-state matching).

    Example:
        >>> t = text_teacher(100, 2, 8, d_model=8, heads=2, blocks=2)
        >>> len(hidden_states(t).outputs)
        3
    """
    names = [l.name for l in model.layers if l.name.startswith("block_")]
    if blocks is not None:
        names = [f"block_{i}" for i in blocks]
        missing = [n for n in names if n not in {l.name for l in model.layers}]
        if missing:
            raise TFCompressError(f"model {model.name!r} has no layer(s) {missing}")
    if not names:
        raise TFCompressError(f"model {model.name!r} has no block_i layers: build it with text_teacher")
    return keras.Model(model.inputs, [model.output] + [model.get_layer(n).output for n in names],
                       name=f"{model.name}_hidden")


def text_custom_objects():
    """The custom layers of the text models, for ``keras.models.load_model(..., custom_objects=...)``
    (:func:`tfcompress.models.custom_objects` holds every tfcompress layer)."""
    from .registry import custom_objects

    return {name: obj for name, obj in custom_objects().items() if obj.__module__ == __name__}
