"""Stratified random splits for classification data without a time column.

Example:
    >>> import numpy as np
    >>> tr, va, te = stratified_split(np.arange(100) % 2, seed=0)
    >>> len(tr), len(va), len(te)
    (80, 10, 10)
"""
import numpy as np

from ..errors import TFCompressError


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
