"""Tests for the feature, relational, ranking, multi-teacher/-task and offline distillers."""
import numpy as np
import pytest

import tfcompress
from tfcompress import keras, tf
from tfcompress.distill import FeatureDistiller, RankingDistiller, RelationalDistiller, make_list_batches
from tfcompress.errors import TFCompressError

from test_distill import data, mlp


def _np_feature_mse(s, t):
    return ((s - t) ** 2).mean(-1)


def test_feature_distiller_matches_numpy_and_learns_projection():
    x, y = data(64)
    teacher, student = mlp(hidden=16, seed=1), mlp(hidden=8, seed=2)
    d = FeatureDistiller(student, teacher, pairs={"hidden": "hidden"}, beta=2.0, alpha=0.5)
    proj = d.projections[0]
    assert proj is not None and proj.kernel.shape == (8, 16)
    assert all(not v.name.startswith("project_") for v in student.trainable_variables)
    assert len(d.student_variables) == len(student.trainable_variables) + 1
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = d.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    hs = keras.Model(student.input, student.get_layer("hidden").output).predict(x, verbose=0)
    ht = keras.Model(teacher.input, teacher.get_layer("hidden").output).predict(x, verbose=0)
    ref = _np_feature_mse(hs @ proj.kernel.numpy(), ht).mean()
    np.testing.assert_allclose(logs["feature_loss"], ref, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], 0.5 * logs["student_loss"] + 0.5 * 9 * logs["distillation_loss"]
                               + 2.0 * ref, rtol=1e-4)
    k0 = proj.kernel.numpy().copy()
    d.compile(optimizer=keras.optimizers.Adam(0.01))
    h = d.fit(x, y, epochs=5, batch_size=16, verbose=0).history
    assert h["feature_loss"][-1] < h["feature_loss"][0]
    assert not np.allclose(k0, proj.kernel.numpy())  # the projection trains


def test_feature_distiller_bad_layers():
    with pytest.raises(TFCompressError, match=r"has no layer 'nope'; its layers are \['hidden', 'out'\]"):
        FeatureDistiller(mlp(), mlp(), pairs={"nope": "hidden"})
    with pytest.raises(TFCompressError, match="teacher .* has no layer 'zzz'"):
        FeatureDistiller(mlp(), mlp(), pairs={"hidden": "zzz"})
    with pytest.raises(TFCompressError, match="non-empty dict"):
        FeatureDistiller(mlp(), mlp(), pairs=[])

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(1)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.zeros((1, 4), "float32"))
    with pytest.raises(TFCompressError, match="subclassed"):
        FeatureDistiller(sub, mlp(), pairs={"d": "hidden"})


@pytest.mark.parametrize("method", ["similarity", "infonce"])
def test_relational_losses_match_numpy(method):
    x, y = data(32)
    teacher, student = mlp(hidden=16, seed=1), mlp(hidden=8, seed=2)
    d = RelationalDistiller(student, teacher, student_layer="hidden", teacher_layer="hidden", method=method,
                            tau=0.5, alpha=0.0)
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = d.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    hs = keras.Model(student.input, student.get_layer("hidden").output).predict(x, verbose=0)
    ht = keras.Model(teacher.input, teacher.get_layer("hidden").output).predict(x, verbose=0)

    def norm(a):
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-6)

    if method == "similarity":
        assert d.projections[0] is None
        ref = ((norm(hs) @ norm(hs).T - norm(ht) @ norm(ht).T) ** 2).mean()
    else:
        z = norm(hs @ d.projections[0].kernel.numpy()) @ norm(ht).T / 0.5
        z = z - z.max(1, keepdims=True)
        ref = -(np.diag(z) - np.log(np.exp(z).sum(1))).mean()
    np.testing.assert_allclose(logs["feature_loss"], ref, rtol=1e-4)
    d.compile(optimizer=keras.optimizers.Adam(0.02))
    h = d.fit(x, epochs=5, batch_size=32, verbose=0).history
    assert h["feature_loss"][-1] < h["feature_loss"][0]
    with pytest.raises(TFCompressError, match="method"):
        RelationalDistiller(mlp(), mlp(), student_layer="hidden", teacher_layer="hidden", method="rkd")


