"""On-device candidate retrieval: the two-tower model (teacher and student) and its distillation.

A query tower (the user's and context features of a :class:`~tfcompress.data.FeatureSpec`, groups
``"user"`` and ``"context"``) and a candidate tower (group ``"item"``) map to L2-normalized vectors; the
score is their dot product over a temperature. :class:`TwoTower` trains with the in-batch sampled softmax
of ``tfrs.tasks.Retrieval`` (the other positives of the batch, plus ``num_negatives`` uniformly sampled
catalogue items, are the negatives; accidental hits are removed). With ``teacher=`` it is distilled: the
teacher's scores over the same sampled candidates are soft targets (softmax KL at ``distill_temperature``,
mixed with the hard loss by ``alpha``).

Unknown users (new installs, empty histories): during training a fraction ``oov_rate`` of the user ids
is replaced by 0, so row 0 learns an "average user" given the context; at serving time ids outside the
vocabulary are mapped to 0 by the OOV-safe embeddings (:mod:`tfcompress.models.embeddings`), so a new
user gets context-aware popular items, never a crash.

The rest of retrieval lives beside it: the towers' data, catalogue and :func:`fit_retrieval`
(:mod:`tfcompress.models.retrieval_data`), offline scoring and sampled evaluation
(:mod:`tfcompress.models.retrieval_eval`), the brute-force top-K layer (:mod:`tfcompress.models.topk`), and
the top-K TFLite file (:func:`tfcompress.export.export_retrieval_tflite`). Their names stay importable from
this module too.

Example:
    >>> from tfcompress.data import make_ecommerce
    >>> data = make_ecommerce(events=2000, seed=0)
    >>> model = retrieval_student(data.spec)
    >>> sorted(model.query_model.input_names)[:2]
    ['age_bucket', 'device']
"""
import importlib
import warnings

from .._keras import keras, tf
from ..errors import TFCompressError
from .ctr import embedding_width
from .embeddings import make_embedding, quantize_tables
from .retrieval_data import (CANDIDATE_GROUPS, QUERY_GROUPS, fit_retrieval, id_frequencies,  # noqa: F401
                             item_catalog, positives, retrieval_dataset, tower_features)
from .retrieval_eval import (candidate_embeddings, evaluate_sampled, popularity_scores,  # noqa: F401
                             query_embeddings, sampled_candidates, two_tower_scores)
from .topk import DEFAULT_MAX_ITEMS, BruteForceTopK, keras_topk, retrieval_topk_model  # noqa: F401

#: names that moved up to :mod:`tfcompress.export` (a model module cannot import export): deprecated here
MOVED_TO_EXPORT = ("export_retrieval_tflite", "requantize_per_tensor")


def moved_to_export(name, where):
    """The export function ``name`` for a deprecated ``where.name`` access, with a DeprecationWarning
    (imported by name at call time: the models floor never imports export).

    Example:
        >>> # tfcompress.models.export_retrieval_tflite  -> DeprecationWarning, tfcompress.export's function
    """
    warnings.warn(f"{where}.{name} moved to tfcompress.export.{name}", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module("tfcompress.export"), name)


