"""Keras callbacks for distillation: schedules, the best *student*, early stopping, non-finite guard.

* :class:`TemperatureSchedule` / :class:`AlphaSchedule` — set ``distiller.temperature`` / ``.alpha`` at
  the start of each epoch from a callable ``epoch -> value`` or linearly from ``start`` to ``end``.
* :class:`BestStudentCheckpoint` — saves ``distiller.student`` (not the wrapper) atomically whenever the
  monitored metric improves; the file reloads with ``keras.models.load_model`` (tfcompress layers are
  registered: pass ``custom_objects=tfcompress.models.custom_objects()`` to be explicit).
* :class:`EarlyStoppingOnStudentMetric` — stops when a metric stops improving and restores the best
  *student* weights (only the student's weights are copied, never the teacher's).
* :class:`EarlyStoppingOnDisk` — Keras's ``EarlyStopping`` (the same rule), its best weights kept in a temporary
  folder one variable at a time, and only those a fit changes (a Distiller's teachers are never copied).
* :class:`TerminateOnNonFiniteLoss` — stops with a :class:`~tfcompress.errors.TFCompressError` naming the
  epoch, batch, optimizer step and the loss term that went NaN/inf (the Distiller adds it by default).

Example:
    >>> cbs = [TemperatureSchedule(start=4.0, end=1.0, epochs=10), AlphaSchedule(lambda epoch: 0.1)]
    >>> TemperatureSchedule.from_config(cbs[0].get_config()).value(9)
    1.0
"""
import contextlib
import math
import os
import shutil
import tempfile
import weakref

import numpy as np

from ._keras import keras
from ._io import atomic_path, ensure_dir
from .errors import TFCompressError


