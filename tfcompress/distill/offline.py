"""Offline distillation: run the teacher once, store its outputs beside the inputs, train without it.

:func:`cache_teacher_outputs` writes a folder of NPZ chunks (``chunk-00000.npz`` …, each holding the
features ``x/<name>``, the labels ``y`` if any and the teacher's outputs ``teacher``) and a
``manifest.json`` (chunk files and sizes, feature dtypes/shapes, output shape, teacher description, teacher
and data fingerprints). The folder is written under a temporary name and renamed, so a cache is complete or
absent. The teacher can be a tf_keras model, a Keras 3 model (anything with ``predict``), a SavedModel
folder, a ``.tflite`` file (run with ``ai_edge_litert``) or any callable ``batch -> outputs``.

Given a list of datasets, or of input shard files with ``make_dataset=``, it writes one part per shard
(``part-00000/…``), ``workers`` parts at a time in threads, or only this worker's parts with ``shard=(index,
count)`` (:func:`worker_shard` reads ``TF_CONFIG``); the last writer (or :func:`finish_cache`) writes the
manifest (:mod:`tfcompress.distill.cache_shards`).

:func:`cached_dataset` streams the cache back as ``((features, teacher_outputs), labels)`` batches (chunk
files interleaved, a few in memory at a time), refusing it when ``teacher=`` or ``data=`` is not what it was
made from (:func:`check_cache`), and :class:`OfflineDistiller` trains a student from them (same losses and
logs as :class:`~tfcompress.distill.Distiller`: its default soft-target loss reads the cached outputs). A
label of -1 marks a transfer row (no label: the teacher's outputs alone teach it, :func:`known_labels`).

Example:
    >>> import tempfile, os
    >>> from tfcompress import keras
    >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> ds = tf.data.Dataset.from_tensor_slices((np.ones((10, 4), "float32"), np.ones((10, 1), "float32"))).batch(4)
    >>> path = cache_teacher_outputs(teacher, ds, os.path.join(tempfile.mkdtemp(), "cache"), chunk_size=4)
    >>> read_manifest(path)["examples"], len(read_manifest(path)["chunks"])
    (10, 3)
    >>> student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> d = OfflineDistiller(student, alpha=0.5); d.compile()
    >>> sorted(d.fit(cached_dataset(path, batch_size=4), verbose=0).history)
    ['distillation_loss', 'loss', 'student_loss']
"""
import os
import threading

import numpy as np

from .._io import atomic_path, write_json
from .._keras import keras, tf
from ..errors import TFCompressError, check
from .cache_fingerprint import check_fingerprints, teacher_fingerprint
from .cache_shards import (FORMAT, MANIFEST, SHUFFLE_ROWS, ChunkWriter, finish_cache, read_manifest,
                           stream_cache, worker_shard, write_shards)
from .distiller import Distiller

__all__ = ["teacher_function", "cache_teacher_outputs", "check_cache", "cached_dataset", "read_manifest",
           "finish_cache", "worker_shard", "OfflineDistiller", "known_labels", "FORMAT", "MANIFEST"]


def teacher_function(teacher):
    """A function ``batch (NumPy/dict) -> NumPy outputs`` for any kind of teacher, and a description.

    Example:
        >>> f, kind = teacher_function(lambda x: x * 2)
        >>> kind, f(np.ones(2)).tolist()
        ('callable', [2.0, 2.0])
    """
    if isinstance(teacher, (str, os.PathLike)):
        path = os.fspath(teacher)
        if path.endswith(".tflite"):
            return _tflite_function(path), f"tflite:{os.path.basename(path)}"
        if os.path.isdir(path):
            return _saved_model_function(path), f"saved_model:{os.path.basename(os.path.normpath(path))}"
        raise TFCompressError(f"teacher path {path!r} is neither a .tflite file nor a SavedModel folder")
    if isinstance(teacher, keras.Model):
        return (lambda x: np.asarray(teacher(x, training=False))), f"tf_keras:{teacher.name}"
    if hasattr(teacher, "predict") and callable(teacher.predict):  # Keras 3 (keras-nlp / keras-hub) etc.
        return (lambda x: np.asarray(teacher.predict(x, verbose=0))), f"predict:{type(teacher).__name__}"
    if callable(teacher):
        return (lambda x: np.asarray(teacher(x))), "callable"
    raise TFCompressError(f"teacher must be a model, a SavedModel folder, a .tflite path or a callable, "
                          f"got {type(teacher).__name__}")


def _single(out, where):
    if isinstance(out, dict):
        if len(out) != 1:
            raise TFCompressError(f"{where} has several outputs {sorted(out)}: cache one teacher output")
        out = next(iter(out.values()))
    return np.asarray(out)


