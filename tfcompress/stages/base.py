"""What every stage of a recipe shares: :class:`Stage` (a name, what it needs, ``run(context)``), the
:class:`StageResult` it records and the :class:`RunContext` it reads and writes.

A task (:mod:`tfcompress.tasks`) declares its stages as a list of :class:`Stage` objects;
:class:`tfcompress.pipeline.Pipeline` runs any such list in order and never asks which task it runs.

Example:
    >>> class Hello(Stage):
    ...     name = "hello"
    ...     def run(self, context):
    ...         return context.record(StageResult(name="hello", format="keras"))
    >>> context = RunContext(config=None, task=None, data=None)
    >>> Hello().run(context).name, context.find("hello").format
    ('hello', 'keras')
"""
import json
import sys
import time
from dataclasses import dataclass, field

from ..errors import TFCompressError


@dataclass
class StageResult:
    """What one stage produced: a model or a file, and the figures the report needs.

    Example:
        >>> StageResult(name="teacher", format="keras", quality={"auc": 0.75}).auc
        0.75
    """

    name: str
    format: str
    model: object = None
    path: str = None
    params: int = None
    sparsity: float = None
    quality: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def auc(self):
        return self.quality.get("auc")

    @property
    def accuracy(self):
        return self.quality.get("accuracy")

    @property
    def logloss(self):
        return self.quality.get("logloss")


class Progress:
    """One line per finished step on stderr: ``[   stage] message (3.1 s; total 12.0 s)``.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> Progress(stream=out)("teacher", "trained", time.perf_counter())
        >>> out.getvalue().startswith("[ teacher] trained (")
        True
    """

    def __init__(self, verbose=False, stream=None):
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def __call__(self, stage, message, started):
        now = time.perf_counter()
        print(f"[{stage:>8}] {message} ({now - started:.1f} s; total {now - self.t0:.1f} s)",
              file=self.stream, flush=True)


@dataclass
class RunContext:
    """What the stages of one run share: the resolved config, the task, its data and the results so far.

    Example:
        >>> c = RunContext(config=None, task=None, data=None)
        >>> c.record(StageResult("a", "keras")) is c.find("a"), c.find("a", "tflite")
        (True, None)
    """

    config: object
    task: object
    data: object
    results: list = field(default_factory=list)
    progress: object = field(default_factory=Progress)
    fit_verbose: int = 0
    run_id: str = None

    def record(self, result):
        """Append ``result`` to the run's results and return it."""
        self.results.append(result)
        return result

    def find(self, name, fmt="keras"):
        """The latest result called ``name`` in format ``fmt`` (``None``: any format), or None."""
        return next((r for r in reversed(self.results) if r.name == name and fmt in (None, r.format)), None)

    def first(self, names, fmt="keras"):
        """The result of the first of ``names`` (in that order of preference) that the run has, or None."""
        return next((r for r in map(lambda n: self.find(n, fmt), names) if r is not None), None)

    def path(self, folder, name):
        """``folder/TASK_name`` (e.g. ``savedmodels/ctr_teacher``): where a stage writes an artifact."""
        import os

        return os.path.join(folder, f"{self.task.name}_{name}")


class Stage:
    """One step of a recipe. Subclasses set ``name`` (what ``--stages`` selects) and ``requires`` (stages
    that must be selected too: each entry a stage name, or a tuple of names any one of which will do), and
    implement :meth:`run`. ``needs`` says, in the error, why (e.g. ``"a student"``).

    Example:
        >>> class Distil(Stage):
        ...     name, requires, needs = "distil", ("teacher",), "the model it learns from"
        >>> Distil().check_needs(["distil"])
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: stage 'distil' needs stage 'teacher' (the model it learns from): add it to --stages
    """

    name = "stage"
    requires = ()
    needs = ""
    resumable = False  # whether a resumed run may reuse this stage's saved results instead of rerunning it

    def rebuild(self, context, result):
        """A fresh Keras model of the architecture of this stage's result called ``result``, into which a
        resumed run loads that result's SavedModel weights; None (the default): it cannot be rebuilt."""
        return None

    def run(self, context):
        """Do the step on ``context`` (a :class:`RunContext`); record and return a :class:`StageResult`."""
        raise NotImplementedError(f"stage {self.name!r} does not implement run(context)")

    def check_needs(self, selected):
        """Raise one clear error when a stage this one needs is not in ``selected`` (stage names)."""
        for need in self.requires:
            options = (need,) if isinstance(need, str) else tuple(need)
            if any(o in selected for o in options):
                continue
            if len(options) == 1:
                why = f" ({self.needs})" if self.needs else ""
                raise TFCompressError(f"stage {self.name!r} needs stage {options[0]!r}{why}: add it to --stages")
            rest = " or ".join(repr(o) for o in options[1:])
            raise TFCompressError(f"stage {self.name!r} needs {self.needs or 'one of ' + repr(list(options))}: "
                                  f"add {options[0]!r} (or {rest}) to --stages")

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def stage_names(stages):
    """The names of ``stages`` (Stage objects), in order.

    Example:
        >>> stage_names([Stage()])
        ('stage',)
    """
    return tuple(s.name for s in stages)


def is_jsonable(value):
    """True when ``value`` can be written to a JSON file as it is.

    Example:
        >>> is_jsonable({"a": [1, 2]}), is_jsonable(object())
        (True, False)
    """
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
