"""The recommendation task's data: positives split leave-last-out, the item catalogue, sampled candidate
lists, the ranking models' training rows, as one typed :class:`RecommendationData`.

Example:
    >>> import pandas as pd
    >>> seen_items(pd.DataFrame({"user_id": [1], "item_id": [10]}), pd.DataFrame({"user_id": [1], "item_id": [11]}))
    [{10}]
"""
from dataclasses import dataclass

import numpy as np

from ..data.datasets import frame_to_inputs
from ..errors import TFCompressError
from .base import TaskData

K = 10


@dataclass
class RecommendationData(TaskData):
    """The retrieval task's data: the splits (``train``/``val``/``test`` positives, leave-last-out: each
    user's last positive is ``test``, the one before it ``val``; the models learn from ``train``), the
    ``catalog``, per test user ``candidates`` (the held-out item first, then ``list_size - 1`` sampled ones),
    the ranking models' rows (``ranking_train``), per test (``seen``) and validation (``val_seen``) row the
    user's earlier items (or None), the validation users' query inputs and items (``val_inputs``,
    ``val_labels``), the id ``frequencies``, the query tower's input names and the calibration rows."""

    spec: object = None
    feature_spec: dict = None
    events: object = None
    train: object = None
    test: object = None
    val: object = None
    val_inputs: dict = None
    val_labels: np.ndarray = None
    val_seen: list = None
    catalog: object = None
    candidates: np.ndarray = None
    ranking_train: object = None
    list_size: int = None
    seen: list = None
    frequencies: dict = None
    query_names: list = None
    calibration_frame: object = None
    retrieval_batch_size: int = None

    @property
    def item_features(self):
        """Names of the item features (what a candidate list carries per item)."""
        return [f.name for f in self.spec.features if f.group == "item"]

    def sidecar(self):
        return {"feature_spec": self.feature_spec}


def seen_items(train, test, user="user_id", item="item_id"):
    """Per test row, the set of the user's training items to remove from a top K before scoring it, as the
    app would; ``None`` when users come back to items (then showing a past item is a fair recommendation):
    MovieLens rates a movie once, the shop's users re-click.

    Example:
        >>> import pandas as pd
        >>> train = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 11, 10]})
        >>> seen_items(train, pd.DataFrame({"user_id": [1, 2], "item_id": [12, 13]}))
        [{10, 11}, {10}]
        >>> seen_items(train, pd.DataFrame({"user_id": [1], "item_id": [10]})) is None  # user 1 repeats 10
        True
    """
    import pandas as pd

    if pd.concat([train, test])[[user, item]].duplicated().any():
        return None
    history = train.groupby(user)[item].agg(set)
    return [history.get(u, set()) for u in test[user].to_numpy()]


