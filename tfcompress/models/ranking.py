"""On-device ranking: one call per screen scores N retrieved candidates for one user.

:func:`list_ranking_model` wraps a per-row CTR model (e.g. :func:`tfcompress.models.ctr_student`, one
scalar ``Input`` per feature) into a model that takes the user's and context features once (shape
``[batch]``, batch 1 on the phone) and the candidates' item features as ``[batch, N]``, broadcasts the user
features to every candidate, and returns ``scores`` of shape ``[batch, N]`` (the CTR logits). Export it with
:func:`tfcompress.export.to_tflite` like any model (representative data: user features ``[M]`` and item
features ``[M, N]``).

Example:
    >>> from tfcompress.data import make_ecommerce
    >>> from tfcompress.models import ctr_student
    >>> spec = make_ecommerce(events=1000).spec
    >>> m = list_ranking_model(ctr_student(spec), 20, item_features=[f.name for f in spec.features
    ...                                                               if f.group == "item"])
    >>> m.output_shape
    (None, 20)
"""
from .._keras import keras, tf
from ..errors import TFCompressError


@keras.utils.register_keras_serializable(package="tfcompress")
class BroadcastToList(keras.layers.Layer):
    """``[batch]`` -> ``[batch * N]``: repeat each user's value for the ``N`` candidates of its list.

    Example:
        >>> BroadcastToList(2)(tf.constant([1, 5])).numpy().tolist()
        [1, 1, 5, 5]
    """

    def __init__(self, list_size, **kwargs):
        super().__init__(**kwargs)
        self.list_size = int(list_size)

    def call(self, x):
        return tf.reshape(tf.tile(tf.expand_dims(x, 1), [1, self.list_size]), [-1])

    def get_config(self):
        return {**super().get_config(), "list_size": self.list_size}


@keras.utils.register_keras_serializable(package="tfcompress")
class FlattenList(keras.layers.Layer):
    """``[batch, N]`` -> ``[batch * N]``.

    Example:
        >>> FlattenList()(tf.constant([[1, 2], [3, 4]])).numpy().tolist()
        [1, 2, 3, 4]
    """

    def call(self, x):
        return tf.reshape(x, [-1])


@keras.utils.register_keras_serializable(package="tfcompress")
class ToList(keras.layers.Layer):
    """``[batch * N, 1]`` -> ``[batch, N]``.

    Example:
        >>> ToList(2)(tf.constant([[1.0], [2.0], [3.0], [4.0]])).numpy().tolist()
        [[1.0, 2.0], [3.0, 4.0]]
    """

    def __init__(self, list_size, **kwargs):
        super().__init__(**kwargs)
        self.list_size = int(list_size)

    def call(self, x):
        return tf.reshape(x, [-1, self.list_size])

    def get_config(self):
        return {**super().get_config(), "list_size": self.list_size}


def list_ranking_model(ctr_model, list_size, *, item_features, name=None):
    """Wrap per-row ``ctr_model`` into a list model: user/context inputs ``[batch]``, ``item_features``
    inputs ``[batch, list_size]``, output ``scores`` ``[batch, list_size]`` equal to ``ctr_model`` on each
    (user, candidate) row. Pad short lists (e.g. with item id 0) and ignore their scores.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> from tfcompress.models import ctr_student
        >>> spec = make_ecommerce(events=1000).spec
        >>> m = list_ranking_model(ctr_student(spec), 5, item_features=["item_id"])
        >>> m.get_layer("item_id").output_shape, m.output_shape
        ([(None, 5)], (None, 5))
    """
    if int(list_size) < 1:
        raise TFCompressError(f"list_size={list_size} must be >= 1")
    names = list(ctr_model.input_names)
    unknown = [n for n in item_features if n not in names]
    if unknown:
        raise TFCompressError(f"item_features {unknown} are not inputs of {ctr_model.name!r}; it takes {names}")
    if not item_features:
        raise TFCompressError("item_features is empty: name the per-candidate inputs (e.g. ['item_id'])")
    n = int(list_size)
    inputs, rows = {}, {}
    for spec_name, t in zip(names, ctr_model.inputs):
        if t.shape.rank != 1:
            raise TFCompressError(f"{ctr_model.name!r} input {spec_name!r} has shape {t.shape}: "
                                  "list_ranking_model needs one scalar input per feature")
        if spec_name in item_features:
            inputs[spec_name] = keras.Input(shape=(n,), dtype=t.dtype, name=spec_name)
            rows[spec_name] = FlattenList(name=f"flat_{spec_name}")(inputs[spec_name])
        else:
            inputs[spec_name] = keras.Input(shape=(), dtype=t.dtype, name=spec_name)
            rows[spec_name] = BroadcastToList(n, name=f"repeat_{spec_name}")(inputs[spec_name])
    logits = ctr_model(rows)
    scores = ToList(n, name="scores")(logits)
    return keras.Model(inputs, scores, name=name or f"{ctr_model.name}_list{n}")