def __getattr__(name):
    if name in MOVED_TO_EXPORT:
        return moved_to_export(name, __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _tower(features, *, embedding_dim, hidden, output_dim, embedding, frequencies, compress_min_vocab, normalize,
           name):
    inputs, parts = {}, []
    for f in features:
        inputs[f.name] = keras.Input(shape=(), dtype=f.dtype, name=f.name)
        if f.kind == "categorical":
            kind = embedding if f.vocab_size >= compress_min_vocab else "full"
            layer = make_embedding(kind, f.vocab_size, embedding_width(f.vocab_size, embedding_dim),
                                   name=f"{name}_emb_{f.name}", frequencies=(frequencies or {}).get(f.name))
            parts.append(layer(inputs[f.name]))
        else:
            parts.append(keras.layers.Reshape((1,), name=f"{name}_num_{f.name}")(inputs[f.name]))
    x = keras.layers.Concatenate(name=f"{name}_features")(parts) if len(parts) > 1 else parts[0]
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(int(units), activation="relu", name=f"{name}_dense_{i}")(x)
    x = keras.layers.Dense(int(output_dim), name=f"{name}_out")(x)
    if normalize:
        x = keras.layers.UnitNormalization(name=f"{name}_l2")(x)
    return keras.Model(inputs, x, name=name)


def two_tower(spec, *, embedding_dim, hidden, output_dim, embedding="full", frequencies=None,
              compress_min_vocab=1000, normalize=True, name="two_tower", **kwargs):
    """A :class:`TwoTower` built from ``spec``; ``embedding`` picks the table kind of every categorical
    feature with at least ``compress_min_vocab`` ids (``"full"``, ``"qr"``, ``"hash"``, ``"mixed"``,
    ``"lowrank"``; ``"mixed"`` needs ``frequencies={feature: counts per id}``, see :func:`id_frequencies`).
    Other keyword arguments go to :class:`TwoTower`.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> m = two_tower(make_ecommerce(events=1000).spec, embedding_dim=8, hidden=(16,), output_dim=4)
        >>> m.query_model.output_shape, m.candidate_model.output_shape
        ((None, 4), (None, 4))
    """
    if int(output_dim) < 1 or int(embedding_dim) < 1:
        raise TFCompressError(f"bad tower size: embedding_dim={embedding_dim}, output_dim={output_dim}")
    common = dict(embedding_dim=embedding_dim, hidden=hidden, output_dim=output_dim, embedding=embedding,
                  frequencies=frequencies, compress_min_vocab=compress_min_vocab, normalize=normalize)
    query = _tower(tower_features(spec, "query"), name=f"{name}_query", **common)
    candidate = _tower(tower_features(spec, "candidate"), name=f"{name}_candidate", **common)
    return TwoTower(query, candidate, name=name, **kwargs)


def retrieval_teacher(spec, *, embedding_dim=64, hidden=(256, 128), output_dim=64, name="retrieval_teacher",
                      **kwargs):
    """A large two-tower model (wide embeddings, two-layer MLP towers, 64-d output).

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> retrieval_teacher(make_ecommerce(events=1000).spec).candidate_model.output_shape
        (None, 64)
    """
    return two_tower(spec, embedding_dim=embedding_dim, hidden=hidden, output_dim=output_dim, name=name, **kwargs)


def retrieval_student(spec, *, embedding_dim=16, hidden=(), output_dim=16, name="retrieval_student", **kwargs):
    """A small two-tower model (narrow embeddings, no hidden layer, 16-d output); pass ``teacher=`` to
    distill, ``embedding="qr"`` etc. to compress its big tables.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> retrieval_student(make_ecommerce(events=1000).spec).query_model.output_shape
        (None, 16)
    """
    return two_tower(spec, embedding_dim=embedding_dim, hidden=hidden, output_dim=output_dim, name=name, **kwargs)


class TwoTower(keras.Model):
    """Query tower + candidate tower trained with the in-batch sampled softmax (optionally distilled).

    Fit on a ``tf.data.Dataset`` of feature dicts of positive interactions (see :func:`retrieval_dataset`).
    ``candidates`` (a DataFrame of the item catalogue, :func:`item_catalog`) adds ``num_negatives``
    (default 1024) uniformly sampled catalogue items to every batch's candidates ("mixed negative
    sampling", Yang et al. 2020): with in-batch negatives alone the model unlearns popularity and loses to
    a popularity baseline on MovieLens (NDCG@10 0.30 vs 0.37 measured); with them it wins (0.42). ``teacher`` (a trained
    ``TwoTower``) turns on distillation: loss = ``alpha`` · hard + (1 − ``alpha``) · T² · KL(teacher ‖
    student) over the batch's candidates at temperature ``distill_temperature`` = T.
    Calling the model on query features returns query embeddings.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> m = retrieval_student(make_ecommerce(events=1000).spec, temperature=0.1)
        >>> m.temperature
        0.1
    """

    def __init__(self, query_model, candidate_model, *, temperature=0.05, teacher=None, alpha=0.2,
                 distill_temperature=1.0, candidates=None, num_negatives=None, oov_rate=0.05,
                 user_feature="user_id", item_feature="item_id", seed=0, **kwargs):
        super().__init__(**kwargs)
        import tensorflow_recommenders as tfrs

        if not 0 < float(temperature):
            raise TFCompressError(f"temperature={temperature} must be > 0")
        if not 0.0 <= float(alpha) <= 1.0 or not 0.0 <= float(oov_rate) < 1.0:
            raise TFCompressError(f"alpha={alpha} must be in [0, 1] and oov_rate={oov_rate} in [0, 1)")
        self.query_model, self.candidate_model = query_model, candidate_model
        self.temperature, self.alpha = float(temperature), float(alpha)
        self.distill_temperature, self.oov_rate = float(distill_temperature), float(oov_rate)
        self.teacher = teacher
        self.user_feature, self.item_feature = user_feature, item_feature
        if num_negatives is None:
            num_negatives = 0 if candidates is None else min(1024, len(candidates))
        self.num_negatives = int(num_negatives)
        self._gen = tf.random.Generator.from_seed(seed)
        self.task = tfrs.tasks.Retrieval(temperature=self.temperature, remove_accidental_hits=True)
        self._catalogue = None
        if self.num_negatives > 0:
            if candidates is None:
                raise TFCompressError("num_negatives > 0 needs candidates= (the item catalogue DataFrame)")
            self._catalogue = {n: tf.constant(candidates[n].to_numpy())
                               for n in candidate_model.input_names}
            self._catalogue_size = len(candidates)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, inputs, training=False):
        return self.query_model({n: inputs[n] for n in self.query_model.input_names}, training=training)

    def quantize_tables(self, bits=8, *, min_vocab=0):
        """A new ``TwoTower`` (same temperature and feature names, no teacher) whose towers' embedding
        tables with at least ``min_vocab`` rows are frozen per-row int8 or int4 tables
        (:func:`~tfcompress.models.embeddings.quantize_tables`); for evaluation and export.

        Example:
            >>> from tfcompress.data import make_ecommerce
            >>> m = retrieval_student(make_ecommerce(events=1000).spec)
            >>> type(m.quantize_tables(4).query_model.get_layer("retrieval_student_query_emb_user_id")).__name__
            'RowInt4Embedding'
        """
        return TwoTower(quantize_tables(self.query_model, bits, min_vocab=min_vocab),
                        quantize_tables(self.candidate_model, bits, min_vocab=min_vocab),
                        temperature=self.temperature, user_feature=self.user_feature,
                        item_feature=self.item_feature, name=f"{self.name}_int{bits}rows")

    def candidate_embeddings(self, features, training=False):
        return self.candidate_model({n: features[n] for n in self.candidate_model.input_names},
                                    training=training)

    def _batch_candidates(self, features):
        cands = {n: features[n] for n in self.candidate_model.input_names}
        if self._catalogue is None:
            return cands
        idx = self._gen.uniform([self.num_negatives], 0, self._catalogue_size, dtype=tf.int64)
        return {n: tf.concat([cands[n], tf.cast(tf.gather(self._catalogue[n], idx), cands[n].dtype)], 0)
                for n in cands}

    def train_step(self, features):
        if isinstance(features, tuple):
            features = features[0]
        query = {n: features[n] for n in self.query_model.input_names}
        if self.oov_rate > 0 and self.user_feature in query:
            ids = query[self.user_feature]
            drop = self._gen.uniform(tf.shape(ids)) < self.oov_rate
            query[self.user_feature] = tf.where(drop, tf.zeros_like(ids), ids)
        cands = self._batch_candidates(features)
        cand_ids = cands.get(self.item_feature)
        with tf.GradientTape() as tape:
            q = self.query_model(query, training=True)
            c = self.candidate_model(cands, training=True)
            loss = self._hard_loss(q, c, cand_ids)
            if self.teacher is not None:
                loss = self.alpha * loss + (1.0 - self.alpha) * self._distill_loss(q, c, query, cands, cand_ids)
        # the towers' variables only: a tracked teacher's variables are in self.trainable_variables too
        variables = self.query_model.trainable_variables + self.candidate_model.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def _hard_loss(self, q, c, cand_ids):
        n = tf.shape(q)[0]
        if self._catalogue is None:
            return self.task(q, c, candidate_ids=cand_ids, compute_metrics=False)
        logits = tf.matmul(q, c, transpose_b=True) / self.temperature
        logits = self._mask_hits(logits, cand_ids, n)
        labels = tf.range(n)
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))

    @staticmethod
    def _mask_hits(logits, cand_ids, n):
        if cand_ids is None:
            return logits
        pos = cand_ids[:n]
        same = tf.equal(tf.expand_dims(pos, 1), tf.expand_dims(cand_ids, 0))
        diag = tf.pad(tf.eye(n, dtype=tf.bool), [[0, 0], [0, tf.shape(cand_ids)[0] - n]])
        return tf.where(tf.logical_and(same, tf.logical_not(diag)), tf.fill(tf.shape(logits), -1e9), logits)

    def _distill_loss(self, q, c, query, cands, cand_ids):
        n = tf.shape(q)[0]
        t = self.distill_temperature
        tq = self.teacher.query_model({k: query[k] for k in self.teacher.query_model.input_names}, training=False)
        tc = self.teacher.candidate_model({k: cands[k] for k in self.teacher.candidate_model.input_names},
                                          training=False)
        t_logits = self._mask_hits(tf.matmul(tq, tc, transpose_b=True) / self.teacher.temperature, cand_ids, n)
        s_logits = self._mask_hits(tf.matmul(q, c, transpose_b=True) / self.temperature, cand_ids, n)
        p = tf.nn.softmax(tf.stop_gradient(t_logits) / t)
        kl = tf.reduce_sum(p * (tf.math.log(p + 1e-12) - tf.nn.log_softmax(s_logits / t)), axis=-1)
        return tf.reduce_mean(kl) * t * t
