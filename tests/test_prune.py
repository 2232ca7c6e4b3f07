"""Tests of tfcompress.prune: bad input, 2:4 sparsity, structured pruning, low-rank, clustering + CQAT/PCQAT."""
import numpy as np
import pytest

from tfcompress import keras, tf
from tfcompress.bench import size
from tfcompress.errors import TFCompressError
from tfcompress.prune import (
    cluster_weights,
    factorize,
    fine_tune,
    is_m_by_n,
    m_by_n_violations,
    prune_low_magnitude,
    prune_m_by_n,
    prune_units,
    pruning_callbacks,
    shrinkable_layers,
    sparsity_report,
    strip,
    strip_clustering,
    tflite_unique_values,
    unique_values,
)
from tfcompress.quantize import quantize_aware

LOGITS = keras.losses.BinaryCrossentropy(from_logits=True)


# ---------------------------------------------------------------------------------------------------
# helpers


def _mlp(seed=0, din=12):
    keras.utils.set_random_seed(seed)
    x = keras.Input((din,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="h1")(x)
    h = keras.layers.Dense(8, activation="relu", name="h2")(h)
    return keras.Model(x, keras.layers.Dense(1, name="out")(h), name="mlp")


def _data(n=256, din=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, din)).astype("float32")
    y = (x[:, :3].sum(1, keepdims=True) > 0).astype("float32")
    return x, y


