"""``search``: accuracy-aware multi-objective search over compression recipes (what ``tfcompress tune`` runs).

Optuna drives it (NSGA-II over the task's table in :mod:`tfcompress.tune.space`; directions: the
validation metric up, bytes and/or batch-1 p50 down), with the study in a journal file so that a search
killed halfway resumes from it; :class:`~tfcompress.tune.trial.Trials` runs each recipe with the standard
stages on one teacher. The choice (:func:`~tfcompress.tune.front.choose`) is made on the validation split;
the chosen file's test figures are reported apart.

Example:
    >>> from tfcompress.pipeline import RunConfig
    >>> result = search(RunConfig(quick=True, out="runs/tune"), trials=4)  # doctest: +SKIP
    >>> result.chosen["size_bytes"], result.recipe_path  # doctest: +SKIP
"""
import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass

from ..errors import TFCompressError, check
from ..tolerance import Tolerance
from .front import OBJECTIVES, check_objective, choose, non_dominated
from .space import reachable_student_inits, space_for, suggest, with_config_recipe

#: the study's name inside its journal file
STUDY_NAME = "tfcompress-tune"
#: trials when neither ``trials`` nor ``time_budget`` is given
DEFAULT_TRIALS = 20


@dataclass
class TuneResult:
    """What a search found: every trial (``trials``: recipe, figures, state), the Pareto ``front`` (finished
    trials no other beats on validation metric and the objective), the ``chosen`` trial (None when none is
    within the tolerance: ``note`` says so), the teacher's validation metric, and the files written
    (``recipe_path``, ``tflite_path`` of the chosen model, ``report_path``)."""

    task: str
    metric: str
    objective: str
    tolerance: str
    teacher_val: float
    trials: list
    front: list
    chosen: dict
    note: str
    out: str
    recipe_path: str = None
    tflite_path: str = None
    report_path: str = None

    @property
    def chosen_test(self):
        """The chosen model's test-split figures (never used for the choice), or None."""
        return None if self.chosen is None else self.chosen["test"]


def parse_duration(value):
    """Seconds in ``"30m"``, ``"90s"``, ``"1h"`` or a number of seconds; a one-line error otherwise.

    Example:
        >>> parse_duration("30m"), parse_duration("90s"), parse_duration(1.5), parse_duration("1h")
        (1800.0, 90.0, 1.5, 3600.0)
    """
    bad = f"time budget {value!r} must be a duration such as 90s, 30m or 1h (or a number of seconds > 0)"
    if isinstance(value, bool):
        raise TFCompressError(bad)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(value))
    check(match is not None, bad)
    seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    check(seconds > 0, bad)
    return seconds


def _check_trials(trials):
    ok = trials is None or (isinstance(trials, int) and not isinstance(trials, bool) and trials >= 1)
    check(ok, f"trials = {trials!r} must be a whole number >= 1")


def search(config=None, *, tolerance="0.5%", objective="size", trials=None, time_budget=None, study=None,
           progress=True, space=None, **overrides):
    """Search the task's recipes for ``config`` (a :class:`~tfcompress.pipeline.RunConfig`; keyword
    ``overrides`` replace its fields): ``trials`` in all (counting those already in ``study``) and/or for
    ``time_budget`` (``"30m"``); ``objective`` ``size``, ``latency`` or ``both``; ``tolerance`` relative
    (``"0.5%"``) or absolute, against the teacher's validation metric. ``study`` is the journal file
    (default ``OUT/study.log``; an existing one is resumed). ``space`` replaces the task's search table.
    Returns a :class:`TuneResult`; writes the chosen ``.tflite`` (with its sidecar), ``recipe.yaml`` and
    ``tune_report.md/.html`` into ``OUT``."""
    from .report import write_outputs
    from .trial import Trials

    started = time.perf_counter()  # the budget counts the teacher too
    tol, seconds, cfg = _arguments(config, tolerance, objective, trials, time_budget, overrides)
    opt_study = _study(study or os.path.join(cfg.out, "study.log"), cfg, objective, str(tol))
    runner = Trials(cfg, tolerance=tol, verbose=cfg.verbose)
    _check_teacher(opt_study, runner.teacher_val)
    space = _space(space, cfg, runner, progress)
    space, own = with_config_recipe(space, cfg, cfg.task)
    if not opt_study.trials:
        opt_study.enqueue_trial(own)  # trial 0: the config's own recipe (the default run's, unless changed)
    target = trials if trials is not None else (None if seconds is not None else DEFAULT_TRIALS)
    _optimize(opt_study, runner, space, objective, (target, seconds, started), progress, tol)
    rows = trial_rows(opt_study)
    finished = [r for r in rows if r["state"] == "COMPLETE"]
    higher = cfg.task.higher_is_better
    chosen = choose(finished, reference=runner.teacher_val, tolerance=tol, objective=objective, higher_is_better=higher)
    result = TuneResult(task=cfg.task.name, metric=cfg.task.metric, objective=objective, tolerance=str(tol),
                        teacher_val=runner.teacher_val, trials=rows,
                        front=non_dominated([r for r in finished if r["same_as"] is None], objective,
                                            higher_is_better=higher), chosen=chosen,
                        note=_note(chosen, finished, runner.teacher_val, tol, cfg.task.metric), out=cfg.out)
    return write_outputs(result, cfg)


