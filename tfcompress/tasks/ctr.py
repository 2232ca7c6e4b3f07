"""The CTR ranking task: the built-in synthetic shop, or user-item interactions (MovieLens, any table).

``--data`` selects the events: none → the built-in shop (``--events`` impressions); ``movielens`` → GroupLens
ml-latest-small from the shared data folder (``click`` = rating >= 4); a path → a MovieLens zip, folder or
``ratings.csv``, or any interactions table (CSV, TSV, Parquet) with user and item columns and optionally a
time and a label or rating column (roles: :func:`interaction_roles`; reading: :func:`tfcompress.data.read_table`).
Interactions with a time column are split by time (80/10/10) like the shop; without one, by user (each
user's last row in the file is test); ``--split`` chooses. A folder or glob of Parquet, CSV or TFRecord
shards is streamed (:func:`open_shards`): never loaded whole, split by time quantiles or hashed user.

Example:
    >>> task = CTRTask()
    >>> task.defaults(quick=True)["events"]
    20000
"""
import os
from dataclasses import dataclass

import numpy as np

from ..data import frame_to_inputs, is_shard_source, make_ecommerce, sample_inputs, to_dataset
from ..errors import TFCompressError
from ..models.ctr import ctr_student, ctr_teacher, student_table_note
from ..optimizers import lazy_adam_note
from .base import Task, TaskData
from .splits import interactions_split, split_interactions, split_words

#: column names tried, in order, for a role the config does not name (then the roles Schema.infer assumes)
INTERACTION_COLUMNS = {
    "user": ("user_id", "userId", "user", "customer_id", "visitor_id"),
    "item": ("item_id", "movieId", "item", "product_id", "itemid"),
    "time": ("timestamp", "time", "ts", "date", "event_time"),
    "label": ("click", "label", "clicked", "purchase"),
    "rating": ("rating", "score", "stars"),
}

DATA_HELP = ("pass --data movielens (the shared data folder), a MovieLens zip/folder/ratings.csv, or an "
             "interactions table (CSV, TSV, Parquet) with user and item columns and optionally time and a "
             "label or rating (e.g. user_id,item_id[,timestamp][,click|rating])")
ROLE_FLAGS = "name them with --user COLUMN --item COLUMN (and --time / --label when the file has them)"
_SHARD_KEYS = ("user", "item", "time", "label", "split", "label_threshold")  # what the scan depends on
#: streamed shards: users and items seen fewer times than this share the unknown id 0
MIN_COUNT = 1

MOVIELENS_NAMES = ("movielens", "movielens-small", "movielens_small", "ml-latest-small")
_MOVIELENS_COLUMNS = {"userId", "movieId", "rating", "timestamp"}


def check_interactions_data(data, config=None):
    """Raise the one-line error :func:`load_interactions` would, before any folder is made or model trained
    (a path that does not exist; ``movielens`` when the shared data folder lacks it; a table that cannot be
    read, lacks a user or item column, or has a bad label). ``config`` gives the column roles and reading
    options (``user``, ``item``, ``time``, ``label``, ``label_threshold``, ``sep``, ``header``, ``split``).

    Example:
        >>> check_interactions_data(None)
    """
    if data is not None:
        _load_log(data, config)


def open_shards(data, config=None):
    """The :class:`~tfcompress.data.ShardLog` of shards in ``--data`` (a folder or glob): the shop's manifest,
    else one streaming pass (roles by :func:`interaction_roles` on a sample of the first shard; ids seen
    :data:`MIN_COUNT` times). ``--split``: ``time`` (the default with a time column) or ``user`` (hashed).

    Example:
        >>> try:
        ...     open_shards("no/such/dir/*.parquet")
        ... except TFCompressError as e:
        ...     "matches no file" in str(e)
        True
    """
    from ..data import open_shop_log, sample_frame, scanned_log, shard_files

    files, fmt = shard_files(data)
    how = getattr(config, "split", None) or "auto"
    if how not in ("auto", "time", "user"):
        raise TFCompressError(f"--split {how} needs the whole table in memory: streamed shards split by time "
                              "or by user (--split time or --split user)")
    key = os.path.expanduser(str(data).strip())
    if os.path.isdir(key) and (log := open_shop_log(key, "user" if how == "user" else "time")) is not None:
        return log
    sample = sample_frame(files, fmt)
    roles = interaction_roles(sample, config)
    label = roles["label"] or roles["rating"]
    if None in (roles["user"], roles["item"]) or label is None:
        raise TFCompressError(f"--data {data_name(data)}: streamed shards need user, item and label (or rating) "
                              f"columns; the first shard has {list(sample.columns)}: {ROLE_FLAGS}")
    threshold = roles["rating"] and rating_threshold(sample[label], getattr(config, "label_threshold", None))[0]
    split = interactions_split(roles["time"] is not None, getattr(config, "split", None))
    roles = {"user": roles["user"], "item": roles["item"], "time": roles["time"], "label": label}
    return scanned_log(data, files, fmt, roles, split=split, threshold=threshold, min_count=MIN_COUNT)