def _tflite(model, path, representative=None):
    """Local converter (float32, or full int8 with float I/O when ``representative`` is a dict)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        n = len(next(iter(representative.values())))

        def rep():
            for i in range(n):
                yield {k: v[i:i + 1] for k, v in representative.items()}

        converter.representative_dataset = rep
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path.write_bytes(converter.convert())
    return path


def _run_tflite(path, x):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    runner = interp.get_signature_runner()
    name = next(iter(runner.get_input_details()))
    return next(iter(runner(**{name: x}).values()))


class _Sub(keras.Model):
    def __init__(self):
        super().__init__()
        self.d = keras.layers.Dense(4)

    def call(self, x):
        return self.d(x)


def _subclassed():
    m = _Sub()
    m(np.zeros((1, 3), "float32"))
    return m


# ---------------------------------------------------------------------------------------------------
# 1. bad input


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, "half"])
def test_sparsity_outside_range_is_an_error(bad):
    with pytest.raises(TFCompressError, match="sparsity"):
        prune_low_magnitude(_mlp(), bad, total_steps=10)
    with pytest.raises(TFCompressError, match="fraction"):
        prune_units(_mlp(), bad)


def test_unknown_layer_names_list_the_candidates():
    m = _mlp()
    for call in (lambda: prune_low_magnitude(m, 0.5, total_steps=10, layers=["nope"]),
                 lambda: prune_units(m, 0.5, layers=["nope"]),
                 lambda: prune_units(m, {"nope": 0.5}),
                 lambda: factorize(m, rank=2, layers=["nope"]),
                 lambda: cluster_weights(m, 4, layers=["nope"])):
        with pytest.raises(TFCompressError, match=r"no layer named \['nope'\].*h1"):
            call()


def test_rank_larger_than_matrix_is_an_error():
    with pytest.raises(TFCompressError, match=r"rank 99 .*\(12, 16\).*\[1, 12\]"):
        factorize(_mlp(), rank=99, layers=["h1"])
    with pytest.raises(TFCompressError, match="rank 0"):
        factorize(_mlp(), rank={"h1": 0})
    with pytest.raises(TFCompressError, match="exactly one"):
        factorize(_mlp(), rank=2, energy=0.9)


def test_subclassed_model_is_an_error():
    m = _subclassed()
    for call in (lambda: prune_low_magnitude(m, 0.5, total_steps=10), lambda: prune_units(m, 0.5),
                 lambda: factorize(m, energy=0.9), lambda: cluster_weights(m, 4),
                 lambda: prune_m_by_n(m, total_steps=10)):
        with pytest.raises(TFCompressError, match="subclassed.*functional"):
            call()


def test_other_bad_input():
    m = _mlp()
    with pytest.raises(TFCompressError, match="sparsity_m_by_n"):
        prune_low_magnitude(m, 0.5, total_steps=10, sparsity_m_by_n=(4, 2))
    with pytest.raises(TFCompressError, match="PruneForLatencyOnXNNPack.*MobileNet"):
        prune_low_magnitude(m, 0.5, total_steps=10, pruning_policy="xnnpack")
    with pytest.raises(TFCompressError, match="pruning_policy"):
        prune_low_magnitude(m, 0.5, total_steps=10, pruning_policy="fast")
    with pytest.raises(TFCompressError, match="'out' cannot lose units: it is a model output"):
        prune_units(m, 0.5, layers=["out"])
    with pytest.raises(TFCompressError, match="importance"):
        prune_units(m, 0.5, importance="random")
    with pytest.raises(TFCompressError, match="needs data"):
        prune_units(m, 0.5, importance="taylor")
    with pytest.raises(TFCompressError, match="n_clusters"):
        cluster_weights(m, 1)
    with pytest.raises(TFCompressError, match="init"):
        cluster_weights(m, 4, init="best")
    m.trainable = False
    with pytest.raises(TFCompressError, match="frozen"):
        cluster_weights(m, 4)


# ---------------------------------------------------------------------------------------------------
# 2. m-by-n (2:4) sparsity


def test_2_by_4_pattern_on_stripped_weights():
    keras.utils.set_random_seed(1)
    x = keras.Input((6, 6, 3), name="img")
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(x)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(10, activation="relu", name="fc")(h)  # 128 inputs
    h = keras.layers.Dense(6, activation="relu", name="fc2")(h)  # 10 inputs: a padded last group
    model = keras.Model(x, keras.layers.Dense(1, name="out")(h))
    before = model.get_layer("fc").kernel.numpy()
    assert not is_m_by_n(before, 2, 4)
    p = prune_m_by_n(model, 2, 4, total_steps=8)
    p.compile("adam", "mse")
    rng = np.random.default_rng(0)
    p.fit(rng.normal(size=(32, 6, 6, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32"),
          batch_size=4, epochs=1, verbose=0, callbacks=pruning_callbacks())
    s = strip(p)
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_utils

    for name in ("conv", "fc", "fc2"):
        k = s.get_layer(name).kernel.numpy()
        assert m_by_n_violations(k, 2, 4) == 0, name
        assert pruning_utils.is_pruned_m_by_n(tf.constant(k), (2, 4))  # tfmot's own check agrees
    # groups of 4 along the input axis, per output unit: exactly half of a full group is zero
    fc = s.get_layer("fc").kernel.numpy()
    assert np.all(np.sum(fc.T.reshape(10, 32, 4) == 0, axis=-1) >= 2)
    assert abs(float(np.mean(fc == 0)) - 0.5) < 0.01
    assert not np.any(s.get_layer("out").kernel.numpy() == 0)  # output layer untouched
    report = sparsity_report(s).set_index("layer")
    assert report.loc["fc", "sparsity"] >= 0.5


# ---------------------------------------------------------------------------------------------------
# 3. structured pruning


def _dead_unit_model():
    """Dense(16) whose odd units have zero weights and bias, feeding Dense and a Concatenate."""
    keras.utils.set_random_seed(2)
    x = keras.Input((12,), name="x")
    h1 = keras.layers.Dense(16, activation="relu", name="h1")(x)
    d = keras.layers.Dropout(0.1, name="drop")(h1)
    h2 = keras.layers.Dense(8, activation="relu", name="h2")(d)
    cat = keras.layers.Concatenate(name="cat")([x, h2, d])
    model = keras.Model(x, keras.layers.Dense(1, name="out")(cat))
    k, b = model.get_layer("h1").get_weights()
    k[:, 1::2], b[1::2] = 0.0, 0.0
    b[0::2] = 0.1
    model.get_layer("h1").set_weights([k, b])
    return model


def test_prune_units_removing_dead_units_keeps_outputs(tmp_path):
    model = _dead_unit_model()
    small, report = prune_units(model, {"h1": 0.5}, importance="l1")
    assert small.get_layer("h1").units == 8
    assert small.get_layer("h2").kernel.shape == (8, 8)
    assert small.get_layer("out").kernel.shape == (12 + 8 + 8, 1)
    assert small.count_params() < model.count_params()
    x, _ = _data()
    np.testing.assert_allclose(small.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    r = report.set_index("layer")
    assert (r.loc["h1", "units_before"], r.loc["h1", "units_after"], r.loc["h1", "status"]) == (16, 8, "pruned")
    a = _tflite(model, tmp_path / "a.tflite")
    b = _tflite(small, tmp_path / "b.tflite")
    assert size.file_bytes(b) < size.file_bytes(a)
    assert size.tflite_params(b) < size.tflite_params(a)
    np.testing.assert_allclose(_run_tflite(b, x[:4]), model.predict(x[:4], verbose=0), atol=1e-4)


def test_prune_units_conv_through_batchnorm_pool_flatten():
    keras.utils.set_random_seed(3)
    x = keras.Input((8, 8, 3), name="img")
    h = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(x)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Conv2D(6, 3, activation="relu", name="c2")(h)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.Flatten(name="flat")(h)
    model = keras.Model(x, keras.layers.Dense(2, name="out")(h))
    k, b = model.get_layer("c2").get_weights()
    k[..., :3], b[:3] = 0.0, 0.0  # filters 0..2 are dead (relu(0) = 0)
    model.get_layer("c2").set_weights([k, b])
    small, report = prune_units(model, {"c1": 0.25, "c2": 0.5}, importance="l2")
    assert small.get_layer("c1").filters == 6 and small.get_layer("c2").filters == 3
    assert small.get_layer("bn").get_weights()[0].shape == (6,)
    assert small.get_layer("out").kernel.shape == (2 * 2 * 3, 2)
    xi = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    # c1 lost real filters, so compare against the original with those filters' outputs zeroed downstream
    keep = set(np.argsort(-np.sqrt((model.get_layer("c1").kernel.numpy() ** 2).sum((0, 1, 2))))[:6])
    ref = keras.models.clone_model(model)
    ref.set_weights(model.get_weights())
    k2, b2 = ref.get_layer("c2").get_weights()
    gone = [i for i in range(8) if i not in keep]
    bn = ref.get_layer("bn")
    gamma, beta, mean, var = bn.get_weights()
    gamma[gone], beta[gone] = 0.0, 0.0
    bn.set_weights([gamma, beta, mean, var])
    np.testing.assert_allclose(small.predict(xi, verbose=0), ref.predict(xi, verbose=0), atol=1e-4)


def test_prune_units_ctr_model_skips_cross_and_taylor_runs():
    import tfcompress

    d = tfcompress.data.make_ecommerce(events=1000, seed=0)
    model = tfcompress.models.ctr_student(d.spec, hidden=(32, 16))
    reasons = shrinkable_layers(model)
    assert reasons["dense_0"] is None and reasons["dense_1"] is None and "output" in reasons["logit"]
    ds = tfcompress.data.to_dataset(d.events, d.spec, batch_size=256)
    small, report = prune_units(model, 0.5, importance="taylor", data=ds, loss=LOGITS, batches=2)
    assert small.get_layer("dense_0").units == 16 and small.get_layer("dense_1").units == 8
    assert small.get_layer("cross_0").kernel.shape == model.get_layer("cross_0").kernel.shape
    assert small.count_params() < model.count_params()
    history = fine_tune(small, ds.take(2), teacher=model, epochs=1)
    assert np.isfinite(history.history["loss"][-1])
    assert model.trainable  # the Distiller froze the teacher only while fine-tuning


# ---------------------------------------------------------------------------------------------------
# 4. low-rank factorization


def test_factorize_dense_and_embedding_match_numpy_svd():
    keras.utils.set_random_seed(4)
    ids = keras.Input((), dtype="int32", name="ids")
    num = keras.Input((10,), name="num")
    e = keras.layers.Embedding(40, 12, name="emb")(ids)
    h = keras.layers.Concatenate(name="cat")([e, num])
    h = keras.layers.Dense(24, activation="relu", name="h")(h)
    model = keras.Model({"ids": ids, "num": num}, keras.layers.Dense(1, name="out")(h))
    small, report = factorize(model, rank={"emb": 4, "h": 5})
    r = report.set_index("layer")

    def truncated(w, k):
        u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
        return (u[:, :k] * s[:k]) @ vt[:k]

    table = model.get_layer("emb").get_weights()[0]
    prod = small.get_layer("emb").get_weights()[0] @ small.get_layer("emb_v").get_weights()[0]
    np.testing.assert_allclose(prod, truncated(table, 4), atol=1e-5)
    kernel, bias = model.get_layer("h").get_weights()
    prod = small.get_layer("h_u").get_weights()[0] @ small.get_layer("h").get_weights()[0]
    np.testing.assert_allclose(prod, truncated(kernel, 5), atol=1e-5)
    np.testing.assert_array_equal(small.get_layer("h").get_weights()[1], bias)
    s = np.linalg.svd(kernel, compute_uv=False)
    assert r.loc["h", "rel_error"] == pytest.approx(np.sqrt((s[5:] ** 2).sum() / (s ** 2).sum()), rel=1e-5)
    assert (r.loc["h", "params_before"], r.loc["h", "params_after"]) == (22 * 24 + 24, 5 * (22 + 24) + 24)
    assert r.loc["emb", "status"] == "factorized" and list(r.index) == ["emb", "h"]
    # the factorized model computes exactly the model with truncated matrices
    ref = keras.models.clone_model(model)
    ref.set_weights(model.get_weights())
    ref.get_layer("emb").set_weights([truncated(table, 4)])
    ref.get_layer("h").set_weights([truncated(kernel, 5), bias])
    feed = {"ids": np.arange(40, dtype="int32"), "num": np.random.default_rng(0).normal(size=(40, 10)).astype("f4")}
    np.testing.assert_allclose(small.predict(feed, verbose=0), ref.predict(feed, verbose=0), atol=1e-4)
    assert small.count_params() < model.count_params()


def test_factorize_energy_and_budget():
    model = _mlp(din=32)
    small, report = factorize(model, energy=0.5, include_embeddings=False)
    r = report.set_index("layer")
    assert r.loc["h1", "energy"] >= 0.5 and r.loc["h1", "status"] == "factorized"
    assert r.loc["out", "status"].startswith("skipped")  # a (8, 1) kernel cannot shrink
    assert small.get_layer("h1_u").units == r.loc["h1", "rank"]
    _, report = factorize(model, param_budget=0.25)
    r = report.set_index("layer")
    assert r.loc["h1", "rank"] == int(0.25 * 32 * 16 / 48)
    assert r.loc["h1", "params_after"] <= 0.25 * 32 * 16 + 16


# ---------------------------------------------------------------------------------------------------
# 5. clustering and collaborative QAT


def _train(model, x, y, steps=8, callbacks=None):
    model.compile(keras.optimizers.Adam(1e-2), LOGITS)
    model.fit(x, y, batch_size=len(x) // steps, epochs=1, verbose=0, callbacks=callbacks or [])
    return model


def test_clustering_then_cqat_keeps_clusters():
    x, y = _data()
    c = _train(cluster_weights(_mlp(), 8), x, y)
    s = strip_clustering(c)
    uniques = unique_values(s)
    assert uniques["h1"] <= 8 and uniques["h2"] <= 8 and uniques["out"] <= 8
    q = _train(quantize_aware(s, preserve="clusters"), x, y)
    after = sparsity_report(q).set_index("layer")["unique"]
    assert after["h1"] <= 8 and after["h2"] <= 8 and after["out"] <= 8


def test_pruning_clustering_then_pcqat_keeps_zeros_and_clusters(tmp_path):
    x, y = _data()
    p = _train(prune_low_magnitude(_mlp(), 0.5, total_steps=8, skip_output=True), x, y,
               callbacks=pruning_callbacks())
    pruned = strip(p)
    assert size.keras_sparsity(pruned) > 0.4
    c = _train(cluster_weights(pruned, 6, layers=["h1", "h2"], preserve_sparsity=True), x, y)
    s = strip_clustering(c)
    assert unique_values(s)["h1"] <= 6 and size.keras_layer_sparsity(s).set_index("layer").loc["h1", "sparsity"] >= 0.5
    q = _train(quantize_aware(s, preserve="both"), x, y)
    path = _tflite(q, tmp_path / "pcqat.tflite", representative={"x": x[:16]})
    frame = tflite_unique_values(path)
    sparsity = size.tflite_layer_sparsity(path)
    assert len(frame) == 3 and frame["dtype"].eq("int8").all()
    assert frame["max_unique_per_channel"].iloc[:2].max() <= 6  # h1, h2: 6 clusters
    assert frame["max_unique_per_channel"].iloc[2] <= 8  # out: clustered by default (8 weights)
    # h1, h2 keep their zeros (tfmot 0.8.1 alone loses them when another layer has none: see qat.py)
    assert sparsity["sparsity"].iloc[:2].min() >= 0.5


# ---------------------------------------------------------------------------------------------------
# 6. the XNNPACK pruning policy


def _mobilenet_like(seed=5):
    keras.utils.set_random_seed(seed)
    x = keras.Input((16, 16, 3), name="img")
    h = keras.layers.ZeroPadding2D(1)(x)
    h = keras.layers.Conv2D(8, 3, strides=2, padding="valid", name="stem")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(h)
    h = keras.layers.Conv2D(16, 1, name="pw1")(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(16, 1, name="pw2")(h)
    h = keras.layers.GlobalAveragePooling2D(keepdims=True)(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(x, keras.layers.Dense(3, name="out")(h))


def test_xnnpack_policy_prunes_only_1x1_convs():
    model = _mobilenet_like()
    p = prune_low_magnitude(model, 0.75, total_steps=4, pruning_policy="xnnpack")
    wrapped = sorted(l.layer.name for l in p.layers if hasattr(l, "pruning_vars"))
    assert wrapped == ["pw1", "pw2"]
    p.compile("adam", "mse")
    rng = np.random.default_rng(0)
    p.fit(rng.normal(size=(16, 16, 16, 3)).astype("f4"), rng.normal(size=(16, 3)).astype("f4"), batch_size=4,
          verbose=0, callbacks=pruning_callbacks())
    sp = size.keras_layer_sparsity(strip(p)).set_index("layer")["sparsity"]
    assert sp["pw1"] >= 0.7 and sp["pw2"] >= 0.7 and sp["stem"] == 0.0


# ---------------------------------------------------------------------------------------------------
# Names: strip_pruning (tfmot's) with strip as its alias; one sparsity measure behind every public name


def test_strip_is_an_alias_of_strip_pruning():
    from tfcompress.prune import strip_pruning

    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="h"), keras.layers.Dense(1, name="o")])
    wrapped = prune_low_magnitude(m, 0.5, total_steps=4)
    assert [l.name for l in strip(wrapped).layers] == [l.name for l in strip_pruning(wrapped).layers] == ["h", "o"]


def test_one_sparsity_measure_behind_every_name():
    from tfcompress import prune
    from tfcompress.prune import sparsity
    from tfcompress.prune.unstructured import layer_sparsity

    for name in ("keras_sparsity", "keras_layer_sparsity", "tflite_sparsity", "tflite_layer_sparsity"):
        assert getattr(size, name) is getattr(sparsity, name) is getattr(prune, name)
    assert layer_sparsity is sparsity.layer_sparsity
    assert prune.sparsity_report is sparsity.sparsity_report
