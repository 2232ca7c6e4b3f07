"""Sharded teacher caches: parts written in parallel or by several workers equal the sequential cache, stale
caches are refused, a killed writer leaves no part, and the offline distiller trains the same from them."""
import os

import numpy as np
import pandas as pd
import pytest

from tfcompress import keras, tf
from tfcompress.data import shard_dataset
from tfcompress.distill import (OfflineDistiller, cache_teacher_outputs, cached_dataset, check_cache, finish_cache,
                                read_manifest)
from tfcompress.errors import TFCompressError

ROWS = (60, 45, 70, 33)
COLUMNS = ["a", "b", "c", "y"]


def write_shards(folder, seed=0):
    rng = np.random.default_rng(seed)
    files = []
    for k, n in enumerate(ROWS):
        frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=COLUMNS[:3])
        frame["y"] = (frame["a"] + 0.5 * frame["b"] > 0).astype(int)
        files.append(str(folder / f"shard-{k}.csv"))
        frame.to_csv(files[-1], index=False)
    return files


def transform(b):
    x = tf.cast(tf.stack([b["a"], b["b"], b["c"]], 1), "float32")
    return {"x": x}, tf.cast(b["y"], "float32"), tf.zeros_like(b["y"], "int32")


def make_dataset(file):
    return shard_dataset([file], "csv", COLUMNS, {}, transform, part=0, batch_size=16)


def mlp(seed):
    keras.utils.set_random_seed(seed)
    x = keras.Input((3,), name="x")
    return keras.Model(x, keras.layers.Dense(1)(keras.layers.Dense(8, activation="relu")(x)))


def rows(path, **kwargs):
    """Every row of a cache in its order: features, teacher outputs and labels side by side."""
    got = [np.concatenate([x["x"].numpy(), t.numpy(), y.numpy().reshape(-1, 1)], 1)
           for (x, t), y in cached_dataset(path, batch_size=50, **kwargs)]
    return np.concatenate(got)