def _saved_model_function(path):
    loaded = tf.saved_model.load(path)
    fn = loaded.signatures.get("serving_default")
    if fn is None:
        raise TFCompressError(f"SavedModel {path!r} has no 'serving_default' signature; it has "
                              f"{sorted(loaded.signatures)}")
    names = sorted(fn.structured_input_signature[1])

    def run(x):
        feed = x if isinstance(x, dict) else {names[0]: x}
        spec = fn.structured_input_signature[1]
        feed = {k: tf.cast(v, spec[k].dtype) for k, v in feed.items() if k in spec}
        return _single(fn(**feed), f"SavedModel {path!r}")

    return run


def _tflite_function(path):
    from ai_edge_litert.interpreter import Interpreter

    if not os.path.isfile(path):
        raise TFCompressError(f"TFLite teacher {path!r} does not exist")
    interp = Interpreter(model_path=path)
    runner = interp.get_signature_runner()
    details = runner.get_input_details()

    def run(x):
        feed = x if isinstance(x, dict) else {next(iter(details)): x}
        missing = sorted(set(details) - set(feed))
        if missing:
            raise TFCompressError(f"the TFLite teacher needs inputs {missing} the batch lacks")
        n = len(next(iter(feed.values())))
        outs = []
        for i in range(n):  # one row at a time: TFLite models are usually exported with batch size 1
            row = {k: np.asarray(feed[k][i:i + 1]).astype(details[k]["dtype"]).reshape(details[k]["shape"])
                   for k in details}
            outs.append(_single(runner(**row), f"TFLite teacher {path!r}").reshape(1, -1))
        return np.concatenate(outs, 0)

    return run


def cache_teacher_outputs(teacher, source, path, *, chunk_size=4096, overwrite=False, make_dataset=None,
                          workers=1, shard=None):
    """Run ``teacher`` once over ``source`` and store inputs, labels and the teacher's outputs in chunked NPZ
    files plus ``manifest.json`` under folder ``path``; returns ``path``.

    ``source``: a dataset (or iterable) of batches ``x`` or ``(x, y)`` (one folder of chunks), or a list of
    such datasets, or a list of input shard files with ``make_dataset(file) -> dataset``: one part per shard,
    ``workers`` parts written at once by threads (a callable teacher must then be safe to call from several
    threads), only parts ``index, index + count, …`` with ``shard=(index, count)`` (several machines writing
    one shared folder, e.g. ``shard=worker_shard()``; the last one to finish completes the cache).

    Example: see the module docstring.
    """
    path = os.fspath(path)
    check(int(chunk_size) >= 1, f"chunk_size must be >= 1, got {chunk_size}")
    fn, kind = teacher_function(teacher)
    fingerprint = teacher_fingerprint(teacher)
    if _sharded(source, make_dataset):
        return write_shards(_thread_safe(teacher, fn, kind), source, path, make_dataset=make_dataset,
                            chunk_size=int(chunk_size), workers=workers, shard=shard, overwrite=overwrite,
                            teacher=fingerprint, kind=kind)
    check(workers == 1 and shard is None and make_dataset is None, "workers=, shard= and make_dataset= need "
          "a sharded source: give a list of datasets or of input shard files")
    if os.path.exists(path) and not overwrite:
        raise TFCompressError(f"teacher cache {path!r} already exists: pass overwrite=True or another path")
    with atomic_path(path, is_dir=True) as tmp:
        meta = ChunkWriter(tmp, int(chunk_size)).run(source, fn)
        if not meta["examples"]:
            raise TFCompressError("the dataset is empty: nothing to cache")
        data = meta.pop("data")
        write_json(os.path.join(tmp, MANIFEST), dict(
            {"format": FORMAT, "teacher": kind, "fingerprints": {"teacher": fingerprint, "data": data}}, **meta))
    return path


def _sharded(source, make_dataset):
    """Whether ``source`` is a list of shards (datasets, files, or anything ``make_dataset`` takes) rather than
    a list of batches."""
    return isinstance(source, (list, tuple)) and (make_dataset is not None or bool(source) and all(
        isinstance(s, (tf.data.Dataset, str, os.PathLike)) for s in source))


def _thread_safe(teacher, fn, kind):
    """``fn`` callable from several threads: one TFLite interpreter per thread, Keras 3 ``predict`` locked."""
    if kind.startswith("tflite:"):
        local = threading.local()

        def per_thread(x):
            if not hasattr(local, "fn"):
                local.fn = teacher_function(teacher)[0]
            return local.fn(x)

        return per_thread
    if kind.startswith("predict:"):
        lock = threading.Lock()

        def locked(x):
            with lock:
                return fn(x)

        return locked
    return fn


