"""Distillation loss objects: each term of a :class:`~tfcompress.distill.Distiller`'s objective as one object.

A loss knows which outputs it reads (the logits, a named layer of the student or of one teacher), checks
them when the distiller is built (a one-line :class:`~tfcompress.errors.TFCompressError`), builds what it
needs (projections, learned teacher weights) and serializes itself (``get_config`` / ``from_config``).

* :class:`LogitsDistillation` — soft targets: binary (sigmoid), multiclass (softmax KL) or regression
  (MSE / Huber); with several teachers, their weighted average soft target.
* :class:`FeatureDistillation` — hints (FitNets): named student layers matched to teacher layers (MSE),
  through a learned projection when widths differ.
* :class:`RelationalDistillation` — the batch's similarity matrix, or InfoNCE, of one embedding layer pair.
* :class:`RankingDistillation` — listwise, pairwise or top-K on list-shaped batches.

*Response* losses (logits, ranking) share the distiller's ``(1 − alpha)`` weight and their ``T²`` factor;
the others (hints, relations) add ``weight · term``. Each term is logged under its ``name``.

Example:
    >>> loss = LogitsDistillation(temperature=2.0, weight=0.5)
    >>> config = serialize(loss)
    >>> config["class_name"], deserialize(config).get_config() == loss.get_config()
    ('LogitsDistillation', True)
"""
import numpy as np

from .._keras import tf
from ..errors import TFCompressError
from .losses import (REGRESSION_LOSSES, RESPONSE_LOSSES, averaged_soft_target_loss, listwise_loss, pairwise_loss,
                     response_losses, topk_loss)
from .outputs import by_head, check_outputs

_REGISTRY = {}


