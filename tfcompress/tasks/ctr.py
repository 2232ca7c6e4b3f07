"""The CTR ranking task: the built-in synthetic shop, or user-item interactions (MovieLens, any CSV).

``--data`` selects the events: none → the built-in shop (``--events`` impressions); ``movielens`` → GroupLens
ml-latest-small from the shared data folder (``click`` = rating >= 4); a path → a MovieLens zip, folder or
``ratings.csv``, or any interactions CSV with user, item and time columns (see :func:`load_interactions`).
Interactions are split by time (80/10/10) like the shop.

Example:
    >>> task = CTRTask()
    >>> task.defaults(quick=True)["events"]
    20000
"""
import os

import numpy as np

from ..data import frame_to_inputs, make_ecommerce, sample_inputs, to_dataset
from ..errors import TFCompressError
from ..models import ctr_student, ctr_teacher
from .base import Task, TaskData

#: column names tried, in order, for an interactions CSV that is not MovieLens
INTERACTION_COLUMNS = {
    "user": ("user_id", "userId", "user", "customer_id", "visitor_id"),
    "item": ("item_id", "movieId", "item", "product_id", "itemid"),
    "time": ("timestamp", "time", "ts", "date", "event_time"),
    "label": ("click", "label", "clicked", "purchase"),
    "rating": ("rating", "score", "stars"),
}

DATA_HELP = ("pass --data movielens (the shared data folder), a MovieLens zip/folder/ratings.csv, or an "
             "interactions CSV with user, item and time columns (e.g. user_id,item_id,timestamp[,click|rating])")


MOVIELENS_NAMES = ("movielens", "movielens-small", "movielens_small", "ml-latest-small")


def check_interactions_data(data):
    """Raise the one-line error :func:`load_interactions` would, before any folder is made or model trained
    (a path that does not exist; ``movielens`` when the shared data folder lacks it).

    Example:
        >>> check_interactions_data(None)
    """
    if data is None:
        return
    from ..data import find_dataset, missing_data_message

    key = str(data).strip()
    if key.lower() in MOVIELENS_NAMES:
        if find_dataset("movielens-small") is None:
            raise TFCompressError(f"--data {key}: {missing_data_message('movielens-small')}")
    elif not os.path.exists(os.path.expanduser(key)):
        raise TFCompressError(f"--data {key!r} does not exist and is not 'movielens': {DATA_HELP}")
    else:
        _csv_columns(key)


def _csv_columns(key):
    """For a CSV ``--data``: ``None`` if it is MovieLens ratings, else ``{role: column}`` (user, item, time,
    label, rating); a one-line error when it is unreadable or lacks user/item/time. Folders and zips: None."""
    import pandas as pd

    path = os.path.expanduser(key)
    if os.path.isdir(path) or path.endswith(".zip"):
        return None
    try:
        head = pd.read_csv(path, nrows=5)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise TFCompressError(f"--data {key!r} is not a readable CSV ({str(e).splitlines()[0]}): {DATA_HELP}") \
            from None
    if {"userId", "movieId", "rating", "timestamp"} <= set(head.columns):
        return None
    cols = {role: next((c for c in names if c in head.columns), None) for role, names in INTERACTION_COLUMNS.items()}
    missing = [role for role in ("user", "item", "time") if cols[role] is None]
    if missing:
        raise TFCompressError(f"--data {key!r} has no {'/'.join(missing)} column (it has {list(head.columns)}): "
                              f"{DATA_HELP}")
    return cols


