"""Feature (hint) and relational distillation: match what the networks compute inside, not just outputs.

* :class:`FeatureDistillation` — FitNets (Romero et al., 2015): each named student layer's output is
  matched (MSE) to a named teacher layer's output, through a learned ``Dense`` projection when widths differ
  (for Transformer students: hidden states by layer name, attention maps as ``"mha[1]"`` — the second
  output of a ``MultiHeadAttention`` called with ``return_attention_scores=True``; with different head
  counts the head-averaged maps are matched).
* :class:`RelationalDistillation` — the student's embeddings keep the teacher's *relations*: either the
  batch's pairwise cosine-similarity matrix (similarity-preserving KD, Tung & Mori, 2019) or an InfoNCE
  loss (each student embedding must pick its own teacher embedding out of the batch; CRD-style).
* :class:`FeatureDistiller`, :class:`RelationalDistiller` — conveniences: a
  :class:`~tfcompress.distill.Distiller` with soft targets plus one of these,
  ``loss = alpha·label + (1−alpha)·T²·soft + beta·feature``.

Projections train with the student and are not part of ``distiller.student``. Under ``tf.distribute``
the relational matrices are built per replica (each replica's share of the batch).

Example:
    >>> from tfcompress import keras
    >>> def mlp(w):
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(w, name="h"), keras.layers.Dense(1)])
    >>> d = FeatureDistiller(mlp(4), mlp(16), pairs={"h": "h"}, beta=1.0)
    >>> d.compile()
    >>> sorted(d.fit(np.ones((8, 4)), np.ones((8, 1)), verbose=0).history)
    ['distillation_loss', 'feature_loss', 'loss', 'student_loss']
"""
import numpy as np

from .._keras import keras, tf
from ..errors import TFCompressError
from .distillation_losses import DistillationLoss, LogitsDistillation
from .distiller import Distiller
from .outputs import check_model, layer_output, width


def _is_attention_pair(s, t):
    """Attention maps ``[batch, heads, query, key]`` with the same sequence lengths (heads may differ)."""
    return len(s.shape) == 4 and len(t.shape) == 4 and tuple(s.shape[2:]) == tuple(t.shape[2:])


def _same_positions(s, t):
    """Both maps have positions (rank >= 3) and the same ones: only the channel (last) axis differs."""
    return len(s.shape) >= 3 and tuple(s.shape[1:-1]) == tuple(t.shape[1:-1])


def _flat(x):
    return tf.reshape(x, [tf.shape(x)[0], -1])


