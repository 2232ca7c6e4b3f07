"""``RunConfig``: everything ``tfcompress run`` needs (a dataclass, loadable from YAML), and
``ResolvedConfig``: the same after :meth:`RunConfig.validate` — the task's defaults filled in, the
:class:`~tfcompress.tasks.Task` instance in ``task``, every value checked once.

Example:
    >>> cfg = RunConfig(quick=True).validate()  # no task and no data: the built-in ctr shop
    >>> cfg.task.name, cfg.events, cfg.stages[:2]
    ('ctr', 20000, ('teacher', 'baseline'))
    >>> cfg.validate() is cfg  # resolved once
    True
"""
import dataclasses
import os
from dataclasses import dataclass, field

from ..choices import DISTRIBUTE_MODES, EXPORT_MODES, RECOVERY_OPTIONS, TEACHER_HEADS
from ..errors import TFCompressError, check, check_fraction, check_seed
from ..tolerance import DEFAULT as DEFAULT_TOLERANCE
from ..tolerance import Tolerance
from ..tasks import Task, get_task
from ..tasks.inference import task_for

_POSITIVE_INTS = ("teacher_epochs", "student_epochs", "prune_epochs", "qat_epochs", "batch_size",
                  "calibration_samples", "latency_runs")
_FOLDERS = ("out", "savedmodels_dir", "tflite_dir")


