"""Splits that fit the data: stratified random splits for classification data without a time column, and
the split of an interactions log (by time when it has time, else by user).

Example:
    >>> import numpy as np
    >>> tr, va, te = stratified_split(np.arange(100) % 2, seed=0)
    >>> len(tr), len(va), len(te)
    (80, 10, 10)
"""
import numpy as np

from ..errors import TFCompressError

#: what the description line says of each interactions split
SPLIT_WORDS = {
    "time": "by time",
    "user": "by user: each user's last interaction is test, the one before validation",
    "stratified": "stratified by label, random",
    "random": "random",
}


def stratified_split(labels, fractions=(0.8, 0.1, 0.1), seed=0):
    """Index arrays (train, validation, test) with each class split in ``fractions``."""
    labels = np.asarray(labels)
    if len(labels) < 10:
        raise TFCompressError(f"{len(labels)} examples are too few to split into train/validation/test")
    rng = np.random.default_rng(seed)
    parts = [[], [], []]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        a = int(round(len(idx) * fractions[0]))
        b = a + int(round(len(idx) * fractions[1]))
        for part, chunk in zip(parts, (idx[:a], idx[a:b], idx[b:])):
            part.append(chunk)
    return tuple(rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts)


def interactions_split(has_time, split=None):
    """The split an interactions log gets: ``split`` (``auto``/None, ``time``, ``user``, ``stratified``,
    ``random``), where ``auto`` is ``time`` when the log has a time column and ``user`` otherwise. A
    ``time`` split of a log without time is a one-line error.

    Example:
        >>> interactions_split(True), interactions_split(False), interactions_split(False, "random")
        ('time', 'user', 'random')
    """
    how = split or "auto"
    if how not in ("auto",) + tuple(SPLIT_WORDS):
        raise TFCompressError(f"--split {how!r} is not one of auto, {', '.join(SPLIT_WORDS)}")
    if how == "auto":
        return "time" if has_time else "user"
    if how == "time" and not has_time:
        raise TFCompressError("--split time needs a time column and this log has none: name it with --time "
                              "COLUMN, or use --split user (each user's last interaction is test)")
    return how


def split_words(how, spec):
    """What the description line says of split ``how`` of a log with feature spec ``spec``.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> split_words("time", make_ecommerce(2000).spec)
        'by time'
    """
    words = SPLIT_WORDS[how]
    if how == "user" and spec.metadata.get("no_time"):
        words = words.replace("last interaction", "last row in the file") + " (no time column)"
    return words


def split_interactions(events, how, *, label="click", seed=0):
    """``(train, validation, test)`` of ``events`` (``user_id``, ``timestamp`` and ``label`` columns, as
    :func:`~tfcompress.data.interactions_from_frame` makes them) split ``how``: ``time`` 80/10/10 by time;
    ``user`` each user's last interaction (by ``timestamp``: the file's order when the log has no time) to
    test and the one before to validation (users with fewer than 3 stay in train); ``stratified`` /
    ``random`` 80/10/10 at random (stratified by ``label``).

    Example:
        >>> import pandas as pd
        >>> ev = pd.DataFrame({"user_id": [1, 1, 1, 2], "timestamp": [0, 1, 2, 3], "click": [1, 0, 1, 0]})
        >>> [p.timestamp.tolist() for p in split_interactions(ev, "user")]
        [[0, 3], [1], [2]]
    """
    from ..data import Schema, split_table, time_split

    if how == "time":
        return tuple(time_split(events))
    events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    schema = Schema(columns=[], user="user_id", label=label, objective="binary")
    parts = split_table(events, schema, how, seed=seed)
    return parts.train, parts.val, parts.test
