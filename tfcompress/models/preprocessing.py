"""Preprocessing inside the model, so the exported ``.tflite`` takes raw numbers.

:class:`NumericNormalization` replaces a missing value (NaN, and ±inf) by its fill value, clips to the seen
range and standardizes, ``(x - mean) / std``: elementwise ops before the first Dense, which int8 TFLite
runs as builtins (the missing-value test reads the float's exponent bits, so it survives quantization of
the input). :func:`preprocessed_inputs` gives a builder raw inputs and their preprocessed tensors;
:func:`with_preprocessing` wraps a trained model whose numeric inputs expect normalized values.

Example:
    >>> import numpy as np
    >>> layer = NumericNormalization(mean=10.0, std=2.0, fill=10.0)
    >>> layer(np.array([12.0, np.nan], "float32")).numpy().tolist()
    [1.0, 0.0]
"""
from .._keras import keras, tf
from ..errors import TFCompressError


@keras.utils.register_keras_serializable(package="tfcompress")
class NumericNormalization(keras.layers.Layer):
    """``(clip(fill if x is NaN/inf else x, low, high) - mean) / std`` elementwise (float32);
    ``column=True`` returns it as a ``(batch, 1)`` column (reshaped last, so the NaN test reads the raw
    float input, and a model can concatenate it directly: QAT then leaves the layer float).

    Example:
        >>> layer = NumericNormalization(mean=1.0, std=4.0, fill=1.0, low=0.0, high=9.0)
        >>> layer.get_config()["std"]
        4.0
    """

    def __init__(self, mean=0.0, std=1.0, fill=0.0, low=None, high=None, column=False, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std, self.fill = float(mean), float(std), float(fill)
        self.column = bool(column)  # output shape (batch, 1): feeds a Concatenate directly (QAT keeps it float)
        self.low = None if low is None else float(low)
        self.high = None if high is None else float(high)
        if not self.std > 0:
            raise TFCompressError(f"NumericNormalization {self.name!r}: std must be > 0, got {std}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise TFCompressError(f"NumericNormalization {self.name!r}: low {low} is above high {high}")

    def call(self, x):
        x = tf.cast(x, tf.float32)
        exponent = tf.math.floormod(tf.bitwise.right_shift(tf.bitcast(x, tf.int32), 23), 256)
        x = tf.where(tf.equal(exponent, 255), tf.constant(self.fill, tf.float32), x)  # NaN, +inf, -inf
        if self.low is not None:
            x = tf.maximum(x, self.low)
        if self.high is not None:
            x = tf.minimum(x, self.high)
        x = (x - self.mean) * (1.0 / self.std)
        return tf.reshape(x, (-1, 1)) if self.column else x  # last: the float input feeds the NaN test

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "fill": self.fill,
                "low": self.low, "high": self.high, "column": self.column}


def _stats(spec, schema):
    """``{input name: (mean, std, fill, low, high)}`` of the numeric inputs that need preprocessing."""
    ranges = {}
    if schema is not None:
        ranges = {c.input: (c.low, c.high) for c in schema.inputs if not c.is_ids}
    out = {}
    for f in spec.numeric:
        low, high = ranges.get(f.name, (None, None))
        if f.normalized or low is not None:
            out[f.name] = (f.mean, f.std, f.fill, low, high)
    return out


def _spec_of(spec_or_schema):
    if hasattr(spec_or_schema, "to_feature_spec"):
        return spec_or_schema.to_feature_spec(), spec_or_schema
    if hasattr(spec_or_schema, "numeric"):
        return spec_or_schema, None
    raise TFCompressError(f"need a FeatureSpec or a Schema, got {type(spec_or_schema).__name__}")


def preprocessed_inputs(spec_or_schema, *, column=False):
    """``(inputs, tensors)``: one raw ``keras.Input`` per feature (float32 numbers, int32 ids; shape
    ``()``) and, by name, the tensor a model should consume (numbers through :class:`NumericNormalization`
    when they carry statistics; the clip range comes from a schema). ``column=True``: normalized numbers
    come out as ``(batch, 1)`` columns, ready to concatenate.

    Example:
        >>> from tfcompress.data import Feature, FeatureSpec
        >>> spec = FeatureSpec([Feature("price", "numeric", mean=5.0, std=2.0)], label="y")
        >>> inputs, tensors = preprocessed_inputs(spec)
        >>> tensors["price"].name.startswith("norm_price")
        True
    """
    spec, schema = _spec_of(spec_or_schema)
    stats = _stats(spec, schema)
    inputs, tensors = {}, {}
    for f in spec.features:
        inputs[f.name] = keras.Input(shape=(), dtype=f.dtype, name=f.name)
        tensors[f.name] = inputs[f.name]
        if f.name in stats:
            mean, std, fill, low, high = stats[f.name]
            tensors[f.name] = NumericNormalization(mean, std, fill, low, high, column=column,
                                                   name=f"norm_{f.name}")(inputs[f.name])
    return inputs, tensors


def with_preprocessing(model, spec_or_schema, *, name=None):
    """A model taking raw inputs: numbers filled, clipped and normalized by :class:`NumericNormalization`,
    then ``model`` (trained on normalized numbers, called as a nested model). Wrap after compression, just
    before export; inputs the spec does not preprocess pass through.

    Example:
        >>> import numpy as np
        >>> from tfcompress import keras
        >>> from tfcompress.data import Feature, FeatureSpec
        >>> spec = FeatureSpec([Feature("price", "numeric", mean=5.0, std=2.0, fill=5.0)], label="y")
        >>> x = keras.Input((), name="price")
        >>> m = keras.Model({"price": x}, keras.layers.Reshape((1,))(x))
        >>> with_preprocessing(m, spec).predict({"price": np.array([7.0, np.nan])}, verbose=0).ravel().tolist()
        [1.0, 0.0]
    """
    spec, _ = _spec_of(spec_or_schema)
    wanted = list(model.input_names)
    missing = [n for n in wanted if n not in spec.names]
    if missing:
        raise TFCompressError(f"model inputs {missing} are not in the spec ({spec.names}): build the model from "
                              "the same spec or schema")
    inputs, tensors = preprocessed_inputs(spec_or_schema)
    inputs = {n: inputs[n] for n in wanted}
    outputs = model({n: tensors[n] for n in wanted})
    return keras.Model(inputs, outputs, name=name or model.name)