@dataclass
class RunConfig:
    """Everything ``tfcompress run`` needs; loadable from YAML (:meth:`from_yaml`), unknown keys rejected.

    ``task`` is a task name (``tfcompress.tasks.task_names()``), a :class:`~tfcompress.tasks.Task`
    instance, or None / ``"auto"``: the built-in ``ctr`` without ``data``, else the task that fits ``data``
    (:func:`tfcompress.tasks.infer_task`). ``data`` is a dataset name, a path or a pandas DataFrame. Fields left at ``None`` take the task's defaults (smaller ones with ``quick=True``);
    ``teacher`` and ``student`` are keyword arguments for the task's model builders (e.g.
    ``{"embedding_dim": 32}``). :meth:`resolve` shows the values a run will use; :meth:`validate` checks
    them and returns the :class:`ResolvedConfig` a run takes.

    Example:
        >>> RunConfig.from_dict({"events": 5000, "stages": "teacher, distill"}).stages
        ('teacher', 'distill')
    """

    task: str = None  # None or "auto": inferred from data (the built-in ctr when there is none)
    data: object = None
    seed: int = 0
    out: str = None
    savedmodels_dir: str = "savedmodels"
    tflite_dir: str = "tflite_export"
    stages: tuple = None  # None: all of the task's stages
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
    # your own data: column roles and reading (see tfcompress.data.Schema and tfcompress.data.read_table)
    label: str = None
    user: str = None
    item: str = None
    time: str = None
    text: str = None
    features: tuple = None  # the feature columns to use (default: every column the schema keeps)
    drop: tuple = None      # columns to leave out
    sep: str = None         # the delimiter (default: sniffed)
    header: bool = None     # whether the first row names the columns (default: sniffed)
    split: str = None       # auto (default), time, user, stratified or random
    label_threshold: float = None  # a rating label: positive when >= this
    # your own teacher
    teacher_model: object = None   # a path (.keras/.h5, SavedModel folder, .tflite) or a Keras model
    teacher_output: str = None     # what the teacher outputs: logits or probabilities (default: detected)
    student_init: str = None       # None (built for the data) or "from-teacher:SHARE"
    resume: bool = None            # None: resume an unfinished run of this config; True: must; False: never
    overwrite: bool = False        # move aside another run found in the folders instead of refusing
    # the choices a run makes and the student's recipe (what ``tfcompress tune`` writes)
    tolerance: object = DEFAULT_TOLERANCE  # quality a choice may lose: "1%" (relative) or 0.004 (absolute)
    structured_share: float = None  # share of the student's units removed by structured pruning (None: none)
    lowrank_energy: float = None    # factorize dense kernels keeping this share of spectral energy (None: none)
    export_mode: str = "int8"       # the student's file: one of EXPORT_MODES
    per_channel: bool = True        # per-channel int8 weights (False: per-tensor, what some NPUs need)
    recovery: tuple = ()            # int8 accuracy recovery at export: any of RECOVERY_OPTIONS
    # a pretrained teacher: a local Hugging Face or keras-hub model folder in teacher_model (text)
    teacher_head: str = None        # probe (default: frozen encoder + linear head), top:N (fine-tune N layers), full
    labelled: int = None            # keep N labelled training rows; the teacher labels the rest (transfer set)
    student_vocab: str = None       # own (default: WordPiece learned on the data) or teacher
    student_embeddings: str = None  # None, or "teacher": token embeddings from the teacher's, projected down
    teacher_cache: str = None       # folder for cached teacher outputs (default: ~/.cache/tfcompress)
    # where training runs
    distribute: str = None          # None (one device), "mirrored" or "multi-worker" (DISTRIBUTE_MODES)
    jit_compile: bool = None        # XLA-compile the train steps: None (auto: where measured faster), True, False

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
        known = {f.name for f in dataclasses.fields(RunConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TFCompressError(f"unknown config key(s) {unknown}; known keys: {sorted(known)}")
        d = dict(d)
        for key in ("teacher", "student"):
            if key in d:
                if not isinstance(d[key], dict):
                    raise TFCompressError(f"{key!r} must be a mapping of model options, got {d[key]!r}")
                d[key] = {**getattr(base, key), **d[key]}
        for key in ("stages", "features", "drop", "recovery"):
            if isinstance(d.get(key), str):
                d[key] = tuple(s.strip() for s in d[key].split(",") if s.strip())
            elif isinstance(d.get(key), list):
                d[key] = tuple(d[key])
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
        """The config as plain values (the task as its name; a DataFrame or a model as a short
        description), as written into ``report.json``.

        Example:
            >>> import pandas as pd
            >>> RunConfig(data=pd.DataFrame({"a": [1, 2]}), features=("a",)).to_dict()["data"]
            'DataFrame (2 rows x 1 columns)'
        """
        d = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(RunConfig)}
        d["task"] = _task_name(self.task)
        return d

    def resolve(self):
        """A copy with every ``None`` replaced by the task's default, and the builders' options merged."""
        return self._filled(_task_of(self))

    def _filled(self, task):
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(RunConfig)}
        cfg = RunConfig(**values)
        for key, value in task.defaults(self.quick).items():
            if getattr(cfg, key) is None:
                setattr(cfg, key, value)
        cfg.teacher = {**task.teacher_kwargs(self.quick), **self.teacher}
        cfg.student = {**task.student_kwargs(self.quick), **self.student}
        if cfg.out is None:
            cfg.out = os.path.join("runs", task.name)
        known = [s.name for s in task.stages]
        cfg.stages = tuple(known if cfg.stages is None else cfg.stages)
        return cfg

    def validate(self):
        """Resolve, then check everything that can be checked before any training (one clear error).
        Returns the :class:`ResolvedConfig`, holding the one :class:`~tfcompress.tasks.Task` of the run."""
        _check_data_fields(self)
        task = _task_of(self)
        cfg = self._filled(task)
        _check_stages(task, cfg.stages)
        _check_values(cfg)
        _check_recipe_fields(cfg)
        cfg.recovery = tuple(cfg.recovery or ())
        task.check_options(cfg.teacher, cfg.student)
        if task.name != "text":  # a checkpoint folder and its options are for the text task only
            from ..stages.pretrained_teacher import check_pretrained_options

            check_pretrained_options(cfg, task.name)
        values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(RunConfig)}
        values.update(task.resolve_data(cfg))
        return ResolvedConfig(**{**values, "task": task})


