"""Teacher caches at scale: one part per input shard, parts written by parallel threads or by several
workers, and every cache (one part or many) read back as one ``tf.data`` stream.

A sharded cache folder::

    manifest.json                 written last: the cache is complete (format, fingerprints, parts, chunks)
    part-00000/part.json          one part per input shard: rows, chunks, data fingerprint, plan
    part-00000/chunk-00000.npz …

A part is written under a hidden temporary name and renamed when whole, so a killed writer leaves no part
(at most a hidden ``.part-*.tmp`` folder, ignored). With ``shard=(index, count)`` a worker writes parts
``index, index + count, …`` into the shared folder; after renaming its last part each worker looks at the
folder and, when every part of its plan (the same teacher fingerprint, part count, chunk size and shard
names and sizes) is there, writes ``manifest.json``. The worker that renames last always sees every part,
and two finishing together write the same file (atomic rename), so no lock is needed;
:func:`finish_cache` does the same by hand (e.g. on a network file system slow to show other machines'
renames). A folder without ``manifest.json`` is not a cache: reading it is refused. A part left by an earlier
attempt counts only if it has the same plan: after changing a shard's content but not its size, delete the folder
(reading with ``data=`` catches it: the content hashes differ).

Example:
    >>> import os, tempfile, numpy as np, tensorflow as tf
    >>> shards = [tf.data.Dataset.from_tensor_slices(np.full((n, 2), n, "float32")).batch(2) for n in (3, 5)]
    >>> path = os.path.join(tempfile.mkdtemp(), "cache")
    >>> _ = write_shards(lambda x: x.sum(1, keepdims=True), shards, path, chunk_size=2, shard=(0, 2))
    >>> os.path.exists(os.path.join(path, MANIFEST))       # part 1 is missing: not a cache yet
    False
    >>> _ = write_shards(lambda x: x.sum(1, keepdims=True), shards, path, chunk_size=2, shard=(1, 2))
    >>> m = read_manifest(path); m["examples"], [p["examples"] for p in m["parts"]], len(m["chunks"])
    (8, [3, 5], 5)
"""
import concurrent.futures
import json
import os

import numpy as np

from .._io import atomic_path, ensure_dir, write_json
from .._keras import tf
from ..errors import TFCompressError, check
from .cache_fingerprint import (CALLABLE, ElementHasher, digest, file_fingerprint, is_file_list, rows_of,
                                split_batch)

MANIFEST = "manifest.json"
PART = "part.json"
FORMAT = "tfcompress-teacher-cache/1"
#: chunk files read at once; rows per shuffled block; rows in the shuffle buffer
CYCLE, BLOCK, SHUFFLE_ROWS = 4, 64, 100_000