def sequential(teacher, files, path):
    whole = make_dataset(files[0])
    for f in files[1:]:
        whole = whole.concatenate(make_dataset(f))
    return cache_teacher_outputs(teacher, whole, path, chunk_size=32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    files, teacher = write_shards(tmp), mlp(1)
    return tmp, files, teacher, sequential(teacher, files, tmp / "seq")


def sort_rows(a):
    return a[np.lexsort(a.T[::-1])]


def test_parallel_cache_equals_the_sequential_cache(setup):
    tmp, files, teacher, seq = setup
    path = cache_teacher_outputs(teacher, files, tmp / "par", make_dataset=make_dataset, chunk_size=32, workers=2)
    m = read_manifest(path)
    assert m["examples"] == sum(ROWS) and [p["examples"] for p in m["parts"]] == list(ROWS)
    assert m["chunks"][0]["file"] == "part-00000/chunk-00000.npz" and len(m["chunks"]) == 2 + 2 + 3 + 2
    assert m["fingerprints"]["teacher"] == read_manifest(seq)["fingerprints"]["teacher"] != "callable"
    a, b = rows(seq), rows(path)
    assert a.shape == (sum(ROWS), 5)
    np.testing.assert_allclose(sort_rows(a), sort_rows(b), rtol=1e-6, atol=1e-7)  # the same set of rows
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # and, unshuffled, in the same order
    with pytest.raises(TFCompressError, match="already exists"):
        cache_teacher_outputs(teacher, files, path, make_dataset=make_dataset)
    # a TFLite teacher (one interpreter per thread) gives the same outputs from two threads
    tfl = tmp / "teacher.tflite"
    tfl.write_bytes(tf.lite.TFLiteConverter.from_keras_model(teacher).convert())
    lite = cache_teacher_outputs(str(tfl), files, tmp / "lite", make_dataset=make_dataset, workers=2)
    np.testing.assert_allclose(rows(lite), a, rtol=1e-4, atol=1e-5)


def test_two_workers_then_finish(setup):
    tmp, files, teacher, seq = setup
    path = tmp / "workers"
    cache_teacher_outputs(teacher, files, path, make_dataset=make_dataset, chunk_size=32, shard=(0, 2))
    assert sorted(os.listdir(path)) == ["part-00000", "part-00002"]
    with pytest.raises(TFCompressError, match=r"unfinished sharded teacher cache \(2 of 4 parts\)"):
        cached_dataset(path)
    with pytest.raises(TFCompressError, match=r"parts \[1, 3\] of 4 are missing"):
        finish_cache(path)
    cache_teacher_outputs(teacher, files, path, make_dataset=make_dataset, chunk_size=32, shard=(1, 2))
    first = read_manifest(path)  # the second worker, finishing last, completed the cache
    np.testing.assert_allclose(rows(path), rows(seq), rtol=1e-6, atol=1e-7)
    os.remove(path / "manifest.json")  # finishing by hand writes the same manifest
    assert read_manifest(finish_cache(path)) == first


def test_stale_teacher_or_changed_shard_is_refused(setup, tmp_path):
    _, files, teacher, _ = setup
    files = write_shards(tmp_path)
    path = cache_teacher_outputs(teacher, files, tmp_path / "c", make_dataset=make_dataset, workers=2)
    assert check_cache(path, teacher=teacher, data=files)["examples"] == sum(ROWS)
    with pytest.raises(TFCompressError, match="made by another teacher") as e:
        cached_dataset(path, teacher=mlp(2), data=files)
    assert "\n" not in str(e.value) and "delete the folder or pass overwrite=True" in str(e.value)
    frame = pd.read_csv(files[2])
    frame.loc[3, "a"] += 1.0
    frame.to_csv(files[2], index=False)
    with pytest.raises(TFCompressError, match=r"made from other data .*changed: shard 'shard-2.csv'\): delete"):
        cached_dataset(path, teacher=teacher, data=files)
    # overwrite rewrites it, and then it matches again
    cache_teacher_outputs(teacher, files, path, make_dataset=make_dataset, overwrite=True)
    assert check_cache(path, teacher=teacher, data=files)["examples"] == sum(ROWS)
    # a dataset source: its elements are the data fingerprint
    ds = make_dataset(files[0])
    p = cache_teacher_outputs(teacher, ds, tmp_path / "one")
    check_cache(p, teacher=teacher, data=ds)
    with pytest.raises(TFCompressError, match="made from other data"):
        check_cache(p, data=make_dataset(files[1]))


def test_a_killed_writer_leaves_no_part(setup, tmp_path):
    tmp, files, teacher, seq = setup

    def dying(file):
        if not file.endswith("shard-2.csv"):
            return make_dataset(file)

        def batches():
            for i, batch in enumerate(make_dataset(file)):
                if i == 2:
                    raise RuntimeError("writer killed")
                yield batch

        return batches()

    path = tmp_path / "killed"
    with pytest.raises(RuntimeError, match="writer killed"):
        cache_teacher_outputs(teacher, files, path, make_dataset=dying, chunk_size=16, workers=2)
    left = sorted(os.listdir(path))  # part 3 is written or cancelled, depending on the threads' timing
    assert left[:2] == ["part-00000", "part-00001"] and set(left[2:]) <= {"part-00003"}  # no part 2, no temp
    assert all(os.path.isfile(path / p / "part.json") for p in left)
    with pytest.raises(TFCompressError, match="unfinished"):
        read_manifest(path)
    cache_teacher_outputs(teacher, files, path, make_dataset=make_dataset, chunk_size=16, workers=2)
    np.testing.assert_allclose(rows(path), rows(seq), rtol=1e-6, atol=1e-7)


def test_offline_distiller_trains_the_same_on_both_caches(setup):
    tmp, files, teacher, seq = setup
    path = cache_teacher_outputs(teacher, files, tmp / "train", make_dataset=make_dataset, chunk_size=32,
                                 workers=2)

    def fit(cache, **kwargs):
        student = mlp(3)
        keras.utils.set_random_seed(7)
        d = OfflineDistiller(student, alpha=0.3, temperature=2.0)
        d.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        return d.fit(cached_dataset(cache, batch_size=16, **kwargs), epochs=3, verbose=0).history["loss"]

    np.testing.assert_allclose(fit(path), fit(seq), rtol=1e-5)
    # shuffled: every row once per epoch, the same order for the same seed, another order for another
    a, b, c = rows(path, shuffle=True, seed=1), rows(path, shuffle=True, seed=1), rows(path, shuffle=True, seed=2)
    np.testing.assert_allclose(sort_rows(a), sort_rows(rows(seq)), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, rows(path))
    assert np.isfinite(fit(path, shuffle=True, seed=1)).all()
