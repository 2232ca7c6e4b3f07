"""Your teacher's outputs cached for offline distillation (a SavedModel, ``.tflite`` or Keras 3 teacher, which
tf_keras cannot run in its graph): :func:`teacher_cache` gives ``{"train": folder, "val": folder}`` of
:func:`tfcompress.distill.cached_dataset` caches of its logits.

* In-memory data: one cache per split, written from ``data.train_ds`` / ``data.val_ds`` into a temporary
  folder removed when Python exits.
* Data streamed from shards (``data.shards``, :func:`tfcompress.tasks.ctr.streamed_data`): the train and
  validation caches are written sharded from the shard files, one part per shard, :data:`WORKERS` at a time
  (:func:`tfcompress.distill.cache_shards.write_shards`), each shard read by the same ``tf.data`` pipeline and
  split filter as the training stream (:func:`tfcompress.data.shard_dataset` with the log's transform). The
  cache lives in the run's ``--teacher-cache`` folder (``data.shards[1]``; default ``$TFCOMPRESS_CACHE`` or
  ``~/.cache/tfcompress/teachers``) under ``own-teacher/<teacher file name>-<hash of the teacher and shard
  paths>``; its manifests fingerprint the teacher file and every shard file (name, size, content hash) and
  ``recipe.json`` the split, id encoding and teacher output kind. A rerun with the same teacher and shards
  reuses it (a touched shard with the same content too); a changed teacher, shard or recipe rebuilds it in
  place (one line on stderr says which changed), the whole folder replaced atomically.

The validation cache holds every validation row of the shards (``data.val_ds`` holds at most
``HOLDOUT_ROWS``, a systematic sample beyond).

Example:
    >>> import tempfile, types
    >>> from tfcompress.data import open_shop_log, write_shop_shards
    >>> shards, where = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> _ = write_shop_shards(1000, shards, shard_rows=400)
    >>> open(f"{where}/t.bin", "w").write("weights")
    7
    >>> t = types.SimpleNamespace(kind="saved_model", source=f"{where}/t.bin", path=f"{where}/t.bin", output="logits",
    ...                           inputs={}, logit_function=lambda: (lambda x: x["price"][:, None]))
    >>> quiet = open(os.devnull, "w")
    >>> c = streamed_cache(t, open_shop_log(shards), 64, where, stream=quiet)
    >>> c["status"], c["rows"], streamed_cache(t, open_shop_log(shards), 64, where, stream=quiet)["status"]
    ('written', [800, 100], 'reused')
"""
import hashlib
import json
import os
import sys
import tempfile
import threading

from ..errors import TFCompressError

#: shard parts written at once; rows per cache chunk
WORKERS, CHUNK = 2, 8192
#: the sub-folder of the teacher cache folder, and the file naming the rows' recipe
FOLDER, RECIPE = "own-teacher", "recipe.json"
#: cache name → part of the split (0 train, 1 validation)
SPLITS = (("train", 0), ("val", 1))
RECIPE_VERSION = 1


def teacher_cache(teacher, data, batch_size):
    """The teacher's logits cached once over the training and validation splits (see the module docstring):
    ``{"train": folder, "val": folder, ...}``, kept on ``teacher.cache``."""
    if teacher.cache is None:
        shards = getattr(data, "shards", None)  # (ShardLog, cache folder) of data streamed from shards
        if shards is None:
            teacher.cache = _in_memory(teacher, data)
        else:
            log, folder = shards
            teacher.cache = streamed_cache(teacher, log, batch_size, folder)
    return teacher.cache


def _temporary_root():
    import atexit
    import shutil

    root = tempfile.mkdtemp(prefix="tfcompress_teacher_cache_")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def _in_memory(teacher, data):
    from ..distill import cache_teacher_outputs

    root, fn = _temporary_root(), teacher.logit_function()
    return {split: cache_teacher_outputs(fn, ds, os.path.join(root, split), chunk_size=CHUNK)
            for split, ds in (("train", data.train_ds), ("val", data.val_ds))}