def load_interactions(data):
    """``(events, spec, description)`` for ``--data``: ``None`` → the built-in shop is NOT handled here;
    ``"movielens"`` → the shared MovieLens-small; a path → MovieLens files or an interactions CSV.

    Raises :class:`TFCompressError` with one line saying what to pass when ``data`` is not usable.

    Example:
        >>> try:
        ...     load_interactions("no/such/file.csv")
        ... except TFCompressError as e:
        ...     "does not exist" in str(e)
        True
    """
    import pandas as pd

    from ..data import interactions_from_frame, load_movielens

    check_interactions_data(data)
    key = str(data).strip()
    if key.lower() in MOVIELENS_NAMES:
        d = load_movielens(None, use_tfds=False)
        return d.events, d.spec, "MovieLens-small ratings (click = rating >= 4), shared data folder"
    path = os.path.expanduser(key)
    cols = _csv_columns(key)
    if cols is None:
        d = load_movielens(path, use_tfds=False)
        return d.events, d.spec, f"MovieLens ratings from {key} (click = rating >= 4)"
    d = interactions_from_frame(pd.read_csv(path), user=cols["user"], item=cols["item"], time=cols["time"],
                                label=cols["label"], rating=None if cols["label"] else cols["rating"])
    how = (f"label {cols['label']!r}" if cols["label"] else
           f"click = {cols['rating']} >= 4" if cols["rating"] else "every row a positive")
    return d.events, d.spec, f"interactions from {key} ({how})"


class CTRTask(Task):
    """Click-through-rate ranking: DCN-v2 teacher and student, AUC on a time-ordered test split."""

    name = "ctr"
    output = "binary"
    metric = "auc"
    teacher_builder = staticmethod(ctr_teacher)
    student_builder = staticmethod(ctr_student)
    data_args = ("spec",)

    def defaults(self, quick):
        if quick:
            return dict(events=20_000, batch_size=512, teacher_epochs=2, student_epochs=2, prune_epochs=1,
                        qat_epochs=1, learning_rate=5e-3, student_learning_rate=1e-2, calibration_samples=100,
                        latency_runs=30)
        return dict(events=200_000, batch_size=1024, teacher_epochs=3, student_epochs=5, prune_epochs=2,
                    qat_epochs=2, learning_rate=1e-3, student_learning_rate=3e-3, calibration_samples=300,
                    latency_runs=300)

    def teacher_kwargs(self, quick):
        return dict(embedding_dim=16, cross_layers=1, hidden=(64, 32)) if quick else {}

    def student_kwargs(self, quick):
        return dict(embedding_dim=4, cross_layers=1, hidden=(16,)) if quick else {}

    def model_args(self, data):
        return {"spec": data.metadata["spec"]}

    def check_data(self, data):
        """Called by ``RunConfig.validate``: a bad ``--data`` fails before anything is written."""
        check_interactions_data(data)

    def load(self, config):
        from ..data import time_split

        if config.data is None:
            shop = make_ecommerce(config.events, seed=config.seed)
            events, spec = shop.events, shop.spec
            source, extra = "synthetic impressions", {"shop": shop}
        else:
            events, spec, source = load_interactions(config.data)
            extra = {}
        train, val, test = time_split(events)
        if spec.label not in events.columns or events[spec.label].nunique() < 2:
            raise TFCompressError(f"--data {config.data!r} has only one label value: the ctr task needs clicks "
                                  "and non-clicks (a 0/1 label column, or ratings)")
        bs = config.batch_size
        return TaskData(
            train_ds=to_dataset(train, spec, batch_size=bs, shuffle=True, seed=config.seed),
            val_ds=to_dataset(val, spec, batch_size=4096),
            test_inputs=frame_to_inputs(test, spec),
            test_labels=test[spec.label].to_numpy(),
            calibration_inputs=sample_inputs(train, spec, config.calibration_samples, seed=config.seed),
            latency_inputs=sample_inputs(test, spec, 1, seed=config.seed + 1),
            steps_per_epoch=int(np.ceil(len(train) / bs)),
            description=(f"{len(events):,} {source} ({len(train):,} train / {len(val):,} "
                         f"validation / {len(test):,} test, by time), click rate {events[spec.label].mean():.1%}"),
            metadata={"spec": spec, "feature_spec": spec.to_dict(), **extra},
        )
