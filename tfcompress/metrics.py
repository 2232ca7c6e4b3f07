"""Quality metrics in plain NumPy: classification, regression, ranking and a paired bootstrap.

Floor 0 (no tfcompress import but :mod:`tfcompress.errors`), so models, export and bench can all use it;
``tfcompress.bench`` re-exports every name here.

No TensorFlow here: every function takes array-likes and returns a Python float. Bad input (mismatched
lengths, NaNs, a single class for AUC, ...) raises :class:`~tfcompress.errors.TFCompressError`.

Ranking metrics take one list per user/query (a list of 1-D arrays, ragged allowed, or a 2-D array of
shape ``[n_lists, n_candidates]``). Tied scores are handled as the expected value over a random order of
the tied items, so a quantized model with many equal scores is neither helped nor hurt by tie order.

Example:
    >>> from tfcompress import metrics
    >>> metrics.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> round(metrics.ndcg_at_k([[1, 0, 0]], [[0.1, 0.9, 0.5]], k=3), 4)
    0.5
"""
import math

import numpy as np

from .errors import TFCompressError

__all__ = ["auc", "logloss", "accuracy", "rmse", "ndcg_at_k", "hit_rate_at_k", "recall_at_k",
           "bootstrap_diff"]


# ---------------------------------------------------------------------------------------------------
# Input checks


def _vector(name, values):
    """``values`` as a finite 1-D float array; a ``(n, 1)`` column is flattened."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TFCompressError(f"{name} must be numeric, got {type(values).__name__}") from None
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise TFCompressError(f"{name} must be 1-D (or shape [n, 1]), got shape {a.shape}")
    if a.size == 0:
        raise TFCompressError(f"{name} is empty: pass at least one row")
    if not np.all(np.isfinite(a)):
        raise TFCompressError(f"{name} contains NaN or inf: clean or drop those rows first")
    return a


def _same_length(names, arrays):
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) > 1:
        shown = ", ".join(f"{n} has {k}" for n, k in zip(names, lengths))
        raise TFCompressError(f"lengths differ ({shown}): pass one value per row for each")


def _binary_labels(name, y):
    y = _vector(name, y)
    if not np.all((y == 0) | (y == 1)):
        raise TFCompressError(f"{name} must hold only 0/1 labels, got values {np.unique(y)[:5]}")
    return y


def _average_ranks(x):
    """1-based ranks of ``x``, tied values sharing the average of their ranks."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], len(x)]
    avg = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


# ---------------------------------------------------------------------------------------------------
# Classification and regression


