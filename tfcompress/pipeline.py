"""The end-to-end recipe: teacher → distilled student → pruned → sparsity-preserving QAT → int8 TFLite → report.

Tasks (``ctr``, ``text``, ``image``; see :mod:`tfcompress.tasks`) supply the data, the model builders, the
loss and the quality metric; the stages below are the same for every task. A task may instead run its
own stages (``task.stages`` and ``task.pipeline_class``, a :class:`Pipeline` subclass): ``retrieval``
(:mod:`tfcompress.tasks.retrieval`) does, keeping the progress, timing, artifacts and report of this module.

``tfcompress run`` is a thin shell over :func:`run`. Each stage takes a Keras model and returns one (or an
exported artifact); every model is evaluated on the same held-out, time-ordered test split; the report
(``report.md/.csv/.json/.html`` and ``pareto.png`` in the run folder) is built from what the stages
recorded, never re-derived.

=============  ==========================================================================================
stage          what it does
=============  ==========================================================================================
``teacher``    train the task's large teacher on labels (CTR: DCN-v2), early stopping on the validation metric
``baseline``   train the student alone on labels (the "no distillation" reference)
``distill``    train a fresh student with :class:`~tfcompress.distill.Distiller` from the teacher
``prune``      tfmot magnitude pruning of the student to ``prune.target_sparsity`` (PolynomialDecay
               with a frequency derived from the step count), fine-tuned by distillation, then stripped
``qat``        sparsity-preserving quantization-aware training (tfmot collaborative optimization)
``export``     float32 TFLite of the teacher and full-int8 TFLite (int8 weights and activations, int8
               float I/O) of the final student, each evaluated on the test split
=============  ==========================================================================================

Example:
    >>> import tempfile
    >>> cfg = RunConfig(quick=True, out=tempfile.mkdtemp(), stages=("baseline",), latency_runs=5)
    >>> result = run(cfg)  # doctest: +SKIP
"""
import dataclasses
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field

from . import __version__
from ._io import ensure_dir, write_json
from ._keras import keras, tf
from .errors import TFCompressError, check, check_fraction

