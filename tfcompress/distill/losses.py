"""Distillation losses, each a plain function of teacher and student outputs (logits).

All return a per-example loss (shape ``(batch,)``); the :class:`~tfcompress.distill.Distiller` averages
them over the global batch and applies the ``T²`` factor.

Example:
    >>> import numpy as np
    >>> t = np.array([[2.0], [-1.0]], "float32"); s = np.array([[1.0], [0.0]], "float32")
    >>> loss = binary_soft_target_loss(t, s, temperature=2.0).numpy()
    >>> loss.shape
    (2,)
"""
import inspect
import os
import warnings

from .._keras import tf
from ..errors import TFCompressError
from ..objectives import objective_from


def _flat(x):
    x = tf.convert_to_tensor(x)
    return tf.reshape(x, [tf.shape(x)[0], -1])


def binary_soft_target_loss(teacher_logits, student_logits, temperature=1.0):
    """Cross-entropy of the student's tempered sigmoid against the teacher's tempered probabilities,
    ``-[p_t log p_s + (1 - p_t) log(1 - p_s)]`` with ``p = sigmoid(logit / T)``, averaged over outputs."""
    t = _flat(teacher_logits) / temperature
    s = _flat(student_logits) / temperature
    p_t = tf.sigmoid(t)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=p_t, logits=s), axis=-1)


def softmax_kl_loss(teacher_logits, student_logits, temperature=1.0):
    """``KL(softmax(t/T) || softmax(s/T))`` over the last axis (Hinton et al., 2015)."""
    t = tf.convert_to_tensor(teacher_logits) / temperature
    s = tf.convert_to_tensor(student_logits) / temperature
    p_t = tf.nn.softmax(t, axis=-1)
    return tf.reduce_sum(p_t * (tf.nn.log_softmax(t, axis=-1) - tf.nn.log_softmax(s, axis=-1)), axis=-1)


def binary_label_loss(labels, student_logits):
    """Binary cross-entropy of the student's logits against 0/1 labels, per example."""
    s = _flat(student_logits)
    y = tf.reshape(tf.cast(labels, s.dtype), tf.shape(s))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=s), axis=-1)


def sparse_softmax_label_loss(labels, student_logits):
    """Softmax cross-entropy of the student's logits against integer class labels, per example."""
    y = tf.reshape(tf.cast(labels, tf.int32), [-1])
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=student_logits)


RESPONSE_LOSSES = {
    "binary": (binary_label_loss, binary_soft_target_loss),
    "multiclass": (sparse_softmax_label_loss, softmax_kl_loss),
}


def mse_loss(teacher_out, student_out, temperature=None):
    """Mean squared error of the student's outputs to the teacher's, per example (``temperature`` is
    ignored: regression outputs are matched as they are)."""
    t, s = _flat(teacher_out), _flat(student_out)
    return tf.reduce_mean(tf.square(s - tf.cast(t, s.dtype)), axis=-1)


def huber_loss(teacher_out, student_out, temperature=None, delta=1.0):
    """Huber loss (quadratic within ``delta``, linear beyond) of student to teacher outputs, per example."""
    t, s = _flat(teacher_out), _flat(student_out)
    err = tf.abs(s - tf.cast(t, s.dtype))
    quad = tf.minimum(err, delta)
    return tf.reduce_mean(0.5 * tf.square(quad) + delta * (err - quad), axis=-1)


def mse_label_loss(labels, student_out):
    """Mean squared error of the student's outputs to real-valued labels, per example."""
    s = _flat(student_out)
    return tf.reduce_mean(tf.square(s - tf.reshape(tf.cast(labels, s.dtype), tf.shape(s))), axis=-1)


def huber_label_loss(labels, student_out, delta=1.0):
    """Huber loss of the student's outputs to real-valued labels, per example."""
    s = _flat(student_out)
    return huber_loss(tf.reshape(tf.cast(labels, s.dtype), tf.shape(s)), s, delta=delta)


RESPONSE_LOSSES["regression"] = (mse_label_loss, mse_loss)
REGRESSION_LOSSES = {"mse": (mse_label_loss, mse_loss), "huber": (huber_label_loss, huber_loss)}


def listwise_loss(teacher_scores, student_scores, temperature=1.0):
    """ListNet: cross-entropy of ``softmax(s/T)`` against ``softmax(t/T)`` over each list (last axis),
    minus the teacher's entropy (so it is the KL divergence, 0 when the student matches)."""
    return softmax_kl_loss(teacher_scores, student_scores, temperature)