def check_cache(path, teacher=None, data=None):
    """The manifest of the cache at ``path``, after checking it was made by ``teacher`` and from ``data`` (each
    checked only when given; ``data`` as given to :func:`cache_teacher_outputs`: a dataset, a list of
    datasets, or the list of input shard files). A mismatch is one line naming the fingerprint that differs.

    Example:
        >>> import tempfile
        >>> ds = tf.data.Dataset.from_tensor_slices(np.ones((4, 2), "float32")).batch(2)
        >>> p = cache_teacher_outputs(lambda x: x[:, :1], ds, os.path.join(tempfile.mkdtemp(), "c"))
        >>> check_cache(p, data=ds.map(lambda x: x * 2))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: teacher cache '...' was made from other data (cached sha256:..., yours sha256:...): delete the folder or pass overwrite=True to cache_teacher_outputs
    """
    manifest = read_manifest(path)
    if teacher is not None or data is not None:
        check_fingerprints(os.fspath(path), manifest, teacher, data)
    return manifest


def cached_dataset(path, *, batch_size=256, shuffle=False, seed=0, labels=True, teacher=None, data=None,
                   buffer=SHUFFLE_ROWS):
    """Batches ``((features, teacher_outputs), labels)`` (or ``((features, teacher_outputs),)`` without
    labels) streamed from a teacher cache, one part or many (:func:`~tfcompress.distill.cache_shards.stream_cache`:
    chunk files interleaved, with ``shuffle`` a shuffle buffer of ``buffer`` rows); ``teacher=`` / ``data=``
    refuse a stale cache (:func:`check_cache`).

    Example: see the module docstring.
    """
    m = check_cache(path, teacher, data)
    return stream_cache(path, m, batch_size=batch_size, shuffle=shuffle, seed=seed, labels=labels, buffer=buffer)


class OfflineDistiller(Distiller):
    """A :class:`~tfcompress.distill.Distiller` without a teacher in memory: it trains on
    :func:`cached_dataset` batches ``((features, teacher_outputs), labels)``. Same arguments otherwise.

    Example: see the module docstring.
    """

    def __init__(self, student, **kwargs):
        super().__init__(student, None, **kwargs)

    def _check_labels(self, args, kwargs):
        x = args[0] if args else kwargs.get("x")
        if not isinstance(x, tf.data.Dataset):
            raise TFCompressError("OfflineDistiller trains on tfcompress.distill.cached_dataset(path) batches, "
                                  f"got {type(x).__name__}")
        spec = x.element_spec
        first = spec[0] if isinstance(spec, tuple) else spec
        if not (isinstance(first, tuple) and len(first) == 2):
            raise TFCompressError("OfflineDistiller needs batches ((features, teacher_outputs), labels): "
                                  "read the data with tfcompress.distill.cached_dataset(path)")
        super()._check_labels(args, kwargs)

    def split_inputs(self, x):
        if not (isinstance(x, (tuple, list)) and len(x) == 2):
            raise TFCompressError("OfflineDistiller needs batches ((features, teacher_outputs), labels): "
                                  "read the data with tfcompress.distill.cached_dataset(path)")
        return x[0], x[1]

    def teacher_outputs(self, x):
        raise TFCompressError("OfflineDistiller has no teacher: train it on cached_dataset(path) batches")

    def _label_terms(self, y, student_out, like):
        """A row labelled -1 (a transfer row: the teacher's outputs, no label) adds no label loss."""
        y, known = known_labels(y, self.objective)
        terms = super()._label_terms(y, student_out, like)
        if known is not None:
            terms["student_loss"] = terms["student_loss"] * tf.cast(known, terms["student_loss"].dtype)
        return terms

    def metrics_outputs(self, y, student_out):
        """Labels, predictions and weights: a transfer row (label -1) counts in no metric."""
        y, known = known_labels(y, self.objective)
        return (y, student_out) if known is None else (y, student_out, tf.cast(known, tf.float32))


def known_labels(y, objective):
    """``(labels, known)``: for a binary or multiclass ``objective`` a label < 0 marks a row without one
    (a transfer row, learnt from the teacher alone): its label becomes 0 and ``known`` (per row) False;
    otherwise (``None`` labels, regression, several heads) ``(y, None)``.

    Example:
        >>> y, known = known_labels(np.array([2, -1, 0]), "multiclass")
        >>> y.numpy().tolist(), known.numpy().tolist()
        ([2, 0, 0], [True, False, True])
    """
    if y is None or objective not in ("binary", "multiclass"):
        return y, None
    y = tf.convert_to_tensor(y)
    known = tf.reduce_all(tf.reshape(y >= tf.zeros_like(y), [tf.shape(y)[0], -1]), axis=-1)
    return tf.maximum(y, tf.zeros_like(y)), known