# ---------------------------------------------------------------------------------------------------
# ranking

@pytest.fixture(scope="module")
def shop():
    return tfcompress.data.make_ecommerce(events=1000, seed=0)


def test_make_list_batches(shop):
    x, y = make_list_batches(shop.events, shop.spec, list_size=6, as_arrays=True, seed=1)
    assert set(x) == set(shop.spec.names) and y.shape[1] == 6
    assert all(v.shape == y.shape for v in x.values())
    for name in ("user_id", "age_bucket", "region", "device"):
        assert (x[name] == x[name][:, :1]).all()
    # every real impression appears exactly once; padding adds only label-0 rows
    assert y.sum() == shop.events["click"].sum()
    assert y.shape[0] * 6 >= len(shop.events)
    x2, y2 = make_list_batches(shop.events, shop.spec, list_size=6, as_arrays=True, min_positives=1)
    assert (y2.sum(1) >= 1).all()
    with pytest.raises(TFCompressError, match="list_size"):
        make_list_batches(shop.events, shop.spec, list_size=1)
    with pytest.raises(TFCompressError, match="user_column"):
        make_list_batches(shop.events, shop.spec, list_size=4, user_column="shopper")


@pytest.mark.parametrize("method", ["listwise", "pairwise", "topk"])
def test_ranking_distillers_learn_teacher_order(shop, method):
    ds = make_list_batches(shop.events, shop.spec, list_size=8, batch_size=32, seed=0)
    keras.utils.set_random_seed(0)
    teacher = tfcompress.models.ctr_student(shop.spec, embedding_dim=4, hidden=(8,), name="t")
    student = tfcompress.models.ctr_student(shop.spec, embedding_dim=4, hidden=(8,), name="s")
    d = RankingDistiller(student, teacher, method=method, top_k=3, alpha=0.0, temperature=1.0)
    d.compile(optimizer=keras.optimizers.Adam(0.02), metrics=[keras.metrics.AUC(from_logits=True, name="auc")])
    x, _ = next(iter(ds))
    t = d.teacher_outputs(x).numpy()
    s0 = d.student_outputs(x, False).numpy()
    assert t.shape == (32, 8)
    # the scores are the pointwise model's on the flattened rows
    flat = {k: v.numpy().reshape(-1) for k, v in x.items()}
    np.testing.assert_allclose(t, teacher.predict(flat, verbose=0).reshape(32, 8), rtol=1e-5, atol=1e-6)
    h = d.fit(ds, epochs=3, verbose=0).history
    assert h["distillation_loss"][-1] < h["distillation_loss"][0]
    s1 = d.student_outputs(x, False).numpy()

    def agreement(s):  # fraction of teacher-ordered pairs the student orders the same way
        dt, ds_ = t[:, :, None] - t[:, None, :], s[:, :, None] - s[:, None, :]
        return ((dt > 0) & (ds_ > 0)).sum() / (dt > 0).sum()

    assert agreement(s1) > agreement(s0)
    with pytest.raises(TFCompressError, match="method"):
        RankingDistiller(student, teacher, method="lambdarank")


# ---------------------------------------------------------------------------------------------------
# multi-teacher, multi-task

