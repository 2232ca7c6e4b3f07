"""The :class:`Distiller`: a tf_keras ``Model`` that trains a student on a frozen teacher's outputs.

``loss = alpha · task_loss(labels, student) + (1 − alpha) · T² · distillation_loss(teacher, student)``

(for ``task="regression"`` the ``T²`` factor is 1 and the distillation loss is MSE or Huber to the
teacher's outputs). The teacher runs in inference mode (``training=False``) and is **frozen** by the
constructor (``teacher.trainable = False``), so a trainable teacher is accepted and never updated; the
student trains. ``fit``, ``evaluate``, callbacks, ``validation_data`` and ``tf.distribute`` work as with
any Keras model; losses are averaged over the *global* batch (``tf.nn.compute_average_loss``). ``alpha``
and ``temperature`` are non-trainable variables, so callbacks can schedule them
(:mod:`tfcompress.callbacks`). ``distiller.student`` is what you export. With ``alpha=0`` the data need no
labels. A non-finite loss stops ``fit`` with a :class:`~tfcompress.errors.TFCompressError` naming the step
and the term (``check_finite=True``).

Subclasses change what is matched by overriding :meth:`Distiller.distillation_loss` (and, if they need
more than the logits, :meth:`Distiller.teacher_outputs` / :meth:`Distiller.student_outputs`, or the whole
:meth:`Distiller.loss_terms` plus :meth:`Distiller.combine`). Extra loss terms named in ``extra_terms`` are
logged like the others and added with weight :meth:`Distiller.term_weight`.

Under ``tf.distribute``, build the student, the teacher and the distiller inside ``strategy.scope()``.

Example:
    >>> import tfcompress
    >>> from tfcompress._keras import keras
    >>> d = tfcompress.data.make_ecommerce(events=2000, seed=0)
    >>> ds = tfcompress.data.to_dataset(d.events, d.spec, batch_size=256)
    >>> teacher = tfcompress.models.ctr_teacher(d.spec, embedding_dim=8, hidden=(32,))
    >>> distiller = Distiller(tfcompress.models.ctr_student(d.spec), teacher, alpha=0.2, temperature=2.0)
    >>> distiller.compile(optimizer="adam", metrics=[keras.metrics.AUC(from_logits=True, name="auc")])
    >>> sorted(distiller.fit(ds, epochs=1, verbose=0).history)
    ['auc', 'distillation_loss', 'loss', 'student_loss']
"""
from .._keras import keras, tf
from ..errors import TFCompressError, check_fraction
from .losses import REGRESSION_LOSSES, RESPONSE_LOSSES

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def check_model(role, m, *, functional=False):
    """Raise a clear error unless ``m`` is a built tf_keras Model (functional if asked)."""
    if not isinstance(m, keras.Model):
        hint = (" (a Keras 3 model? use tfcompress.distill.cache_teacher_outputs for an offline teacher)"
                if hasattr(m, "predict") else "")
        raise TFCompressError(f"the {role} must be a tf_keras Model, got {type(m).__name__}{hint}")
    if not m.built:
        raise TFCompressError(f"the {role} {m.name!r} is not built: call it on data or give it an Input")
    if functional and not getattr(m, "_is_graph_network", False):
        raise TFCompressError(f"the {role} {m.name!r} is a subclassed model: intermediate layers can only be "
                              "matched in functional or Sequential models")
    return m


def check_outputs(teacher, student, task):
    """Raise a clear error if teacher and student outputs differ in shape or are probabilities."""
    t_shape, s_shape = _shape(teacher), _shape(student)
    if t_shape is None or s_shape is None:  # a subclassed model never called symbolically: checked by TF later
        return
    if t_shape != s_shape:
        raise TFCompressError(
            f"teacher {teacher.name!r} output shape {t_shape} does not match student {student.name!r} "
            f"output shape {s_shape}: both must produce the same {'outputs' if task == 'regression' else 'logits'}")
    if task == "multiclass" and (not t_shape or t_shape[-1] in (None, 1)):
        raise TFCompressError(f"task 'multiclass' needs one logit per class, the outputs have shape {t_shape}: "
                              "use task='binary' for one sigmoid logit")
    if task in ("binary", "multiclass"):
        for role, m in (("teacher", teacher), ("student", student)):
            act = _final_activation(m)
            if act in _PROBABILITY_ACTIVATIONS:
                raise TFCompressError(
                    f"the {role} {m.name!r} ends in a {act} activation (probabilities): distillation needs "
                    "logits, rebuild its last layer with activation=None")


def _shape(m):
    try:
        shape = m.output_shape
    except (AttributeError, RuntimeError):
        return None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    return tuple(shape[1:]) if isinstance(shape, tuple) else shape


def _final_activation(m):
    layer = m.layers[-1] if getattr(m, "layers", None) else None
    act = getattr(layer, "activation", None)
    if layer is not None and type(layer).__name__ in ("Softmax", "Activation"):
        act = getattr(layer, "activation", None) or tf.nn.softmax
    name = getattr(act, "__name__", "")
    return name if name in _PROBABILITY_ACTIVATIONS else None