@dataclass
class ResolvedConfig(RunConfig):
    """A validated :class:`RunConfig`: ``task`` is the run's :class:`~tfcompress.tasks.Task` instance, every
    field its final value, ``stages`` the selected stage names. :class:`~tfcompress.pipeline.Pipeline`
    and :func:`~tfcompress.pipeline.run` take it as it is.

    Example:
        >>> cfg = RunConfig(task="retrieval", stages=("export", "teacher")).validate()
        >>> [s.name for s in cfg.selected_stages]  # in the task's order
        ['teacher', 'export']
    """

    def validate(self):
        """Already validated: itself."""
        return self

    def unresolved(self):
        """A plain :class:`RunConfig` with the same values (to change fields and validate again)."""
        return RunConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(RunConfig)})

    @property
    def selected_stages(self):
        """The task's :class:`~tfcompress.stages.Stage` objects this run runs, in the task's order."""
        return tuple(s for s in self.task.stages if s.name in self.stages)


def _task_name(task):
    return task.name if isinstance(task, Task) else task


def _task_of(config):
    """The Task instance for a config's ``task`` (a name, an instance, or None/"auto": inferred)."""
    task = config.task
    if isinstance(task, Task):
        return task
    return get_task(task_for(config) if task in (None, "auto") else task)


def _plain(value):
    """``value`` as JSON-able plain data: tuples as lists, a DataFrame or a model as a short description."""
    import pandas as pd

    from ..stages import is_jsonable

    if isinstance(value, pd.DataFrame):
        return f"DataFrame ({value.shape[0]} rows x {value.shape[1]} columns)"
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if is_jsonable(value):
        return value
    name = getattr(value, "name", None)
    return f"{type(value).__name__}" + (f" {name!r}" if isinstance(name, str) else "")


def _check_stages(task, selected):
    known = [s.name for s in task.stages]
    unknown = [s for s in selected if s not in known]
    check(not unknown, f"unknown stage(s) {unknown}; {task.name} stages are {known}")
    check(len(selected) > 0, f"no stage selected; {task.name} stages are {known}")
    for stage in task.stages:
        if stage.name in selected:
            stage.check_needs(selected)


def _check_values(cfg):
    from ..data.synthetic import MAX_EVENTS, MIN_EVENTS

    ev = cfg.events
    check(isinstance(ev, int) and not isinstance(ev, bool),
          f"events = {ev!r} must be a whole number in [{MIN_EVENTS}, {MAX_EVENTS}]")
    check(ev >= MIN_EVENTS, f"events = {ev} is too few to split into train/validation/test: use at least {MIN_EVENTS}")
    check(ev <= MAX_EVENTS, f"events = {ev} is above the maximum of {MAX_EVENTS}")
    check_seed(cfg.seed)
    check_fraction("target_sparsity", cfg.target_sparsity)
    check_fraction("alpha", cfg.alpha, include_high=True)
    check(isinstance(cfg.temperature, (int, float)) and cfg.temperature > 0,
          f"temperature = {cfg.temperature!r} must be > 0 (1 to 10 is usual)")
    for name in _POSITIVE_INTS:
        value = getattr(cfg, name)
        check(isinstance(value, int) and value >= 1, f"{name} = {value!r} must be a whole number >= 1")
    for name in ("learning_rate", "student_learning_rate"):
        value = getattr(cfg, name)
        check(isinstance(value, (int, float)) and value > 0, f"{name} = {value!r} must be > 0")
    for name in _FOLDERS:
        path = getattr(cfg, name)
        check(not os.path.isfile(path), f"{name} {path!r} is a file, not a folder: choose another path")


_ROLE_NAMES = ("label", "user", "item", "time", "text")


