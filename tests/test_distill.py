"""Tests for tfcompress.distill (response distillation, bad input) and tfcompress.callbacks."""
import os

import numpy as np
import pytest

from tfcompress import callbacks as cb
from tfcompress import keras, tf
from tfcompress.distill import Distiller, losses
from tfcompress.errors import TFCompressError


def mlp(inputs=4, outputs=1, hidden=8, seed=0, activation=None, name=None, hidden_activation="relu"):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((inputs,)),
                             keras.layers.Dense(hidden, activation=hidden_activation, name="hidden"),
                             keras.layers.Dense(outputs, activation=activation, name="out")], name=name)


def data(n=64, inputs=4, outputs=1, kind="binary", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, inputs)).astype("float32")
    if kind == "binary":
        y = (x[:, :1] + 0.3 * rng.normal(size=(n, 1)) > 0).astype("float32")
    elif kind == "multiclass":
        y = rng.integers(0, outputs, n).astype("int32")
    else:
        y = (x[:, :outputs] * 2 + 1).astype("float32")
    return x, y


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


# ---------------------------------------------------------------------------------------------------
# losses against NumPy references

def test_response_losses_match_numpy():
    rng = np.random.default_rng(1)
    t, s = rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(5, 3)).astype("float32")
    T = 2.5
    pt, ps = _sigmoid(t / T), _sigmoid(s / T)
    ref = -(pt * np.log(ps) + (1 - pt) * np.log(1 - ps)).mean(-1)
    np.testing.assert_allclose(losses.binary_soft_target_loss(t, s, T).numpy(), ref, rtol=1e-5)
    lt, ls = _log_softmax(t / T), _log_softmax(s / T)
    ref = (np.exp(lt) * (lt - ls)).sum(-1)
    np.testing.assert_allclose(losses.softmax_kl_loss(t, s, T).numpy(), ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(losses.mse_loss(t, s).numpy(), ((t - s) ** 2).mean(-1), rtol=1e-5)
    err = np.abs(t - s)
    ref = np.where(err <= 0.5, 0.5 * err ** 2, 0.5 * (err - 0.25)).mean(-1)
    np.testing.assert_allclose(losses.huber_loss(t, s, delta=0.5).numpy(), ref, rtol=1e-5)


def test_ranking_losses_match_numpy():
    rng = np.random.default_rng(2)
    t, s = rng.normal(size=(3, 5)).astype("float32"), rng.normal(size=(3, 5)).astype("float32")
    ref = []
    for ti, si in zip(t, s):
        num = [np.log1p(np.exp(-(si[i] - si[j]))) for i in range(5) for j in range(5) if ti[i] > ti[j]]
        ref.append(np.mean(num))
    np.testing.assert_allclose(losses.pairwise_loss(t, s).numpy(), ref, rtol=1e-5)
    k, lam = 2, 1.5
    w = np.exp(-np.arange(k) / lam)
    w /= w.sum()
    ref = [(w * np.log1p(np.exp(-si[np.argsort(-ti)[:k]]))).sum() for ti, si in zip(t, s)]
    np.testing.assert_allclose(losses.topk_loss(t, s, k=k, lam=lam).numpy(), ref, rtol=1e-5)
    lt, ls = _log_softmax(t / 2), _log_softmax(s / 2)
    np.testing.assert_allclose(losses.listwise_loss(t, s, 2.0).numpy(), (np.exp(lt) * (lt - ls)).sum(-1),
                               rtol=1e-4, atol=1e-6)


def test_total_loss_is_alpha_weighted_with_t_squared():
    x, y = data(32)
    teacher, student = mlp(seed=1), mlp(seed=2)
    d = Distiller(student, teacher, alpha=0.3, temperature=2.0)
    d.compile(optimizer=keras.optimizers.SGD(0.0))
    logs = d.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    t, s = teacher.predict(x, verbose=0), student.predict(x, verbose=0)
    hard = -(y * np.log(_sigmoid(s)) + (1 - y) * np.log(1 - _sigmoid(s))).mean()
    pt, ps = _sigmoid(t / 2), _sigmoid(s / 2)
    soft = -(pt * np.log(ps) + (1 - pt) * np.log(1 - ps)).mean()
    np.testing.assert_allclose(logs["student_loss"], hard, rtol=1e-4)
    np.testing.assert_allclose(logs["distillation_loss"], soft, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], 0.3 * hard + 0.7 * 4 * soft, rtol=1e-4)


