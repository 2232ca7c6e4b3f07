"""Adam for models with big id tables: :class:`LazyAdam` updates only the table rows a batch looked up.

Keras's ``Adam`` turns an embedding's sparse gradient into full-table work on every step: it decays the
whole first and second moments and rewrites the whole table, so a step of a 20M-row teacher costs 20M-row
arithmetic (and full-table temporaries) whatever the batch. :class:`LazyAdam` applies the Adam update to
the looked-up rows only (the rows a batch did not use keep their moments until they are used again: the
rule of TensorFlow Addons' ``LazyAdam``, now unmaintained); dense gradients get plain Adam.
:func:`adam_for` picks it for a model with an id table of :data:`LAZY_MIN_ROWS` rows or more.

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> model = keras.Sequential([keras.layers.Embedding(60_000, 4), keras.layers.Dense(1)])
    >>> type(adam_for(model, 1e-3)).__name__, type(adam_for(keras.Sequential([keras.layers.Dense(1)]), 1e-3)).__name__
    ('LazyAdam', 'Adam')
    >>> model.compile(optimizer=adam_for(model, 0.1), loss="mse")
    >>> _ = model.fit(np.array([[1]]), np.ones((1, 1, 1)), verbose=0)  # row 1 gets a moment
    >>> before = model.layers[0].get_weights()[0].copy()
    >>> _ = model.fit(np.array([[2]]), np.ones((1, 1, 1)), verbose=0)  # Adam would move row 1 again
    >>> np.flatnonzero(np.any(model.layers[0].get_weights()[0] != before, axis=1)).tolist()
    [2]
"""
from ._keras import keras, tf

#: a model with an id table of at least this many rows trains with :class:`LazyAdam` (see :func:`adam_for`)
LAZY_MIN_ROWS = 50_000


class LazyAdam(keras.optimizers.Adam):
    """Adam whose sparse (``IndexedSlices``) updates touch only the rows in the gradient: those rows get
    exactly Adam's update; the others keep their weights and moments. Dense gradients get plain Adam."""

    def __init__(self, learning_rate=0.001, *, amsgrad=False, name="LazyAdam", **kwargs):
        if amsgrad:
            raise ValueError("LazyAdam has no amsgrad variant: use keras.optimizers.Adam(amsgrad=True)")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        beta_1_power, beta_2_power = tf.pow(beta_1, step), tf.pow(beta_2, step)
        alpha = tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        epsilon = self.epsilon * tf.sqrt(1 - beta_2_power) if getattr(self, "adaptive_epsilon", False) \
            else self.epsilon
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        rows, g = gradient.indices, gradient.values  # rows are unique: Keras deduplicates before this
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * g
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(g)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))


def largest_table_rows(model):
    """The rows of ``model``'s largest ``Embedding`` table (nested models included; 0 when it has none).

    Example:
        >>> inner = keras.Sequential([keras.layers.Embedding(70_000, 2)])
        >>> largest_table_rows(keras.Sequential([inner, keras.layers.Embedding(9, 2)]))
        70000
    """
    tables = [layer.input_dim for layer in _layers(model) if isinstance(layer, keras.layers.Embedding)]
    return max(tables, default=0)


def adam_for(model, learning_rate, *, min_rows=LAZY_MIN_ROWS):
    """:class:`LazyAdam` for a model with an ``Embedding`` table of ``min_rows`` rows or more, else Adam."""
    lazy = largest_table_rows(model) >= min_rows
    return (LazyAdam if lazy else keras.optimizers.Adam)(learning_rate)


def lazy_adam_note(table_rows, *, min_rows=LAZY_MIN_ROWS):
    """The report's words when one of the ``table_rows`` (id table sizes) trains with :class:`LazyAdam`, else "".

    Example:
        >>> lazy_adam_note([20, 60_000])
        'id tables of 50,000+ rows train with lazy Adam (a step updates only the rows its batch looked up)'
    """
    if max(table_rows, default=0) < min_rows:
        return ""
    return f"id tables of {min_rows:,}+ rows train with lazy Adam (a step updates only the rows its batch looked up)"


def _layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _layers(layer)