def with_sampled_negatives(events, catalog, spec, *, per_positive=2, seed=0):
    """``events`` plus ``per_positive`` rows per positive with a uniformly sampled catalogue item and label
    0 (same user and context): the ranker then learns which items a user interacts with at all, not
    only which shown or rated ones they liked, matching the candidates it re-scores on the phone.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> d = make_ecommerce(events=2000, seed=0)
        >>> from tfcompress.models.retrieval import item_catalog
        >>> out = with_sampled_negatives(d.events, item_catalog(d.events, d.spec), d.spec)
        >>> len(out) == len(d.events) + 2 * int(d.events.click.sum())
        True
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    pos = events[events[spec.label] > 0]
    neg = pos.loc[pos.index.repeat(per_positive)].reset_index(drop=True)
    pick = catalog.iloc[rng.integers(0, len(catalog), len(neg))].reset_index(drop=True)
    for col in catalog.columns:
        if col in neg.columns:
            neg[col] = pick[col].to_numpy()
    neg[spec.label] = 0
    return pd.concat([events, neg], ignore_index=True)


def list_inputs(frame, item_ids, catalog, spec, item_features):
    """Inputs of a list-ranking model: each row of ``frame``'s user/context features once (``[n]``) and the
    item features of its candidates ``item_ids`` (``[n, N]``, looked up in ``catalog``)."""
    cat = catalog.set_index("item_id")
    out = {}
    for f in spec.features:
        if f.name in item_features:
            values = item_ids if f.name == "item_id" else cat[f.name].reindex(item_ids.ravel()).to_numpy()
            out[f.name] = np.asarray(values).reshape(item_ids.shape).astype(f.dtype)
        elif f.name in frame.columns:
            out[f.name] = frame[f.name].to_numpy().astype(f.dtype)
        else:  # e.g. the slot position, unknown before ranking: the first slot
            out[f.name] = np.ones(len(frame), f.dtype)
    return out


def _events(config):
    """``(events, spec, source)`` of ``config.data``: the built-in shop, or interactions (as for ctr)."""
    from ..data import make_ecommerce
    from .ctr import load_interactions

    if config.data is None:
        shop = make_ecommerce(config.events, seed=config.seed)
        return shop.events, shop.spec, "synthetic shop impressions"
    return load_interactions(config.data, config)


def check_recommendation_data(data, config=None):
    """The retrieval task's data check (``RunConfig.validate`` calls it through the task): a bad ``--data``,
    a log without positives or a split retrieval cannot use is one line, before anything is written.
    Returns the split used (``time``, or ``user`` in file order for a log without time; None: the shop).

    Example:
        >>> check_recommendation_data(None)
    """
    from .ctr import load_interactions

    if data is None:
        return None
    events, spec, _ = load_interactions(data, config)
    if spec.label in events.columns and not (events[spec.label] > 0).any():
        raise TFCompressError(f"--data {data!r} has no positive interaction (every label is 0): retrieval "
                              "learns from positives; give clicks, ratings (--label-threshold X) or an implicit log")
    return check_retrieval_split(spec, getattr(config, "split", None))


def check_retrieval_split(spec, split):
    """Retrieval holds out each user's last positive (by time, or by the file's order when the log has no
    time): ``--split`` may be auto, user or time (when the log has time); a one-line error otherwise.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> check_retrieval_split(make_ecommerce(2000).spec, None)
        'time'
        >>> check_retrieval_split(make_ecommerce(2000).spec, "random")
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: --split 'random': the retrieval task holds out each user's last positive (leave-last-out); use --split auto, user or time
    """
    from .splits import interactions_split

    how = interactions_split(not spec.metadata.get("no_time"), split)
    if how not in ("time", "user"):
        raise TFCompressError(f"--split {split!r}: the retrieval task holds out each user's last positive "
                              "(leave-last-out); use --split auto, user or time")
    return how


def _held_out(events, spec, config):
    """``(train, test)`` positives, leave-last-out; at most 600 test users in a quick run."""
    from ..data.movielens import leave_last_out
    from ..models.retrieval import positives

    train, test = leave_last_out(positives(events, spec))
    if len(test) < 10:
        raise TFCompressError(f"only {len(test)} users have 2+ positive interactions: too few to evaluate "
                              "retrieval; use more events (--events) or a bigger interactions file")
    if config.quick and len(test) > 600:
        test = test.sample(600, random_state=config.seed).sort_values("timestamp").reset_index(drop=True)
    return train, test


def validation_split(train, config):
    """``(fit, val)``: each user's last training positive (of users with 2+) held out for choices made on
    validation quality (the test split is never touched); at most 600 validation users in a quick run.

    Example:
        >>> import pandas as pd
        >>> from tfcompress.pipeline import RunConfig
        >>> train = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 11, 12], "timestamp": [1, 2, 3]})
        >>> fit, val = validation_split(train, RunConfig(quick=True))
        >>> fit.item_id.tolist(), val.item_id.tolist()
        ([10, 12], [11])
    """
    from ..data.movielens import leave_last_out

    fit, val = leave_last_out(train)
    if config.quick and len(val) > 600:
        picked = val.sample(600, random_state=config.seed + 1)
        fit = _by_time(fit, val.drop(picked.index))
        val = picked.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return fit, val


def _by_time(*frames):
    """``frames`` as one frame sorted by time (ties in the given order), a fresh index."""
    import pandas as pd

    return pd.concat(frames).sort_values("timestamp", kind="stable").reset_index(drop=True)


def _ranking_rows(events, test, catalog, spec, seed):
    """The ranking models learn from every interaction (clicks and non-clicks) but the held-out ones,
    plus sampled catalogue negatives."""
    held = set(zip(test.user_id, test.item_id, test.timestamp))
    rows = events[[t not in held for t in zip(events.user_id, events.item_id, events.timestamp)]]
    return with_sampled_negatives(rows, catalog, spec, seed=seed)


def _describe(source, events, spec, splits, catalog, n, seen):
    """The data's one-line description: where from, how many positives, users, items and split sizes."""
    train, val, test = splits
    order = " in file order (no time column):" if spec.metadata.get("no_time") else ""
    return (f"{source}: {len(events):,} events, {sum(map(len, splits)):,} positives of "
            f"{events.user_id.nunique():,} users on {len(catalog):,} items; leave-last-out{order} {len(train):,} "
            f"train positives / {len(val):,} validation / {len(test):,} test users; lists of {n} candidates; past "
            f"items {'kept (users repeat items)' if seen is None else 'removed from the top K'}")