class _VariableSchedule(keras.callbacks.Callback):
    attr = None

    def __init__(self, schedule=None, *, start=None, end=None, epochs=None, verbose=0):
        super().__init__()
        if schedule is None:
            if start is None or end is None or epochs is None:
                raise TFCompressError(f"{type(self).__name__} needs a callable schedule(epoch) or start=, end=, "
                                      "epochs= for a linear schedule")
            if int(epochs) < 1:
                raise TFCompressError(f"epochs must be >= 1, got {epochs}")
        elif not callable(schedule):
            raise TFCompressError(f"schedule must be a callable epoch -> value, got {type(schedule).__name__}")
        self.schedule, self.start, self.end, self.epochs = schedule, start, end, epochs
        self.verbose = verbose

    def value(self, epoch):
        """The value at ``epoch`` (0-based)."""
        if self.schedule is not None:
            return float(self.schedule(epoch))
        frac = min(1.0, epoch / max(1, int(self.epochs) - 1))
        return float(self.start + (self.end - self.start) * frac)

    def _check(self, v):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        var = getattr(self.model, self.attr, None)
        if var is None:
            raise TFCompressError(f"{type(self).__name__} needs a Distiller with `{self.attr}`, "
                                  f"got {type(self.model).__name__}")
        v = self.value(epoch)
        self._check(v)
        var.assign(v)
        if self.verbose:
            print(f"epoch {epoch + 1}: {self.attr} = {v:g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[self.attr] = float(getattr(self.model, self.attr).numpy())

    def get_config(self):
        if self.schedule is not None:
            return {"schedule": self.schedule, "verbose": self.verbose}
        return {"start": self.start, "end": self.end, "epochs": self.epochs, "verbose": self.verbose}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(config.pop("schedule", None), **config)


class TemperatureSchedule(_VariableSchedule):
    """Set the distiller's temperature each epoch: ``TemperatureSchedule(lambda e: 4 / (1 + e))`` or
    ``TemperatureSchedule(start=4.0, end=1.0, epochs=10)`` (linear, then constant).

    Example:
        >>> TemperatureSchedule(start=4.0, end=2.0, epochs=3).value(1)
        3.0
    """

    attr = "temperature"

    def _check(self, v):
        if not v > 0:
            raise TFCompressError(f"TemperatureSchedule gave temperature {v:g}: it must be > 0")


class AlphaSchedule(_VariableSchedule):
    """Set the distiller's alpha (label-loss weight) each epoch, callable or linear ``start -> end``.

    Example:
        >>> AlphaSchedule(start=0.0, end=0.5, epochs=2).value(1)
        0.5
    """

    attr = "alpha"

    def _check(self, v):
        if not 0.0 <= v <= 1.0:
            raise TFCompressError(f"AlphaSchedule gave alpha {v:g}: it must be in [0, 1]")


def _monitor_mode(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise TFCompressError(f"mode {mode!r} is not one of 'auto', 'min', 'max'")
    if mode == "auto":
        mode = "min" if "loss" in monitor or "error" in monitor or monitor.endswith(("rmse", "mse", "mae")) \
            else "max"
    return mode


class _StudentMonitor(keras.callbacks.Callback):
    def __init__(self, monitor, mode, min_delta=0.0):
        super().__init__()
        self.monitor, self.mode, self.min_delta = monitor, _monitor_mode(monitor, mode), float(min_delta)
        self.best = None

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _student(self):
        student = getattr(self.model, "student", None)
        if student is None:
            raise TFCompressError(f"{type(self).__name__} needs a Distiller (with .student), got "
                                  f"{type(self.model).__name__}")
        return student

    def _current(self, logs):
        logs = logs or {}
        if self.monitor not in logs:
            raise TFCompressError(f"{type(self).__name__}: metric {self.monitor!r} is not in the logs "
                                  f"{sorted(logs)}; pass validation_data for val_ metrics or choose one of these")
        return float(logs[self.monitor])

    def _improved(self, value):
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta


class BestStudentCheckpoint(_StudentMonitor):
    """Save ``distiller.student`` to ``filepath`` (``.keras``, ``.h5`` or a SavedModel folder) when
    ``monitor`` improves; written to a temporary name and renamed, so the file is never half-written.

    Example:
        >>> cb = BestStudentCheckpoint("best_student.keras", monitor="val_auc")
        >>> cb.get_config()["mode"]
        'max'
    """

    def __init__(self, filepath, monitor="val_loss", mode="auto", min_delta=0.0, verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.best_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if not self._improved(value):
            return
        self.best, self.best_epoch = value, epoch
        save_student(self._student(), self.filepath)
        if self.verbose:
            print(f"epoch {epoch + 1}: {self.monitor} = {value:.5g}, student saved to {self.filepath}")

    def get_config(self):
        return {"filepath": self.filepath, "monitor": self.monitor, "mode": self.mode,
                "min_delta": self.min_delta, "verbose": self.verbose}


def save_student(model, filepath):
    """Save ``model`` atomically: ``.keras``/``.h5`` files via a temporary folder, else a SavedModel.

    Example:
        >>> import tempfile, os
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> p = save_student(m, os.path.join(tempfile.mkdtemp(), "m.keras"))
        >>> keras.models.load_model(p).count_params()
        3
    """
    filepath = os.fspath(filepath)
    parent = ensure_dir(os.path.dirname(os.path.abspath(filepath)))
    if filepath.endswith((".keras", ".h5")):
        tmpdir = tempfile.mkdtemp(prefix=".save.", dir=parent)
        try:
            tmp = os.path.join(tmpdir, os.path.basename(filepath))
            model.save(tmp)
            os.replace(tmp, filepath)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    else:
        with atomic_path(filepath, is_dir=True) as tmp:
            model.save(tmp, save_format="tf")
    return filepath


class EarlyStoppingOnStudentMetric(_StudentMonitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; with ``restore_best_weights`` put
    back the best epoch's *student* weights (only the student's are copied: a large teacher costs nothing).

    Example:
        >>> EarlyStoppingOnStudentMetric(monitor="val_auc", patience=2).get_config()["mode"]
        'max'
    """

    def __init__(self, monitor="val_loss", mode="auto", patience=0, min_delta=0.0, restore_best_weights=True,
                 verbose=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        self.best, self.wait, self.best_epoch, self.best_weights, self.stopped_epoch = None, 0, None, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = [np.array(w) for w in self._student().get_weights()]
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self._student().set_weights(self.best_weights)
            if self.verbose:
                print(f"restored the student of epoch {self.best_epoch + 1} ({self.monitor} = {self.best:.5g})")

    def get_config(self):
        return {"monitor": self.monitor, "mode": self.mode, "patience": self.patience,
                "min_delta": self.min_delta, "restore_best_weights": self.restore_best_weights,
                "verbose": self.verbose}


class EarlyStoppingOnDisk(keras.callbacks.EarlyStopping):
    """Keras's ``EarlyStopping``, its stopping rule unchanged, but with ``restore_best_weights`` the best
    epoch's weights go to a temporary folder, one variable at a time, instead of a copy in memory, and only
    the variables a fit changes: a Distiller's frozen teachers are skipped. Keras's copy of the 10^7-event
    shop's teacher was 86 MB, two of them while an improving epoch replaced the last (see ``docs/scale``).

    Example:
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> m.compile(keras.optimizers.SGD(0.0), "mse")
        >>> es = EarlyStoppingOnDisk("loss", patience=1)
        >>> _ = m.fit(np.ones((8, 2)), np.ones(8), epochs=5, verbose=0, callbacks=[es])
        >>> es.stopped_epoch, es.best_epoch
        (1, 0)
    """

    def __init__(self, monitor="val_loss", *, restore_best_weights=True, **kwargs):
        super().__init__(monitor, restore_best_weights=restore_best_weights, **kwargs)
        self._folder = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._folder = None

    @contextlib.contextmanager
    def _keras_without_copies(self):
        """Keras's own logic runs with ``restore_best_weights`` off: no ``get_weights`` / ``set_weights``."""
        restore, self.restore_best_weights = self.restore_best_weights, False
        try:
            yield restore
        finally:
            self.restore_best_weights = restore

    def on_epoch_end(self, epoch, logs=None):
        best_epoch = self.best_epoch
        with self._keras_without_copies() as restore:
            super().on_epoch_end(epoch, logs)
        counted = self.monitor in (logs or {}) and epoch >= self.start_from_epoch
        if restore and counted and (self._folder is None or self.best_epoch != best_epoch):
            self._save()

    def on_train_end(self, logs=None):
        with self._keras_without_copies() as restore:
            super().on_train_end(logs)
        if restore and self._folder is not None:
            for i, v in enumerate(self._variables()):
                v.assign(np.load(os.path.join(self._folder, f"{i}.npy")))
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _variables(self):
        frozen = {id(w) for m in getattr(self.model, "teacher_models", ()) for w in m.weights}
        return [w for w in self.model.weights if id(w) not in frozen]

    def _save(self):
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="tfcompress-best-weights-")
            weakref.finalize(self, shutil.rmtree, self._folder, True)  # also when the fit fails
        for i, v in enumerate(self._variables()):
            np.save(os.path.join(self._folder, f"{i}.npy"), v.numpy())


class TerminateOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise a :class:`~tfcompress.errors.TFCompressError` at the first batch whose loss or a loss term
    (any log ending in ``loss``) is NaN or infinite, naming the epoch, batch, step and term.

    Example:
        >>> TerminateOnNonFiniteLoss().get_config()
        {}
    """

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        bad = [k for k, v in logs.items() if k.endswith("loss") and not np.all(np.isfinite(np.asarray(v)))]
        if not bad:
            return
        terms = [k for k in bad if k != "loss"] or bad
        opt = getattr(self.model, "optimizer", None)
        step = int(opt.iterations.numpy()) if opt is not None else batch
        epoch = getattr(self, "_epoch", 0)
        self.model.stop_training = True
        raise TFCompressError(
            f"non-finite loss at epoch {epoch + 1}, batch {batch} (optimizer step {step}): "
            f"{', '.join(f'{k} = {float(np.asarray(logs[k])):g}' for k in terms)}; check the inputs and "
            "the teacher's outputs for NaN/inf, or lower the learning rate")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def get_config(self):
        return {}
