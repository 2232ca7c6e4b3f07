"""The Keras 3 forward pass of a text encoder: token ids in, mean-pooled hidden states out, in batches.

:func:`pooled_model` wraps a keras-hub backbone into a Keras 3 model ``token_ids -> [batch, hidden]``: the
padding mask is ``token_ids != pad_id``, segment ids are zeros where the backbone takes them, and the
sequence output is averaged over the non-padding tokens (sentence-transformers' mean pooling).
:func:`run_batched` runs any such model over many sequences, shortest first, each batch cut to the
longest sequence in it (rounded up to a multiple of 32), so short texts do not pay for 128 positions;
the results come back in the input order. Attention ignores padding, so cutting changes nothing.

Example:
    >>> import numpy as np
    >>> ids = np.array([[2, 5, 3, 0], [2, 3, 0, 0]])
    >>> run_batched(lambda x: x.sum(axis=1, keepdims=True), ids, pad_id=0, batch_size=1)[:, 0].tolist()
    [10.0, 5.0]
"""
import numpy as np

BUCKET = 32


def mean_pool(ops, sequence, mask):
    """Mean of ``sequence`` [batch, seq, hidden] over positions where ``mask`` [batch, seq] is true
    (written with ``ops``, Keras 3's ``keras.ops`` or NumPy).

    Example:
        >>> import numpy as np
        >>> mean_pool(np, np.arange(6.0).reshape(1, 3, 2), np.array([[1, 1, 0]])).tolist()
        [[1.0, 2.0]]
    """
    weights = ops.expand_dims(ops.cast(mask, "float32") if ops is not np else mask.astype("float32"), -1)
    total = ops.sum(sequence * weights, axis=1)
    return total / ops.maximum(ops.sum(weights, axis=1), 1.0)


def backbone_inputs(backbone, token_ids, pad_id):
    """The input dict a keras-hub backbone takes, built from ``token_ids`` (a Keras 3 tensor)."""
    from keras import ops

    names = list(backbone.input) if isinstance(backbone.input, dict) else ["token_ids"]
    feed = {"token_ids": token_ids, "padding_mask": ops.not_equal(token_ids, pad_id),
            "segment_ids": ops.zeros_like(token_ids)}
    return {name: feed[name] for name in names if name in feed}


def sequence_output(backbone, token_ids, pad_id, training=None):
    """The backbone's last hidden states [batch, seq, hidden] for ``token_ids``."""
    out = backbone(backbone_inputs(backbone, token_ids, pad_id), training=training)
    return out["sequence_output"] if isinstance(out, dict) else out


def pooled_model(backbone, pad_id):
    """A Keras 3 model ``token_ids [batch, seq] -> mean-pooled hidden states [batch, hidden]``."""
    import keras as keras3

    token_ids = keras3.Input((None,), dtype="int32", name="token_ids")
    hidden = sequence_output(backbone, token_ids, pad_id)
    pooled = mean_pool(keras3.ops, hidden, keras3.ops.not_equal(token_ids, pad_id))
    return keras3.Model(token_ids, pooled, name="mean_pooled_encoder")


def batches(ids, pad_id, batch_size, *, order=None):
    """``(rows, ids cut to the batch's longest sequence)`` for each batch of ``batch_size`` rows, in
    ``order`` (default: shortest first). Widths are multiples of :data:`BUCKET` (few shapes to trace).

    Example:
        >>> [(r.tolist(), b.shape) for r, b in batches(np.array([[2, 5, 3], [2, 3, 0]]), 0, 1)]
        [([1], (1, 3)), ([0], (1, 3))]
    """
    lengths = (ids != pad_id).sum(axis=1)
    order = np.argsort(lengths, kind="stable") if order is None else np.asarray(order)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        longest = int(lengths[rows].max()) if len(rows) else 1
        width = min(ids.shape[1], -(-max(longest, 1) // BUCKET) * BUCKET)
        yield rows, ids[rows, :width]


def run_batched(call, ids, pad_id, batch_size=32, progress=None):
    """``call(batch_ids)`` over all rows of ``ids`` in length-sorted batches; float32 results in row order.
    ``progress(done, total)`` is called after each batch; None when ``ids`` has no rows."""
    out, done = None, 0
    for rows, batch in batches(ids, pad_id, batch_size):
        values = np.asarray(call(batch), dtype=np.float32)
        if out is None:
            out = np.zeros((len(ids),) + values.shape[1:], np.float32)
        out[rows] = values
        done += len(rows)
        if progress is not None:
            progress(done, len(ids))
    return out
