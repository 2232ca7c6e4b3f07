"""Several teachers, several heads: conveniences over :class:`~tfcompress.distill.Distiller` and
:class:`~tfcompress.distill.LogitsDistillation` (for any other mix, give the Distiller ``losses=[...]``).

* :class:`MultiTeacherDistiller` — one student learns the weighted average of several teachers' soft
  targets (tempered probabilities for binary/multiclass, outputs for regression). ``weights`` are fixed
  (a list, normalised) or ``"learned"``: softmax of trainable logits trained with the student on the total
  loss (which favours the teachers the student can match best; fix the weights if that is not wanted).
* :class:`MultiTaskDistiller` — one student with several named output heads (e.g. ``click`` and
  ``rating``), each with its own teacher, objective and label; logs ``<head>_student_loss`` and
  ``<head>_distillation_loss`` and their weighted sums ``student_loss`` / ``distillation_loss``.

Example:
    >>> from tfcompress import keras
    >>> def mlp(seed):
    ...     keras.utils.set_random_seed(seed)
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1)])
    >>> d = MultiTeacherDistiller(mlp(0), [mlp(1), mlp(2)], weights=[2, 1])
    >>> [round(float(w), 3) for w in d.teacher_weights()]
    [0.667, 0.333]
"""
from ..errors import TFCompressError
from .distillation_losses import LogitsDistillation
from .distiller import Distiller
from .losses import warn_deprecated
from .outputs import check_model


class MultiTeacherDistiller(Distiller):
    """Response distillation from the weighted average of ``teachers``' soft targets (see module doc):
    ``Distiller(student, teachers, losses=[LogitsDistillation(teacher_weights=weights)])``."""

    def __init__(self, student, teachers, *, weights=None, **kwargs):
        teachers = list(teachers)
        if len(teachers) < 1:
            raise TFCompressError("teachers must be a non-empty list of tf_keras models")
        super().__init__(student, teachers, losses=[LogitsDistillation(teacher_weights=weights)], **kwargs)

    @property
    def _soft_targets(self):
        return self.distillation_losses[0]

    @property
    def learned(self):
        """Whether the teachers' weights train (``weights="learned"``)."""
        return self._soft_targets.learned

    @property
    def weight_logits(self):
        """The trainable logits of the learned weights."""
        return self._soft_targets.weight_logits

    def teacher_weights(self):
        """The current weights of the teachers (sum 1)."""
        return self._soft_targets.mixing_weights()

    def get_config(self):
        weights = "learned" if self.learned else self._soft_targets.fixed_weights.numpy().tolist()
        return {**self._base_config(), "n_teachers": len(self.teacher_models), "weights": weights}


class MultiTaskDistiller(Distiller):
    """One student with named heads, each distilled from its own teacher.

    ``teachers``: ``{head: model}`` (a single-output model, or a multi-output model with an output of that
    head's name); ``objectives``: ``{head: "binary" | "multiclass" | "regression"}`` (``tasks=`` is its
    deprecated alias); ``head_weights``: ``{head: weight}`` (default 1). Labels are a dict
    ``{head: labels}``. ``alpha``/``temperature`` are shared by the heads. The losses are one
    :class:`~tfcompress.distill.LogitsDistillation` per head, logged ``<head>_distillation_loss``.

    Example:
        >>> import numpy as np
        >>> from tfcompress import keras
        >>> inp = keras.Input((4,)); h = keras.layers.Dense(8, "relu")(inp)
        >>> student = keras.Model(inp, {"click": keras.layers.Dense(1, name="click")(h),
        ...                             "rating": keras.layers.Dense(1, name="rating")(h)})
        >>> t = {k: keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]) for k in ("click", "rating")}
        >>> d = MultiTaskDistiller(student, t, objectives={"click": "binary", "rating": "regression"})
        >>> d.compile()
        >>> y = {"click": np.ones((8, 1)), "rating": np.ones((8, 1))}
        >>> sorted(d.fit(np.ones((8, 4)), y, verbose=0).history)[:3]
        ['click_distillation_loss', 'click_student_loss', 'distillation_loss']
    """

    def __init__(self, student, teachers, *, objectives=None, head_weights=None, regression_loss="mse", tasks=None,
                 **kwargs):
        if tasks is not None:
            warn_deprecated("MultiTaskDistiller(tasks=) is deprecated: use objectives=")
            objectives = tasks if objectives is None else objectives
        check_model("student", student)
        heads = list(student.output_names)
        if not isinstance(teachers, dict) or not isinstance(objectives, dict):
            raise TFCompressError(f"teachers and objectives must be dicts keyed by the student's output names {heads}")
        unknown = sorted((set(teachers) | set(objectives)) - set(heads))
        missing = sorted(set(heads) - set(teachers)) + sorted(set(heads) - set(objectives))
        if unknown or missing:
            raise TFCompressError(f"heads {unknown or missing} do not match the student's output names {heads}: "
                                  "give one teacher and one objective per output")
        weights = {h: float((head_weights or {}).get(h, 1.0)) for h in heads}
        losses = [LogitsDistillation(teacher=h, head=h, weight=weights[h], name=f"{h}_distillation_loss")
                  for h in heads]
        kwargs.pop("task", None)
        kwargs.pop("objective", None)
        super().__init__(student, {h: teachers[h] for h in heads}, losses=losses, objective=dict(objectives),
                         head_weights=weights, regression_loss=regression_loss, **kwargs)
        self.heads = heads

    @property
    def objectives(self):
        """``{head: objective}``."""
        return dict(self.objective)

    @property
    def tasks(self):
        """Deprecated alias of :attr:`objectives`."""
        return self.objectives

    def get_config(self):
        config = self._base_config()
        config.pop("objective")
        return {**config, "objectives": self.objectives, "head_weights": dict(self.head_weights)}
