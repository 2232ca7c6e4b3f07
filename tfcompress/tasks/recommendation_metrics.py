"""Figures of the recommendation task: whole-catalogue NDCG/HR of a top-K output, the bytes of embedding
tables in Keras models and in ``.tflite`` files, and the choice of the file to ship from such figures
(:func:`choose_within`: the smallest whose validation quality is within the tolerance of the best).

Example:
    >>> import numpy as np
    >>> catalog_metrics(np.array([[3, 5]]), [3], k=1)
    {'ndcg@1': 1.0, 'hr@1': 1.0}
"""
import os

import numpy as np

from .recommendation_data import K
from ..tolerance import choose_within as _choose_within


def catalog_metrics(top_ids, true_items, k=K, seen=None):
    """NDCG@k and HR@k of ``true_items`` in ranked ``top_ids`` (``(n, >=k)``, best first): the
    whole-catalogue figures of a top-K retrieval output. ``seen`` (one set of item ids per row, e.g. what
    the user already interacted with) is removed from each row first, as the app would before showing
    the first ``k``.

    Example:
        >>> {k: round(v, 4) for k, v in catalog_metrics(np.array([[5, 3], [1, 2]]), [3, 9], k=2).items()}
        {'ndcg@2': 0.3155, 'hr@2': 0.5}
        >>> catalog_metrics(np.array([[5, 3, 7]]), [3], k=1, seen=[{5}])
        {'ndcg@1': 1.0, 'hr@1': 1.0}
    """
    top = np.asarray(top_ids)
    if seen is not None:
        rows = []
        for ids, skip in zip(top, seen):
            kept = [i for i in ids if i not in skip][:k]
            rows.append(kept + [-1] * (k - len(kept)))
        top = np.asarray(rows)
    top = top[:, :k]
    hits = top == np.asarray(true_items).reshape(-1, 1)
    found = hits.any(1)
    rank = hits.argmax(1)
    ndcg = np.where(found, 1.0 / np.log2(rank + 2.0), 0.0)
    return {f"ndcg@{k}": float(ndcg.mean()), f"hr@{k}": float(found.mean())}


def keras_embedding_bytes(*models):
    """``(embedding bytes, all weight bytes)`` of Keras models, each weight at its stored dtype (float32
    and int32 4 bytes a value, the int8 values of per-row tables 1).

    Example:
        >>> from tfcompress import keras
        >>> ids = keras.Input((), dtype="int32")
        >>> m = keras.Model(ids, keras.layers.Dense(1)(keras.layers.Embedding(100, 8)(ids)))
        >>> keras_embedding_bytes(m)
        (3200, 3236)
    """
    from ..models.embeddings import embedding_bytes

    emb = sum(embedding_bytes(m) for m in models)
    total = sum(int(np.prod(w.shape)) * w.dtype.size for m in models for w in m.weights)
    return emb, total


def tflite_catalog_bytes(path, num_items):
    """``(embedding bytes, file bytes)`` of a ``.tflite`` file: tables read by GATHER ops (see
    :func:`tfcompress.models.embeddings.tflite_embedding_bytes`) plus constant 2-D tensors with one row per
    catalogue item (the stored candidate vectors of a top-K retrieval file).

    Example:
        >>> import os, tempfile
        >>> from tfcompress import export, keras
        >>> ids = keras.Input((), dtype="int32", name="ids")
        >>> m = keras.Model(ids, keras.layers.Embedding(100, 8)(ids))
        >>> p = export.to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float32")
        >>> tflite_catalog_bytes(p, 0)[0]
        3200
    """
    from ..models.embeddings import tflite_embedding_bytes
    from ..tflite_file import constant, interpreter

    info = tflite_embedding_bytes(path)
    extra = 0
    if num_items:
        interp = interpreter(os.fspath(path))
        for d in interp.get_tensor_details():
            shape = d["shape"]
            if len(shape) == 2 and shape[0] == num_items and shape[1] > 1 \
                    and constant(interp, d["index"]) is not None:
                extra += int(np.prod(shape)) * np.dtype(d["dtype"]).itemsize
    return info["embedding"] + extra, info["total"]


def validation_metrics(top_ids, data):
    """:func:`catalog_metrics` of top-K ids of ``data``'s validation users (``{}`` when it has none): what
    the run's choices are made on, never the test split."""
    if data.val_labels is None or not len(data.val_labels):
        return {}
    return catalog_metrics(top_ids, data.val_labels, seen=data.val_seen)


def choose_within(candidates, tolerance, metric=f"ndcg@{K}"):
    """:func:`tfcompress.tolerance.choose_within` with the retrieval metric (NDCG@10) as the default.

    Example:
        >>> choose_within([dict(name="a", validation=0.3, bytes=10)], "1%")["shipped"]
        'a'
    """
    return _choose_within(candidates, tolerance, metric)
