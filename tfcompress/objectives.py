"""What a model's output is — its *objective* — and the deprecated ``task=`` keyword that named it before.

``binary`` (one logit), ``multiclass`` (class logits), ``regression`` (raw values), ``ranking`` (raw scores
ordered within a list). ``task`` now means only a recipe (:mod:`tfcompress.tasks`).

Example:
    >>> objective_from("multiclass", None, "to_tflite")
    'multiclass'
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     objective_from("binary", "regression", "to_tflite")
    'regression'
    >>> caught[0].category.__name__
    'DeprecationWarning'
"""
import warnings

from .errors import TFCompressError

OBJECTIVES = ("binary", "multiclass", "regression", "ranking")
#: the objectives a label column can have (ranking is a way of scoring, not a label kind)
LABEL_OBJECTIVES = ("binary", "multiclass", "regression")


def objective_from(objective, task, where, *, default="binary", warn=None):
    """``objective``, or the value of ``where``'s deprecated ``task=`` keyword (warning with a
    DeprecationWarning, through ``warn(message)`` when given); both given and different is an error.
    ``objective`` equal to ``default`` counts as not given."""
    if task is None:
        return objective
    message = f"{where}: task= is deprecated, use objective= (pass objective={task!r})"
    if warn is None:
        warnings.warn(message, DeprecationWarning, stacklevel=3)
    else:
        warn(message)
    if objective not in (None, default, task):
        raise TFCompressError(f"{where}: objective={objective!r} and task={task!r} disagree: pass objective= only")
    return task


def check_objective(objective, where, allowed=OBJECTIVES):
    """``objective`` if it is one of ``allowed``, else a one-line error naming ``where``.

    Example:
        >>> check_objective("ranking", "to_tflite")
        'ranking'
    """
    if objective not in allowed:
        raise TFCompressError(f"{where}: objective={objective!r} is not one of {tuple(allowed)}")
    return objective
