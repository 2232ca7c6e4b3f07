"""Your own offline teacher on data streamed from shards (issue 18 item 4): its outputs are cached sharded
(one part per input shard, 2 writers) from the shard files, fingerprinted by the teacher file and the shards,
reused by a rerun, rebuilt when a shard's content changes."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from tfcompress import keras
from tfcompress.data import frame_to_inputs, make_ecommerce, write_shop_shards
from tfcompress.distill import read_manifest
from tfcompress.distill.cache_fingerprint import file_fingerprint, teacher_fingerprint
from tfcompress.pipeline import RunConfig, run

EVENTS, SHARD_ROWS = 3000, 1000
SHARDS = ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]


def _mlp(spec):
    """A small sigmoid MLP on the shop's inputs: the teacher outputs probabilities, cached as log-odds."""
    inputs, parts = {}, []
    for f in spec.features:
        x = inputs[f.name] = keras.Input((), name=f.name, dtype="int32" if f.kind == "categorical" else "float32")
        parts.append(keras.layers.Embedding(f.vocab_size, 4)(x) if f.kind == "categorical" else
                     keras.layers.Reshape((1,))(x))
    h = keras.layers.Dense(32, activation="relu")(keras.layers.Concatenate()(parts))
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h), name="shop_mlp")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tfcompress.export import to_tflite

    root = tmp_path_factory.mktemp("streamed_teacher")
    write_shop_shards(EVENTS, root / "shards", shard_rows=SHARD_ROWS)
    shop = make_ecommerce(EVENTS, seed=0)  # the same rows as the shards
    train, _, _ = shop.split()
    keras.utils.set_random_seed(0)
    model = _mlp(shop.spec)
    model.compile("adam", "binary_crossentropy")
    model.fit(frame_to_inputs(train, shop.spec), train["click"].to_numpy("float32"), batch_size=256, epochs=2,
              verbose=0)
    teacher = to_tflite(model, str(root / "teacher.tflite"), mode="float32")
    return root, teacher


def _run(root, teacher, name, **kw):
    out = str(root / name)
    cfg = RunConfig(data=str(root / "shards"), teacher_model=teacher, quick=True, stages=("teacher", "distill"),
                    teacher_cache=str(root / "cache"), out=out, savedmodels_dir=os.path.join(out, "sm"),
                    tflite_dir=os.path.join(out, "tfl"), latency_runs=5, calibration_samples=20, **kw)
    result = run(cfg)
    return result, result.stage("teacher").extra["own_teacher"]


def _mtimes(folder):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns for d, _, fs in os.walk(folder) for f in fs}


def _part_rows(cache, manifest, index):
    """The cached arrays of part ``index``, its chunks concatenated."""
    files = [c["file"] for c in manifest["chunks"] if c["file"].startswith(f"part-{index:05d}/")]
    loaded = [np.load(os.path.join(cache, f)) for f in files]
    return {k: np.concatenate([z[k] for z in loaded]) for k in loaded[0].files} if loaded else {}


def _check_layout(cache, teacher, shard_folder, cuts):
    """Parts per shard, fingerprints of the teacher file and the shard files, and every cached row (in shard
    order) the shard's train/validation row with its label and the teacher's log-odds."""
    frames = [pd.read_parquet(shard_folder / s) for s in SHARDS]
    for split, keep in (("train", lambda t: t < cuts[0]), ("val", lambda t: (t >= cuts[0]) & (t < cuts[1]))):
        path = cache[split]
        m = read_manifest(path)
        parts = sorted(e for e in os.listdir(path) if e.startswith("part-"))
        assert parts == ["part-00000", "part-00001", "part-00002"]
        assert m["teacher"] == "tflite:teacher.tflite" and m["fingerprints"]["teacher"] == teacher_fingerprint(teacher)
        assert [p["data"] for p in m["parts"]] == [file_fingerprint(shard_folder / s) for s in SHARDS]
        rows = [f[keep(f["timestamp"])] for f in frames]
        assert [p["examples"] for p in m["parts"]] == [len(r) for r in rows]
        assert m["examples"] == sum(len(r) for r in rows) == cache["rows"][split == "val"]
        for i, want in enumerate(rows):
            got = _part_rows(path, m, i)
            if not len(want):
                continue
            for col in ("user_id", "item_id", "price"):
                np.testing.assert_allclose(got[f"x/{col}"], want[col].to_numpy(), rtol=1e-6)
            np.testing.assert_array_equal(got["y"], want["click"].to_numpy("float32"))
            assert np.all(np.isfinite(got["teacher"]))
    return m


def test_streamed_run_caches_the_teacher_sharded_reuses_and_rebuilds(setup, capsys):
    root, teacher = setup
    shard_folder = root / "shards"
    cuts = json.loads((shard_folder / "manifest.json").read_text())["time_split"]

    result, own = _run(root, teacher, "run1")
    cache = own.cache
    assert cache["status"] == "written"
    assert cache["root"].startswith(str(root / "cache" / "own-teacher" / "teacher.tflite-"))
    assert "your teacher's outputs cached from 3 shards (2,400 train / 300 validation rows)" in capsys.readouterr().err
    _check_layout(cache, teacher, shard_folder, cuts)
    # the cached outputs are the teacher's log-odds on the cached rows
    m = read_manifest(cache["train"])
    rows = _part_rows(cache["train"], m, 2)
    x = {k[2:]: v[:40] for k, v in rows.items() if k.startswith("x/")}
    probs = own.raw_function()(x).ravel()
    np.testing.assert_allclose(1 / (1 + np.exp(-rows["teacher"][:40].ravel())), probs, atol=1e-5)
    teacher_auc = result.stage("teacher").quality["auc"]
    student_auc = result.stage("student_distilled").quality["auc"]
    assert np.isfinite(student_auc) and 0.55 < student_auc <= 1 and abs(student_auc - teacher_auc) < 0.15, \
        (student_auc, teacher_auc)

    # a rerun (one shard touched, its content the same) reuses the cache: nothing rewritten
    before = _mtimes(cache["root"])
    os.utime(shard_folder / SHARDS[1], ns=(10**18, 10**18))
    _, again = _run(root, teacher, "run2", student_epochs=1)
    assert again.cache["status"] == "reused" and again.cache["root"] == cache["root"]
    assert _mtimes(cache["root"]) == before
    assert "your teacher's outputs reused from" in capsys.readouterr().err

    # a shard whose content changed (some labels flipped): detected, the cache rebuilt in place
    frame = pd.read_parquet(shard_folder / SHARDS[1])
    frame.loc[:99, "click"] = 1 - frame.loc[:99, "click"]
    frame.to_parquet(shard_folder / SHARDS[1], index=False)
    _, third = _run(root, teacher, "run3", student_epochs=1)
    err = capsys.readouterr().err
    assert third.cache["status"] == "rebuilt" and third.cache["root"] == cache["root"]
    assert "rebuilt: shard 'part-00001.parquet' changed" in err
    _check_layout(third.cache, teacher, shard_folder, cuts)  # the flipped labels are cached
    after = _mtimes(cache["root"])
    assert after.keys() == before.keys() and all(after[f] != before[f] for f in before)  # every file new