STAGES = ("teacher", "baseline", "distill", "prune", "qat", "export")
@dataclass
class RunConfig:
    """Everything ``tfcompress run`` needs; loadable from YAML (:meth:`from_yaml`), unknown keys rejected.

    Fields left at ``None`` take the task's defaults (smaller ones with ``quick=True``); ``teacher`` and
    ``student`` are keyword arguments for the task's model builders (e.g. ``{"embedding_dim": 32}``).
    Call :meth:`resolve` to see the values a run will use.
    """

    task: str = "ctr"
    data: str = None
    seed: int = 0
    out: str = None
    savedmodels_dir: str = "savedmodels"
    tflite_dir: str = "tflite_export"
    stages: tuple = None  # None: all of the task's stages (STAGES for ctr/text/image)
    quick: bool = False
    verbose: bool = False
    events: int = None
    batch_size: int = None
    teacher: dict = field(default_factory=dict)
    student: dict = field(default_factory=dict)
    teacher_epochs: int = None
    student_epochs: int = None
    learning_rate: float = None
    student_learning_rate: float = None
    alpha: float = 0.1
    temperature: float = 1.0
    target_sparsity: float = 0.5
    prune_epochs: int = None
    qat_epochs: int = None
    calibration_samples: int = None
    latency_runs: int = None

    @classmethod
    def quick_defaults(cls, **overrides):
        """A configuration that runs in about a minute (for tests and notebooks)."""
        return cls(quick=True, **overrides)

    @classmethod
    def from_dict(cls, d, base=None):
        """Build from a plain dict (as read from YAML) on top of ``base`` (default: the defaults);
        unknown keys are an error naming them."""
        if not isinstance(d, dict):
            raise TFCompressError(f"a config must be a mapping of keys to values, got {type(d).__name__}")
        base = base or cls()
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TFCompressError(f"unknown config key(s) {unknown}; known keys: {sorted(known)}")
        d = dict(d)
        for key in ("teacher", "student"):
            if key in d:
                if not isinstance(d[key], dict):
                    raise TFCompressError(f"{key!r} must be a mapping of model options, got {d[key]!r}")
                d[key] = {**getattr(base, key), **d[key]}
        if "stages" in d and isinstance(d["stages"], str):
            d["stages"] = tuple(s.strip() for s in d["stages"].split(",") if s.strip())
        return dataclasses.replace(base, **d)

    @classmethod
    def from_yaml(cls, path, base=None):
        """Read a YAML config file on top of ``base`` (default: the defaults)."""
        import yaml

        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except FileNotFoundError:
            raise TFCompressError(f"config file {path!r} does not exist") from None
        except yaml.YAMLError as e:
            raise TFCompressError(f"config file {path!r} is not valid YAML: {str(e).splitlines()[0]}") from None
        return cls.from_dict(data, base=base)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["stages"] = list(self.stages) if self.stages is not None else None
        return d

    def resolve(self):
        """A copy with every ``None`` replaced by the task's default, and the builders' options merged."""
        from .tasks import get_task

        task = get_task(self.task)
        filled = {k: v for k, v in task.defaults(self.quick).items() if getattr(self, k) is None}
        cfg = dataclasses.replace(self, **filled)
        cfg.teacher = {**task.teacher_kwargs(self.quick), **self.teacher}
        cfg.student = {**task.student_kwargs(self.quick), **self.student}
        if cfg.out is None:
            cfg.out = os.path.join("runs", self.task)
        cfg.stages = tuple(task_stages(task) if cfg.stages is None else cfg.stages)
        return cfg

    def validate(self):
        """Resolve, then check everything that can be checked before any training; raise one clear error.
        Returns the resolved config."""
        from .data.synthetic import MAX_EVENTS, MIN_EVENTS
        from .tasks import get_task, task_names

        check(self.task in task_names(), f"task {self.task!r} is not one of {list(task_names())}")
        cfg = self.resolve()
        known = task_stages(get_task(cfg.task))
        unknown = [s for s in cfg.stages if s not in known]
        check(not unknown, f"unknown stage(s) {unknown}; {cfg.task} stages are {list(known)}")
        check(len(cfg.stages) > 0, f"no stage selected; {cfg.task} stages are {list(known)}")
        check("teacher" in cfg.stages or "distill" not in cfg.stages,
              "stage 'distill' needs stage 'teacher' (the model it learns from): add it to --stages")
        has_student = any(s in cfg.stages for s in ("baseline", "distill"))
        for s in ("prune", "qat"):
            check(s not in cfg.stages or has_student,
                  f"stage {s!r} needs a student: add 'distill' (or 'baseline') to --stages")
        ev = cfg.events
        check(isinstance(ev, int) and not isinstance(ev, bool),
              f"events = {ev!r} must be a whole number in [{MIN_EVENTS}, {MAX_EVENTS}]")
        check(ev >= MIN_EVENTS, f"events = {ev} is too few to split into train/validation/test: "
                                f"use at least {MIN_EVENTS}")
        check(ev <= MAX_EVENTS, f"events = {ev} is above the maximum of {MAX_EVENTS}")
        check_fraction("target_sparsity", cfg.target_sparsity)
        check_fraction("alpha", cfg.alpha, include_high=True)
        check(isinstance(cfg.temperature, (int, float)) and cfg.temperature > 0,
              f"temperature = {cfg.temperature!r} must be > 0 (1 to 10 is usual)")
        for name in ("teacher_epochs", "student_epochs", "prune_epochs", "qat_epochs", "batch_size",
                     "calibration_samples", "latency_runs"):
            value = getattr(cfg, name)
            check(isinstance(value, int) and value >= 1, f"{name} = {value!r} must be a whole number >= 1")
        for name in ("learning_rate", "student_learning_rate"):
            value = getattr(cfg, name)
            check(isinstance(value, (int, float)) and value > 0, f"{name} = {value!r} must be > 0")
        for name in ("out", "savedmodels_dir", "tflite_dir"):
            path = getattr(cfg, name)
            check(not os.path.isfile(path), f"{name} {path!r} is a file, not a folder: choose another path")
        task = get_task(cfg.task)
        task.check_options(cfg.teacher, cfg.student)
        if hasattr(task, "check_data"):
            task.check_data(cfg.data)
        return cfg


