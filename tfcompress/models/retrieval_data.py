"""Retrieval data: the features each tower reads, the item catalogue, positive interactions, the training
dataset and :func:`fit_retrieval`.

A query tower reads the user's and context features of a :class:`~tfcompress.data.FeatureSpec` (groups
``"user"`` and ``"context"``), a candidate tower the item features (group ``"item"``).

Example:
    >>> from tfcompress.data import make_ecommerce
    >>> d = make_ecommerce(events=1000)
    >>> [f.name for f in tower_features(d.spec, "candidate")][:1]
    ['item_id']
    >>> len(positives(d.events, d.spec)) <= len(d.events)
    True
"""
import numpy as np

from .._keras import keras, tf
from ..errors import TFCompressError

QUERY_GROUPS = ("user", "context")
CANDIDATE_GROUPS = ("item",)


def tower_features(spec, side, *, exclude=("position",)):
    """The features of ``spec`` for tower ``side`` (``"query"``: user + context, ``"candidate"``: item).

    ``position`` (where an impression was shown) is excluded by default: it is not known before ranking.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> "position" in [f.name for f in tower_features(d.spec, "query")]
        False
    """
    groups = {"query": QUERY_GROUPS, "candidate": CANDIDATE_GROUPS}.get(side)
    if groups is None:
        raise TFCompressError(f"tower side {side!r} must be 'query' or 'candidate'")
    feats = [f for f in spec.features if f.group in groups and f.name not in exclude]
    if not feats:
        raise TFCompressError(f"the spec has no {'/'.join(groups)} features for the {side} tower: "
                              f"set Feature.group; it has {[(f.name, f.group) for f in spec.features]}")
    return feats


def item_catalog(events, spec):
    """One row per item id with its item features (last seen values), sorted by ``item_id``.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> d = make_ecommerce(events=1000)
        >>> item_catalog(d.events, d.spec).item_id.is_unique
        True
    """
    names = [f.name for f in tower_features(spec, "candidate")]
    missing = [n for n in names if n not in events.columns]
    if missing:
        raise TFCompressError(f"events lack item feature columns {missing}")
    key = "item_id" if "item_id" in names else names[0]
    return events[names].drop_duplicates(key, keep="last").sort_values(key).reset_index(drop=True)


def id_frequencies(events, spec, features=("user_id", "item_id")):
    """``{feature: counts per id (length vocab_size)}`` from ``events``, for ``embedding="mixed"``.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> counts = id_frequencies(d.events, d.spec)
        >>> len(counts["item_id"]) == d.spec["item_id"].vocab_size, int(counts["item_id"].sum()) == len(d.events)
        (True, True)
    """
    return {n: np.bincount(events[n].to_numpy(), minlength=spec[n].vocab_size)[:spec[n].vocab_size]
            for n in features if n in spec.names}


def positives(events, spec):
    """The positive interactions (label 1) of ``events``: what retrieval trains and is evaluated on.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> bool((positives(d.events, d.spec)[d.spec.label] > 0).all())
        True
    """
    pos = events[events[spec.label] > 0] if spec.label in events.columns else events
    if len(pos) == 0:
        raise TFCompressError("no positive interactions (label > 0) to train retrieval on")
    return pos.reset_index(drop=True)


def retrieval_dataset(events, spec, *, batch_size=256, shuffle=True, seed=0):
    """A ``tf.data.Dataset`` of feature dicts (all spec features) of ``events``, batched.

    Keep the batch full-size (``drop_remainder``): in-batch negatives need other rows.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> batch = next(iter(retrieval_dataset(d.events, d.spec, batch_size=32)))
        >>> batch["item_id"].shape.as_list()
        [32]
    """
    x = {f.name: events[f.name].to_numpy().astype(f.dtype) for f in spec.features if f.name in events.columns}
    ds = tf.data.Dataset.from_tensor_slices(x)
    if shuffle:
        ds = ds.shuffle(min(len(events), 100_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(int(batch_size), drop_remainder=len(events) >= 2 * batch_size).prefetch(tf.data.AUTOTUNE)


def fit_retrieval(model, train, spec, *, epochs=3, batch_size=256, learning_rate=0.01, seed=0, verbose=0):
    """Compile (Adam) and fit a :class:`TwoTower` on the positives of ``train``; returns the model.

    Example:
        >>> # student = fit_retrieval(retrieval_student(spec), train, spec, epochs=3)
    """
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.fit(retrieval_dataset(positives(train, spec), spec, batch_size=batch_size, seed=seed),
              epochs=int(epochs), verbose=verbose)
    return model
