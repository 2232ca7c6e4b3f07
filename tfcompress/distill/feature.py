"""Feature (hint) and relational distillation: match what the networks compute inside, not just outputs.

* :class:`FeatureDistiller` — FitNets (Romero et al., 2015): each named student layer's output is matched
  (MSE) to a named teacher layer's output, through a learned ``Dense`` projection when widths differ
  (for Transformer students: hidden states by layer name, attention maps as ``"mha[1]"`` — the second
  output of a ``MultiHeadAttention`` called with ``return_attention_scores=True``; with different head
  counts the head-averaged maps are matched).
* :class:`RelationalDistiller` — the student's embeddings keep the teacher's *relations*: either the
  batch's pairwise cosine-similarity matrix (similarity-preserving KD, Tung & Mori, 2019) or an InfoNCE
  loss (each student embedding must pick its own teacher embedding out of the batch; CRD-style).

Both add their term to the response loss: ``loss = alpha·label + (1−alpha)·T²·soft + beta·feature``.
Projections train with the student and are not part of ``distiller.student``. Under ``tf.distribute``
the relational matrices are built per replica (each replica's share of the batch).

Example:
    >>> from tfcompress._keras import keras
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
from .distiller import Distiller, check_model


def find_layer(model, name, role):
    """``model.get_layer(name)`` with an error that lists the candidate layer names."""
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise TFCompressError(f"the {role} {model.name!r} has no layer {name!r}; its layers are {names}")
    return model.get_layer(name)


def layer_output(model, spec, role):
    """The symbolic output named by ``spec``: ``"layer"`` or ``"layer[i]"`` (the i-th output of a layer with
    several, e.g. ``MultiHeadAttention(..., return_attention_scores=True)`` -> ``"mha[1]"`` attention maps)."""
    name, index = spec, None
    if spec.endswith("]") and "[" in spec:
        name, _, idx = spec[:-1].rpartition("[")
        try:
            index = int(idx)
        except ValueError:
            raise TFCompressError(f"bad layer output {spec!r}: use 'layer' or 'layer[i]'") from None
    out = find_layer(model, name, role).output
    if index is None:
        if isinstance(out, (list, tuple)):
            raise TFCompressError(f"layer {name!r} of the {role} has {len(out)} outputs: name one as '{name}[i]'")
        return out
    if not isinstance(out, (list, tuple)) or not 0 <= index < len(out):
        n = len(out) if isinstance(out, (list, tuple)) else 1
        raise TFCompressError(f"layer {name!r} of the {role} has {n} output(s), no output [{index}]")
    return out[index]


def _tap(model, layer_names, role):
    check_model(role, model, functional=True)
    outs = [layer_output(model, n, role) for n in layer_names]
    return keras.Model(model.input, [model.output] + outs, name=f"{model.name}_tap")


def _is_attention_pair(s, t):
    """Attention maps ``[batch, heads, query, key]`` with the same sequence lengths (heads may differ)."""
    return len(s.shape) == 4 and len(t.shape) == 4 and tuple(s.shape[2:]) == tuple(t.shape[2:])


def _width(tensor):
    return int(np.prod([d for d in tensor.shape[1:]]))


def _same_positions(s, t):
    """Both maps have positions (rank >= 3) and the same ones: only the channel (last) axis differs."""
    return len(s.shape) >= 3 and tuple(s.shape[1:-1]) == tuple(t.shape[1:-1])


def _flat(x):
    return tf.reshape(x, [tf.shape(x)[0], -1])


class FeatureDistiller(Distiller):
    """Response distillation plus hint matching of intermediate layers, ``pairs={student_layer: teacher_layer}``.

    ``beta`` weighs the feature term; a ``Dense`` projection (no activation) maps a student layer to the
    teacher layer's width when they differ: channel-wise (a 1x1 convolution) when both are maps or sequences
    over the same positions, otherwise on the flattened outputs. Other keyword arguments go to
    :class:`Distiller`.
    """

    extra_terms = ("feature_loss",)

    def __init__(self, student, teacher, *, pairs, beta=1.0, **kwargs):
        if not isinstance(pairs, dict) or not pairs:
            raise TFCompressError("pairs must be a non-empty dict {student_layer_name: teacher_layer_name}")
        check_model("student", student, functional=True)
        check_model("teacher", teacher, functional=True)
        super().__init__(student, teacher, **kwargs)
        self.pairs = dict(pairs)
        self.beta = float(beta)
        self._student_tap = _tap(student, list(self.pairs), "student")
        self._teacher_tap = _tap(teacher, list(self.pairs.values()), "teacher")
        self.projections = []
        self._attention = []
        self._channelwise = []
        for s_out, t_out, s_name in zip(self._student_tap.outputs[1:], self._teacher_tap.outputs[1:], self.pairs):
            attention = _is_attention_pair(s_out, t_out) and s_out.shape[1] != t_out.shape[1]
            self._attention.append(attention)  # different head counts: compare head-averaged maps
            # feature maps / sequences of the same positions: project channels only (a 1x1 convolution,
            # Cs x Ct weights) instead of the flattened map (H·W·Cs x H·W·Ct weights)
            channelwise = not attention and _same_positions(s_out, t_out)
            self._channelwise.append(channelwise)
            if attention:
                width_s, width_t = int(np.prod(s_out.shape[2:])), int(np.prod(t_out.shape[2:]))
            elif channelwise:
                width_s, width_t = int(s_out.shape[-1]), int(t_out.shape[-1])
            else:
                width_s, width_t = _width(s_out), _width(t_out)
            self.projections.append(None if attention else self.make_projection(
                s_name.replace("[", "_").replace("]", ""), width_s, width_t))

    def make_projection(self, name, student_width, teacher_width):
        """The learned map from a student layer (flattened) to the teacher's width (``None``: identity)."""
        if student_width == teacher_width:
            return None
        proj = keras.layers.Dense(teacher_width, use_bias=False, name=f"project_{name}")
        proj.build((None, student_width))
        return proj

    def term_weight(self, name):
        return self.beta

    @property
    def student_variables(self):
        extra = [v for p in self.projections if p is not None for v in p.trainable_variables]
        return self.student.trainable_variables + extra

    def feature_loss(self, student_feats, teacher_feats):
        """Per-example loss between the (projected, flattened) student and teacher features: MSE per pair,
        averaged over pairs."""
        per_pair = [tf.reduce_mean(tf.square(s - t), axis=-1) for s, t in zip(student_feats, teacher_feats)]
        return tf.add_n(per_pair) / float(len(per_pair))

    def loss_terms(self, x, y, teacher_out, training):
        t_all = tf.nest.map_structure(tf.stop_gradient, self._teacher_tap(x, training=False))
        s_all = self._student_tap(x, training=training)
        teacher_out, student_out = t_all[0], s_all[0]
        t_feats, s_feats = [], []
        for f_t, f_s, attention, channelwise, proj in zip(t_all[1:], s_all[1:], self._attention, self._channelwise,
                                                         self.projections):
            if attention:
                f_t, f_s = tf.reduce_mean(f_t, axis=1), tf.reduce_mean(f_s, axis=1)
            if proj is not None and channelwise:
                f_s = proj(f_s)
            f_t, f_s = _flat(f_t), _flat(f_s)
            if proj is not None and not channelwise:
                f_s = proj(f_s)
            t_feats.append(f_t)
            s_feats.append(f_s)
        soft = self.distillation_loss(teacher_out, student_out)
        hard = tf.zeros_like(soft) if y is None else self.student_loss(y, student_out)
        return {"student_loss": hard, "distillation_loss": soft,
                "feature_loss": self.feature_loss(s_feats, t_feats)}, student_out

    def get_config(self):
        return {**super().get_config(), "pairs": self.pairs, "beta": self.beta}


