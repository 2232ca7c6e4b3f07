"""Compressed embedding layers: shapes, OOV safety, accounting, serialization and int8 TFLite."""
import numpy as np
import pytest

import tfcompress  # noqa: F401
from tfcompress import keras, tf
from tfcompress.errors import TFCompressError
from tfcompress.export import TFLiteModel, to_tflite
from tfcompress.models.embeddings import (HashedEmbedding, LowRankEmbedding, MixedDimEmbedding, QREmbedding,
                                          RowInt4Embedding, RowInt8Embedding, embedding_params, make_embedding,
                                          quantize_tables, safe_ids, tflite_embedding_bytes)

V, D = 500, 8
IDS = np.array([0, 1, 2, 3, 250, 499, 10**6, -5], np.int32)


def _layers():
    rng = np.random.default_rng(0)
    return {
        "qr": QREmbedding(V, D),
        "hash": HashedEmbedding(V, D, num_buckets=64, hash="mult"),
        "mixed": MixedDimEmbedding.from_frequencies(np.arange(V)[::-1], D),
        "lowrank": LowRankEmbedding(V, D, rank=2),
        "int8row": RowInt8Embedding.from_embedding(rng.normal(size=(V, D)).astype("float32")),
        "int4row": RowInt4Embedding.from_embedding(rng.normal(size=(V, D)).astype("float32")),
        "full": make_embedding("full", V, D),
    }


def _model(layer):
    keras.utils.set_random_seed(0)
    x = keras.Input((), dtype="int32", name="item_id")
    return keras.Model({"item_id": x}, keras.layers.Dense(1, name="logit")(layer(x)))


def test_safe_ids_maps_out_of_vocabulary_to_zero():
    assert safe_ids(np.array([3, 5, -1, 10**6]), 5).numpy().tolist() == [3, 0, 0, 0]


def test_qr_rows_are_unique_pairs_and_param_count():
    layer = QREmbedding(1000, 4, num_buckets=32)
    layer(np.array([1]))
    assert layer.table_params == (32 + 32) * 4  # ceil(1000/32) = 32 quotient rows
    q = np.arange(1000) // 32
    r = np.arange(1000) % 32
    assert len(set(zip(q, r))) == 1000
    np.testing.assert_allclose(layer(np.array([33])).numpy(),
                               layer.quotient.numpy()[1:2] * layer.remainder.numpy()[1:2], rtol=1e-6)


def test_hash_buckets_reserve_zero_and_stay_in_range():
    for h in ("mod", "mult"):
        layer = HashedEmbedding(10**9, 4, num_buckets=100, hash=h)
        b = layer.bucket(np.array([0, 1, 2, 10**8, 10**9 - 1, -7])).numpy()
        assert b[0] == 0 and b[-1] == 0 and np.all((b[1:-1] >= 1) & (b[1:-1] < 100))
    assert HashedEmbedding(10**9, 4, num_buckets=100).bucket(np.array([1, 100])).numpy().tolist() == [1, 1]


def test_mixed_dims_follow_frequency():
    counts = np.r_[0, np.arange(99, 0, -1)]  # id 1 most frequent
    layer = MixedDimEmbedding.from_frequencies(counts, 16, dims=(16, 4), fractions=(0.2, 0.8))
    assert layer.block_sizes == [20, 80] and layer.dims == [16, 4]
    layer(np.array([1]))
    ranks = layer.ranks.numpy()
    assert ranks[0] == 0 and ranks[1] == 1 and ranks[99] == 99
    assert layer.table_params == 20 * 16 + 80 * 4 + 4 * 16 + 100
    assert layer.table_params < 100 * 16


def test_lowrank_and_accounting():
    layer = LowRankEmbedding(1000, 32, rank=4)
    layer(np.array([1]))
    assert layer.table_params == 1000 * 4 + 4 * 32
    assert layer.table_bytes(8) == layer.table_params


def test_row_int8_matches_float_table_per_row():
    rng = np.random.default_rng(1)
    table = rng.normal(size=(40, 6)).astype("float32") * np.linspace(0.01, 10, 40)[:, None]
    layer = RowInt8Embedding.from_embedding(table)
    got = layer(np.arange(40)).numpy()
    # per-row scale: the error of each row is at most half its step
    assert np.all(np.abs(got - table) <= np.abs(table).max(1, keepdims=True) / 127 * 0.5 + 1e-6)
    assert layer.table_bytes() == 40 * 6 + 4 * 40


@pytest.mark.parametrize("kind", ["qr", "hash", "mixed", "lowrank", "int8row", "int4row"])
def test_get_config_round_trip(kind):
    layer = _layers()[kind]
    out = layer(IDS).numpy()
    clone = type(layer).from_config(layer.get_config())
    clone(IDS)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(IDS).numpy(), out, rtol=1e-6)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(TFCompressError, match="rank"):
        LowRankEmbedding(100, 8, rank=20)
    with pytest.raises(TFCompressError, match="frequencies"):
        make_embedding("mixed", 100, 8)
    with pytest.raises(TFCompressError, match="one of"):
        make_embedding("bloom", 100, 8)