class Distiller(keras.Model):
    """Response (soft-target) distillation: ``binary`` (sigmoid), ``multiclass`` (softmax, KL·T²) or
    ``regression`` (``regression_loss`` ``"mse"`` or ``"huber"`` to the teacher's outputs)."""

    #: Names of extra per-example loss terms a subclass logs (each gets a ``Mean`` tracker).
    extra_terms = ()

    def __init__(self, student, teacher, *, alpha=0.1, temperature=3.0, task="binary", regression_loss="mse",
                 huber_delta=1.0, check_finite=True, name="distiller", **kwargs):
        super().__init__(name=name, **kwargs)
        if task not in RESPONSE_LOSSES:
            raise TFCompressError(f"task {task!r} is not one of {sorted(RESPONSE_LOSSES)}")
        check_model("student", student)
        if teacher is not None:
            check_model("teacher", teacher)
            check_outputs(teacher, student, task)
        alpha = check_fraction("alpha", alpha, include_high=True)
        temperature = float(temperature)
        if not temperature > 0:
            raise TFCompressError(f"temperature must be > 0, got {temperature}")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            self.teacher.trainable = False  # frozen, never updated (documented, not an error)
        self.task = task
        self.regression_loss = regression_loss
        self.huber_delta = float(huber_delta)
        if task == "regression":
            if regression_loss not in REGRESSION_LOSSES:
                raise TFCompressError(f"regression_loss {regression_loss!r} is not one of {sorted(REGRESSION_LOSSES)}")
            label, soft = REGRESSION_LOSSES[regression_loss]
            if regression_loss == "huber":
                delta = self.huber_delta
                self._label_loss = lambda y, s: label(y, s, delta=delta)
                self._soft_loss = lambda t, s, temp: soft(t, s, delta=delta)
            else:
                self._label_loss, self._soft_loss = label, soft
        else:
            self._label_loss, self._soft_loss = RESPONSE_LOSSES[task]
        self.check_finite = bool(check_finite)
        self.alpha = tf.Variable(alpha, trainable=False, dtype=tf.float32, name="alpha")
        self.temperature = tf.Variable(temperature, trainable=False, dtype=tf.float32, name="temperature")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self._term_trackers = {"student_loss": self.student_loss_tracker,
                               "distillation_loss": self.distillation_loss_tracker}
        for term in self.extra_terms:
            self._term_trackers[term] = keras.metrics.Mean(name=term)

    # --- what subclasses override -------------------------------------------------------------------
    def teacher_outputs(self, x):
        """The teacher's outputs for batch ``x`` (inference mode)."""
        return self.teacher(x, training=False)

    def student_outputs(self, x, training):
        """The student's outputs for batch ``x``."""
        return self.student(x, training=training)

    def distillation_loss(self, teacher_out, student_out):
        """Per-example distillation loss (before the ``T²`` factor)."""
        return self._soft_loss(teacher_out, student_out, self.temperature)

    def student_loss(self, y, student_out):
        """Per-example loss of the student against the ground-truth labels."""
        return self._label_loss(y, student_out)

    def soft_scale(self):
        """The factor on the distillation term: ``T²`` for tempered soft targets, 1 for regression."""
        return 1.0 if self.task == "regression" else tf.square(self.temperature)

    def loss_terms(self, x, y, teacher_out, training):
        """Per-example loss terms ``{name: (batch,) tensor}`` and the student's outputs (for metrics).

        ``teacher_out`` is given when the data carry cached teacher outputs, else ``None``."""
        if teacher_out is None:
            teacher_out = self.teacher_outputs(x)
        teacher_out = tf.nest.map_structure(tf.stop_gradient, teacher_out)
        student_out = self.student_outputs(x, training)
        soft = self.distillation_loss(teacher_out, student_out)
        hard = tf.zeros_like(soft) if y is None else self.student_loss(y, student_out)
        return {"student_loss": hard, "distillation_loss": soft}, student_out

    def combine(self, terms):
        """Per-example total loss from the terms (``alpha`` weighting; extra terms are added as they are)."""
        total = (self.alpha * terms["student_loss"]
                 + (1.0 - self.alpha) * self.soft_scale() * terms["distillation_loss"])
        for name in self.extra_terms:
            total = total + self.term_weight(name) * terms[name]
        return total

    def term_weight(self, name):
        """The weight of extra term ``name`` in the total (subclasses: e.g. ``beta``)."""
        return 1.0

    @property
    def student_variables(self):
        """The variables the optimizer updates (the student's; subclasses add projections etc.)."""
        return self.student.trainable_variables

    def metrics_outputs(self, y, student_out):
        """``(labels, predictions)`` the compiled metrics see."""
        return y, student_out

    # --- Keras plumbing -----------------------------------------------------------------------------
    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    @property
    def metrics(self):
        trackers = [self.loss_tracker] + list(self._term_trackers.values())
        compiled = self.compiled_metrics.metrics if self.compiled_metrics is not None else []
        return trackers + list(compiled)

    def compile(self, optimizer="adam", metrics=None, **kwargs):
        """Like ``Model.compile``; ``metrics`` are computed on the student's outputs against the labels."""
        if "loss" in kwargs:
            raise TFCompressError("Distiller.compile takes no `loss`: set alpha/temperature or subclass "
                                  "Distiller.distillation_loss / student_loss instead")
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def fit(self, *args, **kwargs):
        """``Model.fit``; with ``check_finite`` a non-finite loss term stops training with a clear error."""
        self._check_labels(args, kwargs)
        if self.check_finite:
            from ..callbacks import TerminateOnNonFiniteLoss

            callbacks = list(kwargs.get("callbacks") or [])
            if not any(isinstance(c, TerminateOnNonFiniteLoss) for c in callbacks):
                callbacks.append(TerminateOnNonFiniteLoss())
            kwargs["callbacks"] = callbacks
        return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        """``Model.evaluate`` (labels needed only when ``alpha > 0``)."""
        self._check_labels(args, kwargs)
        return super().evaluate(*args, **kwargs)

    def _check_labels(self, args, kwargs):
        x = args[0] if args else kwargs.get("x")
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            has_labels = isinstance(spec, tuple) and len(spec) >= 2
        elif x is not None and not hasattr(x, "__next__") and not isinstance(x, keras.utils.Sequence):
            has_labels = (args[1] if len(args) > 1 else kwargs.get("y")) is not None
        else:
            return
        alpha = float(self.alpha.numpy())
        if not has_labels and alpha > 0:
            raise TFCompressError(
                f"the data has no labels but alpha = {alpha:g} > 0 weights the label loss: pass "
                "(features, labels) batches, or alpha=0 to learn from the teacher alone")

    def split_inputs(self, x):
        """``(student_inputs, cached_teacher_outputs_or_None)`` from a batch's features."""
        return x, None

    def _unpack(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        x, teacher_out = self.split_inputs(x)
        if y is None:
            with tf.init_scope():  # trace-time check, eager even inside tf.function
                alpha = float(tf.convert_to_tensor(self.alpha).numpy())
            if alpha > 0:
                raise TFCompressError(
                    f"the data has no labels but alpha = {alpha:g} > 0 weights the label loss: pass "
                    "(features, labels) batches, or alpha=0 to learn from the teacher alone")
        return x, y, teacher_out

    def _compute_losses(self, x, y, teacher_out, training):
        terms, student_out = self.loss_terms(x, y, teacher_out, training)
        per_example = self.combine(terms)
        total = tf.nn.compute_average_loss(per_example)
        reg = self.student.losses
        if reg:
            total += tf.nn.scale_regularization_loss(tf.add_n(reg))
        return total, terms, student_out

    def _update(self, total, terms, y, student_out):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self.loss_tracker.update_state(total * tf.cast(replicas, total.dtype))
        for name, tracker in self._term_trackers.items():
            tracker.update_state(terms[name])
        if y is not None:
            labels, preds = self.metrics_outputs(y, student_out)
            self.compiled_metrics.update_state(labels, preds)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x, y, teacher_out = self._unpack(data)
        with tf.GradientTape() as tape:
            total, terms, student_out = self._compute_losses(x, y, teacher_out, training=True)
        variables = self.student_variables
        grads = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self._update(total, terms, y, student_out)

    def test_step(self, data):
        x, y, teacher_out = self._unpack(data)
        total, terms, student_out = self._compute_losses(x, y, teacher_out, training=False)
        return self._update(total, terms, y, student_out)

    def checkpoint(self, **extra):
        """A ``tf.train.Checkpoint`` of the distiller (student, teacher, projections, ``alpha``,
        ``temperature``) and its optimizer, with the optimizer's slots created so that a restore into a
        fresh, compiled distiller is complete (``assert_consumed()`` passes) and training resumes exactly.

        Example:
            >>> from tfcompress._keras import keras
            >>> m = lambda: keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            >>> d = Distiller(m(), m()); d.compile()
            >>> isinstance(d.checkpoint(), tf.train.Checkpoint)
            True
        """
        if self.optimizer is None:
            raise TFCompressError("compile the distiller before making a checkpoint (the optimizer is saved too)")
        if hasattr(self.optimizer, "build"):
            self.optimizer.build(self.student_variables)
        return tf.train.Checkpoint(distiller=self, optimizer=self.optimizer, **extra)

    def get_config(self):
        return {"alpha": float(self.alpha.numpy()), "temperature": float(self.temperature.numpy()),
                "task": self.task, "regression_loss": self.regression_loss, "huber_delta": self.huber_delta,
                "check_finite": self.check_finite, "name": self.name}