@dataclass
class StageResult:
    """What one stage produced: a model or a file, and the figures the report needs."""

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


@dataclass
class RunResult:
    """The run's stages (in order), the report path, the parity figures and the summary ratios."""

    config: RunConfig
    stages: list
    report_dir: str
    parity: dict
    summary: dict
    elapsed_s: float

    def stage(self, name):
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)


class _Progress:
    def __init__(self, verbose, stream=None):
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def __call__(self, stage, message, started):
        now = time.perf_counter()
        print(f"[{stage:>8}] {message} ({now - started:.1f} s; total {now - self.t0:.1f} s)",
              file=self.stream, flush=True)


class Pipeline:
    """The recipe as a sequence of stage methods sharing one task and dataset; use :func:`run`, or call
    the stages one by one (``teacher()``, ``baseline()``, ``distill()``, ``prune()``, ``qat()``,
    ``export()``, then ``measure_latency()``, ``parity()``, ``rows()``)."""

    def __init__(self, config, progress=None):
        from .tasks import get_task

        self.config = config.validate()
        self.task = get_task(self.config.task)
        self.progress = progress or _Progress(self.config.verbose)
        self.fit_verbose = 2 if self.config.verbose else 0
        keras.utils.set_random_seed(self.config.seed)
        started = time.perf_counter()
        self.data = self.task.load(self.config)
        self.steps_per_epoch = self.data.steps_per_epoch
        self.results = []
        self.progress("data", self.data.description, started)

    # --- helpers -------------------------------------------------------------------------------------
    def _early_stop(self):
        return keras.callbacks.EarlyStopping(self.task.monitor, mode="max", patience=1, restore_best_weights=True)

    def _record_keras(self, name, model, started, note):
        from .bench import size
        from .export import saved_model

        logits = model.predict(self.data.test_inputs, batch_size=8192, verbose=0)
        figures = self.task.evaluate(logits, self.data.test_labels)
        path = saved_model(model, os.path.join(self.config.savedmodels_dir, f"{self.config.task}_{name}"))
        result = StageResult(name=name, format="keras", model=model, path=path,
                             params=size.count_params(model), sparsity=size.keras_sparsity(model), quality=figures)
        self.results.append(result)
        metric = self.task.metric
        self.progress(name, f"{note}; test {metric} {figures[metric]:.4f}, {result.params:,} params", started)
        return result

    def _latest_student(self):
        for name in ("student_qat", "student_pruned", "student_distilled", "student_alone"):
            for r in reversed(self.results):
                if r.name == name and r.format == "keras":
                    return r
        return None

    def _teacher(self):
        for r in self.results:
            if r.name == "teacher":
                return r.model
        return None

    def _fit_student(self, student, epochs, callbacks=(), lr=None):
        """Fit ``student`` by distillation from the teacher when there is one, else on labels."""
        from .distill import Distiller

        cfg = self.config
        opt = keras.optimizers.Adam(lr or cfg.student_learning_rate)
        teacher = self._teacher()
        if teacher is not None:
            model = Distiller(student, teacher, alpha=cfg.alpha, temperature=cfg.temperature,
                              task=self.task.output)
            model.compile(optimizer=opt, metrics=self.task.keras_metrics())
        else:
            model = student
            model.compile(optimizer=opt, loss=self.task.loss(), metrics=self.task.keras_metrics())
        return model.fit(self.data.train_ds, epochs=epochs, validation_data=self.data.val_ds,
                         callbacks=list(callbacks), verbose=self.fit_verbose)

    def _build_student(self):
        return self.task.build_student(self.data, **self.config.student)

    # --- stages ----------------------------------------------------------------------------------------
    def teacher(self):
        started = time.perf_counter()
        cfg = self.config
        model = self.task.build_teacher(self.data, **cfg.teacher)
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=self.task.loss(),
                      metrics=self.task.keras_metrics())
        h = model.fit(self.data.train_ds, epochs=cfg.teacher_epochs, validation_data=self.data.val_ds,
                      callbacks=[self._early_stop()], verbose=self.fit_verbose)
        return self._record_keras("teacher", model, started, f"trained {len(h.epoch)} epoch(s)")

    def baseline(self):
        started = time.perf_counter()
        model = self._build_student()
        model.compile(optimizer=keras.optimizers.Adam(self.config.student_learning_rate), loss=self.task.loss(),
                      metrics=self.task.keras_metrics())
        h = model.fit(self.data.train_ds, epochs=self.config.student_epochs, validation_data=self.data.val_ds,
                      callbacks=[self._early_stop()], verbose=self.fit_verbose)
        return self._record_keras("student_alone", model, started, f"student alone, {len(h.epoch)} epoch(s)")

    def distill(self):
        started = time.perf_counter()
        student = self._build_student()
        h = self._fit_student(student, self.config.student_epochs, callbacks=[self._early_stop()])
        note = (f"distilled (alpha {self.config.alpha:g}, T {self.config.temperature:g}), "
                f"{len(h.epoch)} epoch(s)")
        return self._record_keras("student_distilled", student, started, note)

    def prune(self):
        from . import prune

        started = time.perf_counter()
        cfg = self.config
        source = self._latest_student()
        total = cfg.prune_epochs * self.steps_per_epoch
        pruned = prune.prune_low_magnitude(source.model, cfg.target_sparsity, total_steps=total)
        self._fit_student(pruned, cfg.prune_epochs, callbacks=prune.pruning_callbacks(),
                          lr=cfg.student_learning_rate / 3)
        stripped = prune.strip(pruned)
        result = self._record_keras("student_pruned", stripped, started,
                                    f"pruned to {cfg.target_sparsity:.0%} over {total} steps")
        result.extra["pruned_from"] = source.name
        return result

    def qat(self):
        from .quantize import quantize_aware

        started = time.perf_counter()
        cfg = self.config
        source = self._latest_student()
        preserve = "sparsity" if source.name == "student_pruned" else None
        model = quantize_aware(source.model, preserve=preserve)
        self._fit_student(model, cfg.qat_epochs, lr=cfg.student_learning_rate / 10)
        result = self._record_keras("student_qat", model, started,
                                    f"QAT ({'sparsity-preserving' if preserve else 'plain'}) fine-tuned")
        result.extra["scheme"] = preserve or "plain"
        return result

    def export(self):
        from .bench import size
        from .export import TFLiteModel, to_tflite

        started = time.perf_counter()
        cfg = self.config
        rep = self.data.calibration_inputs
        meta = {k: v for k, v in self.data.metadata.items() if _is_jsonable(v)}
        exported = []
        teacher = self._teacher()
        if teacher is not None:
            exported.append(("teacher_float32", teacher, "float32"))
        student = self._latest_student()
        if student is not None:
            exported.append(("student_int8", student.model, "int8"))
        assets = self.task.write_assets(self.data, cfg.tflite_dir)
        meta["assets"] = {k: os.path.abspath(v) for k, v in assets.items()}
        for name, model, mode in exported:
            path = to_tflite(model, os.path.join(cfg.tflite_dir, f"{cfg.task}_{name}.tflite"), mode=mode,
                             representative=rep, num_calibration=cfg.calibration_samples,
                             name=f"{cfg.task}_{name}", task=self.task.output, metadata=meta)
            tfl = TFLiteModel(path)
            figures = self.task.evaluate(tfl.predict(self.data.test_inputs, batch_size=4096), self.data.test_labels)
            self.results.append(StageResult(name=name, format="tflite", model=path, path=path,
                                            params=size.tflite_params(path), sparsity=size.tflite_sparsity(path),
                                            quality=figures))
        self.progress("export", ", ".join(f"{n} ({m})" for n, _, m in exported) or "nothing to export", started)

    # --- the report --------------------------------------------------------------------------------------
    def measure_latency(self):
        from .bench import compare_latency

        started = time.perf_counter()
        one = self.data.latency_inputs
        candidates = {}
        for r in self.results:
            key = f"{r.name}/{r.format}"
            candidates[key] = ("keras", r.model) if r.format == "keras" else ("tflite", r.path)
        runs = self.config.latency_runs
        stats = compare_latency(candidates, one, runs=runs, warmup=max(5, runs // 10), threads=1)
        for r in self.results:
            s = stats[f"{r.name}/{r.format}"]
            r.extra["latency"] = s
        self.progress("latency", f"{len(candidates)} models x {runs} interleaved batch-1 runs", started)

    def parity(self):
        student_qat = next((r for r in self.results if r.name == "student_qat"), None)
        source = student_qat or self._latest_student()
        int8 = next((r for r in self.results if r.name == "student_int8"), None)
        if source is None or int8 is None:
            return {}
        from .export import TFLiteModel, compare_outputs

        keras_out = source.model.predict(self.data.test_inputs, batch_size=8192, verbose=0)
        tfl_out = TFLiteModel(int8.path).predict(self.data.test_inputs, batch_size=4096)
        figures = compare_outputs(keras_out, tfl_out, self.data.test_labels, task=self.task.output)
        m = figures["metric"]
        return {"keras_stage": source.name, "tflite_stage": int8.name, "max_abs_prob_diff": figures["max_abs"],
                "mean_abs_prob_diff": figures["mean_abs"], "metric": m, f"{m}_keras": figures["keras"],
                f"{m}_tflite": figures["tflite"], f"{m}_diff": figures["metric_diff"], "n": figures["n"]}

    def rows(self):
        from .bench import size

        rows = []
        for r in self.results:
            lat = r.extra.get("latency")
            rows.append({
                "name": r.name, "format": r.format, "params": r.params,
                "size_bytes": size.file_bytes(r.path), "gzip_bytes": size.gzip_bytes(r.path),
                "sparsity": round(float(r.sparsity), 4) if r.sparsity is not None else None,
                **{k: round(float(v), 5) for k, v in r.quality.items()},
                "latency_p50_us": round(lat.p50_us, 2) if lat else None,
                "latency_p90_us": round(lat.p90_us, 2) if lat else None,
            })
        return rows

    def summary(self, rows):
        by = {(r["name"], r["format"]): r for r in rows}
        teacher = by.get(("teacher_float32", "tflite"))
        final = by.get(("student_int8", "tflite"))
        if not teacher or not final:
            return {}
        m = self.task.metric
        return {
            "baseline": "teacher_float32", "final": "student_int8", "metric": m,
            "size_ratio": teacher["size_bytes"] / final["size_bytes"],
            "gzip_ratio": teacher["gzip_bytes"] / final["gzip_bytes"],
            f"{m}_teacher": teacher[m], f"{m}_final": final[m],
            f"{m}_relative_change": (final[m] - teacher[m]) / teacher[m],
            "latency_p50_speedup": (teacher["latency_p50_us"] / final["latency_p50_us"]
                                    if final["latency_p50_us"] else None),
        }


def run(config=None, *, progress=None, **overrides):
    """Run the recipe; returns a :class:`RunResult`. ``config`` is a :class:`RunConfig` (or None for the
    defaults); keyword ``overrides`` replace its fields."""
    from .bench import Report, pareto_plot

    t0 = time.perf_counter()
    config = config or RunConfig()
    if overrides:
        config = dataclasses.replace(config, **overrides)
    config = config.validate()
    for name in ("out", "savedmodels_dir", "tflite_dir"):
        ensure_dir(getattr(config, name), name)
    from .tasks import get_task

    task = get_task(config.task)
    pipe = (getattr(task, "pipeline_class", None) or Pipeline)(config, progress=progress)
    for stage in task_stages(task):
        if stage in config.stages:
            getattr(pipe, stage)()
    pipe.measure_latency()
    parity = pipe.parity()
    rows = pipe.rows()
    summary = pipe.summary(rows)
    elapsed = time.perf_counter() - t0
    meta = {"tfcompress": __version__, "tensorflow": tf.__version__, "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cpu", "events": config.events,
            "seed": config.seed, "stages": list(config.stages), "elapsed_s": round(elapsed, 1),
            "latency": "batch 1, CPU; Keras via a compiled tf.function, TFLite via the LiteRT interpreter "
                       "with 1 thread; interleaved runs",
            "gpu": _gpu_note()}
    report = Report(rows, title=f"tfcompress run: {config.task}", meta=meta)
    plot_path = os.path.join(config.out, "pareto.png")
    metric = pipe.task.metric
    pareto_plot(report.frame, x="size_bytes", y=metric, label="name", path=plot_path)
    report.add_plot(plot_path, f"{metric} vs size (log scale); the Pareto front joins the best trade-offs")
    paths = report.save(config.out)
    full = report.to_dict()
    for row, r in zip(full["stages"], pipe.results):
        row["path"] = os.path.abspath(r.path)
        row.update({k: v for k, v in r.extra.items() if k != "latency" and _is_jsonable(v)})
    full.update({"parity": parity, "summary": summary, "config": config.to_dict()})
    write_json(paths["json"], full)
    _append_markdown(paths["md"], parity, summary)
    result = RunResult(config=config, stages=pipe.results, report_dir=config.out, parity=parity,
                       summary=summary, elapsed_s=elapsed)
    pipe.progress("report", f"written to {config.out}", t0)
    return result


def task_stages(task):
    """The stage names ``task`` runs, in order (:data:`STAGES` unless the task defines its own)."""
    return tuple(getattr(task, "stages", None) or STAGES)


def _is_jsonable(value):
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _gpu_note():
    from .bench import gpu_devices

    gpus = gpu_devices()
    return ", ".join(gpus) if gpus else "no GPU visible: Keras latency measured on CPU only"


def _append_markdown(path, parity, summary):
    from ._io import write_text

    with open(path) as f:
        text = f.read()
    lines = [text.rstrip(), ""]
    if summary and summary.get("lines"):  # a task with its own summary (e.g. retrieval)
        lines += list(summary["lines"])
    elif summary:
        m = summary["metric"]
        lines += ["### Teacher (float32 TFLite) vs final student (int8 TFLite)", "",
                  f"- size: {summary['size_ratio']:.1f}x smaller ({summary['gzip_ratio']:.1f}x gzipped)",
                  f"- {m}: {summary[m + '_teacher']:.4f} → {summary[m + '_final']:.4f} "
                  f"({summary[m + '_relative_change']:+.2%} relative)"]
        if summary.get("latency_p50_speedup"):
            lines.append(f"- batch-1 p50 latency: {summary['latency_p50_speedup']:.1f}x lower")
        lines.append("")
    if parity and parity.get("lines"):
        lines += list(parity["lines"])
    elif parity:
        lines += [f"### Parity: {parity['keras_stage']} (Keras) vs {parity['tflite_stage']} (TFLite)", "",
                  f"- max |Δ probability| {parity['max_abs_prob_diff']:.4f}, mean {parity['mean_abs_prob_diff']:.5f}"
                  f" over {parity['n']:,} test rows",
                  f"- {parity['metric']} {parity[parity['metric'] + '_keras']:.4f} vs "
                  f"{parity[parity['metric'] + '_tflite']:.4f} (Δ {parity[parity['metric'] + '_diff']:+.4f})", ""]
    write_text(path, "\n".join(lines) + "\n")


def load_report(run_dir):
    """The ``report.json`` of a run folder, as a dict."""
    path = os.path.join(run_dir, "report.json")
    if not os.path.isfile(path):
        raise TFCompressError(f"{run_dir!r} has no report.json: is it a tfcompress run folder?")
    with open(path) as f:
        return json.load(f)