def _load_log(data, config):
    """``(events, spec, source)`` of ``data`` (``None`` for the built-in shop)."""
    import pandas as pd

    from ..data import find_dataset, load_movielens, missing_data_message

    if data is None:
        return None
    if isinstance(data, pd.DataFrame):
        return _generic_log(data, data, config)
    key = str(data).strip()
    if is_shard_source(data):
        raise TFCompressError(f"--data {key!r} is a folder or glob of shards: only the ctr task streams them")
    given = getattr(config, "label_threshold", None)
    threshold = 4.0 if given is None else float(given)
    if key.lower() in MOVIELENS_NAMES:
        if find_dataset("movielens-small") is None:
            raise TFCompressError(f"--data {key}: {missing_data_message('movielens-small')}")
        d = load_movielens(None, use_tfds=False, positive_threshold=threshold)
        return d.events, d.spec, f"MovieLens-small ratings (click = rating >= {threshold:g}), shared data folder"
    path = os.path.expanduser(key)
    if not os.path.exists(path):
        raise TFCompressError(f"--data {key!r} does not exist and is not 'movielens': {DATA_HELP}")
    frame = None if os.path.isdir(path) or path.endswith(".zip") else _read_log(path, config)
    if frame is None or (path.lower().endswith(".csv") and _MOVIELENS_COLUMNS <= set(frame.columns)):
        d = load_movielens(path, use_tfds=False, positive_threshold=threshold)  # genres from movies.csv beside it
        return d.events, d.spec, f"MovieLens ratings from {key} (click = rating >= {threshold:g})"
    return _generic_log(frame, key, config)


def _read_log(path, config):
    from ..data import read_table

    header = getattr(config, "header", None)
    return read_table(path, sep=getattr(config, "sep", None), header="infer" if header is None else header)


def _generic_log(frame, data, config):
    """``(events, spec, source)`` of any interactions table (``data``: its path, or the DataFrame)."""
    from ..data import interactions_from_frame

    roles = interaction_roles(frame, config)
    missing = [r for r in ("user", "item") if roles[r] is None]
    if missing:
        raise TFCompressError(f"--data {data_name(data)} has no {'/'.join(missing)} column (it has "
                              f"{list(frame.columns)}): {ROLE_FLAGS}")
    threshold, why = None, ""
    if roles["rating"]:
        threshold, why = rating_threshold(frame[roles["rating"]], getattr(config, "label_threshold", None))
    d = interactions_from_frame(frame, user=roles["user"], item=roles["item"], time=roles["time"],
                                label=roles["label"], rating=roles["rating"],
                                threshold=4.0 if threshold is None else threshold)
    how = (f"label {roles['label']!r}" if roles["label"] else
           f"click = {roles['rating']} >= {threshold:g}{why}" if roles["rating"] else "every row a positive")
    used = {v for v in roles.values() if v}
    ignored = [str(c) for c in frame.columns if c not in used]
    if ignored:
        how += f"; column{'s' if len(ignored) > 1 else ''} {', '.join(ignored)} ignored in this pass"
    return d.events, d.spec, f"interactions from {data_name(data, quote=False)} ({how})"