class ChunkWriter:
    """Buffers ``{x/<name>, y, teacher}`` records and writes them as NPZ chunks of ``chunk_size`` rows,
    hashing the features and labels on the way (the data fingerprint)."""

    def __init__(self, folder, chunk_size):
        self.folder, self.chunk_size = folder, chunk_size
        self.chunks, self.buffer, self.total, self.arrays = [], [], 0, {}
        self.has_labels = self.dict_inputs = None
        self.hasher = ElementHasher()

    def run(self, dataset, fn):
        """Add every batch of ``dataset``; return the part's description (see :meth:`close`)."""
        for batch in dataset:
            self.add(batch, fn)
        return self.close()

    def add(self, batch, fn):
        """Run the teacher function on one batch and buffer the record (flushing full chunks)."""
        x, y = split_batch(batch)
        if self.has_labels is None:
            self.has_labels, self.dict_inputs = y is not None, isinstance(x, dict)
        out = np.asarray(fn(x), dtype="float32")
        rec = rows_of(x, y if self.has_labels else None)
        n = len(next(iter(rec.values())))
        if out.shape[0] != n:
            raise TFCompressError(f"the teacher returned {out.shape[0]} rows for a batch of {n}")
        self.hasher.update(rec)
        rec["teacher"] = out
        self.buffer.append(rec)
        self.total += n
        if sum(len(b["teacher"]) for b in self.buffer) >= self.chunk_size:
            self.flush(final=False)

    def flush(self, final):
        """Write every full chunk of the buffer (and, if ``final``, the rest)."""
        if not self.buffer:
            return
        arrays = {k: np.concatenate([b[k] for b in self.buffer], 0) for k in self.buffer[0]}
        self.arrays = {k: {"dtype": str(v.dtype), "shape": list(v.shape[1:])} for k, v in arrays.items()}
        while len(arrays["teacher"]) >= self.chunk_size or (final and len(arrays["teacher"])):
            n = min(self.chunk_size, len(arrays["teacher"]))
            name = f"chunk-{len(self.chunks):05d}.npz"
            np.savez(os.path.join(self.folder, name), **{k: v[:n] for k, v in arrays.items()})
            self.chunks.append({"file": name, "examples": int(n)})
            arrays = {k: v[n:] for k, v in arrays.items()}
        self.buffer = [arrays] if len(arrays["teacher"]) else []

    def close(self):
        """Write the last chunk; return ``{examples, chunk_size, has_labels, dict_inputs, arrays, chunks,
        data}`` (``data``: the hash of the features and labels written)."""
        self.flush(final=True)
        return {"examples": self.total, "chunk_size": self.chunk_size, "has_labels": bool(self.has_labels),
                "dict_inputs": bool(self.dict_inputs), "arrays": self.arrays, "chunks": self.chunks,
                "data": self.hasher.fingerprint()}


def worker_shard(tf_config=None):
    """``(index, count)`` of this worker among the chief and workers of ``TF_CONFIG`` (``(0, 1)`` without it).

    Example:
        >>> cluster = '"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}'
        >>> worker_shard('{' + cluster + ', "task": {"type": "worker", "index": 1}}')
        (2, 3)
    """
    cfg = json.loads(tf_config if tf_config is not None else os.environ.get("TF_CONFIG") or "{}")
    cluster, task = cfg.get("cluster") or {}, cfg.get("task") or {}
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if not chiefs + workers:
        return 0, 1
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    check(kind in ("chief", "worker"), f"TF_CONFIG task type {kind!r} writes no teacher cache part: run "
                                       "cache_teacher_outputs on the chief and the workers only")
    return (index if kind == "chief" else chiefs + index), chiefs + workers


def write_shards(fn, source, path, *, make_dataset=None, chunk_size=4096, workers=1, shard=None,
                 overwrite=False, teacher=CALLABLE, kind="callable"):
    """Write the parts of ``source`` (a list of datasets, or of shard files or other shard descriptions with
    ``make_dataset(shard) -> dataset``) that are this worker's (``shard=(index, count)``, all by default),
    ``workers`` threads running ``fn`` (batch -> teacher outputs); finish the cache when every part is
    there. Returns ``path``.

    Example: see the module docstring.
    """
    path, files = os.fspath(path), is_file_list(source)
    check(isinstance(source, (list, tuple)) and len(source) > 0, "a sharded teacher cache needs a non-empty "
          "list of datasets or shard files")
    check(not files or callable(make_dataset), "input shard files need make_dataset=: a function file -> "
          "dataset of (x, y) batches")
    index, count = shard if shard is not None else (0, 1)
    check(int(count) >= 1 and 0 <= int(index) < int(count), f"shard={shard!r} must be (index, count) with "
          "0 <= index < count, e.g. worker_shard()")
    check(int(workers) >= 1, f"workers must be >= 1, got {workers}")
    absent = [os.fspath(s) for s in source if files and not os.path.isfile(s)]
    check(not absent, f"input shard {(absent or [None])[0]!r} does not exist: give existing shard files")
    _prepare(path, overwrite)
    names = [{"file": os.path.basename(os.fspath(s)), "bytes": os.path.getsize(s)} if files else "shard"
             for s in source]
    plan = digest({"format": FORMAT, "teacher": teacher, "parts": len(source), "chunk_size": int(chunk_size),
                   "shards": names})
    head = {"parts": len(source), "plan": plan, "teacher": kind, "fingerprint": teacher}

    def one(i):
        data = file_fingerprint(source[i]) if files else None
        _write_part(path, i, make_dataset(source[i]) if make_dataset else source[i], fn, int(chunk_size),
                    dict(head, index=i), data)

    _run_all(one, list(range(int(index), len(source), int(count))), int(workers))
    _finish(path, plan)
    return path