class FeatureDistillation(DistillationLoss):
    """Hints (FitNets, Romero et al., 2015): the output of ``student_layer`` matched (MSE) to the output of
    ``teacher_layer`` of one teacher; ``pairs={student_layer: teacher_layer}`` for several (averaged).

    ``projection="auto"``: a learned ``Dense`` (no activation, trained with the student, not part of it)
    maps the student's width to the teacher's when they differ — channel-wise (a 1x1 convolution) when both
    are maps or sequences over the same positions, else on the flattened outputs; attention maps
    (``"mha[1]"``) with different head counts are compared head-averaged. ``projection=None``: widths must
    match.

    Example:
        >>> FeatureDistillation(pairs={"h1": "t1", "h2": "t2"}).student_layers()
        ['h1', 'h2']
    """

    default_name = "feature_loss"

    def __init__(self, student_layer=None, teacher_layer=None, *, pairs=None, projection="auto", weight=1.0,
                 teacher=None, name=None):
        if pairs is None and student_layer is not None:
            pairs = {student_layer: student_layer if teacher_layer is None else teacher_layer}
        if not isinstance(pairs, dict) or not pairs:
            raise TFCompressError("pairs must be a non-empty dict {student_layer_name: teacher_layer_name} "
                                  "(or give student_layer= and teacher_layer=)")
        if projection not in ("auto", None):
            raise TFCompressError(f"projection must be 'auto' or None, got {projection!r}")
        super().__init__(weight=weight, teacher=teacher, name=name)
        self.pairs, self.projection = dict(pairs), projection

    def student_layers(self):
        return list(self.pairs)

    def teacher_layers(self):
        return list(self.pairs.values())

    def build(self, distiller):
        self._index = self.teacher_indices(distiller)[0]
        if self._index is None:
            raise TFCompressError(f"{type(self).__name__} matches a teacher's layers: it needs a teacher model, "
                                  "not cached teacher outputs")
        student = check_model("student", distiller.student, functional=True)
        teacher = check_model("teacher", distiller.teacher_models[self._index], functional=True)
        self.projections, self._attention, self._channelwise = [], [], []
        for s_spec, t_spec in self.pairs.items():
            s_out, t_out = layer_output(student, s_spec, "student"), layer_output(teacher, t_spec, "teacher")
            attention = _is_attention_pair(s_out, t_out) and s_out.shape[1] != t_out.shape[1]
            self._attention.append(attention)  # different head counts: compare head-averaged maps
            # feature maps / sequences of the same positions: project channels only (a 1x1 convolution,
            # Cs x Ct weights) instead of the flattened map (H·W·Cs x H·W·Ct weights)
            channelwise = not attention and _same_positions(s_out, t_out)
            self._channelwise.append(channelwise)
            if attention:
                widths = int(np.prod(s_out.shape[2:])), int(np.prod(t_out.shape[2:]))
            elif channelwise:
                widths = int(s_out.shape[-1]), int(t_out.shape[-1])
            else:
                widths = width(s_out), width(t_out)
            self.projections.append(None if attention else self.make_projection(
                s_spec.replace("[", "_").replace("]", ""), *widths))

    def make_projection(self, name, student_width, teacher_width):
        """The learned map from a student layer to the teacher's width (``None``: identity)."""
        if student_width == teacher_width:
            return None
        if self.projection is None:
            raise TFCompressError(f"student layer {name!r} is {student_width} wide, the teacher's {teacher_width}: "
                                  "use projection='auto' to learn a map")
        proj = keras.layers.Dense(teacher_width, use_bias=False, name=f"project_{name}")
        proj.build((None, student_width))
        return proj

    @property
    def trainable_variables(self):
        return [v for p in self.projections if p is not None for v in p.trainable_variables]

    def compute(self, outputs, distiller):
        s_layers, t_layers = outputs.student_layers, outputs.teacher_layers[self._index]
        s_feats, t_feats = [], []
        for (s_spec, t_spec), attention, channelwise, proj in zip(self.pairs.items(), self._attention,
                                                                  self._channelwise, self.projections):
            f_s, f_t = s_layers[s_spec], t_layers[t_spec]
            if attention:
                f_t, f_s = tf.reduce_mean(f_t, axis=1), tf.reduce_mean(f_s, axis=1)
            if proj is not None and channelwise:
                f_s = proj(f_s)
            f_t, f_s = _flat(f_t), _flat(f_s)
            if proj is not None and not channelwise:
                f_s = proj(f_s)
            s_feats.append(f_s)
            t_feats.append(f_t)
        return self.match(s_feats, t_feats)

    def match(self, student_feats, teacher_feats):
        """Per-example loss of the (projected, flattened) features: MSE per pair, averaged over pairs."""
        per_pair = [tf.reduce_mean(tf.square(s - t), axis=-1) for s, t in zip(student_feats, teacher_feats)]
        return tf.add_n(per_pair) / float(len(per_pair))

    def get_config(self):
        return {**super().get_config(), "pairs": dict(self.pairs), "projection": self.projection}