class RelationalDistiller(FeatureDistiller):
    """Relational distillation on one embedding layer pair: ``method="similarity"`` (match the batch's
    pairwise cosine-similarity matrix; widths may differ, no projection) or ``"infonce"`` (a learned
    projection, then cross-entropy of ``student_i · teacher_j / tau`` picking ``j = i``).

    Example:
        >>> from tfcompress._keras import keras
        >>> def mlp(w):
        ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(w, name="emb"), keras.layers.Dense(1)])
        >>> d = RelationalDistiller(mlp(4), mlp(16), student_layer="emb", teacher_layer="emb", method="infonce")
        >>> d.compile()
        >>> "feature_loss" in d.fit(np.ones((8, 4)), np.ones((8, 1)), verbose=0).history
        True
    """

    METHODS = ("similarity", "infonce")

    def __init__(self, student, teacher, *, student_layer, teacher_layer, method="similarity", tau=0.1, beta=1.0,
                 **kwargs):
        if method not in self.METHODS:
            raise TFCompressError(f"method {method!r} is not one of {self.METHODS}")
        self.method = method
        self.tau = float(tau)
        super().__init__(student, teacher, pairs={student_layer: teacher_layer}, beta=beta, **kwargs)

    def make_projection(self, name, student_width, teacher_width):
        if self.method == "similarity":
            return None
        return super().make_projection(name, student_width, teacher_width)

    def feature_loss(self, student_feats, teacher_feats):
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
        config = super().get_config()
        (s, t), = config.pop("pairs").items()
        return {**config, "student_layer": s, "teacher_layer": t, "method": self.method, "tau": self.tau}
