"""``tfcompress tune``: the smallest (or fastest) model within a tolerance of the teacher, found by an
accuracy-aware multi-objective search over compression recipes (student size, pruning, structured and
low-rank shrinking, QAT, export mode, per-channel or per-tensor weights).

* :mod:`~tfcompress.tune.search` — :func:`search` (Optuna NSGA-II, a resumable study file, a time budget)
* :mod:`~tfcompress.tune.space` — the search table of each task (:data:`SPACES`), as data
* :mod:`~tfcompress.tune.trial` — :class:`Trials`: one teacher, cached distilled students, hopeless trials
  given up before export
* :mod:`~tfcompress.tune.front` — the Pareto front and the choice within the tolerance (validation only)
* :mod:`~tfcompress.tune.report` — the chosen file, ``recipe.yaml``, the tuning report and its re-rendering

Example:
    >>> from tfcompress import tune
    >>> sorted(tune.SPACES)
    ['ctr', 'image', 'table', 'text']
    >>> # result = tune.search(RunConfig(quick=True), tolerance="0.5%", objective="size", time_budget="30m")
"""
from .front import OBJECTIVES, choose, non_dominated
from .report import TUNE_JSON, recipe_dict, render_tune_report
from .search import TuneResult, parse_duration, search
from .space import SPACES, space_for
from .trial import Trials

__all__ = ["search", "TuneResult", "SPACES", "space_for", "Trials", "non_dominated", "choose", "OBJECTIVES",
           "render_tune_report", "recipe_dict", "parse_duration", "TUNE_JSON"]
