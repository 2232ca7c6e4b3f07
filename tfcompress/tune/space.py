"""The search space of ``tfcompress tune``: one table per task (data, not code), each key a recipe knob and
its value the choices, and the two functions that turn a table into a recipe (:func:`suggest`, from an
Optuna trial) and a recipe into a run config (:func:`recipe_config`).

Keys: ``student.NAME`` (a keyword of the task's student builder: width, depth, embedding width),
``student_init`` (``from-teacher:SHARE``: the student is the run's tf_keras teacher, trained here or given,
width-pruned to that share; dropped for a teacher that cannot be pruned, such as a pretrained Keras 3
checkpoint), and the
:class:`~tfcompress.pipeline.RunConfig` recipe fields ``target_sparsity``, ``structured_share``,
``lowrank_energy``, ``export_mode``, ``per_channel``, ``alpha`` and ``temperature`` (how the student
learns from the teacher; ``alpha`` 1.0: from the labels alone), plus ``qat`` (the QAT stage in or out).

Example:
    >>> import optuna
    >>> space = {"student.hidden": ((16,), (32,)), "target_sparsity": (0.0, 0.5), "qat": (False,),
    ...          "export_mode": ("int8",)}
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> recipe = suggest(study.ask(), space)
    >>> sorted(recipe), recipe["qat"]
    (['export_mode', 'qat', 'student', 'target_sparsity'], False)
"""
from ..choices import EXPORT_MODES
from ..errors import TFCompressError

#: export modes whose weights the converter quantizes per channel or per tensor (``per_channel`` matters)
PER_CHANNEL_MODES = ("int8", "int16x8")
#: export modes a QAT model converts to (QAT's fake-quant ranges are int8)
QAT_MODES = ("int8",)

#: how the student learns: ``alpha`` the weight of the label loss (1.0: labels only, the teacher unused),
#: ``temperature`` of the soft targets
_DISTILLATION = {"alpha": (0.1, 0.5, 1.0), "temperature": (1.0, 4.0)}

_COMPRESSION = {
    "target_sparsity": (0.0, 0.5, 0.75),
    "structured_share": (None, 0.25, 0.5),
    "lowrank_energy": (None, 0.9, 0.98),
    "qat": (False, True),
    "export_mode": ("int8", "int8-fallback", "int16x8", "dynamic", "int4-weights"),
    "per_channel": (True, False),
    **_DISTILLATION,
}

#: the search space of each task (``tfcompress tune``); ``student.*`` keys are the student builder's
SPACES = {
    "ctr": {"student.embedding_dim": (2, 4, 8, 16), "student.hidden": ((16,), (32,), (64, 32)),
            "student.cross_layers": (1, 2), "student.embedding": ("qr", "hash"),
            "student.compress_min_vocab": (50_000, 1_000),  # which id tables the student compresses
            "student.compressed_rows": (16_384, 4_096),     # and how many rows each keeps
            "student_init": ("from-teacher:0.1", "from-teacher:0.25"), **_COMPRESSION},
    "table": {"student.embedding_dim": (2, 4, 8), "student.hidden": ((16,), (32,), (64, 32)),
              "student_init": ("from-teacher:0.1", "from-teacher:0.25"), **_COMPRESSION},
    "text": {"student.embed_dim": (16, 32, 64), "student.filters": (16, 32, 64), "student.hidden": (16, 32, 64),
             "student_init": ("from-teacher:0.25",), **{k: v for k, v in _COMPRESSION.items()
                                                         if k != "structured_share"}},
    "image": {"student.stem": (8, 16), "student.widths": ((16, 16, 32), (16, 32, 32), (32, 64, 64)),
              "student.strides": ((2, 2, 1),),  # one stride per width: the default student's
              "student_init": ("from-teacher:0.25",), **_COMPRESSION},
}


def space_for(task_name, *, prunable_teacher=True):
    """The search space of task ``task_name`` (a copy); its ``student_init`` choices (None, the task's own
    student, among them) only with a ``prunable_teacher`` (a tf_keras teacher; else that key is dropped).
    An unknown task is a one-line error naming the known ones.

    Example:
        >>> space_for("ctr")["student_init"], "student_init" in space_for("ctr", prunable_teacher=False)
        ((None, 'from-teacher:0.1', 'from-teacher:0.25'), False)
    """
    if task_name not in SPACES:
        raise TFCompressError(f"tfcompress tune has no search space for task {task_name!r}; it tunes "
                              f"{sorted(SPACES)} (the retrieval task chooses its export in `tfcompress run`)")
    space = dict(SPACES[task_name])
    if prunable_teacher:
        space["student_init"] = (None,) + tuple(space.get("student_init", ()))
    else:
        space.pop("student_init", None)
    return space