def load_recommendation(config, list_size):
    """The :class:`RecommendationData` of ``config`` (a resolved RunConfig) with lists of up to
    ``list_size`` candidates (at most half the catalogue)."""
    from ..models.retrieval import id_frequencies, item_catalog, retrieval_dataset, sampled_candidates

    events, spec, source = _events(config)
    check_retrieval_split(spec, config.split)
    catalog = item_catalog(events, spec)
    train, test = _held_out(events, spec, config)
    train, val = validation_split(train, config)
    n = int(min(list_size, len(catalog) // 2))
    if n < K:
        raise TFCompressError(f"the catalogue has {len(catalog)} items, too few for top-{K} retrieval "
                              f"(need {2 * K}+)")
    cands = sampled_candidates(_by_time(train, val), test, catalog, num_negatives=n - 1, seed=config.seed)
    ranking_train = _ranking_rows(events, test, catalog, spec, config.seed)
    seen = seen_items(_by_time(train, val), test)
    val_seen = None if seen is None else seen_items(train, val)
    # ~50 steps per epoch at least: in-batch negatives need full batches, small data needs steps
    bs = int(np.clip(len(train) // 50, 32, config.batch_size))
    rng = np.random.default_rng(config.seed)
    query_names = [f.name for f in spec.features if f.group in ("user", "context") and f.name != "position"]
    calib = train.iloc[rng.choice(len(train), min(len(train), config.calibration_samples), replace=False)]
    return RecommendationData(
        train_ds=retrieval_dataset(train, spec, batch_size=bs, seed=config.seed), val_ds=None,
        test_inputs=frame_to_inputs(test, spec, query_names), test_labels=test["item_id"].to_numpy(),
        calibration_inputs=frame_to_inputs(calib, spec, query_names),
        latency_inputs=frame_to_inputs(test.iloc[:1], spec, query_names),
        steps_per_epoch=int(np.ceil(len(train) / bs)),
        description=_describe(source, events, spec, (train, val, test), catalog, n, seen),
        spec=spec, feature_spec=spec.to_dict(), events=events, train=train, test=test, catalog=catalog,
        candidates=cands, ranking_train=ranking_train, list_size=n, seen=seen, val=val,
        val_inputs=frame_to_inputs(val, spec, query_names), val_labels=val["item_id"].to_numpy(), val_seen=val_seen,
        frequencies=id_frequencies(train, spec), query_names=query_names, calibration_frame=calib,
        retrieval_batch_size=bs,
    )