def _space(space, cfg, runner, progress):
    """The search table: ``space`` as given, else the task's, without student shares the teacher cannot reach."""
    if space is not None:
        return dict(space)
    space = space_for(cfg.task.name, prunable_teacher=_prunable_teacher(cfg))
    space, note = reachable_student_inits(space, runner.teacher.model if runner.teacher.format == "keras" else None)
    if note and progress:
        print(note)
    return space


def _prunable_teacher(cfg):
    """Whether ``--student from-teacher:SHARE`` can prune the run's teacher (not a pretrained Keras 3 one)."""
    from ..stages.pretrained_teacher import pretrained_folder

    return pretrained_folder(cfg) is None


def _arguments(config, tolerance, objective, trials, time_budget, overrides):
    """The parsed tolerance, the budget in seconds (or None) and the resolved config, its folders in OUT."""
    from ..pipeline import RunConfig
    from ..pipeline.config import ResolvedConfig

    tol = Tolerance.parse(tolerance)
    check_objective(objective)
    _check_trials(trials)
    seconds = None if time_budget is None else parse_duration(time_budget)
    config = config or RunConfig()
    if isinstance(config, ResolvedConfig):
        config = config.unresolved()
    config = dataclasses.replace(config, **overrides)
    out = config.out or os.path.join("runs", f"{config.task if isinstance(config.task, str) else 'auto'}_tune")
    config = dataclasses.replace(config, out=out, savedmodels_dir=os.path.join(out, "savedmodels"),
                                 tflite_dir=os.path.join(out, "tflite"), tolerance=str(tol))
    check(config.distribute is None, f"tfcompress tune runs its trials in one process (distribute = "
          f"{config.distribute!r}): tune without it, then train the chosen recipe with `tfcompress run --config "
          "OUT/recipe.yaml --distribute ...`")
    cfg = config.validate()
    for folder in (cfg.out, cfg.savedmodels_dir, cfg.tflite_dir):
        os.makedirs(folder, exist_ok=True)
    return tol, seconds, cfg