def _prepare(path, overwrite):
    """Make ``path`` ready for parts: refuse a finished cache (unless ``overwrite``) or a foreign folder."""
    manifest = os.path.join(path, MANIFEST)
    if os.path.isfile(manifest):
        check(overwrite, f"teacher cache {path!r} already exists: pass overwrite=True or another path")
        _remove(manifest)
    if os.path.isdir(path):  # only files, never part folders, are removed: other workers may be writing
        old = [e for e in os.listdir(path) if overwrite and e.startswith("chunk-") and e.endswith(".npz")]
        for entry in old:  # the chunks of a one-part cache
            _remove(os.path.join(path, entry))
        foreign = sorted(e for e in os.listdir(path) if not e.startswith(("part-", ".part-")) and e not in old)
        check(not foreign, f"{path!r} holds {foreign[:3]}, not a teacher cache: choose another path")
    ensure_dir(path, "teacher cache")


def _remove(file):
    try:
        os.remove(file)
    except FileNotFoundError:  # another worker removed it first
        pass


def _write_part(path, i, dataset, fn, chunk_size, head, data):
    with atomic_path(os.path.join(path, f"part-{i:05d}"), is_dir=True) as tmp:
        meta = ChunkWriter(tmp, chunk_size).run(dataset, fn)
        meta.update(head)
        if data is not None:
            meta["data"] = data
        write_json(os.path.join(tmp, PART), meta)


def _run_all(one, indexes, workers):
    if workers == 1 or len(indexes) <= 1:
        for i in indexes:
            one(i)
        return
    with concurrent.futures.ThreadPoolExecutor(min(workers, len(indexes))) as pool:
        futures = [pool.submit(one, i) for i in indexes]
        try:
            for f in futures:
                f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _parts(path):
    found = {}
    for entry in sorted(os.listdir(path)) if os.path.isdir(path) else []:
        file = os.path.join(path, entry, PART)
        if entry.startswith("part-") and os.path.isfile(file):
            with open(file) as f:
                meta = json.load(f)
            found[meta["index"]] = dict(meta, dir=entry)
    return found


def finish_cache(path):
    """Write the ``manifest.json`` of a sharded cache whose parts are all written (the last writer does it
    itself); returns ``path``, or raises one line naming the missing parts.

    Example: see the module docstring.
    """
    path = os.fspath(path)
    _finish(path, None)
    return path


def _finish(path, plan):
    """Write the manifest when all parts of ``plan`` (None: the first part's) are there; else return None
    (a writer's plan) or raise (``finish_cache``)."""
    parts, strict = _parts(path), plan is None
    if not parts and not strict:  # a worker with no part of its own, the first to end
        return None
    check(parts, f"{path!r} holds no teacher cache part: write them with cache_teacher_outputs(..., shard=...)")
    plan = plan or parts[min(parts)]["plan"]
    n = next((p["parts"] for p in parts.values() if p["plan"] == plan), 0)
    mine = [parts.get(i) for i in range(n)]
    missing = [i for i, p in enumerate(mine) if p is None or p["plan"] != plan]
    if missing and not strict:
        return None
    if missing:
        other = sorted(p["dir"] for p in parts.values() if p["plan"] != plan)
        stale = f"; {other[:3]} were written for another teacher, data or chunk size" if other else ""
        raise TFCompressError(f"teacher cache {path!r} is unfinished: parts {missing[:5]} of {n} are missing"
                              f"{stale}: run the workers that write them, or delete the folder")
    write_json(os.path.join(path, MANIFEST), _manifest(path, mine))
    return path