def pairwise_loss(teacher_scores, student_scores, margin=0.0):
    """RankNet on teacher-ordered pairs: for every pair with ``t_i > t_j + margin`` in a list,
    ``log(1 + exp(-(s_i - s_j)))``, averaged over the list's ordered pairs (0 if it has none)."""
    t = tf.convert_to_tensor(teacher_scores)
    s = tf.convert_to_tensor(student_scores)
    dt = t[:, :, None] - t[:, None, :]
    ds = s[:, :, None] - s[:, None, :]
    mask = tf.cast(dt > margin, s.dtype)
    loss = tf.nn.softplus(-ds) * mask
    return tf.math.divide_no_nan(tf.reduce_sum(loss, axis=[1, 2]), tf.reduce_sum(mask, axis=[1, 2]))


def topk_loss(teacher_scores, student_scores, k=3, lam=1.0):
    """Top-K ranking distillation (Tang & Wang, KDD 2018): the teacher's top-``k`` items of each list are
    extra positives for the student, the ``r``-th weighted ``exp(-r/lam)`` (weights normalised to sum 1):
    ``sum_r w_r · log(1 + exp(-s_{π(r)}))``."""
    t = tf.convert_to_tensor(teacher_scores)
    s = tf.convert_to_tensor(student_scores)
    k = int(k)
    idx = tf.math.top_k(t, k=k).indices
    s_top = tf.gather(s, idx, batch_dims=1)
    w = tf.exp(-tf.range(k, dtype=s.dtype) / lam)
    w = w / tf.reduce_sum(w)
    return tf.reduce_sum(w * tf.nn.softplus(-s_top), axis=-1)


def response_losses(objective, regression_loss="mse", huber_delta=1.0):
    """``(label_loss(labels, student), soft_loss(teacher, student, temperature))`` for an objective
    (``"binary"``, ``"multiclass"`` or ``"regression"`` with ``regression_loss`` ``"mse"`` / ``"huber"``).

    Example:
        >>> import numpy as np
        >>> label, soft = response_losses("regression", "huber", huber_delta=0.5)
        >>> float(soft(np.zeros((1, 1), "float32"), np.ones((1, 1), "float32"), None)[0])
        0.375
    """
    if objective != "regression":
        return RESPONSE_LOSSES[objective]
    label, soft = REGRESSION_LOSSES[regression_loss]
    if regression_loss != "huber":
        return label, soft
    delta = float(huber_delta)
    return (lambda y, s: label(y, s, delta=delta)), (lambda t, s, temp: soft(t, s, delta=delta))


def averaged_soft_target_loss(teacher_outputs, student_out, weights, temperature, objective, soft_loss):
    """Per-example loss of the student to the ``weights``-averaged soft target of stacked teacher outputs
    ``[teachers, batch, ...]``: tempered probabilities for binary/multiclass, outputs (through
    ``soft_loss``) for regression."""
    w = tf.reshape(weights, [-1] + [1] * (len(teacher_outputs.shape) - 1))
    s = tf.reshape(student_out, [tf.shape(student_out)[0], -1])
    if objective == "binary":
        p = tf.reduce_sum(w * tf.sigmoid(teacher_outputs / temperature), axis=0)
        p = tf.reshape(p, tf.shape(s))
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=p, logits=s / temperature), axis=-1)
    if objective == "multiclass":
        p = tf.reduce_sum(w * tf.nn.softmax(teacher_outputs / temperature, axis=-1), axis=0)
        log_p = tf.math.log(tf.maximum(p, 1e-12))
        return tf.reduce_sum(p * (log_p - tf.nn.log_softmax(student_out / temperature, axis=-1)), axis=-1)
    return soft_loss(tf.reduce_sum(w * teacher_outputs, axis=0), student_out, temperature)


def resolve_objective(objective, task, default="binary"):
    """``objective`` (or its deprecated alias ``task``, with a DeprecationWarning), checked: a name of
    ``RESPONSE_LOSSES`` or a dict ``{head: name}``.

    Example:
        >>> resolve_objective(None, None), resolve_objective({"click": "binary"}, None)
        ('binary', {'click': 'binary'})
    """
    keyword = "task" if task is not None else "objective"
    objective = objective_from(objective, task, "the Distiller family", default=None, warn=warn_deprecated)
    objective = default if objective is None else objective
    kinds = objective.items() if isinstance(objective, dict) else [(None, objective)]
    for head, kind in kinds:
        if kind not in RESPONSE_LOSSES:
            where = "" if head is None else f"head {head!r}: "
            raise TFCompressError(f"{where}{keyword} {kind!r} is not one of {sorted(RESPONSE_LOSSES)}")
    return dict(objective) if isinstance(objective, dict) else objective


def warn_deprecated(message):
    """A DeprecationWarning pointing at the first caller outside ``tfcompress.distill`` (and Keras)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = inspect.currentframe().f_back, 2
    while frame is not None and (os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here
                                 or f"{os.sep}tf_keras{os.sep}" in frame.f_code.co_filename
                                 or f"{os.sep}tensorflow{os.sep}" in frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)