@pytest.mark.parametrize("loss", ["mse", "huber"])
def test_regression_distillation_without_labels_learns_teacher(loss):
    x, _ = data(256, outputs=2, kind="regression")
    teacher, student = mlp(outputs=2, seed=1), mlp(outputs=2, seed=2, hidden=16)
    d = Distiller(student, teacher, alpha=0.0, objective="regression", regression_loss=loss)
    d.compile(optimizer=keras.optimizers.Adam(0.02))
    before = np.mean((student.predict(x, verbose=0) - teacher.predict(x, verbose=0)) ** 2)
    h = d.fit(x, epochs=15, batch_size=64, verbose=0).history
    after = np.mean((student.predict(x, verbose=0) - teacher.predict(x, verbose=0)) ** 2)
    assert after < 0.3 * before
    assert h["loss"][-1] < h["loss"][0]
    assert h["student_loss"][-1] == 0.0  # no labels: the label term is zero
    # loss equals MSE/Huber (T^2 does not scale regression)
    t, s = teacher.predict(x, verbose=0), student.predict(x, verbose=0)
    ref = losses.mse_loss(t, s).numpy().mean() if loss == "mse" else losses.huber_loss(t, s).numpy().mean()
    got = d.evaluate(x, batch_size=256, verbose=0, return_dict=True)
    np.testing.assert_allclose(got["loss"], ref, rtol=1e-4)


def test_multiclass_with_labels_and_metrics():
    x, y = data(128, outputs=3, kind="multiclass")
    d = Distiller(mlp(outputs=3, seed=2), mlp(outputs=3, seed=1), alpha=0.5, temperature=2.0, objective="multiclass")
    d.compile(optimizer="adam", metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")])
    h = d.fit(x, y, epochs=2, batch_size=32, verbose=0, validation_data=(x, y)).history
    assert {"loss", "student_loss", "distillation_loss", "acc", "val_acc", "val_loss"} <= set(h)


# ---------------------------------------------------------------------------------------------------
# bad input

def test_bad_input_errors_are_clear():
    x, y = data(16)
    with pytest.raises(TFCompressError, match="output shape"):
        Distiller(mlp(outputs=1), mlp(outputs=3))
    with pytest.raises(TFCompressError, match="sigmoid activation"):
        Distiller(mlp(), mlp(activation="sigmoid"))
    with pytest.raises(TFCompressError, match="softmax activation"):
        Distiller(mlp(outputs=3, activation="softmax"), mlp(outputs=3), objective="multiclass")
    with pytest.raises(TFCompressError, match="one logit per class"):
        Distiller(mlp(), mlp(), objective="multiclass")
    unbuilt = keras.Sequential([keras.layers.Dense(1)])
    with pytest.raises(TFCompressError, match="not built"):
        Distiller(mlp(), unbuilt)
    with pytest.raises(TFCompressError, match="tf_keras Model"):
        Distiller(mlp(), lambda x: x)
    with pytest.raises(TFCompressError, match="alpha"):
        Distiller(mlp(), mlp(), alpha=1.5)
    with pytest.raises(TFCompressError, match="temperature"):
        Distiller(mlp(), mlp(), temperature=0)
    with pytest.raises(TFCompressError, match="objective 'ranking' is not one of"):
        Distiller(mlp(), mlp(), objective="ranking")
    with pytest.raises(TFCompressError, match="task"), pytest.warns(DeprecationWarning):
        Distiller(mlp(), mlp(), task="ranking")
    d = Distiller(mlp(), mlp(), alpha=0.5)
    d.compile()
    with pytest.raises(TFCompressError, match="no labels but alpha = 0.5"):
        d.fit(x, epochs=1, verbose=0)
    with pytest.raises(TFCompressError, match="no labels"):
        d.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), epochs=1, verbose=0)
    with pytest.raises(TFCompressError, match="takes no `loss`"):
        d.compile(loss="mse")


