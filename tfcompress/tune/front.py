"""The two decisions of a search, on finished trials' figures: the Pareto front (:func:`non_dominated`) and
the chosen trial (:func:`choose`: the best objective within the tolerance of the teacher, on validation).

A trial's figures are a dict with ``val_metric`` (the ``.tflite`` file's validation metric), ``size_bytes``
and ``p50_us`` (batch-1 median in the LiteRT interpreter).

Example:
    >>> rows = [{"number": 0, "val_metric": 0.80, "size_bytes": 900, "p50_us": 30.0},
    ...         {"number": 1, "val_metric": 0.79, "size_bytes": 400, "p50_us": 20.0},
    ...         {"number": 2, "val_metric": 0.70, "size_bytes": 500, "p50_us": 25.0}]
    >>> [r["number"] for r in non_dominated(rows, "size")]
    [0, 1]
    >>> choose(rows, reference=0.80, tolerance="2%", objective="size")["number"]
    1
"""
import math

from ..errors import TFCompressError
from ..tolerance import Tolerance

#: what each objective minimizes beside the metric
OBJECTIVES = {"size": ("size_bytes",), "latency": ("p50_us",), "both": ("size_bytes", "p50_us")}


def check_objective(objective):
    """``objective`` if it is one of :data:`OBJECTIVES`, else a one-line error.

    Example:
        >>> check_objective("size")
        'size'
    """
    if objective not in OBJECTIVES:
        raise TFCompressError(f"objective {objective!r} must be one of {list(OBJECTIVES)}")
    return objective


def _costs(row, objective, higher_is_better):
    sign = -1.0 if higher_is_better else 1.0
    return (sign * float(row["val_metric"]),) + tuple(float(row[k]) for k in OBJECTIVES[objective])


def dominates(a, b):
    """Whether cost vector ``a`` is no worse than ``b`` everywhere and better somewhere (all minimized).

    Example:
        >>> dominates((1, 2), (1, 3)), dominates((1, 2), (1, 2)), dominates((0, 3), (1, 2))
        (True, False, False)
    """
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(rows, objective, *, higher_is_better=True):
    """The rows no other row dominates on (validation metric, the objective's figures), in input order.

    Example:
        >>> rows = [dict(val_metric=0.80, size_bytes=100), dict(val_metric=0.79, size_bytes=50),
        ...         dict(val_metric=0.78, size_bytes=60)]
        >>> [r["size_bytes"] for r in non_dominated(rows, "size")]
        [100, 50]
    """
    check_objective(objective)
    costs = [_costs(r, objective, higher_is_better) for r in rows]
    return [r for r, c in zip(rows, costs) if not any(dominates(o, c) for o in costs)]


def objective_value(row, objective):
    """What the chosen trial minimizes: bytes, p50, or (``both``) their product (equal weight in log scale).

    Example:
        >>> objective_value({"size_bytes": 100, "p50_us": 2.0}, "both")
        200.0
    """
    return math.prod(float(row[k]) for k in OBJECTIVES[check_objective(objective)])


def choose(rows, *, reference, tolerance, objective, higher_is_better=True):
    """The row with the smallest :func:`objective_value` among those whose ``val_metric`` is within
    ``tolerance`` of ``reference`` (the teacher's validation metric); ties go to the better metric, then the
    earlier trial. None when no row is within.

    Example:
        >>> rows = [dict(number=0, val_metric=0.80, size_bytes=100), dict(number=1, val_metric=0.79, size_bytes=50)]
        >>> choose(rows, reference=0.80, tolerance="2%", objective="size")["number"]
        1
        >>> choose(rows, reference=0.90, tolerance="1%", objective="size") is None
        True
    """
    tol = Tolerance.parse(tolerance)
    ok = [r for r in rows if tol.within(r["val_metric"], reference, higher_is_better=higher_is_better)]
    if not ok:
        return None
    sign = -1.0 if higher_is_better else 1.0
    return min(ok, key=lambda r: (objective_value(r, objective), sign * r["val_metric"], r["number"]))