@pytest.mark.parametrize("objective,outputs", [("binary", 1), ("multiclass", 3), ("regression", 2)])
def test_multi_teacher_soft_target_matches_numpy(objective, outputs):
    from tfcompress.distill import MultiTeacherDistiller

    x, y = data(32, outputs=outputs, kind=objective)
    teachers = [mlp(outputs=outputs, seed=s) for s in (1, 3)]
    student = mlp(outputs=outputs, seed=2)
    d = MultiTeacherDistiller(student, teachers, weights=[3, 1], objective=objective, alpha=0.0, temperature=2.0)
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = d.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    t = [m.predict(x, verbose=0) for m in teachers]
    s = student.predict(x, verbose=0)
    if objective == "binary":
        sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
        p = 0.75 * sig(t[0] / 2) + 0.25 * sig(t[1] / 2)
        ref = -(p * np.log(sig(s / 2)) + (1 - p) * np.log(1 - sig(s / 2))).mean()
    elif objective == "multiclass":
        sm = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)  # noqa: E731
        p = 0.75 * sm(t[0] / 2) + 0.25 * sm(t[1] / 2)
        ref = (p * (np.log(p) - np.log(sm(s / 2)))).sum(-1).mean()
    else:
        ref = ((0.75 * t[0] + 0.25 * t[1] - s) ** 2).mean()
    np.testing.assert_allclose(logs["distillation_loss"], ref, rtol=1e-4)
    with pytest.raises(TFCompressError, match="weights"):
        MultiTeacherDistiller(student, teachers, weights=[1, 2, 3], objective=objective)


def test_multi_teacher_learned_weights_train():
    from tfcompress.distill import MultiTeacherDistiller

    x, y = data(64)
    d = MultiTeacherDistiller(mlp(seed=2), [mlp(seed=1), mlp(seed=3)], weights="learned", alpha=0.5)
    d.compile(optimizer=keras.optimizers.Adam(0.05))
    d.fit(x, y, epochs=3, batch_size=16, verbose=0)
    w = d.teacher_weights().numpy()
    assert abs(w.sum() - 1) < 1e-6 and not np.allclose(w, [0.5, 0.5])


def test_multi_task_distiller_heads_and_metrics():
    from tfcompress.distill import MultiTaskDistiller

    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    h = keras.layers.Dense(8, activation="relu")(inp)
    student = keras.Model(inp, {"click": keras.layers.Dense(1, name="click")(h),
                                "rating": keras.layers.Dense(1, name="rating")(h)})
    teachers = {"click": mlp(seed=1), "rating": mlp(seed=3)}
    x, yc = data(64)
    y = {"click": yc, "rating": x[:, :1] * 2}
    d = MultiTaskDistiller(student, teachers, objectives={"click": "binary", "rating": "regression"},
                           head_weights={"rating": 0.5}, alpha=0.5, temperature=2.0)
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = d.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["distillation_loss"], 4 * logs["click_distillation_loss"]
                               + 0.5 * logs["rating_distillation_loss"], rtol=1e-4)
    s = student.predict(x, verbose=0)
    np.testing.assert_allclose(logs["rating_distillation_loss"],
                               ((s["rating"] - teachers["rating"].predict(x, verbose=0)) ** 2).mean(), rtol=1e-4)
    d.compile(optimizer="adam")
    h = d.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    assert {"click_student_loss", "rating_student_loss", "loss"} <= set(h)
    with pytest.raises(TFCompressError, match="output names"):
        MultiTaskDistiller(student, {"click": mlp()}, objectives={"click": "binary"})


# ---------------------------------------------------------------------------------------------------
# offline

