"""Tests for tfcompress.bench: metrics, size, latency and report (real models, tiny and fast)."""
import itertools
import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from tfcompress import keras, tf
from tfcompress.bench import latency, metrics, plots, report, size
from tfcompress.errors import TFCompressError

# ---------------------------------------------------------------------------------------------------
# metrics


def _auc_pairs(y, s):
    """O(n^2) reference: fraction of (pos, neg) pairs ordered right, ties counting one half."""
    pos, neg = s[y == 1], s[y == 0]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return total / (len(pos) * len(neg))


def test_auc_matches_pair_count_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = rng.integers(0, 2, 60)
        s = np.round(rng.random(60), 1)  # many ties
        assert metrics.auc(y, s) == pytest.approx(_auc_pairs(y, s), abs=1e-12)
    assert metrics.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert metrics.auc([0, 1], [0.5, 0.5]) == 0.5
    assert metrics.auc(np.array([[0], [1]]), np.array([[0.1], [0.9]])) == 1.0


def test_metric_errors_are_clear():
    with pytest.raises(TFCompressError, match="both classes"):
        metrics.auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(TFCompressError, match="lengths differ"):
        metrics.auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(TFCompressError, match="0/1"):
        metrics.auc([0, 2], [0.1, 0.2])
    with pytest.raises(TFCompressError, match="NaN"):
        metrics.rmse([1.0, 2.0], [np.nan, 1.0])
    with pytest.raises(TFCompressError, match="lengths differ"):
        metrics.logloss([0, 1], [0.5])
    with pytest.raises(TFCompressError, match="sigmoid"):
        metrics.logloss([0, 1], [-1.0, 2.0])
    with pytest.raises(TFCompressError, match="list 0"):
        metrics.ndcg_at_k([[1, 0]], [[0.1, 0.2, 0.3]])
    with pytest.raises(TFCompressError, match="no list has a relevant"):
        metrics.recall_at_k([[0, 0]], [[0.1, 0.2]])
    with pytest.raises(TFCompressError, match="k must be"):
        metrics.hit_rate_at_k([[1, 0]], [[0.1, 0.2]], k=0)
    assert issubclass(TFCompressError, ValueError)


def test_logloss_accuracy_rmse():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.2, 0.4, 0.6])
    expected = -np.mean([math.log(0.9), math.log(0.8), math.log(0.4), math.log(0.4)])
    assert metrics.logloss(y, p) == pytest.approx(expected)
    assert metrics.logloss([1], [1.0]) == pytest.approx(-math.log(1 - 1e-7))
    assert metrics.accuracy(y, p) == 0.5
    assert metrics.accuracy(y, [2.0, -1.0, 0.5, -3.0], from_logits=True) == 1.0
    assert metrics.accuracy([0, 2], [[0.9, 0.05, 0.05], [0.1, 0.6, 0.3]]) == 0.5
    assert metrics.accuracy([[1, 0, 0], [0, 0, 1]], [[0.9, 0.05, 0.05], [0.1, 0.2, 0.7]]) == 1.0
    assert metrics.logloss([0, 1], [[0.8, 0.2], [0.5, 0.5]]) == pytest.approx(
        -(math.log(0.8) + math.log(0.5)) / 2)
    assert metrics.rmse([0, 0, 0, 0], [1, -1, 1, -1]) == 1.0


def test_ndcg_hand_example():
    # ranking by score: items 1 (rel 3), 0 (rel 0), 2 (rel 2), 3 (rel 1)
    rel = [[0, 3, 2, 1]]
    scores = [[0.8, 0.9, 0.3, 0.1]]
    dcg = 3 / math.log2(2) + 0 / math.log2(3) + 2 / math.log2(4) + 1 / math.log2(5)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(rel, scores, k=4) == pytest.approx(dcg / idcg)
    dcg3 = 3 + 2 / math.log2(4)
    idcg3 = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(rel, scores, k=3) == pytest.approx(dcg3 / idcg3)
    assert metrics.ndcg_at_k([[0, 1]], [[0.1, 0.9]], k=10) == 1.0


