"""The :class:`Distiller`: a tf_keras ``Model`` that trains a student on frozen teachers' outputs.

``loss = alpha · label_loss(labels, student) + (1 − alpha) · Σ scale · response_term + Σ weight · other_term``

Each term is a loss object (:mod:`tfcompress.distill.distillation_losses`): ``losses=[...]`` composes
them, e.g. soft targets from two teachers plus a hint layer of the first. The default is one
:class:`~tfcompress.distill.LogitsDistillation`, which is today's response distillation:
``alpha · label + (1 − alpha) · T² · soft`` (for ``objective="regression"`` the ``T²`` factor is 1 and the
soft term is MSE or Huber to the teacher's outputs). The teachers run in inference mode
(``training=False``) and are **frozen** by the constructor (``teacher.trainable = False``); the student and
what the losses build (projections, learned teacher weights) train. ``fit``, ``evaluate``, callbacks,
``validation_data`` and ``tf.distribute`` work as with any Keras model; losses are averaged over the
*global* batch (``tf.nn.compute_average_loss``). ``alpha`` and ``temperature`` are non-trainable
variables, so callbacks can schedule them (:mod:`tfcompress.callbacks`). ``distiller.student`` is what you
export. With ``alpha=0`` the data need no labels. A non-finite loss stops ``fit`` with a
:class:`~tfcompress.errors.TFCompressError` naming the step and the term (``check_finite=True``).

Under ``tf.distribute``, build the student, the teachers and the distiller inside ``strategy.scope()``.

Example:
    >>> import tfcompress
    >>> from tfcompress import keras
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
from .distillation_losses import LogitsDistillation, deserialize, serialize
from .losses import REGRESSION_LOSSES, resolve_objective, response_losses
from .outputs import BatchOutputs, Tap, by_head, check_model


def _unique(items):
    return list(dict.fromkeys(items))


class Distiller(keras.Model):
    """One student, one or more frozen teachers (a model, a list or a ``{name: model}`` dict) and a list of
    distillation ``losses`` (default: soft targets, :class:`~tfcompress.distill.LogitsDistillation`).

    ``objective`` (``"binary"``, ``"multiclass"``, ``"regression"``, or ``{head: objective}`` for a student
    with named outputs, weighted ``head_weights``) sets the label loss and the losses' defaults; ``task=`` is
    its deprecated alias. Logs ``loss``, ``student_loss`` and one entry per loss (its ``name``).

    Example:
        >>> import numpy as np
        >>> from tfcompress import keras
        >>> from tfcompress.distill import FeatureDistillation, LogitsDistillation
        >>> def mlp(w, seed):
        ...     keras.utils.set_random_seed(seed)
        ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(w, name="h"), keras.layers.Dense(1)])
        >>> d = Distiller(mlp(4, 0), [mlp(16, 1), mlp(8, 2)], alpha=0.5,
        ...               losses=[LogitsDistillation(), FeatureDistillation("h", "h", teacher=0, weight=0.5)])
        >>> d.compile()
        >>> sorted(d.fit(np.ones((8, 4)), np.ones((8, 1)), verbose=0).history)
        ['distillation_loss', 'feature_loss', 'loss', 'student_loss']
    """

    def __init__(self, student, teachers=None, *, losses=None, alpha=0.1, temperature=3.0, objective=None,
                 regression_loss="mse", huber_delta=1.0, head_weights=None, check_finite=True, name="distiller",
                 task=None, teacher=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.objective = resolve_objective(objective, task)
        self.student = check_model("student", student)
        self._set_teachers(teachers if teacher is None else teacher, both=teacher is not None and teachers is not None)
        alpha = check_fraction("alpha", alpha, include_high=True)
        temperature = float(temperature)
        if not temperature > 0:
            raise TFCompressError(f"temperature must be > 0, got {temperature}")
        self.regression_loss, self.huber_delta = regression_loss, float(huber_delta)
        self._set_label_losses(head_weights)
        self.check_finite = bool(check_finite)
        self.alpha = tf.Variable(alpha, trainable=False, dtype=tf.float32, name="alpha")
        self.temperature = tf.Variable(temperature, trainable=False, dtype=tf.float32, name="temperature")
        self.distillation_losses = self._build_losses(losses)
        self._make_taps()
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self._term_trackers = {t: keras.metrics.Mean(name=t) for t in self._term_names()}

    # --- construction -------------------------------------------------------------------------------
    def _set_teachers(self, teachers, both=False):
        if both:
            raise TFCompressError("give the teachers once: the second argument or teacher=, not both")
        self._teachers_kind = "dict" if isinstance(teachers, dict) else (
            "list" if isinstance(teachers, (list, tuple)) else "one")
        if teachers is None:
            models, names = [], []
        elif isinstance(teachers, dict):
            names, models = list(teachers), list(teachers.values())
            if not all(isinstance(n, str) for n in names):
                raise TFCompressError(f"teacher names must be strings, got {names}")
        else:
            models = list(teachers) if self._teachers_kind == "list" else [teachers]
            names = list(range(len(models)))
        if self._teachers_kind != "one" and not models:
            raise TFCompressError("teachers must be a non-empty list or dict of tf_keras models")
        for n, m in zip(names, models):
            what = "teacher" if self._teachers_kind == "one" else f"teacher {n!r}"
            check_model(what, m)
            if m is self.student:
                raise TFCompressError(f"{what} is the student itself (the same model object {m.name!r}): "
                                      "distil from a separately trained teacher")
            m.trainable = False  # frozen, never updated (documented, not an error)
        self.teacher_models, self._teacher_names = models, names
        self.teacher = models[0] if models else None

    def _set_label_losses(self, head_weights):
        kinds = self.objective.values() if isinstance(self.objective, dict) else [self.objective]
        if "regression" in kinds and self.regression_loss not in REGRESSION_LOSSES:
            raise TFCompressError(f"regression_loss {self.regression_loss!r} is not one of "
                                  f"{sorted(REGRESSION_LOSSES)}")
        self._heads = None
        self.head_weights = {}
        if not isinstance(self.objective, dict):
            self._label_loss = response_losses(self.objective, self.regression_loss, self.huber_delta)[0]
            return
        heads = list(self.student.output_names)
        if sorted(self.objective) != sorted(heads):
            raise TFCompressError(f"objective heads {sorted(self.objective)} do not match the student's output "
                                  f"names {heads}: give one objective per output")
        self._heads = heads
        self.head_weights = {h: float((head_weights or {}).get(h, 1.0)) for h in heads}
        self._head_label_losses = {h: response_losses(self.objective[h], self.regression_loss,
                                                      self.huber_delta)[0] for h in heads}

    def _build_losses(self, losses):
        if losses is None:
            losses = [LogitsDistillation()]
        losses = [deserialize(loss) for loss in (losses if isinstance(losses, (list, tuple)) else [losses])]
        if not losses:
            raise TFCompressError("losses is empty: give at least one distillation loss")
        names = [loss.name for loss in losses] + [f"{h}_student_loss" for h in self._heads or ()]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TFCompressError(f"several losses log {dup}: give each a distinct name=")
        for loss in losses:
            loss.build(self)
        return losses

    def _make_taps(self):
        losses = self.distillation_losses
        lists = any(loss.lists for loss in losses)
        self._student_tap = Tap(self.student, _unique(s for loss in losses for s in loss.student_layers()),
                                "student", lists)
        specs, needed = [[] for _ in self.teacher_models], set()
        for loss in losses:
            indices = [i for i in loss.teacher_indices(self) if i is not None]
            needed.update(indices)
            if indices:
                specs[indices[0]] = _unique(specs[indices[0]] + list(loss.teacher_layers()))
        self._teacher_taps = [Tap(m, specs[i], "teacher", lists) if i in needed else None
                              for i, m in enumerate(self.teacher_models)]

    def _term_names(self):
        losses = [loss.name for loss in self.distillation_losses]
        resp = ["distillation_loss"] if any(loss.response for loss in self.distillation_losses) else []
        heads = [f"{h}_student_loss" for h in self._heads or ()]
        return _unique(["student_loss"] + resp + heads + losses)

    def teacher_index(self, key, who="a loss"):
        """The position of teacher ``key`` (a name or an index; ``None``: the only teacher). ``None`` when
        the distiller has no teacher model (offline: cached outputs)."""
        names, n = list(self._teacher_names), len(self.teacher_models)
        if n == 0:
            if key is not None:
                raise TFCompressError(f"{who} reads teacher {key!r} but the distiller has no teacher model")
            return None
        if key is None:
            if n == 1:
                return 0
            raise TFCompressError(f"{who} reads one teacher and the distiller has {n}: pass teacher= one of {names}")
        if key in names:
            return names.index(key)
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < n:
            return key
        raise TFCompressError(f"{who}: teacher {key!r} is not one of {names}")

    def objective_of(self, head=None):
        """The objective of output ``head`` (``None``: the student's only output)."""
        if not isinstance(self.objective, dict):
            return self.objective
        if head not in self.objective:
            raise TFCompressError(f"the objective is per head {sorted(self.objective)}: give the loss head=")
        return self.objective[head]

    @property
    def teachers(self):
        """The teachers as given: a list (one model: a list of one) or a ``{name: model}`` dict."""
        if self._teachers_kind == "dict":
            return dict(zip(self._teacher_names, self.teacher_models))
        return list(self.teacher_models)

    @property
    def task(self):
        """Deprecated alias of :attr:`objective`."""
        return self.objective

    # --- one batch ----------------------------------------------------------------------------------
    def teacher_outputs(self, x):
        """The teachers' outputs for batch ``x`` (inference mode): a tensor for one teacher, else a list."""
        if not self.teacher_models:
            raise TFCompressError("this distiller has no teacher: train it on cached_dataset(path) batches")
        outs = [(tap or Tap(m, (), "teacher", self._student_tap.lists))(x, training=False)[0]
                for tap, m in zip(self._teacher_taps, self.teacher_models)]
        return outs[0] if len(outs) == 1 else outs

    def student_outputs(self, x, training):
        """The student's outputs for batch ``x`` (``{head: tensor}`` for a per-head objective)."""
        out = self._student_tap(x, training=training)[0]
        return by_head(out, self._heads) if self._heads else out

    def batch_outputs(self, x, teacher_out, training):
        """The :class:`~tfcompress.distill.outputs.BatchOutputs` the losses read (teachers first, frozen)."""
        stop = lambda v: tf.nest.map_structure(tf.stop_gradient, v)  # noqa: E731
        if teacher_out is not None:
            teachers, teacher_layers = [stop(teacher_out)], [{}]
        elif not self.teacher_models:
            raise TFCompressError("this distiller has no teacher: train it on cached_dataset(path) batches")
        else:
            runs = [tap(x, training=False) if tap is not None else (None, {}) for tap in self._teacher_taps]
            teachers, teacher_layers = [stop(r[0]) for r in runs], [stop(r[1]) for r in runs]
        student, student_layers = self._student_tap(x, training=training)
        if self._heads:
            student = by_head(student, self._heads)
        return BatchOutputs(student, student_layers, teachers, teacher_layers)

    def loss_terms(self, x, y, teacher_out, training):
        """``(terms, total, student_outputs)``: per-example terms ``{name: (batch,)}``, the per-example total
        and the student's outputs (for metrics). ``teacher_out``: cached teacher outputs, else ``None``."""
        outputs = self.batch_outputs(x, teacher_out, training)
        terms = {loss.name: loss.compute(outputs, self) for loss in self.distillation_losses}
        terms.update(self._label_terms(y, outputs.student, next(iter(terms.values()))))
        response, total = [], self.alpha * terms["student_loss"]
        for loss in self.distillation_losses:
            if loss.response:
                scaled = loss.scale(self) * terms[loss.name]
                response.append(scaled if loss.weight == 1.0 else loss.weight * scaled)
            else:
                total = total + loss.weight * terms[loss.name]
        if response:
            total = total + (1.0 - self.alpha) * tf.add_n(response)
            terms.setdefault("distillation_loss", tf.add_n(response))
        return terms, total, outputs.student

    def _label_terms(self, y, student_out, like):
        if self._heads is None:
            return {"student_loss": tf.zeros_like(like) if y is None else self._label_loss(y, student_out)}
        terms, total = {}, 0.0
        for h in self._heads:
            hard = tf.zeros_like(like) if y is None else self._head_label_losses[h](y[h], student_out[h])
            terms[f"{h}_student_loss"] = hard
            total += self.head_weights[h] * hard
        terms["student_loss"] = total
        return terms

    @property
    def student_variables(self):
        """The variables the optimizer updates: the student's, then the losses' (projections, weights)."""
        extra = [v for loss in self.distillation_losses for v in loss.trainable_variables]
        return self.student.trainable_variables + extra

    def metrics_outputs(self, y, student_out):
        """``(labels, predictions)`` the compiled metrics see (a third item: their sample weights)."""
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
            raise TFCompressError("Distiller.compile takes no `loss`: set alpha/temperature or give the "
                                  "Distiller losses=[...] (tfcompress.distill loss objects) instead")
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
        terms, per_example, student_out = self.loss_terms(x, y, teacher_out, training)
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
            self.compiled_metrics.update_state(*self.metrics_outputs(y, student_out))
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
            >>> from tfcompress import keras
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

    def _base_config(self):
        objective = dict(self.objective) if isinstance(self.objective, dict) else self.objective
        config = {"alpha": float(self.alpha.numpy()), "temperature": float(self.temperature.numpy()),
                  "objective": objective, "regression_loss": self.regression_loss, "huber_delta": self.huber_delta,
                  "check_finite": self.check_finite, "name": self.name}
        if self.head_weights:
            config["head_weights"] = dict(self.head_weights)
        return config

    def get_config(self):
        """The distiller's settings and its serialized losses: ``Distiller(student, teachers, **config)``
        rebuilds it."""
        return {**self._base_config(), "losses": [serialize(loss) for loss in self.distillation_losses]}