def teacher_file(teacher):
    """The file or folder the teacher came from (user-expanded), or None (an in-memory Keras 3 model)."""
    source = teacher.path if teacher.kind in ("tflite", "saved_model") else teacher.source
    return os.path.expanduser(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else None


def cache_recipe(teacher, log):
    """What the cached rows depend on besides the shard and teacher files: the split, the columns and id
    encoding of ``log``, the teacher's kind, inputs and output kind, the chunk size."""
    from ..distill.cache_fingerprint import digest

    return {"version": RECIPE_VERSION, "chunk_size": CHUNK, "teacher": [teacher.kind, teacher.output,
                                                                        sorted(teacher.inputs or ())],
            "format": log.format, "columns": log.types, "split": log.split, "cuts": log.cuts, "roles": log.roles,
            "encoded": log.encoded, "hashed": log.hashed, "vocabulary": digest(log.vocabulary),
            "spec": log.spec.to_dict()}


def cache_folder(folder, source, files):
    """``folder/own-teacher/<teacher name>-<16 hex of the teacher's and the shards' real paths>``."""
    if folder is None:
        from ..pretrained.cache import default_folder

        folder = default_folder()
    names = json.dumps([os.path.realpath(source), [os.path.realpath(f) for f in files]])
    key = hashlib.sha256(names.encode()).hexdigest()[:16]
    return os.path.join(os.path.expanduser(os.fspath(folder)), FOLDER,
                        f"{os.path.basename(os.path.normpath(source))}-{key}")


def stale(root, recipe, source, files):
    """``(status, why)``: ``("reused", None)`` when the cache at ``root`` was made by the teacher file
    ``source`` from ``files`` with ``recipe``; ``("written", None)`` when there is none; else
    ``("rebuilt", why)``, ``why`` naming what changed.

    Example:
        >>> stale(os.path.join(tempfile.mkdtemp(), "cache"), {}, "t.tflite", ["a.parquet"])
        ('written', None)
    """
    from ..distill import read_manifest
    from ..distill.cache_fingerprint import digest, file_fingerprint, teacher_fingerprint

    try:
        with open(os.path.join(root, RECIPE)) as f:
            kept = json.load(f)
        train, val = (read_manifest(os.path.join(root, name)) for name, _ in SPLITS)
    except (OSError, ValueError, TFCompressError):
        return ("rebuilt", "it is incomplete") if os.path.exists(root) else ("written", None)
    if kept.get("recipe") != digest(recipe):
        return "rebuilt", "the split, the id encoding or your teacher's output kind changed"
    if train["fingerprints"]["teacher"] != teacher_fingerprint(source) or val["fingerprints"] != train["fingerprints"]:
        return "rebuilt", f"your teacher {source!r} changed"
    now, old = [file_fingerprint(f) for f in files], [p.get("data") for p in train.get("parts", [])]
    if len(now) != len(old):
        return "rebuilt", f"the data has {len(now)} shards, the cache {len(old)}"
    changed = [n["file"] for n, o in zip(now, old) if n != o]
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        return "rebuilt", f"shard{'s' if len(changed) > 1 else ''} {', '.join(map(repr, changed[:3]))}{more} changed"
    return "reused", None


def streamed_cache(teacher, log, batch_size, folder=None, stream=None):
    """The teacher's logits on the train and validation rows of the shards of ``log`` (a
    :class:`~tfcompress.data.ShardLog`), cached sharded under ``folder`` (see the module docstring); returns
    ``{"train", "val", "root", "status" (written, reused or rebuilt), "rows" ([train, validation])}`` and
    says on ``stream`` (stderr) what it did.

    Example: see the module docstring.
    """
    from ..distill import read_manifest

    source, files = teacher_file(teacher), [os.fspath(f) for f in log.files]
    recipe = cache_recipe(teacher, log)
    root = cache_folder(folder, source, files) if source else os.path.join(_temporary_root(), "streamed")
    status, why = stale(root, recipe, source, files) if source else ("written", None)
    if status != "reused":
        _write(root, teacher, log, recipe, batch_size, source)
    paths = {name: os.path.join(root, name) for name, _ in SPLITS}
    rows = [read_manifest(p)["examples"] for p in paths.values()]
    what = (f"reused from {root} (the same teacher and shards)" if status == "reused" else
            f"cached from {len(files)} shards ({rows[0]:,} train / {rows[1]:,} validation rows) in {root}")
    print(f"[{'cache':>8}] your teacher's outputs {what}" + (f"; rebuilt: {why}" if why else ""),
          file=stream or sys.stderr, flush=True)
    return dict(paths, root=root, status=status, rows=rows)


def _write(root, teacher, log, recipe, batch_size, source):
    """Write both caches and the recipe into a temporary folder renamed to ``root`` (replacing the old one)."""
    from .._io import atomic_path, write_json
    from ..distill.cache_fingerprint import CALLABLE, digest, teacher_fingerprint
    from ..distill.cache_shards import write_shards

    fn, transform = _thread_safe(teacher), log.transform()
    fingerprint = teacher_fingerprint(source) if source else CALLABLE
    kind = f"{teacher.kind}:{os.path.basename(os.path.normpath(source))}" if source else teacher.kind
    with atomic_path(root, is_dir=True) as tmp:
        for name, part in SPLITS:
            def make(file, part=part):
                return _file_dataset(log, transform, file, part, batch_size)

            write_shards(fn, [os.fspath(f) for f in log.files], os.path.join(tmp, name), make_dataset=make,
                         chunk_size=CHUNK, workers=WORKERS, teacher=fingerprint, kind=kind)
        write_json(os.path.join(tmp, RECIPE), {"recipe": digest(recipe), **recipe})


def _file_dataset(log, transform, file, part, batch_size):
    """The ``(inputs, label)`` batches of part ``part`` of one shard, as :meth:`ShardLog.dataset` reads the
    training stream (the same reader, transform and split filter), in file order, empty batches dropped."""
    from .._keras import tf
    from ..data import shard_dataset

    ds = shard_dataset([file], log.format, log.columns, log.types, transform, part=part, batch_size=batch_size)
    return ds.filter(lambda x, y: tf.shape(y)[0] > 0)


def _thread_safe(teacher):
    """The teacher's logit function, one per thread for a TFLite teacher (an interpreter is not thread-safe)."""
    if teacher.kind != "tflite":
        return teacher.logit_function()
    local = threading.local()

    def per_thread(x):
        if not hasattr(local, "fn"):
            local.fn = teacher.logit_function()
        return local.fn(x)

    return per_thread