def _study(path, cfg, objective, tolerance):
    """The Optuna study in journal file ``path`` (created, or loaded when it exists and matches)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize" if cfg.task.higher_is_better else "minimize"] + ["minimize"] * len(OBJECTIVES[objective])
    storage = JournalStorage(JournalFileBackend(os.fspath(path)))
    sampler = optuna.samplers.NSGAIISampler(population_size=8, seed=cfg.seed)
    study = optuna.create_study(storage=storage, sampler=sampler, study_name=STUDY_NAME, directions=directions,
                                load_if_exists=True)
    want = {"task": cfg.task.name, "objective": objective, "tolerance": tolerance}
    have = {k: study.user_attrs.get(k) for k in want}
    if not any(have.values()):
        for key, value in want.items():
            study.set_user_attr(key, value)
    elif have != want:
        raise TFCompressError(f"study {path!r} holds a search with {have}, not {want}: give another --out or "
                              "study file, or the same task, objective and tolerance")
    return study


def _check_teacher(study, teacher_val):
    """Record the teacher's validation metric; a resumed study's must match (the same teacher)."""
    before = study.user_attrs.get("teacher_val")
    if before is None:
        study.set_user_attr("teacher_val", teacher_val)
    elif abs(before - teacher_val) > 1e-6:
        raise TFCompressError(f"study's teacher scored {before:.6f} on validation, this one {teacher_val:.6f}: "
                              "resume with the same data, seed and teacher, or start a new study")


def _optimize(study, runner, space, objective, budget, progress, tol):
    """Ask, run and tell trials until ``target`` trials are in the study or ``seconds`` have passed since
    ``started`` (``budget``: those three)."""
    from .progress import SearchProgress

    target, seconds, started = budget
    done = lambda: len([t for t in study.trials if t.state.is_finished()])  # noqa: E731
    bar = SearchProgress(target, seconds, done(), enabled=progress)
    with bar:
        while (target is None or done() < target) and (seconds is None or time.perf_counter() - started < seconds):
            _one_trial(study, runner, space, objective)
            rows = [r for r in trial_rows(study) if r["state"] == "COMPLETE"]
            best = choose(rows, reference=runner.teacher_val, tolerance=tol, objective=objective,
                          higher_is_better=runner.task.higher_is_better)
            bar.update(done(), best, time.perf_counter() - started)


def _one_trial(study, runner, space, objective):
    """One trial: suggest a recipe, run it (or reuse the figures of the same recipe run before), tell Optuna."""
    from optuna.trial import TrialState

    from .trial import Hopeless

    trial = study.ask()
    recipe = suggest(trial, space)
    trial.set_user_attr("recipe", _jsonable(recipe))
    try:
        before = _done_before(study, recipe)
        if before is not None:
            trial.set_user_attr("same_as", before.number)  # its figures again: one row on the front
        figures = dict(before.user_attrs["figures"]) if before is not None else runner.run(recipe, trial.number)
    except Hopeless as e:
        trial.set_user_attr("pruned", str(e))
        trial.set_user_attr("figures", {"keras_val_metric": e.val_metric})
        return study.tell(trial, state=TrialState.PRUNED)
    except Exception as e:  # one recipe failing (a conversion, a layer that cannot shrink) ends that trial only
        words = str(e).strip().splitlines()
        trial.set_user_attr("error", (words[0] if words else "") if isinstance(e, TFCompressError)
                            else f"{type(e).__name__}: {words[0] if words else ''}"[:300])
        return study.tell(trial, state=TrialState.FAIL)
    trial.set_user_attr("figures", figures)
    values = [figures["val_metric"]] + [figures[k] for k in OBJECTIVES[objective]]
    return study.tell(trial, values)


def _jsonable(value):
    return json.loads(json.dumps(value))


def _done_before(study, recipe):
    """The first finished trial of the same recipe, or None."""
    wanted = _jsonable(recipe)
    for t in study.trials:
        if t.state.name == "COMPLETE" and t.user_attrs.get("recipe") == wanted and "same_as" not in t.user_attrs:
            return t
    return None


def trial_rows(study):
    """One dict per trial of ``study``: number, state, recipe, figures (flattened), why pruned or failed."""
    rows = []
    for t in study.trials:
        if not t.state.is_finished():
            continue
        row = {"number": t.number, "state": t.state.name, "recipe": t.user_attrs.get("recipe", {})}
        row.update(t.user_attrs.get("figures", {}))
        same = t.user_attrs.get("same_as")
        row["why"] = t.user_attrs.get("pruned") or t.user_attrs.get("error") or (
            None if same is None else f"same recipe as #{same}")
        row["same_as"] = same
        rows.append(row)
    return rows


def _note(chosen, finished, teacher_val, tol, metric):
    if chosen is not None:
        return (f"trial {chosen['number']} chosen: validation {metric} {chosen['val_metric']:.4f} within {tol} of "
                f"the teacher's {teacher_val:.4f}")
    if not finished:
        return "no trial finished: nothing to choose (run more trials or a longer time budget)"
    return (f"no trial is within {tol} of the teacher's validation {metric} {teacher_val:.4f}: nothing chosen "
            "(loosen the tolerance or search longer); the front shows what was found")