def test_every_layer_converts_to_int8_tflite_keeps_tables_int8_and_maps_oov(tmp_path):
    keras.utils.set_random_seed(0)
    layers = _layers()
    inputs = {k: keras.Input((), dtype="int32", name=k) for k in layers}
    outputs = [keras.layers.Dense(1, name=f"logit_{k}")(layer(inputs[k])) for k, layer in layers.items()]
    model = keras.Model(inputs, keras.layers.Concatenate(name="logits")(outputs))
    feed = {k: IDS for k in layers}
    ref = model.predict(feed, verbose=0)
    np.testing.assert_allclose(ref[-1], ref[0], rtol=1e-6)  # 10**6 -> id 0
    np.testing.assert_allclose(ref[-2], ref[0], rtol=1e-6)  # -5 -> id 0
    calib = np.random.default_rng(0).permutation(V).astype(np.int32)  # rare ids too (mixed-dim blocks)
    path = to_tflite(model, tmp_path / "all.tflite", mode="int8", num_calibration=V,
                     representative={k: calib for k in layers})
    out = TFLiteModel(path).predict(feed)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[-1], out[0])  # served as the unknown id, no crash
    np.testing.assert_array_equal(out[-2], out[0])
    for col, kind in enumerate(layers):
        err = np.abs(out[:, col] - ref[:, col]).max()
        assert err < 0.05 * np.abs(ref).max() + 0.005, (kind, err)  # one output scale for all columns
    info = tflite_embedding_bytes(path)
    assert info["dtypes"] and all(t in ("int8", "int32") for t in info["dtypes"].values()), info
    assert sum(t == "int8" for t in info["dtypes"].values()) >= len(layers), info  # every table int8
    assert embedding_params(model) > 0 and 0 < info["embedding"] < info["total"]


def test_row_int8_table_stays_int8_in_a_float_model(tmp_path):
    layer = _layers()["int8row"]
    model = _model(layer)
    path = to_tflite(model, tmp_path / "f.tflite", mode="float32")
    info = tflite_embedding_bytes(path)
    assert "int8" in info["dtypes"].values()
    np.testing.assert_allclose(TFLiteModel(path).predict({"item_id": IDS}).ravel(),
                               model.predict({"item_id": IDS}, verbose=0).ravel(), rtol=1e-5, atol=1e-6)


def test_row_int4_matches_a_numpy_reference_and_packs_two_values_per_byte():
    rng = np.random.default_rng(2)
    table = rng.normal(size=(30, 7)).astype("float32") * np.linspace(0.01, 5, 30)[:, None]  # odd width
    layer = RowInt4Embedding.from_embedding(table)
    scales = np.abs(table).max(1) / 7
    want = np.clip(np.round(table / scales[:, None]), -7, 7) * scales[:, None]  # NumPy reference
    np.testing.assert_allclose(layer(np.arange(30)).numpy(), want, rtol=1e-6, atol=1e-7)
    assert layer.values.shape == (30, 4) and layer.values.dtype == tf.int8
    assert layer.table_bytes() == 30 * 4 + 4 * 30
    np.testing.assert_allclose(layer(np.array([[3, -1], [10**6, 3]])).numpy()[1, 1], want[3], rtol=1e-6)
    np.testing.assert_allclose(layer(np.array([-1, 10**6])).numpy(), want[[0, 0]], rtol=1e-6)  # OOV -> row 0


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_row_int4_table_ships_packed_in_every_tflite_mode(tmp_path, mode):
    keras.utils.set_random_seed(0)
    table = np.random.default_rng(0).normal(size=(V, 8)).astype("float32")
    layer = RowInt4Embedding.from_embedding(table, name="emb_item_id")
    model = _model(layer)
    path = to_tflite(model, tmp_path / f"{mode}.tflite", mode=mode, num_calibration=V,
                     representative={"item_id": np.arange(V, dtype=np.int32)})
    info = tflite_embedding_bytes(path)
    assert list(info["dtypes"].values()).count("int8") >= 1 and info["embedding"] >= V * 4, info
    assert info["embedding"] <= layer.table_bytes() == V * 4 + 4 * V, info  # packed, not unpacked to int8
    ref = model.predict({"item_id": IDS}, verbose=0).ravel()
    got = TFLiteModel(path).predict({"item_id": IDS}).ravel()
    np.testing.assert_allclose(got, ref, atol=1e-5 if mode == "float32" else 0.05 * np.abs(ref).max() + 0.005)


def test_quantize_tables_swaps_only_big_tables_and_keeps_other_weights():
    keras.utils.set_random_seed(0)
    a, b = keras.Input((), dtype="int32", name="a"), keras.Input((), dtype="int32", name="b")
    x = keras.layers.Concatenate()([keras.layers.Embedding(500, 4, name="big")(a),
                                    keras.layers.Embedding(10, 4, name="small")(b)])
    m = keras.Model({"a": a, "b": b}, keras.layers.Dense(1, name="out")(x))
    for bits, cls in ((8, RowInt8Embedding), (4, RowInt4Embedding)):
        q = quantize_tables(m, bits, min_vocab=100)
        assert isinstance(q.get_layer("big"), cls) and type(q.get_layer("small")) is keras.layers.Embedding
        np.testing.assert_array_equal(q.get_layer("out").get_weights()[0], m.get_layer("out").get_weights()[0])
        feed = {"a": np.arange(10), "b": np.arange(10)}
        err = np.abs(q.predict(feed, verbose=0) - m.predict(feed, verbose=0)).max()
        assert 0 < err < (0.01 if bits == 8 else 0.1), (bits, err)
    with pytest.raises(TFCompressError, match="8 or 4"):
        quantize_tables(m, 2)