def test_offline_equals_online_and_any_teacher_kind(tmp_path):
    from tfcompress.distill import Distiller, OfflineDistiller, cache_teacher_outputs, cached_dataset, read_manifest

    x, y = data(100)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    teacher = mlp(seed=1)
    path = cache_teacher_outputs(teacher, ds, tmp_path / "cache", chunk_size=32)
    m = read_manifest(path)
    assert m["examples"] == 100 and [c["examples"] for c in m["chunks"]] == [32, 32, 32, 4]
    assert m["teacher"].startswith("tf_keras:")
    with pytest.raises(TFCompressError, match="already exists"):
        cache_teacher_outputs(teacher, ds, path)

    def train(offline):
        student = mlp(seed=2)
        keras.utils.set_random_seed(7)
        if offline:
            d, data_ = OfflineDistiller(student, alpha=0.3, temperature=2.0), cached_dataset(path, batch_size=16)
        else:
            d, data_ = Distiller(student, teacher, alpha=0.3, temperature=2.0), ds
        d.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        h = d.fit(data_, epochs=3, verbose=0).history
        return student.get_weights(), h

    w_on, h_on = train(False)
    w_off, h_off = train(True)
    for a, b in zip(w_on, w_off):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # measured max |diff|: 6e-8
    np.testing.assert_allclose(h_on["loss"], h_off["loss"], rtol=1e-6)

    # SavedModel folder, TFLite file and plain callable teachers give the Keras teacher's outputs
    ref = teacher.predict(x, verbose=0)
    sm_dir = str(tmp_path / "teacher_sm")
    teacher.save(sm_dir, save_format="tf")
    tfl = tmp_path / "teacher.tflite"
    tfl.write_bytes(tf.lite.TFLiteConverter.from_keras_model(teacher).convert())
    class Keras3Like:  # anything with predict(x, verbose=0), e.g. a Keras 3 / keras-hub model
        def predict(self, b, verbose=0):
            return teacher(b).numpy()

    for name, t in (("sm", sm_dir), ("tfl", str(tfl)), ("fn", lambda b: teacher(b).numpy()),
                    ("predict", Keras3Like())):
        p = cache_teacher_outputs(t, ds, tmp_path / f"cache_{name}", chunk_size=64)
        got = np.concatenate([b[0][1].numpy() for b in cached_dataset(p, batch_size=50)])
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # without labels: alpha=0 works, alpha>0 is refused
    p = cache_teacher_outputs(teacher, ds.map(lambda a, b: a), tmp_path / "nolabels")
    d = OfflineDistiller(mlp(seed=2), alpha=0.0)
    d.compile()
    d.fit(cached_dataset(p, batch_size=32), verbose=0)
    d = OfflineDistiller(mlp(seed=2), alpha=0.5)
    d.compile()
    with pytest.raises(TFCompressError, match="no labels"):
        d.fit(cached_dataset(p, batch_size=32), verbose=0)
    assert read_manifest(tmp_path / "cache_predict")["teacher"] == "predict:Keras3Like"
    with pytest.raises(TFCompressError, match="neither a .tflite file"):
        cache_teacher_outputs(str(tmp_path / "missing.bin"), ds, tmp_path / "c2")
    with pytest.raises(TFCompressError, match="not a teacher cache"):
        cached_dataset(tmp_path)
    with pytest.raises(TFCompressError, match="cached_dataset"):
        d.fit(x, y, verbose=0)


# ---------------------------------------------------------------------------------------------------
# save and resume