def interaction_roles(frame, config=None):
    """``{role: column or None}`` (``user``, ``item``, ``time``, ``label``, ``rating``) of an interactions
    table, by one rule: the config's ``user``/``item``/``time``/``label`` when set, else the first name of
    :data:`INTERACTION_COLUMNS` the table has, else the role :meth:`tfcompress.data.Schema.infer` assumes.
    A label column that holds numbers other than 0/1 is a rating (``click = rating >= threshold``).

    Example:
        >>> import pandas as pd
        >>> interaction_roles(pd.DataFrame({"user_id": [1, 1, 2], "book_id": [3, 4, 3], "rating": [5, 1, 2]}))
        {'user': 'user_id', 'item': 'book_id', 'time': None, 'label': None, 'rating': 'rating'}
    """
    roles = {r: getattr(config, r, None) for r in ("user", "item", "time", "label")}
    bad = [f"--{r} {c!r}" for r, c in roles.items() if c is not None and c not in frame.columns]
    if bad:
        raise TFCompressError(f"{', '.join(bad)}: no such column; the table has {list(frame.columns)}")
    for role in ("user", "item", "time", "label"):
        roles[role] = roles[role] or next((c for c in INTERACTION_COLUMNS[role] if c in frame.columns), None)
    roles["rating"] = None
    if roles["label"] is None:
        roles["rating"] = next((c for c in INTERACTION_COLUMNS["rating"] if c in frame.columns), None)
    named = roles["label"] is not None
    if None in (roles["user"], roles["item"], roles["time"]) or not (roles["label"] or roles["rating"]):
        for role, column in _schema_roles(frame, roles).items():
            roles[role] = roles[role] or column
    label = roles.pop("label")
    kind = _label_kind(frame[label]) if label else None
    if named and kind is None:
        raise TFCompressError(f"label column {label!r} holds {_some(frame[label])}: an interactions label must be 0/1, "
                              "booleans, yes/no, or a rating (numbers; --label-threshold X makes click = >= X)")
    roles["label"], roles["rating"] = (label, None) if kind == "label" else (None, label if kind else roles["rating"])
    return {r: roles[r] for r in ("user", "item", "time", "label", "rating")}