class DistillationLoss(tf.Module):
    """Base of the loss objects: ``weight``, the ``teacher`` it reads (an index or name; ``None``: the only
    one) and the ``name`` it logs. Subclasses set :meth:`compute` (a per-example ``(batch,)`` tensor from a
    :class:`~tfcompress.distill.outputs.BatchOutputs`) and, as needed, :meth:`student_layers`,
    :meth:`teacher_layers`, :meth:`build`, :meth:`scale` and ``trainable_variables``."""

    default_name = "distillation_loss"
    response = False  # True: weighted (1 - alpha) and scaled, like the soft-target term
    lists = False  # True: the models score list-shaped batches

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self, *, weight=1.0, teacher=None, name=None):
        name = self.default_name if name is None else name
        if not isinstance(name, str) or not name.isidentifier() or name in ("loss", "student_loss"):
            raise TFCompressError(f"loss name {name!r} must be an identifier other than 'loss' / 'student_loss'")
        super().__init__(name=name)
        weight = float(weight)
        if not np.isfinite(weight) or weight < 0:
            raise TFCompressError(f"{type(self).__name__} weight must be a finite number >= 0, got {weight}")
        self.weight, self.teacher = weight, teacher

    def student_layers(self):
        """Layer outputs of the student this loss reads (``"layer"`` or ``"layer[i]"``)."""
        return ()

    def teacher_layers(self):
        """Layer outputs of its teacher this loss reads."""
        return ()

    def teacher_indices(self, distiller):
        """Positions of the teachers it reads (``[None]``: the cached outputs of an offline distiller)."""
        return [distiller.teacher_index(self.teacher, type(self).__name__)]

    def build(self, distiller):
        """Check the models and build what the loss needs; called once by the distiller."""

    def scale(self, distiller):
        """The factor on a response term (``T²`` for tempered soft targets)."""
        return 1.0

    @property
    def trainable_variables(self):
        """Variables trained with the student (projections, teacher weights)."""
        return []

    def compute(self, outputs, distiller):
        """The per-example loss, shape ``(batch,)``."""
        raise NotImplementedError(f"{type(self).__name__} must define compute(outputs, distiller)")

    def get_config(self):
        return {"weight": self.weight, "teacher": self.teacher, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def serialize(loss):
    """``{"class_name", "config"}`` of a loss object."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config):
    """A loss object from :func:`serialize`'s output (a loss object is returned as it is)."""
    if isinstance(config, DistillationLoss):
        return config
    if not isinstance(config, dict) or config.get("class_name") not in _REGISTRY:
        name = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise TFCompressError(f"{name!r} is not a distillation loss; known: {sorted(_REGISTRY)}")
    return _REGISTRY[config["class_name"]].from_config(config["config"])


def _temperature(loss, distiller):
    return distiller.temperature if loss.temperature is None else loss.temperature


def _check_temperature(temperature):
    if temperature is not None and not float(temperature) > 0:
        raise TFCompressError(f"temperature must be > 0, got {temperature}")
    return None if temperature is None else float(temperature)


class LogitsDistillation(DistillationLoss):
    """Soft targets: the student's logits (or outputs, for regression) learn the teacher's.

    ``temperature``: ``None`` uses the distiller's (schedulable) one; ``teacher``: ``None`` reads every
    teacher, a name/index or a list of them; several teachers give their ``teacher_weights``-averaged soft
    target (a list, normalised; ``"learned"``: softmax of trainable logits). ``objective``, ``regression_loss``
    and ``huber_delta`` default to the distiller's; ``head`` picks one output of a multi-head student.

    Example:
        >>> LogitsDistillation(temperature=2.0, teacher=[0, 1], teacher_weights=[3, 1]).get_config()["teacher"]
        [0, 1]
    """

    response = True

    def __init__(self, *, temperature=None, weight=1.0, teacher=None, teacher_weights=None, objective=None,
                 regression_loss=None, huber_delta=None, head=None, name=None):
        super().__init__(weight=weight, teacher=teacher, name=name)
        self.temperature = _check_temperature(temperature)
        self.teacher_weights, self.objective, self.head = teacher_weights, objective, head
        self.regression_loss, self.huber_delta = regression_loss, huber_delta

    def teacher_indices(self, distiller):
        if self.teacher is None:
            return list(range(len(distiller.teacher_models))) or [None]
        keys = self.teacher if isinstance(self.teacher, (list, tuple)) else [self.teacher]
        return [distiller.teacher_index(k, type(self).__name__) for k in keys]

    def build(self, distiller):
        objective = self.objective or distiller.objective_of(self.head)
        if objective not in RESPONSE_LOSSES:
            raise TFCompressError(f"objective {objective!r} is not one of {sorted(RESPONSE_LOSSES)}")
        regression_loss = self.regression_loss or distiller.regression_loss
        if objective == "regression" and regression_loss not in REGRESSION_LOSSES:
            raise TFCompressError(f"regression_loss {regression_loss!r} is not one of {sorted(REGRESSION_LOSSES)}")
        delta = distiller.huber_delta if self.huber_delta is None else self.huber_delta
        self._objective = objective
        self._soft = response_losses(objective, regression_loss, delta)[1]
        self._indices = self.teacher_indices(distiller)
        if self.head is None:
            for i in self._indices:
                if i is not None:
                    check_outputs(distiller.teacher_models[i], distiller.student, objective)
        self._build_weights(len(self._indices))

    def _build_weights(self, n):
        weights = self.teacher_weights
        self.learned = isinstance(weights, str)
        if self.learned:
            if weights != "learned":
                raise TFCompressError(f"teacher_weights must be a list of {n} numbers or 'learned', got {weights!r}")
            self.weight_logits = tf.Variable(tf.zeros([n]), trainable=True, name="teacher_weight_logits")
            return
        w = np.ones(n) if weights is None else np.asarray(weights, dtype="float64")
        if w.shape != (n,) or (w < 0).any() or w.sum() <= 0:
            raise TFCompressError(f"teacher_weights must be {n} non-negative numbers with a positive sum, "
                                  f"got {weights!r}")
        self.fixed_weights = tf.constant(w / w.sum(), tf.float32)

    def mixing_weights(self):
        """The current weights of the teachers (sum 1)."""
        return tf.nn.softmax(self.weight_logits) if self.learned else self.fixed_weights

    @property
    def trainable_variables(self):
        return [self.weight_logits] if self.learned else []

    def _teacher_output(self, outputs, i, distiller):
        out = outputs.teachers[0 if i is None else i]
        if self.head is None or not isinstance(out, (dict, list, tuple)):
            return out
        by = by_head(out, [] if i is None else distiller.teacher_models[i].output_names)
        if self.head not in by:
            raise TFCompressError(f"the teacher of head {self.head!r} has outputs {sorted(by)}, "
                                  f"none named {self.head!r}")
        return by[self.head]

    def compute(self, outputs, distiller):
        temp = _temperature(self, distiller)
        s = outputs.student if self.head is None else outputs.student[self.head]
        ts = [self._teacher_output(outputs, i, distiller) for i in self._indices]
        if len(ts) == 1 and not self.learned:
            return self._soft(ts[0], s, temp)
        return averaged_soft_target_loss(tf.stack(ts, axis=0), s, self.mixing_weights(), temp, self._objective,
                                         self._soft)

    def scale(self, distiller):
        return 1.0 if self._objective == "regression" else tf.square(_temperature(self, distiller))

    def get_config(self):
        weights = self.teacher_weights
        teacher = list(self.teacher) if isinstance(self.teacher, (list, tuple)) else self.teacher
        return {**super().get_config(), "teacher": teacher, "temperature": self.temperature,
                "teacher_weights": weights if weights is None or isinstance(weights, str) else
                [float(w) for w in weights], "objective": self.objective, "regression_loss": self.regression_loss,
                "huber_delta": self.huber_delta, "head": self.head}


class RankingDistillation(DistillationLoss):
    """The student learns the teacher's *ordering* of each list's candidates (list-shaped batches, see
    :func:`~tfcompress.distill.make_list_batches`): ``"listwise"`` (ListNet, KL·T²), ``"pairwise"``
    (RankNet on teacher-ordered pairs, ``margin``) or ``"topk"`` (the teacher's top-``top_k`` as extra
    positives, weighted ``exp(-rank/lam)``). Teacher and student stay pointwise models (one logit per row).

    Example:
        >>> RankingDistillation("topk", top_k=5).get_config()["top_k"]
        5
    """

    METHODS = ("listwise", "pairwise", "topk")
    response = True
    lists = True

    def __init__(self, method="listwise", *, top_k=3, lam=1.0, margin=0.0, temperature=None, weight=1.0,
                 teacher=None, name=None):
        if method not in self.METHODS:
            raise TFCompressError(f"method {method!r} is not one of {self.METHODS}")
        if int(top_k) < 1:
            raise TFCompressError(f"top_k must be >= 1, got {top_k}")
        super().__init__(weight=weight, teacher=teacher, name=name)
        self.method, self.top_k, self.lam, self.margin = method, int(top_k), float(lam), float(margin)
        self.temperature = _check_temperature(temperature)

    def build(self, distiller):
        self._index = self.teacher_indices(distiller)[0]
        if self._index is not None:
            check_outputs(distiller.teacher_models[self._index], distiller.student, "binary")
        shape = distiller.student.output_shape
        if tuple(shape[1:]) != (1,):
            raise TFCompressError(f"ranking distillation needs pointwise models with one logit per row, the "
                                  f"student's output shape is {shape}")

    def compute(self, outputs, distiller):
        t, s = outputs.teachers[self._index or 0], outputs.student
        if self.method == "listwise":
            return listwise_loss(t, s, _temperature(self, distiller))
        if self.method == "pairwise":
            return pairwise_loss(t, s, self.margin)
        n = t.shape[1]
        k = self.top_k if n is None else min(self.top_k, int(n))  # lists shorter than k: all are positives
        return topk_loss(t, s, k=k, lam=self.lam)

    def scale(self, distiller):
        return tf.square(_temperature(self, distiller)) if self.method == "listwise" else 1.0

    def get_config(self):
        return {**super().get_config(), "method": self.method, "top_k": self.top_k, "lam": self.lam,
                "margin": self.margin, "temperature": self.temperature}