def test_student_reloads_and_checkpoint_resumes_exactly(tmp_path):
    from tfcompress.distill import Distiller

    x, y = data(64)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)

    def make():
        d = Distiller(mlp(seed=2), mlp(seed=1), alpha=0.3)
        d.compile(optimizer=keras.optimizers.Adam(0.01))
        return d

    straight = make()
    straight.fit(ds, epochs=4, verbose=0)
    first = make()
    first.fit(ds, epochs=2, verbose=0)
    first.temperature.assign(5.0)
    prefix = first.checkpoint().save(str(tmp_path / "ckpt" / "d"))
    resumed = make()
    resumed.temperature.assign(1.0)
    resumed.checkpoint().restore(prefix).assert_consumed()
    assert float(resumed.temperature.numpy()) == 5.0
    resumed.temperature.assign(3.0)
    assert int(resumed.optimizer.iterations.numpy()) == 8
    resumed.fit(ds, epochs=2, verbose=0)
    for a, b in zip(straight.student.get_weights(), resumed.student.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # the student alone reloads with plain keras.models.load_model (no custom objects)
    resumed.student.save(tmp_path / "student.keras")
    loaded = keras.models.load_model(tmp_path / "student.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), resumed.student.predict(x, verbose=0), rtol=1e-6)


def test_feature_distiller_matches_transformer_hidden_states_and_attention_maps():
    def block(heads, width, seed):
        keras.utils.set_random_seed(seed)
        tokens = keras.Input((6,), dtype="int32")
        h = keras.layers.Embedding(20, width, name="emb")(tokens)
        att, scores = keras.layers.MultiHeadAttention(heads, key_dim=4, name="mha")(h, h, return_attention_scores=True)
        h = keras.layers.LayerNormalization(name="hidden")(h + att)
        out = keras.layers.Dense(1, name="out")(keras.layers.GlobalAveragePooling1D()(h))
        return keras.Model(tokens, out)

    teacher, student = block(4, 16, 1), block(2, 8, 2)
    d = FeatureDistiller(student, teacher, pairs={"hidden": "hidden", "mha[1]": "mha[1]"}, alpha=0.0)
    assert d.projections[0] is not None and d.projections[1] is None  # attention maps: head-averaged
    x = np.random.default_rng(0).integers(0, 20, (32, 6)).astype("int32")
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    got = d.evaluate(x, batch_size=32, verbose=0, return_dict=True)["feature_loss"]
    tap = lambda m: keras.Model(m.input, [m.get_layer("hidden").output, m.get_layer("mha").output[1]])  # noqa
    hs, as_ = tap(student).predict(x, verbose=0)
    ht, at = tap(teacher).predict(x, verbose=0)
    # same 6 positions: the projection maps channels (8 -> 16, a per-position Dense), not the flat 48 -> 96
    assert d.projections[0].kernel.shape == (8, 16)
    hid = (((hs @ d.projections[0].kernel.numpy()) - ht).reshape(32, -1) ** 2).mean(-1)
    att = ((as_.mean(1) - at.mean(1)).reshape(32, -1) ** 2).mean(-1)
    np.testing.assert_allclose(got, ((hid + att) / 2).mean(), rtol=1e-4)
    d.compile(optimizer=keras.optimizers.Adam(0.01))
    h = d.fit(x, epochs=3, batch_size=16, verbose=0).history
    assert h["feature_loss"][-1] < h["feature_loss"][0]
    with pytest.raises(TFCompressError, match="has 2 outputs: name one as 'mha\\[i\\]'"):
        FeatureDistiller(student, teacher, pairs={"mha": "mha[1]"})
    with pytest.raises(TFCompressError, match="no output \\[5\\]"):
        FeatureDistiller(student, teacher, pairs={"mha[5]": "mha[1]"})


def test_offline_cache_from_a_real_keras3_keras_nlp_teacher(tmp_path):
    """A Keras 3 keras-nlp classifier (built from config, no download) teaches a tf_keras student offline."""
    keras_nlp = pytest.importorskip("keras_nlp")
    from tfcompress.distill import OfflineDistiller, cache_teacher_outputs, cached_dataset, read_manifest

    backbone = keras_nlp.models.BertBackbone(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
                                             intermediate_dim=16, max_sequence_length=12)
    teacher = keras_nlp.models.BertTextClassifier(backbone, num_classes=3, preprocessor=None)
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(1, 50, (40, 12)).astype("int32"), "segment_ids": np.zeros((40, 12), "int32"),
         "padding_mask": np.ones((40, 12), "int32")}
    y = rng.integers(0, 3, 40).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    path = cache_teacher_outputs(teacher, ds, tmp_path / "k3", chunk_size=16)
    assert read_manifest(path)["teacher"] == "predict:BertTextClassifier"
    got = np.concatenate([b[0][1].numpy() for b in cached_dataset(path, batch_size=64, shuffle=False)])
    np.testing.assert_allclose(got, teacher.predict(x, verbose=0), rtol=1e-5, atol=1e-6)

    inputs = {k: keras.Input((12,), dtype="int32", name=k) for k in x}
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 8)(inputs["token_ids"]))
    student = keras.Model(inputs, keras.layers.Dense(3)(h))
    d = OfflineDistiller(student, alpha=0.5, temperature=2.0, objective="multiclass")
    d.compile(optimizer=keras.optimizers.Adam(1e-2))
    hist = d.fit(cached_dataset(path, batch_size=16), epochs=3, verbose=0).history
    assert np.isfinite(hist["loss"]).all() and hist["loss"][-1] < hist["loss"][0]


