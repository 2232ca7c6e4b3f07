"""Several teachers, several heads.

* :class:`MultiTeacherDistiller` — one student learns the weighted average of several teachers' soft
  targets (tempered probabilities for binary/multiclass, outputs for regression). ``weights`` are fixed
  (a list, normalised) or ``"learned"``: softmax of trainable logits trained with the student on the total
  loss (which favours the teachers the student can match best; fix the weights if that is not wanted).
* :class:`MultiTaskDistiller` — one student with several named output heads (e.g. ``click`` and
  ``rating``), each with its own teacher, task kind and label; logs ``<head>_student_loss`` and
  ``<head>_distillation_loss`` and their weighted sums ``student_loss`` / ``distillation_loss``.

Example:
    >>> from tfcompress._keras import keras
    >>> def mlp(seed):
    ...     keras.utils.set_random_seed(seed)
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1)])
    >>> d = MultiTeacherDistiller(mlp(0), [mlp(1), mlp(2)], weights=[2, 1])
    >>> [round(float(w), 3) for w in d.teacher_weights()]
    [0.667, 0.333]
"""
import numpy as np

from .._keras import tf
from ..errors import TFCompressError
from .distiller import Distiller, check_model, check_outputs
from .losses import REGRESSION_LOSSES, RESPONSE_LOSSES


class MultiTeacherDistiller(Distiller):
    """Response distillation from the weighted average of ``teachers``' soft targets (see module doc)."""

    def __init__(self, student, teachers, *, weights=None, **kwargs):
        teachers = list(teachers)
        if len(teachers) < 1:
            raise TFCompressError("teachers must be a non-empty list of tf_keras models")
        super().__init__(student, teachers[0], **kwargs)
        for i, t in enumerate(teachers):
            check_model(f"teacher {i}", t)
            check_outputs(t, student, self.task)
            t.trainable = False
        self.teachers = teachers
        n = len(teachers)
        self.learned = isinstance(weights, str)
        if self.learned:
            if weights != "learned":
                raise TFCompressError(f"weights must be a list of {n} numbers or 'learned', got {weights!r}")
            self.weight_logits = tf.Variable(tf.zeros([n]), trainable=True, name="teacher_weight_logits")
        else:
            w = np.ones(n) if weights is None else np.asarray(weights, dtype="float64")
            if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
                raise TFCompressError(f"weights must be {n} non-negative numbers with a positive sum, got {weights!r}")
            self.fixed_weights = tf.constant(w / w.sum(), tf.float32)

    def teacher_weights(self):
        """The current weights of the teachers (sum 1)."""
        return tf.nn.softmax(self.weight_logits) if self.learned else self.fixed_weights

    @property
    def student_variables(self):
        return self.student.trainable_variables + ([self.weight_logits] if self.learned else [])

    def teacher_outputs(self, x):
        return tf.stack([t(x, training=False) for t in self.teachers], axis=0)

    def distillation_loss(self, teacher_out, student_out):
        """Per-example loss to the weighted average soft target of the stacked teacher outputs."""
        w = self.teacher_weights()
        w = tf.reshape(w, [-1] + [1] * (len(teacher_out.shape) - 1))
        temp = self.temperature
        s = tf.reshape(student_out, [tf.shape(student_out)[0], -1])
        if self.task == "binary":
            p = tf.reduce_sum(w * tf.sigmoid(teacher_out / temp), axis=0)
            p = tf.reshape(p, tf.shape(s))
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=p, logits=s / temp), axis=-1)
        if self.task == "multiclass":
            p = tf.reduce_sum(w * tf.nn.softmax(teacher_out / temp, axis=-1), axis=0)
            log_p = tf.math.log(tf.maximum(p, 1e-12))
            return tf.reduce_sum(p * (log_p - tf.nn.log_softmax(student_out / temp, axis=-1)), axis=-1)
        target = tf.reduce_sum(w * teacher_out, axis=0)
        return self._soft_loss(target, student_out, temp)

    def get_config(self):
        return {**super().get_config(), "n_teachers": len(self.teachers),
                "weights": "learned" if self.learned else self.fixed_weights.numpy().tolist()}