def test_trainable_teacher_is_frozen_and_never_updated():
    x, y = data(32)
    teacher = mlp(seed=1)
    assert teacher.trainable
    before = [w.copy() for w in teacher.get_weights()]
    d = Distiller(mlp(seed=2), teacher)
    assert not teacher.trainable
    d.compile(optimizer=keras.optimizers.SGD(0.5))
    d.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_non_finite_loss_names_step_and_term():
    x, y = data(32)
    x[20] = np.nan  # in the third batch of 8
    # linear hidden layers: the fused MatMul+ReLU kernel of some CPUs (oneDNN, AVX-512) turns NaN into 0
    d = Distiller(mlp(seed=2, hidden_activation=None), mlp(seed=1, hidden_activation=None), alpha=0.0)
    d.compile(optimizer="sgd")
    with pytest.raises(TFCompressError, match=r"epoch 1, batch 2 .*distillation_loss = nan"):
        d.fit(x, y, epochs=1, batch_size=8, verbose=0)
    # only the teacher's outputs broken -> only the distillation term is named
    teacher = mlp(seed=1)
    teacher.layers[-1].bias.assign([np.nan])
    d = Distiller(mlp(seed=2), teacher, alpha=0.5)
    d.compile(optimizer="sgd")
    with pytest.raises(TFCompressError, match=r"distillation_loss = nan") as err:
        d.fit(x[:8], y[:8], epochs=1, batch_size=8, verbose=0)
    assert "student_loss" not in str(err.value)


def test_task_is_a_deprecated_alias_of_objective():
    from tfcompress.distill import MultiTaskDistiller

    x, y = data(32, outputs=3, kind="multiclass")
    with pytest.warns(DeprecationWarning, match="use objective="):
        old = Distiller(mlp(outputs=3, seed=2), mlp(outputs=3, seed=1), alpha=0.5, task="multiclass")
    new = Distiller(mlp(outputs=3, seed=2), mlp(outputs=3, seed=1), alpha=0.5, objective="multiclass")
    assert old.objective == old.task == "multiclass" and old.get_config() == new.get_config()
    for d in (old, new):
        d.compile(optimizer=keras.optimizers.SGD(0.0))
    np.testing.assert_allclose(old.evaluate(x, y, verbose=0), new.evaluate(x, y, verbose=0), rtol=1e-6)
    with pytest.raises(TFCompressError, match="disagree: pass objective= only"), pytest.warns(DeprecationWarning):
        Distiller(mlp(), mlp(), objective="binary", task="multiclass")
    inp = keras.Input((4,))
    student = keras.Model(inp, {"click": keras.layers.Dense(1, name="click")(inp)})
    with pytest.warns(DeprecationWarning, match="use objectives="):
        d = MultiTaskDistiller(student, {"click": mlp()}, tasks={"click": "binary"})
    assert d.objectives == d.tasks == {"click": "binary"}


# ---------------------------------------------------------------------------------------------------
# callbacks

def test_schedules_set_variables_each_epoch():
    x, y = data(32)
    d = Distiller(mlp(seed=2), mlp(seed=1), alpha=0.5, temperature=3.0)
    d.compile()
    seen = []
    rec = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
        (float(d.temperature.numpy()), float(d.alpha.numpy()))))
    h = d.fit(x, y, epochs=3, batch_size=16, verbose=0,
              callbacks=[cb.TemperatureSchedule(start=4.0, end=1.0, epochs=3), cb.AlphaSchedule(lambda e: 0.1 * e),
                         rec]).history
    np.testing.assert_allclose(seen, [(4.0, 0.0), (2.5, 0.1), (1.0, 0.2)], rtol=1e-6)
    np.testing.assert_allclose(h["temperature"], [4.0, 2.5, 1.0])
    s = cb.TemperatureSchedule(start=4.0, end=1.0, epochs=3)
    assert cb.TemperatureSchedule.from_config(s.get_config()).value(1) == 2.5
    with pytest.raises(TFCompressError, match="must be > 0"):
        d.fit(x, y, epochs=1, verbose=0, callbacks=[cb.TemperatureSchedule(lambda e: 0.0)])
    with pytest.raises(TFCompressError, match="start="):
        cb.AlphaSchedule(start=0.1)


