"""One search's trials on one dataset and one teacher: :class:`Trials` loads the data and trains (or loads)
the teacher once through :class:`~tfcompress.pipeline.Pipeline`, then runs each recipe with the standard
stages (:mod:`tfcompress.stages`) on a fresh :class:`~tfcompress.stages.RunContext` holding that teacher,
reusing the distilled student of every architecture already trained.

A trial is given up early (:class:`Hopeless`) when its Keras student is already worse on the validation
split than the teacher by more than :data:`HOPELESS` times the tolerance: nothing is exported.

Example:
    >>> from tfcompress.pipeline import RunConfig
    >>> # trials = Trials(RunConfig(quick=True, out="runs/tune").validate(), tolerance="1%")
    >>> # figures = trials.run({"student": {"hidden": (16,)}, "export_mode": "int8"}, number=0)
"""
import dataclasses
import io
import os
import time

from ..errors import TFCompressError
from ..tolerance import Tolerance
from .space import recipe_fields

#: a trial stops before export when its Keras student is worse than the teacher by more than this many
#: times the tolerance (on validation)
HOPELESS = 3.0
#: the file the trained teacher's weights are kept in (a resumed search loads them instead of retraining)
TEACHER_WEIGHTS = "teacher.weights.h5"


class Hopeless(Exception):
    """A trial given up before export; ``val_metric`` is the Keras student's validation metric."""

    def __init__(self, message, val_metric):
        super().__init__(message)
        self.val_metric = val_metric


def validation_metric(task, data, predict):
    """The task's metric of ``predict(validation inputs)`` on the validation labels.

    Example:
        >>> # validation_metric(task, data, lambda x: model.predict(x, verbose=0))
    """
    found = data.validation_arrays()
    if found is None:
        raise TFCompressError(f"the {task.name} task's data has no validation split to tune on")
    inputs, labels = found
    return float(task.evaluate(predict(inputs), labels)[task.metric])


def keras_predict(model):
    """A function ``inputs -> outputs`` of the Keras ``model`` (batches of 4,096, silent)."""
    return lambda x: model.predict(x, batch_size=4096, verbose=0)


def tflite_predict(path):
    """A function ``inputs -> outputs`` of the ``.tflite`` file ``path`` in the LiteRT interpreter."""
    from ..export import TFLiteModel

    return lambda x: TFLiteModel(path).predict(x, batch_size=4096)