def _schema_roles(frame, roles):
    """The user/item/time/label roles :meth:`Schema.infer` assumes on a sample of ``frame`` (none when it
    cannot type the sample: then only names count)."""
    import warnings

    from ..data import Schema

    sample = frame.sample(min(len(frame), 2000), random_state=0) if len(frame) > 2000 else frame
    given = {r: roles[r] for r in ("user", "item", "time")}
    label = roles["label"] or roles["rating"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            schema = Schema.infer(sample, label=label, min_count=2, **given)
    except TFCompressError:
        return {}
    return {"user": schema.user, "item": schema.item, "time": schema.time, "label": schema.label}


def _label_kind(values):
    """``"label"`` for 0/1, booleans or yes/no; ``"rating"`` for other numbers; None otherwise."""
    import pandas as pd

    from ..data.movielens import BINARY_VALUES

    v = values.dropna()
    if pd.api.types.is_bool_dtype(v) or v.map(lambda x: str(x).strip().lower()).isin(list(BINARY_VALUES)).all():
        return "label"
    if pd.api.types.is_numeric_dtype(v) or pd.to_numeric(v, errors="coerce").notna().all():
        return "rating"
    return None


def _some(values):
    return f"values like {sorted(map(str, values.dropna().unique()[:3]))}"


def rating_threshold(values, given=None):
    """``(threshold, why)`` of a rating column: ``given`` when set, else 4 when the scale looks like 1-5
    stars (every rating in [0, 5]), else the median rating; ``why`` says which, for the description.

    Example:
        >>> rating_threshold([1, 3, 5]), rating_threshold([0, 6, 7, 10]), rating_threshold([1, 2], given=2)
        ((4.0, ', a 1-5 star scale'), (6.5, ', the median rating'), (2.0, ''))
    """
    import pandas as pd

    if given is not None:
        return float(given), ""
    r = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if len(r) and r.min() >= 0 and r.max() <= 5:
        return 4.0, ", a 1-5 star scale"
    return float(r.median()), ", the median rating"


def load_interactions(data, config=None):
    """``(events, spec, description)`` for ``--data``: ``None`` → the built-in shop is NOT handled here;
    ``"movielens"`` → the shared MovieLens-small; a path → MovieLens files or an interactions table (CSV,
    TSV, Parquet; roles by :func:`interaction_roles`). ``config`` (a RunConfig, optional) gives the column
    roles and reading options.

    Raises :class:`TFCompressError` with one line saying what to pass when ``data`` is not usable.

    Example:
        >>> try:
        ...     load_interactions("no/such/file.csv")
        ... except TFCompressError as e:
        ...     "does not exist" in str(e)
        True
    """
    if data is None:
        raise TFCompressError("load_interactions needs --data: the built-in shop is make_ecommerce()")
    return _load_log(data, config)


def data_name(data, quote=True):
    """How messages name ``--data``: the path (quoted), or ``a DataFrame``.

    Example:
        >>> data_name("log.csv"), data_name("log.csv", quote=False)
        ("'log.csv'", 'log.csv')
    """
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return "a DataFrame"
    return repr(str(data).strip()) if quote else str(data).strip()


def check_two_labels(events, spec, data):
    """The ctr task needs clicks and non-clicks: one line saying what to pass otherwise.

    Example:
        >>> import pandas as pd
        >>> from tfcompress.data import make_ecommerce
        >>> shop = make_ecommerce(2000)
        >>> check_two_labels(shop.events, shop.spec, None)
    """
    if spec.label not in events.columns or events[spec.label].nunique() < 2:
        value = events[spec.label].iloc[0].item() if spec.label in events.columns and len(events) else None
        raise TFCompressError(f"--data {data_name(data)} has only one label value ({value!r} on every row): the ctr task "
                              "needs clicks and non-clicks; give a 0/1 label or a rating column (--label COLUMN, "
                              "--label-threshold X)")


@dataclass
class CTRData(TaskData):
    """The ctr task's data: the splits, the feature spec (``spec``; ``feature_spec`` as a dict for the sidecar),
    the built-in data's ``shop``; streamed, ``shards = (ShardLog, --teacher-cache folder or None)`` (teacher_cache)."""

    spec: object = None
    feature_spec: dict = None
    shop: object = None
    shards: tuple = None


class CTRTask(Task):
    """Click-through-rate ranking: DCN-v2 teacher and student, AUC on a time-ordered test split."""

    name = "ctr"
    objective = "binary"
    metric = "auc"
    teacher_builder = staticmethod(ctr_teacher)
    student_builder = staticmethod(ctr_student)
    data_args = ("spec",)
    data_class = CTRData

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
        return {"spec": data.spec}

    def check_data(self, data, config=None):
        """A bad ``--data`` is one line, before anything is written (``config``: the column roles, reading
        options and split). Returns the split the data gets (None for the built-in shop)."""
        if is_shard_source(data):
            return self.shards(data, config).split
        log = _load_log(data, config)
        if log is None:
            return None
        events, spec, _ = log
        check_two_labels(events, spec, data)
        return interactions_split(not spec.metadata.get("no_time"), getattr(config, "split", None))

    def resolve_data(self, config):
        """Called by ``RunConfig.validate``: :meth:`check_data` with the config's roles; the resolved config
        records the split used."""
        how = self.check_data(config.data, config)
        return {} if how is None else {"split": how}

    def shards(self, data, config=None):
        """:func:`open_shards` of ``data``, kept from validation to loading (one streaming pass per run)."""
        key = (str(data), *(getattr(config, k, None) for k in _SHARD_KEYS))
        if getattr(self, "_shards", (None,))[0] != key:
            self._shards = (key, open_shards(data, config))
        return self._shards[1]

    def load(self, config):
        if is_shard_source(config.data):
            return streamed_data(self.shards(config.data, config), config)
        if config.data is None:
            shop = make_ecommerce(config.events, seed=config.seed)
            events, spec = shop.events, shop.spec
            source = "synthetic impressions"
        else:
            events, spec, source = load_interactions(config.data, config)
            shop = None
        check_two_labels(events, spec, config.data)
        how = interactions_split(not spec.metadata.get("no_time"), config.split)
        train, val, test = split_interactions(events, how, label=spec.label, seed=config.seed)
        bs = config.batch_size
        return CTRData(
            train_ds=to_dataset(train, spec, batch_size=bs, shuffle=True, seed=config.seed),
            val_ds=to_dataset(val, spec, batch_size=4096),
            test_inputs=frame_to_inputs(test, spec),
            test_labels=test[spec.label].to_numpy(),
            calibration_inputs=sample_inputs(train, spec, config.calibration_samples, seed=config.seed),
            latency_inputs=sample_inputs(test, spec, 1, seed=config.seed + 1),
            steps_per_epoch=int(np.ceil(len(train) / bs)),
            description=(f"{len(events):,} {source} ({len(train):,} train / {len(val):,} "
                         f"validation / {len(test):,} test, {split_words(how, spec)}), click rate "
                         f"{events[spec.label].mean():.1%}") + student_note(spec, config),
            spec=spec, feature_spec=spec.to_dict(), shop=shop)


def streamed_data(log, config):
    """The :class:`CTRData` of a :class:`~tfcompress.data.ShardLog`, with a note on the student's id tables."""
    fields = log.task_fields(batch_size=config.batch_size, calibration=config.calibration_samples, seed=config.seed)
    fields["description"] += student_note(log.spec, config)
    return CTRData(**fields, spec=log.spec, feature_spec=log.spec.to_dict(), shards=(log, config.teacher_cache))


def student_note(spec, config):
    """The report's notes on id tables: the student's compressed ones, lazy Adam for the full ones trained here."""
    student, own_teacher = getattr(config, "student", None) or {}, getattr(config, "teacher_model", None)
    notes = (student_table_note(spec, **student),  # lazy Adam: a full id table trained here
             lazy_adam_note([f.vocab_size for f in spec.categorical] * (not own_teacher or student.get("embedding") == "full")))
    return "".join(f"; {n}" for n in notes if n)