def _check_data_fields(cfg):
    """The data, column-role, reading and own-teacher fields: types and choices (one clear error)."""
    import pandas as pd

    from ..data.tables import SPLITS

    check(cfg.data is None or isinstance(cfg.data, (str, os.PathLike, pd.DataFrame)),
          f"data = {type(cfg.data).__name__} must be a dataset name, a file path or a pandas DataFrame")
    for name in _ROLE_NAMES:
        value = getattr(cfg, name)
        check(value is None or isinstance(value, str), f"{name} = {value!r} must be a column name")
    for name in ("features", "drop"):
        value = getattr(cfg, name)
        check(value is None or (isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value)),
              f"{name} = {value!r} must be a list of column names (or 'A,B,...')")
    check(cfg.sep is None or (isinstance(cfg.sep, str) and len(cfg.sep) == 1),
          f"sep = {cfg.sep!r} must be one character, e.g. ',' or a tab")
    check(cfg.header is None or isinstance(cfg.header, bool), f"header = {cfg.header!r} must be true or false")
    check(cfg.split is None or cfg.split in SPLITS, f"split = {cfg.split!r} is not one of {SPLITS}")
    check(cfg.label_threshold is None or (isinstance(cfg.label_threshold, (int, float))
                                          and not isinstance(cfg.label_threshold, bool)),
          f"label_threshold = {cfg.label_threshold!r} must be a number")
    check(cfg.teacher_output in (None, "logits", "probabilities"),
          f"teacher_output = {cfg.teacher_output!r} must be 'logits' or 'probabilities'")
    _check_student_init(cfg.student_init)
    if isinstance(cfg.teacher_model, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(cfg.teacher_model))
        check(os.path.exists(path), f"teacher {path!r} does not exist: give a .keras/.h5 file, a SavedModel "
                                    "folder, a .tflite file or a Hugging Face / keras-hub model folder")


def _check_student_init(value):
    if value is None:
        return
    kind, _, share = str(value).partition(":")
    try:
        ok = kind == "from-teacher" and 0 < float(share) <= 1
    except ValueError:
        ok = False
    check(ok, f"student = {value!r}: use from-teacher:SHARE with SHARE in (0, 1], e.g. from-teacher:0.25")


def _check_recipe_fields(cfg):
    """The choice and recipe fields (tolerance, compression, export, pretrained teacher): one clear error."""
    Tolerance.parse(cfg.tolerance)
    for name in ("structured_share", "lowrank_energy"):
        value = getattr(cfg, name)
        if value is not None:
            check(isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1,
                  f"{name} = {value!r} must be a fraction in (0, 1), e.g. 0.5, or left out")
    check(cfg.export_mode in EXPORT_MODES, f"export_mode = {cfg.export_mode!r} is not one of {list(EXPORT_MODES)}")
    check(isinstance(cfg.per_channel, bool), f"per_channel = {cfg.per_channel!r} must be true or false")
    bad = [r for r in (cfg.recovery or ()) if r not in RECOVERY_OPTIONS]
    check(isinstance(cfg.recovery, (tuple, list)) and not bad,
          f"recovery = {cfg.recovery!r}: each must be one of {list(RECOVERY_OPTIONS)}")
    _check_teacher_head(cfg.teacher_head)
    check(cfg.labelled is None or (isinstance(cfg.labelled, int) and not isinstance(cfg.labelled, bool)
                                   and cfg.labelled >= 2),
          f"labelled = {cfg.labelled!r} must be a whole number >= 2 (the labelled training rows to keep)")
    check(cfg.student_vocab in (None, "own", "teacher"),
          f"student_vocab = {cfg.student_vocab!r} must be 'own' (learned on the data) or 'teacher'")
    check(cfg.student_embeddings in (None, "teacher"),
          f"student_embeddings = {cfg.student_embeddings!r} must be 'teacher' (projected from the teacher's) "
          "or left out")
    check(cfg.teacher_cache is None or isinstance(cfg.teacher_cache, (str, os.PathLike)),
          f"teacher_cache = {cfg.teacher_cache!r} must be a folder path")
    check(cfg.distribute is None or cfg.distribute in DISTRIBUTE_MODES,
          f"distribute = {cfg.distribute!r} must be one of {list(DISTRIBUTE_MODES)} or left out (one device)")
    check(cfg.jit_compile is None or isinstance(cfg.jit_compile, bool),
          f"jit_compile = {cfg.jit_compile!r} must be true, false or left out (auto)")


def _check_teacher_head(value):
    if value is None or value in ("probe", "full"):
        return
    kind, _, n = str(value).partition(":")
    check(kind == "top" and n.isdigit() and int(n) >= 1,
          f"teacher_head = {value!r} must be {TEACHER_HEADS}, e.g. top:2")