def auc(y_true, scores):
    """ROC AUC of binary labels against scores; ties count one half (Mann-Whitney with average ranks).

    Example:
        >>> auc([0, 1, 0, 1], [0.2, 0.2, 0.1, 0.9])
        0.875
    """
    y = _binary_labels("y_true", y_true)
    s = _vector("scores", scores)
    _same_length(("y_true", "scores"), (y, s))
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        only = "positives" if n_neg == 0 else "negatives"
        raise TFCompressError(f"AUC needs both classes but y_true has only {only}: "
                              "evaluate on more rows")
    ranks = _average_ranks(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def logloss(y_true, probs, eps=1e-7):
    """Mean binary cross-entropy of labels in [0, 1] against probabilities (clipped to [eps, 1-eps]).

    For a 2-D ``probs`` of shape ``[n, classes]``, ``y_true`` holds class ids and the categorical
    cross-entropy is returned.

    Example:
        >>> round(logloss([1, 0], [0.9, 0.1]), 4)
        0.1054
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] > 1:
        ids = _class_ids("y_true", y_true, p.shape[1])
        _same_length(("y_true", "probs"), (ids, p))
        picked = np.clip(p[np.arange(len(ids)), ids], eps, 1.0)
        return float(-np.mean(np.log(picked)))
    y = _vector("y_true", y_true)
    p = _vector("probs", p)
    _same_length(("y_true", "probs"), (y, p))
    if np.any((y < 0) | (y > 1)) or np.any((p < 0) | (p > 1)):
        raise TFCompressError("logloss needs labels and probabilities in [0, 1]: "
                              "apply a sigmoid to logits first")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def _class_ids(name, y_true, n_classes):
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == n_classes:  # one-hot
        y = y.argmax(axis=1)
    y = _vector(name, y)
    if np.any(y != np.round(y)) or y.min() < 0 or y.max() >= n_classes:
        raise TFCompressError(f"{name} must hold class ids in [0, {n_classes}) or one-hot rows")
    return y.astype(np.int64)


def accuracy(y_true, probs_or_logits, *, from_logits=False):
    """Fraction of correct predictions.

    1-D (or ``[n, 1]``) predictions are binary: probability >= 0.5 (or logit >= 0 when
    ``from_logits=True``) means class 1. 2-D predictions ``[n, classes]`` use the argmax; ``y_true`` then
    holds class ids or one-hot rows.

    Example:
        >>> accuracy([1, 0, 1], [0.8, 0.3, 0.4])
        0.6666666666666666
        >>> accuracy([2, 0], [[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
        1.0
    """
    p = np.asarray(probs_or_logits, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] > 1:
        ids = _class_ids("y_true", y_true, p.shape[1])
        _same_length(("y_true", "probs_or_logits"), (ids, p))
        return float(np.mean(p.argmax(axis=1) == ids))
    y = _binary_labels("y_true", y_true)
    p = _vector("probs_or_logits", p)
    _same_length(("y_true", "probs_or_logits"), (y, p))
    threshold = 0.0 if from_logits else 0.5
    return float(np.mean((p >= threshold) == (y == 1)))


def rmse(y_true, y_pred):
    """Root mean squared error.

    Example:
        >>> rmse([1.0, 2.0], [1.0, 4.0])
        1.4142135623730951
    """
    y = _vector("y_true", y_true)
    p = _vector("y_pred", y_pred)
    _same_length(("y_true", "y_pred"), (y, p))
    return float(np.sqrt(np.mean((y - p) ** 2)))


# ---------------------------------------------------------------------------------------------------
# Ranking


def _ranked_lists(relevance_lists, score_lists, k):
    """Yield ``(gains_sorted, tie_groups)`` per list that has at least one relevant item."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise TFCompressError(f"k must be a positive integer, got {k!r}")
    rels, scores = list(relevance_lists), list(score_lists)
    if len(rels) != len(scores):
        raise TFCompressError(f"{len(rels)} relevance lists but {len(scores)} score lists: "
                              "pass one score list per relevance list")
    if not rels:
        raise TFCompressError("no lists given: pass at least one user/query")
    out = []
    for i, (r, s) in enumerate(zip(rels, scores)):
        r = _vector(f"relevance_lists[{i}]", r)
        s = _vector(f"score_lists[{i}]", s)
        if len(r) != len(s):
            raise TFCompressError(f"list {i} has {len(r)} relevance values but {len(s)} scores: "
                                  "pass one score per candidate")
        if np.any(r < 0):
            raise TFCompressError(f"relevance_lists[{i}] has negative values: use grades >= 0")
        if not np.any(r > 0):
            continue
        order = np.argsort(-s, kind="mergesort")
        s_sorted = s[order]
        starts = np.r_[0, np.flatnonzero(np.diff(s_sorted)) + 1]
        ends = np.r_[starts[1:], len(s)]
        out.append((r[order], list(zip(starts, ends))))
    if not out:
        raise TFCompressError("no list has a relevant item (relevance > 0): ranking metrics are "
                              "undefined; check the relevance labels")
    return out


def _slots(start, end, k):
    """How many positions of tie group [start, end) fall inside the top k."""
    return max(0, min(end, k) - start)


def ndcg_at_k(relevance_lists, score_lists, k=10):
    """Mean NDCG@k over lists (linear gain ``rel / log2(rank + 1)``); lists with no relevant item skipped.

    Example:
        >>> round(ndcg_at_k([[0, 1, 0]], [[0.9, 0.5, 0.1]], k=2), 4)
        0.6309
    """
    values = []
    for gains, groups in _ranked_lists(relevance_lists, score_lists, k):
        discounts = 1.0 / np.log2(np.arange(2, len(gains) + 2))
        dcg = 0.0
        for start, end in groups:
            m = _slots(start, end, k)
            if m:
                dcg += gains[start:end].mean() * discounts[start:start + m].sum()
        ideal = np.sort(gains)[::-1][:k]
        values.append(dcg / float((ideal * discounts[:len(ideal)]).sum()))
    return float(np.mean(values))


def recall_at_k(relevance_lists, score_lists, k=10):
    """Mean fraction of each list's relevant items (relevance > 0) ranked in the top k.

    Example:
        >>> recall_at_k([[1, 1, 0, 0]], [[0.9, 0.1, 0.8, 0.2]], k=2)
        0.5
    """
    values = []
    for gains, groups in _ranked_lists(relevance_lists, score_lists, k):
        hits = gains > 0
        found = sum(hits[s:e].mean() * _slots(s, e, k) for s, e in groups)
        values.append(found / hits.sum())
    return float(np.mean(values))


def hit_rate_at_k(relevance_lists, score_lists, k=10):
    """Fraction of lists with at least one relevant item (relevance > 0) in the top k.

    Example:
        >>> hit_rate_at_k([[1, 0, 0], [0, 0, 1]], [[0.9, 0.5, 0.1], [0.9, 0.5, 0.1]], k=1)
        0.5
    """
    values = []
    for gains, groups in _ranked_lists(relevance_lists, score_lists, k):
        hits = gains > 0
        p_miss = 1.0
        for s, e in groups:
            m = _slots(s, e, k)
            if not m:
                break
            size, relevant = e - s, int(hits[s:e].sum())
            # chance that the m slots drawn from this tie group hold no relevant item
            p_miss *= math.comb(size - relevant, m) / math.comb(size, m)
        values.append(1.0 - p_miss)
    return float(np.mean(values))


# ---------------------------------------------------------------------------------------------------
# Paired bootstrap


def _take(values, idx):
    if isinstance(values, np.ndarray):
        return values[idx]
    if hasattr(values, "iloc"):
        return values.iloc[idx]
    return [values[i] for i in idx]


def bootstrap_diff(metric_fn, y, pred_a, pred_b, n=200, seed=0):
    """95% bootstrap CI of ``metric_fn(y, pred_b) - metric_fn(y, pred_a)`` on the same resampled rows.

    Rows (or, for ranking metrics, whole lists) are drawn with replacement ``n`` times; both
    predictions are scored on the same draw. Draws where the metric is undefined (say, one class only
    for AUC) are skipped. Returns ``(mean_diff, lo, hi)``: the mean difference over draws and its
    2.5% / 97.5% percentiles.

    Example:
        >>> y = [0, 1] * 50
        >>> a = [0.4, 0.6] * 50
        >>> mean, lo, hi = bootstrap_diff(accuracy, y, a, a, n=20)
        >>> (mean, lo, hi)
        (0.0, 0.0, 0.0)
    """
    if not callable(metric_fn):
        raise TFCompressError(f"metric_fn must be callable, got {type(metric_fn).__name__}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise TFCompressError(f"n must be an integer >= 2 bootstrap draws, got {n!r}")
    if not isinstance(y, np.ndarray) and not hasattr(y, "iloc") and not isinstance(y, list):
        y = np.asarray(y)
    pred_a = pred_a if isinstance(pred_a, (list, np.ndarray)) else np.asarray(pred_a)
    pred_b = pred_b if isinstance(pred_b, (list, np.ndarray)) else np.asarray(pred_b)
    _same_length(("y", "pred_a", "pred_b"), (y, pred_a, pred_b))
    rng = np.random.default_rng(seed)
    rows = len(y)
    diffs = []
    for _ in range(int(n)):
        idx = rng.integers(0, rows, size=rows)
        yy = _take(y, idx)
        try:
            diffs.append(metric_fn(yy, _take(pred_b, idx)) - metric_fn(yy, _take(pred_a, idx)))
        except TFCompressError:
            continue
    if len(diffs) < max(2, n // 2):
        raise TFCompressError(f"the metric was undefined on {n - len(diffs)} of {n} bootstrap draws: "
                              "evaluate on more rows")
    diffs = np.asarray(diffs, dtype=np.float64)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(diffs.mean()), float(lo), float(hi)