def test_feature_distiller_projects_conv_maps_channelwise():
    """FitNets' regressor on conv maps: a 1x1 projection of channels (Cs x Ct weights), matched to a NumPy reference."""
    def cnn(width, seed):
        keras.utils.set_random_seed(seed)
        x = keras.Input((8, 8, 1))
        h = keras.layers.Conv2D(width, 3, padding="same", name="feat")(x)
        return keras.Model(x, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h)))

    student, teacher = cnn(4, 1), cnn(12, 2)
    d = FeatureDistiller(student, teacher, pairs={"feat": "feat"}, alpha=0.0, objective="multiclass")
    assert d.projections[0].kernel.shape == (4, 12)  # flattened maps would need 256 x 768 weights
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 1)).astype("float32")
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    got = d.evaluate(x, batch_size=16, verbose=0, return_dict=True)["feature_loss"]
    fs = keras.Model(student.input, student.get_layer("feat").output).predict(x, verbose=0)
    ft = keras.Model(teacher.input, teacher.get_layer("feat").output).predict(x, verbose=0)
    ref = (((fs @ d.projections[0].kernel.numpy()) - ft).reshape(16, -1) ** 2).mean()
    np.testing.assert_allclose(got, ref, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------
# one Distiller, composed losses

def _hidden(model, x):
    return keras.Model(model.input, model.get_layer("hidden").output).predict(x, verbose=0)


def test_feature_plus_multi_teacher_in_one_distiller_matches_numpy():
    from tfcompress.distill import Distiller, FeatureDistillation, LogitsDistillation

    x, y = data(32)
    teachers = {"big": mlp(hidden=16, seed=1), "small": mlp(hidden=8, seed=3)}
    student = mlp(hidden=4, seed=2)
    before = {k: [w.copy() for w in t.get_weights()] for k, t in teachers.items()}
    d = Distiller(student, teachers, alpha=0.3, temperature=2.0, objective="binary", losses=[
        LogitsDistillation(teacher_weights=[3, 1]), FeatureDistillation("hidden", "hidden", teacher="big", weight=0.5)])
    proj = d.distillation_losses[1].projections[0]
    assert proj.kernel.shape == (4, 16) and not any(t.trainable for t in teachers.values())
    assert len(d.student_variables) == len(student.trainable_variables) + 1
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = d.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "student_loss", "distillation_loss", "feature_loss"}
    t_big, t_small = (m.predict(x, verbose=0) for m in teachers.values())
    s = student.predict(x, verbose=0)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    p = 0.75 * sig(t_big / 2) + 0.25 * sig(t_small / 2)
    soft = -(p * np.log(sig(s / 2)) + (1 - p) * np.log(1 - sig(s / 2))).mean(-1)
    hard = -(y * np.log(sig(s)) + (1 - y) * np.log(1 - sig(s))).mean(-1)
    feat = ((_hidden(student, x) @ proj.kernel.numpy() - _hidden(teachers["big"], x)) ** 2).mean(-1)
    np.testing.assert_allclose(logs["distillation_loss"], soft.mean(), rtol=1e-4)
    np.testing.assert_allclose(logs["student_loss"], hard.mean(), rtol=1e-4)
    np.testing.assert_allclose(logs["feature_loss"], feat.mean(), rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], (0.3 * hard + 0.7 * 4 * soft + 0.5 * feat).mean(), rtol=1e-4)
    k0 = proj.kernel.numpy().copy()
    d.compile(optimizer=keras.optimizers.Adam(0.02))
    h = d.fit(x, y, epochs=4, batch_size=16, verbose=0).history
    assert h["feature_loss"][-1] < h["feature_loss"][0] and not np.allclose(k0, proj.kernel.numpy())
    for k, t in teachers.items():
        assert all(np.array_equal(a, b) for a, b in zip(before[k], t.get_weights()))
    with pytest.raises(TFCompressError, match=r"reads one teacher and the distiller has 2: pass teacher="):
        Distiller(mlp(seed=2), teachers, losses=[FeatureDistillation("hidden", "hidden")])
    with pytest.raises(TFCompressError, match=r"teacher 'huge' is not one of \['big', 'small'\]"):
        Distiller(mlp(seed=2), teachers, losses=[FeatureDistillation("hidden", "hidden", teacher="huge")])
    with pytest.raises(TFCompressError, match="teacher_weights must be 2"):
        Distiller(mlp(seed=2), teachers, losses=[LogitsDistillation(teacher_weights=[1, 2, 3])])
    with pytest.raises(TFCompressError, match="needs a teacher model, not cached"):
        Distiller(mlp(seed=2), None, losses=[FeatureDistillation("hidden", "hidden")])