def _manifest(path, parts):
    filled = [p for p in parts if p["examples"]]
    check(filled, f"every input shard of teacher cache {path!r} is empty: nothing to cache")
    first = filled[0]
    for p in filled[1:]:
        for key in ("arrays", "has_labels", "dict_inputs"):
            check(p[key] == first[key], f"{p['dir']} of teacher cache {path!r} has other {key} than "
                  f"{first['dir']} ({p[key]} vs {first[key]}): give shards of one schema")
    return {"format": FORMAT, "teacher": first["teacher"],
            "fingerprints": {"teacher": first["fingerprint"], "data": digest([p["data"] for p in parts])},
            "examples": sum(p["examples"] for p in parts), "chunk_size": first["chunk_size"],
            "has_labels": first["has_labels"], "dict_inputs": first["dict_inputs"], "arrays": first["arrays"],
            "parts": [{"dir": p["dir"], "examples": p["examples"], "data": p["data"]} for p in parts],
            "chunks": [{"file": f"{p['dir']}/{c['file']}", "examples": c["examples"]}
                       for p in parts for c in p["chunks"]]}


def read_manifest(path):
    """The manifest of a teacher cache folder, with a clear error if it is not one (or not finished)."""
    path = os.fspath(path)
    file = os.path.join(path, MANIFEST)
    if not os.path.isfile(file):
        parts = _parts(path)
        if parts:
            n = next(iter(parts.values()))["parts"]
            raise TFCompressError(f"{path!r} is an unfinished sharded teacher cache ({len(parts)} of {n} parts): "
                                  "run the workers that write the others, then finish_cache(path)")
        raise TFCompressError(f"{path!r} is not a teacher cache (no {MANIFEST}): make one with "
                              "cache_teacher_outputs")
    with open(file) as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise TFCompressError(f"{file!r} has format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def stream_cache(path, manifest, *, batch_size, shuffle=False, seed=0, labels=True, buffer=SHUFFLE_ROWS):
    """Batches ``((features, teacher_outputs), labels)`` of every chunk of a cache, the chunk files read
    ``CYCLE`` at a time by a parallel, deterministic ``interleave`` (one chunk per file in memory). Without
    ``shuffle`` the rows come in the cache's order; with it the chunks come in a new order each epoch, the
    rows of each chunk are permuted and blocks of ``BLOCK`` rows pass a shuffle buffer of ``buffer`` rows."""
    path, m = os.fspath(path), manifest
    labels = labels and m["has_labels"]
    names = [k for k in m["arrays"] if k.startswith("x/")] + ["teacher"] + (["y"] if labels else [])
    sig = {k: tf.TensorSpec([None] + m["arrays"][k]["shape"], tf.as_dtype(m["arrays"][k]["dtype"]))
           for k in names}

    def rows(file):
        with np.load(file.decode()) as z:
            yield {k: z[k] for k in names}

    files = tf.data.Dataset.from_tensor_slices([os.path.join(path, c["file"]) for c in m["chunks"]])
    if shuffle:
        files = files.shuffle(len(m["chunks"]), seed=seed, reshuffle_each_iteration=True)
    ds = files.interleave(lambda f: tf.data.Dataset.from_generator(rows, args=(f,), output_signature=sig),
                          cycle_length=max(1, min(CYCLE, len(m["chunks"]))), num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=True)
    if shuffle:
        def permute(r):
            order = tf.random.shuffle(tf.range(tf.shape(r["teacher"])[0]), seed=seed)
            return {k: tf.gather(v, order) for k, v in r.items()}

        ds = ds.map(permute).rebatch(BLOCK).shuffle(max(1, int(buffer) // BLOCK), seed=seed,
                                                    reshuffle_each_iteration=True)

    def to_pair(r):
        x = {k[2:]: r[k] for k in names if k.startswith("x/")} if m["dict_inputs"] else r["x/input"]
        return ((x, r["teacher"]), r["y"]) if labels else ((x, r["teacher"]),)

    return ds.rebatch(int(batch_size)).map(to_pair).prefetch(tf.data.AUTOTUNE)
