"""Scoring two-tower models offline: tower embeddings of DataFrames, sampled candidates, NDCG/HR and a
popularity baseline.

Example:
    >>> import numpy as np
    >>> evaluate_sampled(np.array([[0.9, 0.1, 0.2], [0.1, 0.5, 0.2]]), k=1)
    {'ndcg@1': 0.5, 'hr@1': 0.5}
"""
import numpy as np
import pandas as pd

from ..data.datasets import frame_to_inputs
from ..errors import TFCompressError
from ..metrics import hit_rate_at_k, ndcg_at_k


def query_embeddings(model, frame, spec, batch_size=4096):
    """Query vectors of the rows of ``frame`` (a DataFrame with the query features).

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> from tfcompress.models import item_catalog, retrieval_student
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> m = retrieval_student(d.spec)
        >>> query_embeddings(m, d.events.iloc[:3], d.spec).shape
        (3, 16)
    """
    return model.query_model.predict(frame_to_inputs(frame, spec, model.query_model.input_names),
                                     batch_size=batch_size, verbose=0)


def candidate_embeddings(model, catalog, spec, batch_size=4096):
    """Candidate vectors of the rows of ``catalog`` (see :func:`~tfcompress.models.item_catalog`).

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> from tfcompress.models import item_catalog, retrieval_student
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> m = retrieval_student(d.spec)
        >>> catalog = item_catalog(d.events, d.spec)
        >>> candidate_embeddings(m, catalog, d.spec).shape == (len(catalog), 16)
        True
    """
    return model.candidate_model.predict(frame_to_inputs(catalog, spec, model.candidate_model.input_names),
                                         batch_size=batch_size, verbose=0)


def sampled_candidates(train, test, catalog, *, num_negatives=100, seed=0, user="user_id", item="item_id"):
    """``(n_test, 1 + num_negatives)`` item ids per test row: its item first, then items the user never
    interacted with (in train or test), sampled uniformly from ``catalog``.

    Example:
        >>> train = pd.DataFrame({"user_id": [1, 1], "item_id": [0, 1]})
        >>> test = pd.DataFrame({"user_id": [1], "item_id": [2]})
        >>> catalog = pd.DataFrame({"item_id": np.arange(6)})
        >>> c = sampled_candidates(train, test, catalog, num_negatives=3)
        >>> int(c[0, 0]), sorted(set(c[0, 1:].tolist()) & {0, 1, 2})
        (2, [])
    """
    rng = np.random.default_rng(seed)
    items = catalog[item].to_numpy()
    if len(items) <= num_negatives:
        raise TFCompressError(f"the catalogue has {len(items)} items, too few for {num_negatives} negatives")
    seen = pd.concat([train[[user, item]], test[[user, item]]]).groupby(user)[item].agg(set).to_dict()
    out = np.empty((len(test), 1 + num_negatives), np.int64)
    for row, (u, i) in enumerate(zip(test[user].to_numpy(), test[item].to_numpy())):
        pool = np.setdiff1d(items, np.fromiter(seen.get(u, ()), np.int64))
        if len(pool) == 0:
            pool = items
        negs = rng.choice(pool, size=num_negatives, replace=len(pool) < num_negatives)
        out[row, 0], out[row, 1:] = i, negs[:num_negatives]
    return out


def evaluate_sampled(scores, k=10):
    """NDCG@k and HR@k from ``scores`` of shape (n, 1 + negatives), the true item in column 0.

    Example:
        >>> evaluate_sampled(np.array([[0.9, 0.1, 0.2], [0.1, 0.5, 0.2]]), k=1)
        {'ndcg@1': 0.5, 'hr@1': 0.5}
    """
    scores = np.asarray(scores, np.float64)
    rel = np.zeros_like(scores)
    rel[:, 0] = 1.0
    return {f"ndcg@{k}": ndcg_at_k(rel, scores, k=k), f"hr@{k}": hit_rate_at_k(rel, scores, k=k)}


def two_tower_scores(model, test, candidates, catalog, spec):
    """Scores of ``candidates`` (item ids, from :func:`sampled_candidates`) for each row of ``test``.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> from tfcompress.models import item_catalog, retrieval_student
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> m = retrieval_student(d.spec)
        >>> catalog = item_catalog(d.events, d.spec)
        >>> two_tower_scores(m, d.events.iloc[:2], catalog.item_id.to_numpy()[None, :4].repeat(2, 0), catalog,
        ...                  d.spec).shape
        (2, 4)
    """
    q = query_embeddings(model, test, spec)
    c = candidate_embeddings(model, catalog, spec)
    row_of = pd.Series(np.arange(len(catalog)), index=catalog["item_id"].to_numpy())
    rows = row_of.reindex(candidates.ravel()).to_numpy()
    if np.isnan(rows.astype(float)).any():
        raise TFCompressError("some candidate items are not in the catalogue")
    cand = c[rows.astype(np.int64)].reshape(candidates.shape + (c.shape[1],))
    return np.einsum("nd,nkd->nk", q, cand)


def popularity_scores(train, candidates, item="item_id"):
    """Baseline: each candidate's number of training interactions.

    Example:
        >>> popularity_scores(pd.DataFrame({"item_id": [3, 3, 5]}), np.array([[3, 5, 7]])).tolist()
        [[2.0, 1.0, 0.0]]
    """
    counts = train[item].value_counts()
    return counts.reindex(candidates.ravel()).fillna(0).to_numpy().reshape(candidates.shape)
