"""Ranking distillation for recommendation: the student learns the teacher's *ordering* of candidates.

Batches are list-shaped: every feature is ``[batch, list_size]`` (one user/query with ``list_size``
candidate items) and labels are ``[batch, list_size]``. Teacher and student stay ordinary pointwise CTR
models (one logit per row); :class:`RankingDistiller` flattens the list, scores it and reshapes the scores
to ``[batch, list_size]`` (a :class:`~tfcompress.distill.RankingDistillation` loss; the
:class:`RankingDistiller` is a :class:`~tfcompress.distill.Distiller` with that one loss). Methods:

* ``"listwise"`` — ListNet: KL of ``softmax(s/T)`` to ``softmax(t/T)`` over each list, times ``T²``.
* ``"pairwise"`` — RankNet on teacher-ordered pairs: ``log(1 + exp(-(s_i - s_j)))`` for ``t_i > t_j``.
* ``"topk"`` — Tang & Wang (KDD 2018): the teacher's top-``k`` items of each list as extra positives,
  weighted ``exp(-rank/lam)``.

The label term is the pointwise click cross-entropy averaged over each list. :func:`make_list_batches`
builds such batches from interaction data.

Example:
    >>> import tfcompress
    >>> d = tfcompress.data.make_ecommerce(events=2000, seed=0)
    >>> ds = make_list_batches(d.events, d.spec, list_size=8, batch_size=16)
    >>> x, y = next(iter(ds))
    >>> tuple(y.shape)[1], tuple(x["item_id"].shape)[1]
    (8, 8)
    >>> t = tfcompress.models.ctr_teacher(d.spec, embedding_dim=8, hidden=(16,))
    >>> r = RankingDistiller(tfcompress.models.ctr_student(d.spec), t, method="topk", top_k=3)
    >>> r.compile()
    >>> sorted(r.fit(ds, epochs=1, verbose=0).history)
    ['distillation_loss', 'loss', 'student_loss']
"""
import numpy as np

from .._keras import tf
from ..data.datasets import frame_to_inputs, labels_of
from ..errors import TFCompressError
from .distillation_losses import RankingDistillation
from .distiller import Distiller


class RankingDistiller(Distiller):
    """Listwise / pairwise / top-K ranking distillation on list-shaped batches (see the module docstring):
    ``Distiller(student, teacher, losses=[RankingDistillation(method, top_k=, lam=, margin=)])``.

    ``top_k`` and ``lam`` are for ``"topk"``; ``margin`` for ``"pairwise"``; ``temperature`` for
    ``"listwise"``. Other keyword arguments go to :class:`Distiller` (``objective`` is ``"binary"``: the
    label term is the click cross-entropy averaged over each list).
    """

    METHODS = RankingDistillation.METHODS

    def __init__(self, student, teacher, *, method="listwise", top_k=3, lam=1.0, margin=0.0, **kwargs):
        loss = RankingDistillation(method, top_k=top_k, lam=lam, margin=margin)
        super().__init__(student, teacher, losses=[loss], **kwargs)
        self.method, self.top_k, self.lam, self.margin = method, int(top_k), float(lam), float(margin)

    def get_config(self):
        return {**self._base_config(), "method": self.method, "top_k": self.top_k, "lam": self.lam,
                "margin": self.margin}


def make_list_batches(events, spec, list_size, *, batch_size=32, user_column="user_id", seed=0, shuffle=True,
                      min_positives=0, as_arrays=False):
    """List-shaped batches ``(x {name: [batch, list_size]}, y [batch, list_size])`` from interaction data.

    Each user's impressions are shuffled and cut into lists of ``list_size``; a short last list is filled
    with negatives sampled from other users' impressions (their item and context features, this user's
    user features, label 0). Lists with fewer than ``min_positives`` clicks are dropped. Returns a
    ``tf.data.Dataset`` (or the ``(x, y)`` arrays with ``as_arrays=True``).

    Example:
        >>> import tfcompress
        >>> d = tfcompress.data.make_ecommerce(events=1000, seed=0)
        >>> x, y = make_list_batches(d.events, d.spec, list_size=5, as_arrays=True)
        >>> y.shape[1], x["user_id"].shape[1], bool((x["user_id"] == x["user_id"][:, :1]).all())
        (5, 5, True)
    """
    list_size = int(list_size)
    _check_list_request(events, spec, list_size, user_column)
    rng = np.random.default_rng(seed)
    x_all = frame_to_inputs(events, spec)
    idx, real = _user_lists(x_all[user_column], list_size, rng)
    y = labels_of(events, spec)[idx].copy()
    y[np.arange(list_size)[None, :] >= real[:, None]] = 0.0  # filled rows are negatives
    user_feats = [f.name for f in spec.features if f.group == "user"] or [user_column]
    x = {name: np.repeat(col[idx][:, :1], list_size, axis=1) if name in user_feats else col[idx]
         for name, col in x_all.items()}
    keep = y.sum(1) >= min_positives
    if not keep.any():
        raise TFCompressError(f"no list has {min_positives} clicks: lower min_positives or use more events")
    x, y = {k: v[keep] for k, v in x.items()}, y[keep]
    if shuffle:
        perm = rng.permutation(len(y))
        x, y = {k: v[perm] for k, v in x.items()}, y[perm]
    if as_arrays:
        return x, y
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


def _check_list_request(events, spec, list_size, user_column):
    if list_size < 2:
        raise TFCompressError(f"list_size must be >= 2, got {list_size}")
    if user_column not in spec.names:
        raise TFCompressError(f"user_column {user_column!r} is not a feature of the spec; features are {spec.names}")
    spec.check_frame(events)
    if len(events) < list_size:
        raise TFCompressError(f"{len(events)} events are fewer than list_size = {list_size}")


def _user_lists(users, list_size, rng):
    """Row indices ``[lists, list_size]`` of each user's shuffled impressions cut into lists (a short last
    list filled with other users' rows) and the number of real rows of each list."""
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(users[order])) + 1
    rows = []
    for group in np.split(order, bounds):
        group = rng.permutation(group)
        for start in range(0, len(group), list_size):
            chunk = group[start:start + list_size]
            fill = list_size - len(chunk)
            if fill:
                others = np.flatnonzero(users != users[chunk[0]])
                chunk = np.concatenate([chunk, rng.choice(others, size=fill, replace=len(others) < fill)])
            rows.append((chunk, list_size - fill))
    return np.stack([r[0] for r in rows]), np.array([r[1] for r in rows])