class RelationalDistillation(FeatureDistillation):
    """The student's embeddings keep the teacher's *relations* on one layer pair: ``method="similarity"``
    (the batch's pairwise cosine-similarity matrix, Tung & Mori 2019; widths may differ, no projection) or
    ``"infonce"`` (a learned projection, then cross-entropy of ``student_i · teacher_j / tau`` picking
    ``j = i``, CRD-style). Under ``tf.distribute`` the matrices are per replica.

    Example:
        >>> RelationalDistillation("emb", "emb", method="infonce", tau=0.2).get_config()["method"]
        'infonce'
    """

    METHODS = ("similarity", "infonce")

    def __init__(self, student_layer, teacher_layer, *, method="similarity", tau=0.1, weight=1.0, teacher=None,
                 name=None):
        if method not in self.METHODS:
            raise TFCompressError(f"method {method!r} is not one of {self.METHODS}")
        super().__init__(student_layer, teacher_layer, weight=weight, teacher=teacher, name=name)
        self.method, self.tau = method, float(tau)

    def make_projection(self, name, student_width, teacher_width):
        if self.method == "similarity":
            return None
        return super().make_projection(name, student_width, teacher_width)

    def match(self, student_feats, teacher_feats):
        s = tf.math.l2_normalize(student_feats[0], axis=-1)
        t = tf.math.l2_normalize(teacher_feats[0], axis=-1)
        if self.method == "similarity":
            sim_s = tf.matmul(s, s, transpose_b=True)
            sim_t = tf.matmul(t, t, transpose_b=True)
            return tf.reduce_mean(tf.square(sim_s - sim_t), axis=-1)
        logits = tf.matmul(s, t, transpose_b=True) / self.tau
        labels = tf.range(tf.shape(logits)[0])
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)

    def get_config(self):
        config = DistillationLoss.get_config(self)
        (s, t), = self.pairs.items()
        return {**config, "student_layer": s, "teacher_layer": t, "method": self.method, "tau": self.tau}


class FeatureDistiller(Distiller):
    """Soft targets plus hint matching of intermediate layers, ``pairs={student_layer: teacher_layer}``:
    ``Distiller(student, teacher, losses=[LogitsDistillation(), FeatureDistillation(pairs=pairs,
    weight=beta)])``. Other keyword arguments go to :class:`~tfcompress.distill.Distiller`.
    """

    def __init__(self, student, teacher, *, pairs, beta=1.0, **kwargs):
        hint = FeatureDistillation(pairs=pairs, weight=beta)
        super().__init__(student, teacher, losses=[LogitsDistillation(), hint], **kwargs)
        self.pairs, self.beta = dict(pairs), float(beta)

    @property
    def projections(self):
        """The learned projections of the pairs (``None`` where none is needed)."""
        return self.distillation_losses[1].projections

    def get_config(self):
        return {**self._base_config(), "pairs": dict(self.pairs), "beta": self.beta}


class RelationalDistiller(Distiller):
    """Soft targets plus relational distillation on one embedding layer pair (see
    :class:`RelationalDistillation`): ``method="similarity"`` or ``"infonce"`` (``tau``), weight ``beta``.

    Example:
        >>> from tfcompress import keras
        >>> def mlp(w):
        ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(w, name="emb"), keras.layers.Dense(1)])
        >>> d = RelationalDistiller(mlp(4), mlp(16), student_layer="emb", teacher_layer="emb", method="infonce")
        >>> d.compile()
        >>> "feature_loss" in d.fit(np.ones((8, 4)), np.ones((8, 1)), verbose=0).history
        True
    """

    METHODS = RelationalDistillation.METHODS

    def __init__(self, student, teacher, *, student_layer, teacher_layer, method="similarity", tau=0.1, beta=1.0,
                 **kwargs):
        hint = RelationalDistillation(student_layer, teacher_layer, method=method, tau=tau, weight=beta)
        super().__init__(student, teacher, losses=[LogitsDistillation(), hint], **kwargs)
        self.method, self.tau, self.beta = method, float(tau), float(beta)
        self.pairs = {student_layer: teacher_layer}

    @property
    def projections(self):
        """The learned projection (``[None]`` for ``"similarity"``)."""
        return self.distillation_losses[1].projections

    def get_config(self):
        (s, t), = self.pairs.items()
        return {**self._base_config(), "student_layer": s, "teacher_layer": t, "method": self.method,
                "tau": self.tau, "beta": self.beta}
