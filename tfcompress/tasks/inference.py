"""Which task fits ``--data`` when ``--task`` is not given.

No data → the built-in ``ctr`` shop. A named dataset → its task (``movielens`` → ``ctr``, ``reviews`` →
``text``, ``fashion_mnist`` → ``image``); a MovieLens zip or folder, or a path that does not exist → ``ctr``
(its loader says what is wrong). A table file or a pandas DataFrame → its schema decides: a text column and
a label → ``text``; user and item columns (named or inferred) → ``ctr`` (interactions); otherwise a label →
``table``. ``--task`` always overrides.

Example:
    >>> import pandas as pd
    >>> infer_task(pd.DataFrame({"price": [1.5, 2.5, 3.5, 4.5], "bought": [True, False, True, False]}))
    'table'
    >>> infer_task(None), infer_task("reviews")
    ('ctr', 'text')
"""
import os
import warnings
import zipfile

from ..errors import TFCompressError
from .ctr import MOVIELENS_NAMES

#: named datasets of the shared data folder and the task each one is for
NAMED_DATASETS = {**{n: "ctr" for n in MOVIELENS_NAMES}, "reviews": "text", "fashion_mnist": "image",
                  "fashion-mnist": "image"}
#: the RunConfig fields that name column roles (passed to Schema.infer)
ROLE_FIELDS = ("label", "user", "item", "time", "text", "features", "drop", "label_threshold")


def infer_task(data, *, sep=None, header=None, **roles):
    """The name of the task for ``data`` (None, a dataset name, a path or a DataFrame); ``roles`` are
    Schema.infer's column roles (``label=``, ``user=``, ...; see :data:`ROLE_FIELDS`), ``sep``/``header``
    how to read a text table. Raises a one-line error when a table has no label to learn."""
    import pandas as pd

    if data is None:
        return "ctr"
    if not isinstance(data, pd.DataFrame):
        key = str(data).strip()
        if key.lower() in NAMED_DATASETS:
            return NAMED_DATASETS[key.lower()]
        if not _is_table_file(os.path.expanduser(key)):
            return "ctr"
    return _task_of_table(data, sep, header, roles)


def task_for(config):
    """The task name :func:`infer_task` gives for a RunConfig's ``data`` and column roles."""
    roles = {k: getattr(config, k) for k in ROLE_FIELDS}
    return infer_task(config.data, sep=config.sep, header=config.header, **roles)


def _is_table_file(path):
    """A file that is not a MovieLens zip (folders and missing paths are left to the ctr loader)."""
    if not os.path.isfile(path):
        return False
    if path.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as z:
                return not any(n.endswith("ratings.csv") for n in z.namelist())
        except zipfile.BadZipFile:
            return True
    return True


def _task_of_table(data, sep, header, roles):
    from ..data import Schema, read_table

    frame = read_table(data, sep=sep, header="infer" if header is None else header)
    options = {k: v for k, v in roles.items() if v is not None}
    options["drop"] = tuple(options.get("drop") or ())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the task's own check repeats them
            schema = Schema.infer(frame, **options)
    except TFCompressError:
        if roles.get("user") and roles.get("item"):
            return "ctr"
        raise
    if schema.text and schema.label:
        return "text"
    if schema.user and schema.item:
        return "ctr"
    if schema.label:
        return "table"
    raise TFCompressError(f"cannot tell which task fits this table: no label column was found among "
                          f"{list(frame.columns)}: name it with --label (label=), or pass --task")
