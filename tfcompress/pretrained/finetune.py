"""Fine-tuning a pretrained encoder with a linear head, in Keras 3 (``top:N`` layers or ``full``).

The backbone is cloned first (the loaded encoder stays as it was), its lower layers frozen for
``top:N``, and a Dense head is put on the mean-pooled output, started from the linear probe's weights
(linear probing, then fine-tuning: the pretrained features are not wrecked by a random head's first
gradients). Training is AdamW with the cross-entropy on batches cut to their longest text; with
validation texts, the epoch with the best validation accuracy is kept. A step of 32 x 128 tokens of
MiniLM-L6 takes seconds on a small CPU, so ``progress(step, steps)`` reports each step.

Example:
    >>> default_learning_rate("full"), default_learning_rate("top")
    (3e-05, 0.0001)
"""
import numpy as np

from ..errors import TFCompressError
from .forward import batches, mean_pool, run_batched, sequence_output

DEFAULT_EPOCHS = 2


def default_learning_rate(kind):
    """AdamW's learning rate for fine-tuning everything (``full``) or the top layers (``top``)."""
    return 3e-5 if kind == "full" else 1e-4


def clone_backbone(backbone):
    """A keras-hub backbone with the same config and weights (a new Keras 3 model)."""
    copy = type(backbone).from_config(backbone.get_config())
    copy.set_weights(backbone.get_weights())
    return copy


def freeze(backbone, kind, top):
    """Make only the top ``top`` transformer layers trainable (``kind == "top"``), or all but the pooler."""
    layers = list(getattr(backbone, "transformer_layers", []))
    if kind == "full":
        backbone.trainable = True
        _freeze_pooler(backbone)
        return
    if not layers or top > len(layers):
        raise TFCompressError(f"teacher head top:{top} asks for more layers than the encoder has "
                              f"({len(layers)}): pass top:N with N <= {len(layers)}, or full")
    for layer in backbone.layers:
        layer.trainable = False
    for layer in layers[len(layers) - top:]:
        layer.trainable = True


def _freeze_pooler(backbone):
    """The pooler (BERT's ``pooled_dense``) is not on the mean-pooled path: no gradient reaches it."""
    for layer in backbone.layers:
        if layer.name == "pooled_dense":
            layer.trainable = False


def classifier(backbone, pad_id, weights):
    """A Keras 3 model ``token_ids -> logits``: mean-pooled backbone output and a Dense head set to
    ``weights`` = ``(W, b)``."""
    import keras as keras3

    token_ids = keras3.Input((None,), dtype="int32", name="token_ids")
    hidden = sequence_output(backbone, token_ids, pad_id)
    pooled = mean_pool(keras3.ops, hidden, keras3.ops.not_equal(token_ids, pad_id))
    head = keras3.layers.Dense(weights[0].shape[1], name="teacher_head")
    logits = head(pooled)
    head.set_weights([np.asarray(w, np.float32) for w in weights])
    return keras3.Model(token_ids, logits, name="pretrained_classifier")


def train(model, ids, y, *, pad_id, epochs, batch_size, learning_rate, seed, val=None, progress=None):
    """Fine-tune ``model`` on token ids ``ids`` and labels ``y``; keep the best epoch on ``val`` =
    ``(ids, labels)`` when given. Returns the per-epoch history (loss, and val accuracy)."""
    import keras as keras3

    model.compile(optimizer=keras3.optimizers.AdamW(learning_rate, weight_decay=0.01),
                  loss=keras3.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(seed)
    steps, done, history = epochs * -(-len(ids) // batch_size), 0, []
    best, best_acc = None, -1.0
    for _ in range(epochs):
        losses = []
        for rows, batch in batches(ids, pad_id, batch_size, order=rng.permutation(len(ids))):
            losses.append(float(np.asarray(model.train_on_batch(batch, y[rows]))))
            done += 1
            if progress is not None:
                progress(done, steps)
        record = {"loss": float(np.mean(losses))}
        if val is not None:
            record["val_accuracy"] = accuracy(model, *val, pad_id=pad_id, batch_size=batch_size)
            if record["val_accuracy"] > best_acc:
                best, best_acc = [np.array(w) for w in model.trainable_weights], record["val_accuracy"]
        history.append(record)
    if best is not None:
        for variable, value in zip(model.trainable_weights, best):
            variable.assign(value)
    return history


def accuracy(model, ids, labels, *, pad_id, batch_size=64):
    """Accuracy of ``model``'s argmax on token ids ``ids``."""
    logits = run_batched(model.predict_on_batch, ids, pad_id, batch_size)
    return float((logits.argmax(axis=1) == np.asarray(labels)).mean())


def flat_weights(model):
    """The trainable weights of ``model`` as one float32 vector (what the cache stores)."""
    return np.concatenate([np.asarray(w, np.float32).ravel() for w in model.trainable_weights])


def set_flat_weights(model, flat):
    """Assign a vector from :func:`flat_weights` back to ``model``'s trainable weights."""
    sizes = [int(np.prod(w.shape)) for w in model.trainable_weights]
    if sum(sizes) != flat.size:
        raise TFCompressError(f"cached teacher weights have {flat.size} values, the model takes {sum(sizes)}: "
                              "clear the teacher cache folder")
    for variable, part in zip(model.trainable_weights, np.split(flat, np.cumsum(sizes)[:-1])):
        variable.assign(part.reshape(variable.shape))
