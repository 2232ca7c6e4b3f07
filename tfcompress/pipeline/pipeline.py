"""The end-to-end recipe: ``Pipeline`` runs a task's stages for a resolved config; :func:`run` runs them
all and writes the report.

The standard recipe (``ctr``, ``text``, ``image``): teacher → student alone → distilled student → pruned →
sparsity-preserving QAT → int8 TFLite → report (:mod:`tfcompress.stages`); ``retrieval`` declares its own
stages (:mod:`tfcompress.tasks.recommendation`). Every model is evaluated on the same held-out test split;
the report (``report.md/.csv/.json/.html`` and ``pareto.png`` in the run folder) is built from what the
stages recorded, never re-derived.

Example:
    >>> import tempfile
    >>> cfg = RunConfig(quick=True, out=tempfile.mkdtemp(), stages=("baseline",), latency_runs=5)
    >>> result = run(cfg)  # doctest: +SKIP
"""
import dataclasses
import time
from dataclasses import dataclass

from .._io import ensure_dir
from ..errors import WriteError
from .._keras import keras
from ..stages import SUMMARY, PARITY, Progress, RunContext
from .config import ResolvedConfig, RunConfig
from .distribute import make_distribution
from .memory import release_freed_memory


@dataclass
class RunResult:
    """The run's stage results (in order), the report folder, the parity and summary figures, the
    headline printed by ``tfcompress run``, the elapsed time and the run id."""

    config: RunConfig
    stages: list
    report_dir: str
    parity: dict
    summary: dict
    elapsed_s: float
    headline: str = None
    run_id: str = None

    def stage(self, name):
        """The result called ``name`` (a ``KeyError`` when the run has none)."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)


class Pipeline:
    """A task's stages sharing one resolved config, one task and one dataset. Use :func:`run`, or call the
    stages one by one by name (``pipe.teacher()``, ``pipe.distill()``, ... or ``pipe.run_stage(stage)``),
    then ``measure_latency()``, ``parity()``, ``rows()`` and ``summary(rows)``.

    ``config`` is a :class:`ResolvedConfig` (from ``RunConfig.validate()``), or a :class:`RunConfig`,
    validated here once.

    Example:
        >>> cfg = RunConfig(quick=True, stages=("baseline",))
        >>> # pipe = Pipeline(cfg); pipe.baseline(); pipe.measure_latency(); pipe.rows()
    """

    def __init__(self, config, progress=None, run_id=None, distribution=None):
        started = time.perf_counter()
        self.distribution = distribution or make_distribution(getattr(config, "distribute", None))
        self.config = config if isinstance(config, ResolvedConfig) else config.validate()
        self.task = self.config.task
        self.progress = progress or Progress(self.config.verbose)
        if self.distribution.strategy is not None:
            self.progress("distribute", self.distribution.describe(self.config.batch_size), started)
        keras.utils.set_random_seed(self.config.seed)
        started = time.perf_counter()
        data = self.task.load(self.config)
        self.context = RunContext(config=self.config, task=self.task, data=data, progress=self.progress,
                                  fit_verbose=2 if self.config.verbose else 0, run_id=run_id)
        self._data_fresh = True
        release_freed_memory()  # the schema pass's buffers
        self.progress("data", data.description, started)

    @property
    def data(self):
        return self.context.data

    @property
    def results(self):
        return self.context.results

    @property
    def steps_per_epoch(self):
        return self.context.data.steps_per_epoch

    def run_stage(self, stage):
        """Run one stage (a :class:`~tfcompress.stages.Stage` or the name of one of the task's stages), its
        models built and compiled in the run's strategy scope."""
        if isinstance(stage, str):
            stage = self._stage(stage)
        with self.distribution.scope():
            return stage.run(self.context)

    def _stage(self, name):
        from ..errors import WriteError, TFCompressError

        for stage in self.task.stages:
            if stage.name == name:
                return stage
        raise TFCompressError(f"{self.task.name} has no stage {name!r}; its stages are "
                              f"{[s.name for s in self.task.stages]}")

    def __getattr__(self, name):
        """``pipe.NAME()`` runs the task's stage called NAME."""
        task = self.__dict__.get("task")
        if task is None or name.startswith("_") or name not in [s.name for s in task.stages]:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        stage = self._stage(name)
        return lambda: self.run_stage(stage)

    def __dir__(self):
        return sorted(set(super().__dir__()) | {s.name for s in self.task.stages})

    def run_all(self, *, skip=(), on_stage=None):
        """Run the config's selected stages, in the task's order (but those named in ``skip``, already
        restored by :meth:`resume`); return the results. Each stage starts from the same state whichever
        stages ran before it (the seed reset to ``seed + its index``, the data fresh), so a resumed run
        computes what an uninterrupted one does, and ends by handing what it freed back to the OS
        (:func:`~tfcompress.pipeline.memory.release_freed_memory`). ``on_stage(name, results)`` is called after each stage."""
        for index, stage in enumerate(self.task.stages):
            if stage.name not in self.config.stages or stage.name in skip:
                continue
            self._fresh_start(index)
            before = len(self.results)
            self.run_stage(stage)
            release_freed_memory()  # what the stage freed, so that it is not under the next stage's peak
            if on_stage is not None:
                on_stage(stage.name, self.results[before:])
        return self.results

    def _fresh_start(self, index):
        keras.utils.set_random_seed((self.config.seed + index) % 2**32)  # datasets take it as they are made
        if not self._data_fresh:
            self.context.data = self.task.load(self.config)
        self._data_fresh = False

    def resume(self, manifest):
        """Restore the results of the stages an unfinished run (``manifest``, its ``run.json``) finished,
        as long as each reloads faithfully (its files unchanged, its Keras model rebuilt and scoring as
        recorded); return the names of the stages restored and print which were skipped."""
        from .resume import restore_stages

        started = time.perf_counter()
        with self.distribution.scope():
            kept, why = restore_stages(self.context, self.config.selected_stages, manifest)
        self._data_fresh = False
        rerun = [s.name for s in self.config.selected_stages if s.name not in kept]
        note = f"run {manifest['run_id']}: skipped {', '.join(kept) or 'no stage'} (finished before)"
        if rerun:
            note += f"; {why + '; ' if why else ''}running {', '.join(rerun)}"
        self.progress("resume", note, started)
        return kept

    # --- measuring and reporting (declared by the task) ---------------------------------------------
    def measure_latency(self):
        """Batch-1 latency of every result, interleaved (the task's ``latency``)."""
        return self.task.latency.run(self.context)

    def rows(self):
        """The report table's rows, one per result (the task's ``table``)."""
        return self.task.table.rows(self.results)

    def parity(self):
        """The parity figures of the final Keras model and its TFLite file (empty when there is none)."""
        return self._section_figures(PARITY, None)

    def summary(self, rows):
        """The summary ratios of the report (empty when the run lacks the files they compare)."""
        return self._section_figures(SUMMARY, rows)

    def _section_figures(self, key, rows):
        out = {}
        for section in self.task.report_sections:
            if section.key == key:
                out.update(section.figures(self.context, rows))
        return out


def run(config=None, *, progress=None, **overrides):
    """Run the recipe and write the report; returns a :class:`RunResult`. ``config`` is a
    :class:`ResolvedConfig` (used as it is), a :class:`RunConfig` (validated once) or None (the defaults);
    keyword ``overrides`` replace its fields.

    The folders are one run (:mod:`tfcompress.pipeline.run_folder`): locked while it runs, a ``run.json``
    manifest written after each stage; an unfinished run of the same config there is resumed
    (``resume=``), another run refused unless ``overwrite=True``. Under ``distribute`` the strategy is made
    first (:mod:`tfcompress.pipeline.distribute`); in a multi-worker run only the chief does all this,
    every other worker trains and exports alongside it into a temporary folder (:func:`run_worker`)."""
    from .run_folder import RunFolder

    t0 = time.perf_counter()
    distribution = make_distribution(overrides.get("distribute", getattr(config, "distribute", None)))
    config = _resolved(config, overrides)
    if not distribution.is_chief:
        return run_worker(config, distribution, progress=progress)
    folder = RunFolder(config)
    with folder.locked():
        resumed = folder.prepare(resume=config.resume, overwrite=config.overwrite)
        _check_multi_worker_resume(distribution, resumed, config)
        for name in ("out", "savedmodels_dir", "tflite_dir"):
            ensure_dir(getattr(config, name), name)
        pipe = Pipeline(config, progress=progress, run_id=folder.run_id, distribution=distribution)
        kept = pipe.resume(resumed) if resumed else ()
        folder.start(resumed, kept)
        try:
            pipe.run_all(skip=kept, on_stage=folder.stage_finished)
        except WriteError as e:
            raise WriteError(f"{e}; {_report_of_finished(pipe, t0)}") from None
        result = _report(pipe, t0)
        folder.finish(_report_files(config.out))
    distribution.barrier()  # the other workers wait for the report (its Keras predictions are collectives)
    return result


def run_worker(config, distribution, *, progress=None):
    """A multi-worker run on a worker that is not the chief: every stage (each collective with the chief),
    its files written into a temporary folder removed at the end; no lock, manifest, latency or report.
    Returns a :class:`RunResult` without a report folder."""
    t0 = time.perf_counter()
    with distribution.worker_folders(config) as scratch:
        for name in ("out", "savedmodels_dir", "tflite_dir"):
            ensure_dir(getattr(scratch, name), name)
        pipe = Pipeline(scratch, progress=progress, distribution=distribution)
        with distribution.lost_chief():
            pipe.run_all()
            pipe.parity()  # the chief's report predicts with the Keras models: collectives, taken part in here
            pipe.summary(pipe.rows())
            distribution.barrier()
        pipe.progress("worker", f"worker {distribution.index} done; the chief writes the report", t0)
    return RunResult(config=config, stages=pipe.results, report_dir=None, parity={}, summary={},
                     elapsed_s=time.perf_counter() - t0)


def _check_multi_worker_resume(distribution, resumed, config):
    from ..errors import TFCompressError

    if resumed and distribution.workers > 1:  # the other workers would run the stages the chief skips
        raise TFCompressError(f"{config.out!r} holds the unfinished run {resumed['run_id']}: a multi-worker run "
                              "does not resume; pass --overwrite to start it again, or choose another --out")


def _report_of_finished(pipe, t0):
    """After a write failure: the report of the stages that finished (the run stays unfinished, so
    ``--resume`` continues it); returns what happened, as the end of the error's line."""
    done = [r.name for r in pipe.results]
    if not done:
        return "no stage had finished, so no report was written"
    try:
        _report(pipe, t0)
    except (WriteError, OSError) as e:
        return f"the report of the finished stages could not be written either ({str(e).splitlines()[0][:120]})"
    return (f"the report of the finished results ({', '.join(done)}) is in {pipe.config.out}; "
            "rerun with --resume when there is space")


def _resolved(config, overrides):
    config = config or RunConfig()
    if "teacher" in overrides and not isinstance(overrides["teacher"], dict):  # run(cfg, teacher=your_model)
        overrides["teacher_model"] = overrides.pop("teacher")
    if overrides:
        base = config.unresolved() if isinstance(config, ResolvedConfig) else config
        config = dataclasses.replace(base, **overrides)
    return config if isinstance(config, ResolvedConfig) else config.validate()


def _report(pipe, t0):
    from .run_report import write_run_report

    config = pipe.config
    pipe.measure_latency()
    parity = pipe.parity()
    rows = pipe.rows()
    summary = pipe.summary(rows)
    figures = {PARITY: parity, SUMMARY: summary}
    elapsed = time.perf_counter() - t0
    headline = write_run_report(pipe.context, rows, figures, elapsed, distribution=pipe.distribution)
    pipe.progress("report", f"written to {config.out}", t0)
    return RunResult(config=config, stages=pipe.results, report_dir=config.out, parity=parity, summary=summary,
                     elapsed_s=elapsed, headline=headline, run_id=pipe.context.run_id)


def _report_files(out):
    import os

    return [os.path.join(out, n) for n in sorted(os.listdir(out)) if n.startswith(("report.", "pareto"))]


def RetrievalPipeline(config, progress=None):  # noqa: N802  (the old class name)
    """Deprecated: ``Pipeline`` runs the retrieval task's stages as any other's."""
    import warnings

    warnings.warn("RetrievalPipeline is deprecated: use Pipeline(RunConfig(task='retrieval', ...))",
                  DeprecationWarning, stacklevel=2)
    return Pipeline(config, progress=progress)