class MultiTaskDistiller(Distiller):
    """One student with named heads, each distilled from its own teacher.

    ``teachers``: ``{head: model}`` (a single-output model, or a multi-output model with an output of that
    head's name); ``tasks``: ``{head: "binary" | "multiclass" | "regression"}``; ``head_weights``:
    ``{head: weight}`` (default 1). Labels are a dict ``{head: labels}``. ``alpha``/``temperature`` are
    shared by the heads.

    Example:
        >>> from tfcompress._keras import keras
        >>> inp = keras.Input((4,)); h = keras.layers.Dense(8, "relu")(inp)
        >>> student = keras.Model(inp, {"click": keras.layers.Dense(1, name="click")(h),
        ...                             "rating": keras.layers.Dense(1, name="rating")(h)})
        >>> t = {k: keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]) for k in ("click", "rating")}
        >>> d = MultiTaskDistiller(student, t, tasks={"click": "binary", "rating": "regression"})
        >>> d.compile()
        >>> y = {"click": np.ones((8, 1)), "rating": np.ones((8, 1))}
        >>> sorted(d.fit(np.ones((8, 4)), y, verbose=0).history)[:3]
        ['click_distillation_loss', 'click_student_loss', 'distillation_loss']
    """

    def __init__(self, student, teachers, *, tasks, head_weights=None, regression_loss="mse", **kwargs):
        check_model("student", student)
        heads = list(student.output_names)
        if not isinstance(teachers, dict) or not isinstance(tasks, dict):
            raise TFCompressError("teachers and tasks must be dicts keyed by the student's output names "
                                  f"{heads}")
        unknown = sorted((set(teachers) | set(tasks)) - set(heads))
        missing = sorted(set(heads) - set(teachers)) + sorted(set(heads) - set(tasks))
        if unknown or missing:
            raise TFCompressError(f"heads {unknown or missing} do not match the student's output names {heads}: "
                                  "give one teacher and one task per output")
        self.heads = heads
        self.extra_terms = tuple(f"{h}_{term}" for h in heads for term in ("student_loss", "distillation_loss"))
        kwargs.pop("task", None)
        first = teachers[heads[0]]
        super().__init__(student, None, regression_loss=regression_loss, **kwargs)
        self.teacher = first
        self.head_teachers = {}
        self.head_losses = {}
        for h in heads:
            task = tasks[h]
            if task not in RESPONSE_LOSSES:
                raise TFCompressError(f"head {h!r}: task {task!r} is not one of {sorted(RESPONSE_LOSSES)}")
            t = check_model(f"teacher of head {h!r}", teachers[h])
            t.trainable = False
            self.head_teachers[h] = t
            self.head_losses[h] = REGRESSION_LOSSES[regression_loss] if task == "regression" else RESPONSE_LOSSES[task]
        self.tasks = dict(tasks)
        self.head_weights = {h: float((head_weights or {}).get(h, 1.0)) for h in heads}

    def _by_head(self, out, names):
        if isinstance(out, dict):
            return out
        out = out if isinstance(out, (list, tuple)) else [out]
        return dict(zip(names, out))

    def _teacher_head(self, h, x):
        t = self.head_teachers[h]
        out = t(x, training=False)
        if isinstance(out, (dict, list, tuple)):
            by = self._by_head(out, t.output_names)
            if h not in by:
                raise TFCompressError(f"the teacher of head {h!r} has outputs {sorted(by)}, none named {h!r}")
            return by[h]
        return out

    def loss_terms(self, x, y, teacher_out, training):
        student_out = self._by_head(self.student(x, training=training), self.heads)
        terms = {}
        hard_sum, soft_sum = 0.0, 0.0
        for h in self.heads:
            t = tf.stop_gradient(teacher_out[h] if teacher_out is not None else self._teacher_head(h, x))
            label_loss, soft_loss = self.head_losses[h]
            soft = soft_loss(t, student_out[h], self.temperature)
            hard = tf.zeros_like(soft) if y is None else label_loss(y[h], student_out[h])
            scale = 1.0 if self.tasks[h] == "regression" else tf.square(self.temperature)
            terms[f"{h}_student_loss"], terms[f"{h}_distillation_loss"] = hard, soft
            hard_sum += self.head_weights[h] * hard
            soft_sum += self.head_weights[h] * scale * soft
        terms["student_loss"], terms["distillation_loss"] = hard_sum, soft_sum
        return terms, student_out

    def combine(self, terms):
        return self.alpha * terms["student_loss"] + (1.0 - self.alpha) * terms["distillation_loss"]

    def get_config(self):
        return {**super().get_config(), "tasks": self.tasks, "head_weights": self.head_weights}