def test_recall_and_hit_rate_hand_examples_and_2d_arrays():
    rel = np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])  # last list has no relevant item: skipped
    scores = np.array([[0.9, 0.8, 0.1, 0.2], [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    assert metrics.recall_at_k(rel, scores, k=2) == pytest.approx((0.5 + 0.0) / 2)
    assert metrics.hit_rate_at_k(rel, scores, k=2) == pytest.approx(0.5)
    assert metrics.hit_rate_at_k(rel, scores, k=4) == 1.0
    # ragged lists
    assert metrics.recall_at_k([[1, 1, 0], [1, 0]], [[0.3, 0.2, 0.1], [0.1, 0.9]], k=1) == 0.25


def _brute_force_ties(fn, rel, scores, k):
    """Average of ``fn`` over every ordering of tied items (scores made distinct by permutation)."""
    values = []
    n = len(scores)
    for perm in itertools.permutations(range(n)):
        eps = np.array(perm) * 1e-6  # break ties in every possible way, order of distinct scores kept
        values.append(fn([rel], [np.asarray(scores) + eps], k=k))
    return np.mean(values)


@pytest.mark.parametrize("fn", [metrics.ndcg_at_k, metrics.recall_at_k, metrics.hit_rate_at_k])
def test_ranking_ties_are_expected_value_over_random_order(fn):
    rel = [1, 0, 2, 0, 1]
    scores = [0.5, 0.5, 0.5, 0.9, 0.1]
    for k in (1, 2, 3):
        assert fn([rel], [scores], k=k) == pytest.approx(_brute_force_ties(fn, rel, scores, k))
    assert metrics.hit_rate_at_k([[0, 0, 1, 0]], [[1, 1, 1, 1]], k=1) == pytest.approx(0.25)


def test_bootstrap_diff():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    good = np.clip(y * 0.6 + rng.random(400) * 0.5, 0, 1)
    noise = rng.random(400)
    assert metrics.bootstrap_diff(metrics.auc, y, good, good, n=50) == (0.0, 0.0, 0.0)
    mean, lo, hi = metrics.bootstrap_diff(metrics.auc, y, noise, good, n=100, seed=3)
    assert lo <= mean <= hi and lo > 0.2
    assert metrics.bootstrap_diff(metrics.auc, y, noise, good, n=100, seed=3) == (mean, lo, hi)
    mean_r, lo_r, hi_r = metrics.bootstrap_diff(metrics.auc, y, good, noise, n=100, seed=3)
    assert mean_r == pytest.approx(-mean) and hi_r < 0
    # ranking metric: rows are whole lists (ragged Python lists work)
    rel = [np.array([1, 0, 0]), np.array([0, 1]), np.array([0, 0, 1, 0])]
    sc = [np.array([0.9, 0.1, 0.2]), np.array([0.3, 0.8]), np.array([0.1, 0.2, 0.9, 0.3])]
    assert metrics.bootstrap_diff(metrics.ndcg_at_k, rel, sc, sc, n=10) == (0.0, 0.0, 0.0)
    with pytest.raises(TFCompressError, match="lengths differ"):
        metrics.bootstrap_diff(metrics.auc, y, good[:10], good)


# ---------------------------------------------------------------------------------------------------
# tiny models and .tflite files shared by the size and latency tests


class Cross(keras.layers.Layer):
    """A DCN-style cross layer: x0 * (x @ kernel + bias) + x."""

    def build(self, input_shape):
        d = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(d, d), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(d,), initializer="zeros")

    def call(self, x):
        return x * (tf.matmul(x, self.kernel) + self.bias) + x


def _dense_model():
    """Two inputs -> concat -> Dense(8) -> Dense(1); about half of the first kernel set to zero."""
    a = keras.Input((4,), name="user_id")
    b = keras.Input((3,), name="item")
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    model = keras.Model({"user_id": a, "item": b}, out)
    rng = np.random.default_rng(0)
    for layer in (model.get_layer("hidden"), model.get_layer("head")):
        k, bias = layer.get_weights()
        # magnitudes in [0.5, 1] so int8 quantization keeps every non-zero weight non-zero
        k = rng.choice([-1, 1], k.shape) * rng.uniform(0.5, 1.0, k.shape)
        k[rng.random(k.shape) < 0.5] = 0.0
        layer.set_weights([k.astype("float32"), np.full_like(bias, 0.1)])
    return model


def _convert(model, quantize):
    spec = {name: tf.TensorSpec([None, *t.shape[1:]], tf.float32, name=name)
            for name, t in model.input.items()}

    @tf.function(input_signature=[spec])
    def serve(inputs):
        return {"out": model(inputs)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], model)
    if quantize:
        rng = np.random.default_rng(0)

        def representative():
            for _ in range(20):
                yield {"user_id": rng.random((1, 4), dtype=np.float32),
                       "item": rng.random((1, 3), dtype=np.float32)}

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    model = _dense_model()
    paths = {}
    for kind, quantize in (("float", False), ("int8", True)):
        paths[kind] = str(folder / f"{kind}.tflite")
        with open(paths[kind], "wb") as f:
            f.write(_convert(model, quantize))
    rng = np.random.default_rng(1)
    inputs = {"user_id": rng.random((16, 4), dtype=np.float32),
              "item": rng.random((16, 3), dtype=np.float32)}
    return {"keras": model, "inputs": inputs, **paths}


# ---------------------------------------------------------------------------------------------------
# size


def test_file_and_gzip_bytes(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.bin").write_bytes(bytes(1000))
    (tmp_path / "sub" / "b.bin").write_bytes(os.urandom(500))
    assert size.file_bytes(tmp_path / "a.bin") == 1000
    assert size.file_bytes(tmp_path) == 1500
    assert size.gzip_bytes(tmp_path / "a.bin") < 100
    assert size.gzip_bytes(tmp_path) == (size.gzip_bytes(tmp_path / "a.bin")
                                         + size.gzip_bytes(tmp_path / "sub" / "b.bin"))
    with pytest.raises(TFCompressError, match="does not exist"):
        size.file_bytes(tmp_path / "missing.tflite")


def test_keras_sparsity_exact_with_nested_model_custom_layer_and_embedding():
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, name="inner_dense")],
                             name="tower")
    ids = keras.Input((1,), dtype="int32", name="ids")
    emb = keras.layers.Flatten()(keras.layers.Embedding(10, 6, embeddings_initializer="zeros")(ids))
    x = Cross(name="cross")(emb)
    x = inner(x)
    out = keras.layers.Dense(1, name="head")(x)
    model = keras.Model(ids, out)
    # zero known numbers of entries: cross 36 -> 9 zeros, inner 30 -> 12 zeros, head 5 -> 0 zeros
    cross = model.get_layer("cross")
    k = np.ones((6, 6), "float32")
    k.flat[:9] = 0
    cross.kernel.assign(k)
    dense = inner.get_layer("inner_dense")
    k = np.ones((6, 5), "float32")
    k.flat[:12] = 0
    dense.kernel.assign(k)
    model.get_layer("head").kernel.assign(np.ones((5, 1), "float32"))

    frame = size.keras_layer_sparsity(model)
    assert list(frame.columns) == ["layer", "weight", "shape", "params", "zeros", "sparsity"]
    assert sorted(frame["layer"]) == ["cross", "head", "inner_dense"]  # embedding excluded
    assert size.keras_sparsity(model) == pytest.approx(21 / (36 + 30 + 5))
    row = frame.set_index("layer").loc["cross"]
    assert (row["params"], row["zeros"], row["shape"]) == (36, 9, (6, 6))
    assert size.count_params(model) == 60 + 36 + 6 + 30 + 5 + 5 + 1
    assert size.keras_sparsity(keras.Sequential([keras.Input((2,)), keras.layers.Flatten()])) == 0.0
    with pytest.raises(TFCompressError, match="Keras"):
        size.keras_sparsity("not a model")