def reachable_student_inits(space, teacher):
    """``(space, note)``: ``space`` without the ``from-teacher:SHARE`` choices that width pruning cannot reach
    for ``teacher`` (a tf_keras model; None or another kind: every such choice goes), so no trial is spent
    on a student that cannot be built; ``note`` says what was dropped (None when nothing was).

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64), keras.layers.Dense(1)])
        >>> reachable_student_inits({"student_init": (None, "from-teacher:0.25")}, m)
        ({'student_init': (None, 'from-teacher:0.25')}, None)
    """
    from .._keras import keras

    choices = space.get("student_init", ())
    wanted = [c for c in choices if c is not None]
    if not wanted:
        return space, None
    floor = None
    if isinstance(teacher, keras.Model):
        from ..prune import prune_units

        try:
            floor = prune_units(teacher, 0.999)[0].count_params() / teacher.count_params()
        except Exception:  # noqa: BLE001  (a teacher width pruning cannot walk: no from-teacher students)
            floor = None
    keep = [c for c in wanted if floor is not None and float(c.split(":")[1]) >= floor]
    space = {**space, "student_init": (None,) + tuple(keep)}
    if not keep:
        space.pop("student_init")
    dropped = [c for c in wanted if c not in keep]
    if not dropped:
        return space, None
    why = ("width pruning keeps at least {:.0%} of its parameters".format(floor) if floor is not None
           else "it is not a tf_keras model width pruning can shrink")
    return space, f"search space: {', '.join(dropped)} left out (the teacher: {why})"


def with_config_recipe(space, config, task):
    """``(space, params)``: ``space`` with the recipe of ``config`` (a resolved config: its student, sparsity,
    shrinking, QAT stage and export mode) among the choices, and that recipe as Optuna parameters (what
    ``study.enqueue_trial`` takes), so that the search's first trial is the run's own recipe.

    Example:
        >>> from tfcompress.pipeline import RunConfig
        >>> cfg = RunConfig(quick=True).validate()
        >>> space, params = with_config_recipe({"student.hidden": ((8,),), "qat": (False,)}, cfg, cfg.task)
        >>> space, params
        ({'student.hidden': ((16,), (8,)), 'qat': (True, False)}, {'student.hidden': '(16,)', 'qat': True})
    """
    import inspect

    builder = inspect.signature(type(task).student_builder).parameters
    out, params = {}, {}
    for key, choices in space.items():
        if key.startswith("student."):
            name = key.split(".", 1)[1]
            value = config.student.get(name, builder[name].default if name in builder else choices[0])
        elif key == "qat":
            value = "qat" in config.stages
        else:
            value = getattr(config, key)
        out[key] = tuple(choices) if value in choices else (value,) + tuple(choices)
        params[key] = _label(value)
    return out, params


def _label(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)


def suggest(trial, space):
    """The recipe an Optuna ``trial`` picks from ``space``: ``{"student": {...}, field: value, "qat": bool}``,
    made consistent (QAT only before an int8 export, ``per_channel`` only where the mode has it)."""
    recipe = {"student": {}}
    for key, choices in space.items():
        labels = [_label(c) for c in choices]
        picked = choices[labels.index(trial.suggest_categorical(key, labels))]
        if key.startswith("student."):
            recipe["student"][key.split(".", 1)[1]] = picked
        else:
            recipe[key] = picked
    return consistent(recipe)


def consistent(recipe):
    """``recipe`` with the knobs that do nothing for its choices set to their defaults (so two trials that
    build the same model have the same recipe).

    Example:
        >>> consistent({"export_mode": "dynamic", "qat": True, "per_channel": False})
        {'export_mode': 'dynamic', 'qat': False, 'per_channel': True}
    """
    out = dict(recipe)
    mode = out.get("export_mode", "int8")
    if mode not in QAT_MODES:
        out["qat"] = False
    if mode not in PER_CHANNEL_MODES:
        out["per_channel"] = True
    if out.get("student_init") is not None:
        out["student"] = {}  # the student is the pruned teacher: the builder's options do not apply
    if out.get("alpha") == 1.0 and "temperature" in out:
        out["temperature"] = 1.0  # labels alone: no soft targets to soften
    return out


def recipe_stages(recipe, task):
    """The stage names a recipe runs (no baseline; ``prune`` when it shrinks or sparsifies; ``qat`` when
    chosen), in the task's order.

    Example:
        >>> from tfcompress.tasks import get_task
        >>> recipe_stages({"target_sparsity": 0.0, "qat": True}, get_task("ctr"))
        ('teacher', 'distill', 'qat', 'export')
    """
    wanted = {"teacher", "distill", "export"}
    if recipe.get("target_sparsity", 0) > 0 or recipe.get("structured_share") or recipe.get("lowrank_energy"):
        wanted.add("prune")
    if recipe.get("qat"):
        wanted.add("qat")
    return tuple(s.name for s in task.stages if s.name in wanted)


#: the recipe keys that are RunConfig fields as they are
FIELDS = ("target_sparsity", "structured_share", "lowrank_energy", "export_mode", "per_channel", "student_init",
          "alpha", "temperature")


def recipe_fields(recipe, task):
    """The :class:`~tfcompress.pipeline.RunConfig` fields of ``recipe`` (``student`` merged by the config,
    ``stages`` from :func:`recipe_stages`).

    Example:
        >>> from tfcompress.tasks import get_task
        >>> recipe_fields({"student": {"hidden": (16,)}, "export_mode": "dynamic"}, get_task("ctr"))["stages"]
        ('teacher', 'distill', 'export')
    """
    fields = {k: recipe[k] for k in FIELDS if k in recipe}
    fields["student"] = dict(recipe.get("student", {}))
    fields["stages"] = recipe_stages(recipe, task)
    bad = [m for m in [fields.get("export_mode")] if m is not None and m not in EXPORT_MODES]
    if bad:
        raise TFCompressError(f"export_mode {bad[0]!r} is not one of {list(EXPORT_MODES)}")
    return fields