def test_best_student_checkpoint_saves_student_atomically(tmp_path):
    x, y = data(64)
    student = mlp(seed=2, name="the_student")
    d = Distiller(student, mlp(seed=1), alpha=0.5)
    d.compile(optimizer=keras.optimizers.Adam(0.01), metrics=[keras.metrics.AUC(from_logits=True, name="auc")])
    path = str(tmp_path / "best.keras")
    ck = cb.BestStudentCheckpoint(path, monitor="val_auc")
    best = {}

    def remember(epoch, logs):
        if epoch == ck.best_epoch:
            best["w"] = [w.copy() for w in student.get_weights()]

    d.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_data=(x, y),
          callbacks=[ck, keras.callbacks.LambdaCallback(on_epoch_end=remember)])
    loaded = keras.models.load_model(path)
    assert loaded.name == "the_student"
    for a, b in zip(loaded.get_weights(), best["w"]):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path)) == ["best.keras"]  # no temporary files left
    assert cb.BestStudentCheckpoint.from_config(ck.get_config()).monitor == "val_auc"
    with pytest.raises(TFCompressError, match="not in the logs"):
        d.fit(x, y, epochs=1, verbose=0, callbacks=[cb.BestStudentCheckpoint(path, monitor="val_nope")])


def test_early_stopping_restores_best_student():
    x, y = data(64)
    student = mlp(seed=2)
    d = Distiller(student, mlp(seed=1), alpha=0.5)
    d.compile(optimizer=keras.optimizers.SGD(0.0))  # nothing improves after epoch 1
    es = cb.EarlyStoppingOnStudentMetric(monitor="val_loss", patience=1)
    first = {}
    d.fit(x, y, epochs=10, batch_size=16, verbose=0, validation_data=(x, y), callbacks=[
        es, keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: first.setdefault("w", student.get_weights()))])
    assert es.stopped_epoch == 2 and es.best_epoch == 0
    # with a learning rate, the restored weights are the best epoch's
    d.compile(optimizer=keras.optimizers.Adam(0.05))
    es = cb.EarlyStoppingOnStudentMetric(monitor="val_loss", patience=2)
    snaps = []
    d.fit(x, y, epochs=6, batch_size=16, verbose=0, validation_data=(x[:8], y[:8]), callbacks=[
        es, keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: snaps.append(student.get_weights()))])
    for a, b in zip(student.get_weights(), snaps[es.best_epoch]):
        np.testing.assert_array_equal(a, b)
    assert cb.EarlyStoppingOnStudentMetric.from_config(es.get_config()).patience == 2


@pytest.mark.parametrize("patience", [0, 1, 2])
def test_early_stopping_on_disk_stops_and_restores_as_keras_does(patience):
    x, y = data(64)
    runs = {}
    for name, make in (("keras", keras.callbacks.EarlyStopping), ("disk", cb.EarlyStoppingOnDisk)):
        model = mlp(seed=3)
        model.compile(keras.optimizers.Adam(0.2), "binary_crossentropy")
        es = make(monitor="val_loss", patience=patience, restore_best_weights=True)
        keras.utils.set_random_seed(0)
        h = model.fit(x, y, epochs=12, batch_size=16, verbose=0, shuffle=False, validation_data=(x[:8], y[:8]),
                      callbacks=[es])
        runs[name] = (len(h.epoch), es.best_epoch, es.stopped_epoch, model.get_weights())
    (k_epochs, k_best, k_stop, k_w), (d_epochs, d_best, d_stop, d_w) = runs["keras"], runs["disk"]
    assert (d_epochs, d_best, d_stop) == (k_epochs, k_best, k_stop)
    assert 0 < d_best < d_epochs - 1  # the restored epoch is neither the first nor the last
    for a, b in zip(d_w, k_w):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_on_disk_keeps_only_the_students_weights(monkeypatch):
    x, y = data(64)
    student, teacher = mlp(seed=2), mlp(seed=1, hidden=32)
    teacher_before = teacher.get_weights()
    d = Distiller(student, teacher, alpha=0.5)
    d.compile(optimizer=keras.optimizers.Adam(0.05))
    es, saved, snaps = cb.EarlyStoppingOnDisk(monitor="val_loss", patience=2), [], []
    real_save = np.save
    monkeypatch.setattr(np, "save", lambda path, a: (saved.append(a.shape), real_save(path, a)))
    d.fit(x, y, epochs=8, batch_size=16, verbose=0, validation_data=(x[:8], y[:8]), callbacks=[
        es, keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: snaps.append(student.get_weights()))])
    assert {tuple(w.shape) for w in student.weights} <= set(saved)
    assert not {(4, 32), (32,), (32, 1)} & set(saved)  # never a teacher's weight
    for a, b in zip(student.get_weights(), snaps[es.best_epoch]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(teacher.get_weights(), teacher_before):
        np.testing.assert_array_equal(a, b)
    assert es._folder is None  # the temporary folder is gone
