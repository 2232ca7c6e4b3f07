"""``tf.data`` pipelines and input dicts from DataFrames, keyed by feature name.

Example:
    >>> from tfcompress.data import make_ecommerce
    >>> d = make_ecommerce(events=1000, seed=0)
    >>> ds = to_dataset(d.events, d.spec, batch_size=32)
    >>> x, y = next(iter(ds))
    >>> int(x["user_id"].shape[0]), int(y.shape[0])
    (32, 32)
"""
import numpy as np

from .._keras import tf
from ..errors import TFCompressError


def frame_to_inputs(df, spec, names=None):
    """A dict name -> NumPy array (int32 ids, float32 numbers) of ``spec``'s features from ``df`` (only
    the features ``names``, e.g. one tower's inputs, when given).

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> d = make_ecommerce(events=1000, seed=0)
        >>> x = frame_to_inputs(d.events.iloc[:2], d.spec, names=["user_id"])
        >>> list(x), x["user_id"].dtype.name
        (['user_id'], 'int32')
    """
    if names is None:
        spec.check_frame(df, need_label=False)
        names = [f.name for f in spec.features]
    return {n: df[n].to_numpy().astype(spec[n].dtype) for n in names}


def labels_of(df, spec):
    """The label column of ``df`` as float32 (binary/regression) or int32 (multiclass)."""
    if spec.label not in df.columns:
        raise TFCompressError(f"data has no label column {spec.label!r}; columns are {list(df.columns)}")
    dtype = "int32" if spec.objective == "multiclass" else "float32"
    return df[spec.label].to_numpy().astype(dtype)


def to_dataset(df, spec, *, batch_size=1024, shuffle=False, seed=0, labels=True, repeat=False):
    """A batched ``tf.data.Dataset`` of ``(features_dict, label)`` (or features only) from ``df``."""
    if batch_size < 1:
        raise TFCompressError(f"batch_size must be >= 1, got {batch_size}")
    spec.check_frame(df, need_label=labels)
    x = frame_to_inputs(df, spec)
    ds = index_batches((x, labels_of(df, spec)) if labels else x, len(df), batch_size, shuffle=shuffle,
                       seed=seed, buffer=100_000, repeat=repeat)
    return ds.prefetch(tf.data.AUTOTUNE)


def index_batches(arrays, rows, batch_size, *, shuffle=False, seed=0, buffer=10_000, repeat=False):
    """Batches of ``arrays`` (a nest of arrays of ``rows`` rows each) gathered by index: the row indices are
    shuffled, not the rows, so the batches are those of ``from_tensor_slices(arrays).shuffle(min(rows, buffer),
    seed).batch(batch_size)``, element for element and in the same order, but whole-batch gathers instead of
    one element per row (4-7x more rows/s on 2 cores: ``benchmarks/throughput.py``).

    Example:
        >>> ds = index_batches({"a": np.arange(5)}, 5, 2, shuffle=True, seed=1)
        >>> sorted(int(v) for b in ds for v in b["a"].numpy()), [int(b["a"].shape[0]) for b in ds]
        ([0, 1, 2, 3, 4], [2, 2, 1])
    """
    data = _tensors(arrays)
    ds = tf.data.Dataset.range(int(rows))
    if shuffle:
        ds = ds.shuffle(min(int(rows), buffer), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(int(batch_size)).map(lambda i: tf.nest.map_structure(lambda a: tf.gather(a, i), data),
                                         num_parallel_calls=tf.data.AUTOTUNE)


def _tensors(arrays):
    """``arrays`` as tensors, tuples and dicts kept as structure and lists as tensors (as ``from_tensor_slices``)."""
    if isinstance(arrays, tuple):
        return tuple(_tensors(a) for a in arrays)
    if isinstance(arrays, dict):
        return {k: _tensors(v) for k, v in arrays.items()}
    return tf.convert_to_tensor(arrays)


def array_dataset(x, labels=None, *, batch_size, transform, shuffle=False, seed=0, buffer=10_000):
    """A batched ``tf.data.Dataset`` of ``(transform(batch), labels)`` (or ``transform(batch)`` when
    ``labels`` is None) from an array of examples; ``transform`` turns a batch into the model's input dict.

    Example:
        >>> import numpy as np
        >>> ds = array_dataset(np.zeros((4, 2), "float32"), [0, 1, 0, 1], batch_size=2,
        ...                    transform=lambda b: {"x": b})
        >>> [tuple(x["x"].shape) for x, _ in ds]
        [(2, 2), (2, 2)]
    """
    batch_size = int(batch_size)
    if batch_size < 1:
        raise TFCompressError(f"batch_size = {batch_size} must be >= 1")
    ds = index_batches(x if labels is None else (x, labels), len(x), batch_size, shuffle=shuffle, seed=seed,
                       buffer=buffer)
    if labels is None:
        ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda b, y: (transform(b), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def sample_inputs(df, spec, n=1, *, seed=0):
    """``n`` real rows of ``df`` as an input dict (for latency runs and calibration)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(df), size=n, replace=len(df) < n)
    return frame_to_inputs(df.iloc[idx], spec)