class Trials:
    """The data and teacher of a search (loaded and trained once), and :meth:`run` for one recipe.

    ``config`` is the search's :class:`~tfcompress.pipeline.ResolvedConfig` (its ``out`` holds the trials'
    folders); ``tolerance`` the search's; ``verbose`` prints each stage's line."""

    def __init__(self, config, *, tolerance, verbose=False):
        from ..pipeline import Pipeline
        from ..stages import Progress

        self.config, self.task = config, config.task
        self.tolerance = Tolerance.parse(tolerance)
        self.progress = Progress(stream=None if verbose else io.StringIO())
        self.pipe = Pipeline(dataclasses.replace(config, stages=("teacher",)), progress=self.progress)
        self.teacher = self._teacher()
        self.teacher_val = self._teacher_val()
        self._students = {}  # architecture -> (distilled result, its Keras validation metric)

    def _teacher(self):
        from .._keras import keras
        from ..stages import TeacherStage, record_keras

        context = self.pipe.context
        weights = os.path.join(self.config.out, TEACHER_WEIGHTS)
        keras.utils.set_random_seed(self.config.seed)
        if self.config.teacher_model is None and os.path.isfile(weights):
            model = self.task.build_teacher(context.data, **self.config.teacher)
            try:
                model.load_weights(weights)
                return record_keras(context, TeacherStage.result, model, time.perf_counter(), "teacher reloaded")
            except (OSError, ValueError, KeyError) as e:  # another model's weights, or a damaged file: train again
                print(f"tune: {weights} does not load into this teacher ({str(e).splitlines()[0][:120]}); "
                      "training the teacher again")
        result = self.pipe.run_stage("teacher")
        if self.config.teacher_model is None:
            result.model.save_weights(weights)
        return result

    def _teacher_val(self):
        from ..stages import own_teacher

        own = own_teacher(self.pipe.context)
        if self.teacher.format == "keras":
            predict = keras_predict(self.teacher.model)
        else:
            predict = own.logits
        return validation_metric(self.task, self.pipe.data, predict)

    def trial_config(self, recipe, number):
        """The resolved config of trial ``number``: the search's, with the recipe's fields, in its own folder."""
        fields = recipe_fields(recipe, self.task)
        fields["student"] = {**self.config.student, **fields["student"]}
        self.task.check_options(self.config.teacher, fields["student"])
        folder = os.path.join(self.config.out, "trials", f"{number:04d}")
        return dataclasses.replace(self.config, **fields, out=folder,
                                   savedmodels_dir=os.path.join(folder, "savedmodels"),
                                   tflite_dir=os.path.join(folder, "tflite"))

    def context(self, cfg):
        from ..stages import RunContext

        return RunContext(config=cfg, task=self.task, data=self.pipe.data, results=[self.teacher],
                          progress=self.progress, fit_verbose=2 if cfg.verbose else 0)

    def run(self, recipe, number):
        """Run ``recipe`` as trial ``number``: distil (or reuse the student of this architecture), shrink,
        prune, QAT and export as the recipe says; return its figures (``val_metric`` of the ``.tflite``,
        ``keras_val_metric``, ``size_bytes``, ``p50_us``, ``test``: the test-split figures, ``path``).
        Raises :class:`Hopeless` when the Keras student is too far from the teacher to export."""
        from ..stages import PruneStage, QATStage

        cfg = self.trial_config(recipe, number)
        context = self.context(cfg)
        for folder in (cfg.savedmodels_dir, cfg.tflite_dir):
            os.makedirs(folder, exist_ok=True)
        keras_val = self._student(context)
        for stage in (PruneStage(), QATStage()):
            if stage.name in cfg.stages:
                self._fresh(context, stage.name)
                stage.run(context)
                keras_val = self._check(context)
        return self._export(context, keras_val)

    def _fresh(self, context, stage_name):
        """Start stage ``stage_name`` as :meth:`Pipeline.run_all` does (its seed, the data loaded again), so
        that ``tfcompress run --config recipe.yaml`` computes what the trial did."""
        from .._keras import keras

        index = [s.name for s in self.task.stages].index(stage_name)
        keras.utils.set_random_seed((self.config.seed + index) % 2**32)
        context.data = self.task.load(context.config)

    def _student(self, context):
        """Record the distilled student of the trial's architecture (trained once); its validation metric."""
        from ..stages import DistillStage

        cfg = context.config
        key = (repr(sorted(cfg.student.items())), cfg.student_init, cfg.alpha, cfg.temperature)
        if key not in self._students:
            self._fresh(context, DistillStage.name)
            result = DistillStage().run(context)
            self._students[key] = (result, self._check(context, record=False))
        result, value = self._students[key]
        if context.find(result.name) is not result:
            context.record(result)
        self._give_up_if_hopeless(value)
        return value

    def _check(self, context, record=True):
        from ..stages import latest_student

        value = validation_metric(self.task, context.data, keras_predict(latest_student(context).model))
        if record:
            self._give_up_if_hopeless(value)
        return value

    def _give_up_if_hopeless(self, value):
        hopeless = Tolerance(self.tolerance.amount * HOPELESS, self.tolerance.relative)
        if not hopeless.within(value, self.teacher_val, higher_is_better=self.task.higher_is_better):
            raise Hopeless(f"Keras student's validation {self.task.metric} {value:.4f} is more than "
                           f"{HOPELESS:g}x the tolerance ({self.tolerance}) from the teacher's "
                           f"{self.teacher_val:.4f}", value)

    def _export(self, context, keras_val):
        from ..bench import tflite_latency
        from ..stages import ExportStage, latest_student
        from ..stages.export import export_meta, export_result

        cfg = context.config
        result = export_result(context, ExportStage.student_result, latest_student(context).model,
                               cfg.export_mode, export_meta(context))
        runs = cfg.latency_runs
        p50 = tflite_latency(result.path, context.data.latency_inputs, runs=runs, warmup=max(5, runs // 10)).p50_us
        return {"val_metric": validation_metric(self.task, context.data, tflite_predict(result.path)),
                "keras_val_metric": keras_val, "size_bytes": os.path.getsize(result.path), "p50_us": float(p50),
                "params": result.params, "test": dict(result.quality), "path": os.path.abspath(result.path)}
