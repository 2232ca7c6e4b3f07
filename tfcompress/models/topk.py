"""Brute-force top-K retrieval inside a model: the catalogue's candidate vectors stored in a
:class:`BruteForceTopK` layer, one MATMUL + TOPK_V2 per query, and the NumPy reference :func:`keras_topk`.

:func:`retrieval_topk_model` is what :func:`tfcompress.export.export_retrieval_tflite` converts.

Example:
    >>> import numpy as np
    >>> layer = BruteForceTopK(np.eye(3, dtype="float32"), [5, 6, 7], k=2)
    >>> scores, ids = layer(np.array([[0.0, 1.0, 0.5]], "float32"))
    >>> ids.numpy().tolist()
    [[6, 7]]
"""
import numpy as np
import pandas as pd

from .._keras import keras, tf
from ..errors import TFCompressError
from .retrieval_eval import candidate_embeddings, query_embeddings

DEFAULT_MAX_ITEMS = 200_000


@keras.utils.register_keras_serializable(package="tfcompress")
class BruteForceTopK(keras.layers.Layer):
    """Top-``k`` rows of a stored ``(N, d)`` candidate matrix by dot product: returns (scores, item ids).

    When ``item_ids`` are consecutive (``first, first + 1, ...``, as :func:`item_catalog` gives for dense
    ids) no id table is stored: the row index plus ``first`` is the id (saves 4 bytes per item).

    Example:
        >>> layer = BruteForceTopK(np.eye(3, dtype="float32"), [5, 6, 7], k=1)
        >>> scores, ids = layer(np.array([[0.0, 1.0, 0.0]], "float32"))
        >>> ids.numpy().tolist(), layer.id_offset
        ([[6]], 5)
    """

    def __init__(self, candidates, item_ids, k=10, **kwargs):
        super().__init__(**kwargs)
        self._candidates = np.asarray(candidates, np.float32)
        self._item_ids = np.asarray(item_ids, np.int32)
        if self._candidates.ndim != 2 or len(self._item_ids) != len(self._candidates):
            raise TFCompressError(f"BruteForceTopK needs an (N, d) candidate matrix and N item ids, got shapes "
                                  f"{self._candidates.shape} and {self._item_ids.shape}")
        self.k = int(k)
        ids = self._item_ids
        consecutive = len(ids) > 0 and np.array_equal(ids, ids[0] + np.arange(len(ids), dtype=np.int64))
        self.id_offset = int(ids[0]) if consecutive else None

    def build(self, input_shape):
        self.candidates = self.add_weight("candidates", shape=self._candidates.shape, trainable=False,
                                          initializer=keras.initializers.Constant(self._candidates))
        if self.id_offset is None:
            self.item_ids = self.add_weight("item_ids", shape=self._item_ids.shape, dtype=tf.int32,
                                            trainable=False, initializer=keras.initializers.Constant(self._item_ids))
        super().build(input_shape)

    def call(self, query):
        scores = tf.matmul(query, self.candidates, transpose_b=True)
        values, idx = tf.math.top_k(scores, k=self.k)
        if self.id_offset is not None:
            return values, idx + self.id_offset
        return values, tf.gather(self.item_ids, idx)

    def get_config(self):
        config = super().get_config()
        config.update({"candidates": self._candidates.tolist(), "item_ids": self._item_ids.tolist(), "k": self.k})
        return config


@keras.utils.register_keras_serializable(package="tfcompress")
class _Named(keras.layers.Layer):
    """Identity, so that each output of a multi-output layer gets its own signature name."""

    def call(self, x):
        return tf.identity(x)


def retrieval_topk_model(model, catalog, spec, *, k=10, max_items=DEFAULT_MAX_ITEMS):
    """A functional Keras model: query features -> ``scores`` and ``item_ids`` (each ``(batch, k)``),
    with the catalogue's candidate embeddings stored inside. See
    :func:`tfcompress.export.export_retrieval_tflite`.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> from tfcompress.models import item_catalog, retrieval_student
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> retrieval_topk_model(retrieval_student(d.spec), item_catalog(d.events, d.spec), d.spec, k=3).output_names
        ['scores', 'item_ids']
    """
    catalog = _as_catalog(catalog, model)
    n = len(catalog)
    if n > int(max_items):
        raise TFCompressError(
            f"catalogue of {n:,} items is above max_items={int(max_items):,} for brute-force on-device top-K "
            f"(~{n * model.candidate_model.output_shape[-1] * 4 / 1e6:.0f} MB float, latency grows linearly): "
            f"retrieve on the server or with an ANN index, pre-filter the catalogue, or raise max_items=")
    if not 1 <= int(k) <= n:
        raise TFCompressError(f"k={k} must be between 1 and the catalogue size {n}")
    emb = candidate_embeddings(model, catalog, spec)
    inputs = {name: keras.Input(shape=(), dtype=spec[name].dtype, name=name) for name in model.query_model.input_names}
    q = model.query_model(inputs)
    scores, ids = BruteForceTopK(emb, catalog["item_id"].to_numpy(), k=k, name="topk")(q)
    return keras.Model(inputs, [_Named(name="scores")(scores), _Named(name="item_ids")(ids)],
                       name=f"{model.name}_top{k}")


def _as_catalog(items, model):
    if isinstance(items, pd.DataFrame):
        if "item_id" not in items.columns:
            raise TFCompressError(f"the catalogue DataFrame needs an item_id column; it has {list(items.columns)}")
        return items
    ids = np.asarray(items).ravel()
    if set(model.candidate_model.input_names) != {"item_id"}:
        raise TFCompressError(f"the candidate tower also needs {sorted(model.candidate_model.input_names)}: "
                              "pass the catalogue as a DataFrame (see item_catalog)")
    return pd.DataFrame({"item_id": ids.astype(np.int32)})


def keras_topk(model, query_frame, items, spec, k=10):
    """``(scores, item_ids)`` of the top ``k`` catalogue items for each query row, in Keras/NumPy
    (the reference the TFLite export is compared against).

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> from tfcompress.models import item_catalog, retrieval_student
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> scores, ids = keras_topk(retrieval_student(d.spec), d.events.iloc[:2], item_catalog(d.events, d.spec),
        ...                          d.spec, k=3)
        >>> ids.shape, bool((scores[:, 0] >= scores[:, 2]).all())
        ((2, 3), True)
    """
    catalog = _as_catalog(items, model)
    s = query_embeddings(model, query_frame, spec) @ candidate_embeddings(model, catalog, spec).T
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, 1), catalog["item_id"].to_numpy()[idx]