def test_two_losses_at_once_log_their_terms():
    from tfcompress.distill import Distiller, FeatureDistillation, RelationalDistillation

    x, y = data(32)
    teacher, student = mlp(hidden=16, seed=1), mlp(hidden=8, seed=2)
    d = Distiller(student, teacher, alpha=0.5, losses=[
        FeatureDistillation("hidden", "hidden", weight=2.0, name="hint_loss"),
        RelationalDistillation("hidden", "hidden", method="similarity", weight=0.5, name="relation_loss")])
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = d.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "student_loss", "hint_loss", "relation_loss"}  # no response loss, no soft term
    hs, ht = _hidden(student, x), _hidden(teacher, x)
    hint = ((hs @ d.distillation_losses[0].projections[0].kernel.numpy() - ht) ** 2).mean()

    def norm(a):
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-6)

    rel = ((norm(hs) @ norm(hs).T - norm(ht) @ norm(ht).T) ** 2).mean()
    np.testing.assert_allclose([logs["hint_loss"], logs["relation_loss"]], [hint, rel], rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], 0.5 * logs["student_loss"] + 2.0 * hint + 0.5 * rel, rtol=1e-4)
    h = d.fit(x, y, epochs=1, batch_size=16, verbose=0).history
    assert {"hint_loss", "relation_loss", "student_loss"} <= set(h)
    with pytest.raises(TFCompressError, match=r"several losses log \['feature_loss'\]: give each a distinct name="):
        Distiller(mlp(hidden=8), teacher, losses=[FeatureDistillation("hidden", "hidden"),
                                                  RelationalDistillation("hidden", "hidden")])
    with pytest.raises(TFCompressError, match="is 8 wide, the teacher's 16: use projection='auto'"):
        Distiller(mlp(hidden=8), teacher, losses=[FeatureDistillation("hidden", "hidden", projection=None)])
    with pytest.raises(TFCompressError, match="is not a distillation loss"):
        Distiller(mlp(hidden=8), teacher, losses=["mse"])


def test_composed_distiller_config_rebuilds_it():
    import json

    from tfcompress.distill import Distiller, FeatureDistillation, LogitsDistillation

    def make(**config):
        return Distiller(mlp(hidden=4, seed=2), [mlp(hidden=16, seed=1), mlp(seed=3)], **config)

    d = make(alpha=0.2, temperature=2.0, losses=[
        LogitsDistillation(teacher_weights="learned"), FeatureDistillation(pairs={"hidden": "hidden"}, teacher=0,
                                                                           weight=0.5)])
    config = json.loads(json.dumps(d.get_config()))
    assert [c["class_name"] for c in config["losses"]] == ["LogitsDistillation", "FeatureDistillation"]
    again = make(**config)
    assert again.get_config() == config and again.distillation_losses[0].learned
    assert len(again.student_variables) == len(again.student.trainable_variables) + 2  # weights + projection
    f = FeatureDistiller(mlp(), mlp(hidden=16), pairs={"hidden": "hidden"}, beta=2.0)
    assert sorted(f.get_config()) == ["alpha", "beta", "check_finite", "huber_delta", "name", "objective", "pairs",
                                      "regression_loss", "temperature"]
