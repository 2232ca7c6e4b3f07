"""Offline distillation: run the teacher once, store its outputs beside the inputs, train without it.

:func:`cache_teacher_outputs` writes a folder of NPZ chunks (``chunk-00000.npz`` …, each holding the
features ``x/<name>``, the labels ``y`` if any and the teacher's outputs ``teacher``) and a
``manifest.json`` (chunk files and sizes, feature dtypes/shapes, output shape, teacher description). The
folder is written under a temporary name and renamed, so a cache is complete or absent. The teacher can be
a tf_keras model, a Keras 3 model (anything with ``predict``), a SavedModel folder, a ``.tflite`` file (run
with ``ai_edge_litert``) or any callable ``batch -> outputs``.

:func:`cached_dataset` reads the cache back as ``((features, teacher_outputs), labels)`` batches, one
chunk in memory at a time, and :class:`OfflineDistiller` trains a student from them (same losses and logs
as :class:`~tfcompress.distill.Distiller`: its default soft-target loss reads the cached outputs). A label
of -1 marks a transfer row (no label: the teacher's outputs alone teach it, :func:`known_labels`).

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
import json
import os

import numpy as np

from .._io import atomic_path, write_json
from .._keras import keras, tf
from ..errors import TFCompressError
from .distiller import Distiller

MANIFEST = "manifest.json"
FORMAT = "tfcompress-teacher-cache/1"


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


def _to_numpy(x):
    return tf.nest.map_structure(lambda v: np.asarray(v), x)


def cache_teacher_outputs(teacher, dataset, path, *, chunk_size=4096, overwrite=False):
    """Run ``teacher`` over ``dataset`` (batches of ``x`` or ``(x, y)``) once and store inputs, labels and
    the teacher's outputs in chunked NPZ files plus ``manifest.json`` under folder ``path``; returns ``path``.

    Example: see the module docstring.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise TFCompressError(f"teacher cache {path!r} already exists: pass overwrite=True or another path")
    if int(chunk_size) < 1:
        raise TFCompressError(f"chunk_size must be >= 1, got {chunk_size}")
    fn, kind = teacher_function(teacher)
    with atomic_path(path, is_dir=True) as tmp:
        writer = _ChunkWriter(tmp, int(chunk_size))
        for batch in dataset:
            writer.add(batch, fn)
        writer.finish(kind)
    return path


class _ChunkWriter:
    """Buffers ``{x/<name>, y, teacher}`` records and writes them as NPZ chunks of ``chunk_size`` rows."""

    def __init__(self, folder, chunk_size):
        self.folder, self.chunk_size = folder, chunk_size
        self.chunks, self.buffer, self.total = [], [], 0
        self.has_labels = self.dict_inputs = None

    def add(self, batch, fn):
        """Run the teacher function on one batch and buffer the record (flushing full chunks)."""
        if isinstance(batch, tuple) and len(batch) >= 2:
            x, y = batch[0], batch[1]
        else:
            x, y = (batch[0] if isinstance(batch, tuple) else batch), None
        x, y = _to_numpy(x), (None if y is None else np.asarray(y))
        if self.has_labels is None:
            self.has_labels, self.dict_inputs = y is not None, isinstance(x, dict)
        out = np.asarray(fn(x), dtype="float32")
        xs = x if self.dict_inputs else {"input": x}
        n = len(next(iter(xs.values())))
        if out.shape[0] != n:
            raise TFCompressError(f"the teacher returned {out.shape[0]} rows for a batch of {n}")
        rec = {f"x/{k}": v for k, v in xs.items()}
        rec["teacher"] = out
        if self.has_labels:
            rec["y"] = y
        self.buffer.append(rec)
        self.total += n
        if sum(len(b["teacher"]) for b in self.buffer) >= self.chunk_size:
            self.flush(final=False)

    def flush(self, final):
        """Write every full chunk of the buffer (and, if ``final``, the rest)."""
        if not self.buffer:
            return
        arrays = {k: np.concatenate([b[k] for b in self.buffer], 0) for k in self.buffer[0]}
        while len(arrays["teacher"]) >= self.chunk_size or (final and len(arrays["teacher"])):
            n = min(self.chunk_size, len(arrays["teacher"]))
            name = f"chunk-{len(self.chunks):05d}.npz"
            np.savez(os.path.join(self.folder, name), **{k: v[:n] for k, v in arrays.items()})
            self.chunks.append({"file": name, "examples": int(n)})
            arrays = {k: v[n:] for k, v in arrays.items()}
        self.buffer = [arrays] if len(arrays["teacher"]) else []

    def finish(self, kind):
        """Write the last chunk and the manifest (an empty dataset is an error)."""
        if not self.total:
            raise TFCompressError("the dataset is empty: nothing to cache")
        self.flush(final=True)
        first = np.load(os.path.join(self.folder, self.chunks[0]["file"]))
        meta = {k: {"dtype": str(first[k].dtype), "shape": list(first[k].shape[1:])} for k in first.files}
        write_json(os.path.join(self.folder, MANIFEST), {
            "format": FORMAT, "teacher": kind, "examples": self.total, "chunk_size": self.chunk_size,
            "has_labels": bool(self.has_labels), "dict_inputs": bool(self.dict_inputs), "arrays": meta,
            "chunks": self.chunks})


def read_manifest(path):
    """The manifest of a teacher cache folder, with a clear error if it is not one."""
    file = os.path.join(os.fspath(path), MANIFEST)
    if not os.path.isfile(file):
        raise TFCompressError(f"{os.fspath(path)!r} is not a teacher cache (no {MANIFEST}): "
                              "make one with cache_teacher_outputs")
    with open(file) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise TFCompressError(f"{file!r} has format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def cached_dataset(path, *, batch_size=256, shuffle=False, seed=0, labels=True):
    """Batches ``((features, teacher_outputs), labels)`` (or ``((features, teacher_outputs),)`` without
    labels) from a teacher cache, reading one chunk at a time.

    Example: see the module docstring.
    """
    m = read_manifest(path)
    path = os.fspath(path)
    labels = labels and m["has_labels"]
    arrays = m["arrays"]
    keys = [k for k in arrays if k.startswith("x/")]

    def spec(k):
        return tf.TensorSpec([None] + arrays[k]["shape"], tf.as_dtype(arrays[k]["dtype"]))

    def gen():
        order = list(range(len(m["chunks"])))
        if shuffle:
            np.random.default_rng(seed).shuffle(order)
        for i in order:
            with np.load(os.path.join(path, m["chunks"][i]["file"])) as z:
                yield {k: z[k] for k in keys + ["teacher"] + (["y"] if labels else [])}

    sig = {k: spec(k) for k in keys + ["teacher"] + (["y"] if labels else [])}
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig).unbatch()
    if shuffle:
        ds = ds.shuffle(min(m["examples"], 100_000), seed=seed)

    def to_pair(r):
        x = {k[2:]: r[k] for k in keys} if m["dict_inputs"] else r["x/input"]
        return ((x, r["teacher"]), r["y"]) if labels else ((x, r["teacher"]),)

    return ds.map(to_pair).batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


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