def test_keras_sparsity_sees_through_tfmot_wrappers():
    from tfcompress import tfmot

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="d1"),
                              keras.layers.Dense(1, name="d2")])
    k = model.get_layer("d1").kernel.numpy()
    k[:, :2] = 0  # 16 of 32 zeros, d2 dense: 0 of 4
    model.get_layer("d1").kernel.assign(k)
    expected = 16 / 36
    assert size.keras_sparsity(model) == pytest.approx(expected)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
    assert size.keras_sparsity(pruned) == pytest.approx(expected)
    qat = tfmot.quantization.keras.quantize_model(model)
    frame = size.keras_layer_sparsity(qat)
    assert sorted(frame["layer"]) == ["d1", "d2"]
    assert size.keras_sparsity(qat) == pytest.approx(expected)


def test_tflite_sparsity_and_params_match_keras(models):
    model = models["keras"]
    expected = size.keras_sparsity(model)
    assert 0.3 < expected < 0.7
    assert size.tflite_sparsity(models["float"]) == pytest.approx(expected)
    assert size.tflite_sparsity(models["int8"]) == pytest.approx(expected)
    frame = size.tflite_layer_sparsity(models["int8"])
    assert list(frame["layer"]) == ["FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert frame["params"].sum() == size.keras_layer_sparsity(model)["params"].sum()
    assert size.tflite_params(models["float"]) == size.count_params(model)
    assert size.tflite_params(models["int8"]) == size.count_params(model)
    with pytest.raises(TFCompressError, match="does not exist"):
        size.tflite_sparsity("/nonexistent/model.tflite")


# ---------------------------------------------------------------------------------------------------
# latency


def _sane(stats, runs, batch):
    assert isinstance(stats, latency.LatencyStats)
    assert 0 < stats.p50_us <= stats.p90_us <= stats.p99_us
    assert stats.runs == runs == len(stats.samples_us) and stats.batch_size == batch
    assert stats.mean_us > 0 and stats.std_us >= 0 and stats.throughput_per_s > 0
    d = stats.to_dict()
    assert d["runs"] == runs and "samples_us" not in d and d["throughput_per_s"] > 0
    json.dumps(d)


def test_keras_latency(models):
    stats = latency.keras_latency(models["keras"], models["inputs"], runs=30, warmup=3)
    _sane(stats, 30, 16)


def test_tflite_latency_float_and_int8(models):
    _sane(latency.tflite_latency(models["float"], models["inputs"], runs=30, warmup=3), 30, 16)
    _sane(latency.tflite_latency(models["int8"], models["inputs"], runs=30, warmup=3, xnnpack=False),
          30, 16)
    by_tensor_name = {f"serving_default_{k}:0": v for k, v in models["inputs"].items()}
    _sane(latency.tflite_latency(models["int8"], by_tensor_name, runs=5, warmup=0, threads=2), 5, 16)
    with pytest.raises(TFCompressError, match="item"):
        latency.tflite_latency(models["float"], {"user_id": models["inputs"]["user_id"]}, runs=2)
    with pytest.raises(TFCompressError, match="batch"):
        latency.tflite_latency(models["float"], {"user_id": np.zeros((2, 4)),
                                                 "item": np.zeros((3, 3))}, runs=2)
    with pytest.raises(TFCompressError, match="runs"):
        latency.tflite_latency(models["float"], models["inputs"], runs=0)


def test_compare_latency_interleaved(models):
    candidates = {"keras": ("keras", models["keras"]), "float": ("tflite", models["float"]),
                  "int8": ("tflite", models["int8"])}
    out = latency.compare_latency(candidates, models["inputs"], runs=20, warmup=2)
    assert set(out) == set(candidates)
    for stats in out.values():
        _sane(stats, 20, 16)
    with pytest.raises(TFCompressError, match="kind"):
        latency.compare_latency({"x": ("onnx", models["float"])}, models["inputs"], runs=2)


def test_gpu_request_without_gpu_is_a_clear_error(models):
    assert latency.gpu_devices() == []
    with pytest.raises(TFCompressError, match="no GPU is visible"):
        latency.keras_latency(models["keras"], models["inputs"], runs=2, device="/GPU:0")


# ---------------------------------------------------------------------------------------------------
# report


def _rows():
    return [
        {"name": "teacher", "size_bytes": 4_200_000, "auc": 0.812345, "p50_us": 1234.56, "sparsity": 0.0},
        {"name": "pruned", "size_bytes": 1_100_000, "auc": 0.80911, "p50_us": 456.78, "sparsity": 0.5},
        {"name": "int8", "size_bytes": 300_000, "auc": 0.8079, "p50_us": float("nan"), "sparsity": 0.5},
    ]


def test_report_save_and_formats(tmp_path):
    rep = report.Report(_rows(), title="CTR", meta={"seed": 0})
    paths = rep.save(tmp_path / "out")
    assert set(paths) == {"md", "csv", "json", "html"}
    for p in paths.values():
        assert os.path.getsize(p) > 0
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".tmp")]

    data = json.loads(open(paths["json"]).read())
    assert data["title"] == "CTR" and data["meta"] == {"seed": 0}
    assert [s["name"] for s in data["stages"]] == ["teacher", "pruned", "int8"]
    assert data["stages"][0]["auc"] == 0.812345 and data["stages"][0]["size_bytes"] == 4_200_000
    assert data["stages"][2]["p50_us"] is None

    csv = pd.read_csv(paths["csv"])
    assert csv["size_bytes"].tolist() == [4_200_000, 1_100_000, 300_000]

    table = [line for line in rep.to_markdown().splitlines() if line.startswith("|")]
    assert table[0] == "| name | size_bytes | auc | p50_us | sparsity |"
    assert len(table) == 2 + 3
    assert "| teacher | 4.01 MB | 0.8123 | 1234.6 | 0.0000 |" in table
    assert "| int8 | 292.97 KB | 0.8079 | - | 0.5000 |" in table

    page = open(paths["html"]).read()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page
    assert "<td>teacher</td>" in page
    assert "<table>" in rep._repr_html_() and rep._repr_markdown_() == rep.to_markdown()
    with pytest.raises(TFCompressError, match="rows"):
        report.Report("nope")


def test_plots_write_png(tmp_path, models):
    frame = pd.DataFrame(_rows())
    front = plots.pareto_front(frame)
    assert front["name"].tolist() == ["int8", "pruned", "teacher"]
    assert plots.pareto_front(frame.assign(auc=[0.9, 0.7, 0.8]))["name"].tolist() == ["int8", "teacher"]
    assert plots.pareto_front(frame, y="p50_us", higher_is_better=False)["name"].tolist() == ["pruned"]
    stats = latency.keras_latency(models["keras"], models["inputs"], runs=5, warmup=1)
    outputs = [
        plots.pareto_plot(frame, path=tmp_path / "pareto.png"),
        plots.latency_plot({"keras": stats, "raw": [10.0, 12.0, 30.0]}, tmp_path / "lat.png"),
        plots.sparsity_plot(size.keras_layer_sparsity(models["keras"]), tmp_path / "sp.png"),
    ]
    for p in outputs:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(p) > 1000
    rep = report.Report(frame).add_plot(tmp_path / "lat.png", "latency")
    assert rep.to_html().count("data:image/png;base64,") == 1
    with pytest.raises(TFCompressError, match="columns"):
        plots.pareto_plot(frame, y="ndcg")
