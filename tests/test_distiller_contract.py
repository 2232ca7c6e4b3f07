"""The Distiller's loss is alpha·task + (1 − alpha)·T²·soft, checked against NumPy on a fixed batch."""
import numpy as np
import pytest

from tfcompress import keras
from tfcompress.distill import Distiller
from tfcompress.errors import TFCompressError


def _dense_model(n_in, n_out, seed, name):
    keras.utils.set_random_seed(seed)
    x = keras.Input((n_in,), name="x")
    return keras.Model(x, keras.layers.Dense(n_out, name="logit")(x), name=name)


def _np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("alpha,temperature", [(0.3, 2.0), (0.0, 4.0), (1.0, 1.0)])
def test_binary_loss_matches_numpy(alpha, temperature):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype("float32")
    y = (rng.random(64) < 0.3).astype("float32")
    teacher, student = _dense_model(5, 1, 1, "t"), _dense_model(5, 1, 2, "s")
    d = Distiller(student, teacher, alpha=alpha, temperature=temperature)
    d.compile(optimizer="sgd")
    logs = d.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)

    t, s = teacher.predict(x, verbose=0)[:, 0], student.predict(x, verbose=0)[:, 0]
    p_t, p_s = _np_sigmoid(t / temperature), _np_sigmoid(s / temperature)
    soft = -(p_t * np.log(p_s) + (1 - p_t) * np.log(1 - p_s))
    hard = -(y * np.log(_np_sigmoid(s)) + (1 - y) * np.log(1 - _np_sigmoid(s)))
    expected = np.mean(alpha * hard + (1 - alpha) * temperature ** 2 * soft)
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)
    assert logs["distillation_loss"] == pytest.approx(soft.mean(), rel=1e-4)
    assert logs["student_loss"] == pytest.approx(hard.mean(), rel=1e-4)


def test_multiclass_loss_is_t2_scaled_kl_plus_cross_entropy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.integers(0, 4, 32)
    teacher, student = _dense_model(6, 4, 3, "t"), _dense_model(6, 4, 4, "s")
    alpha, T = 0.25, 3.0
    d = Distiller(student, teacher, alpha=alpha, temperature=T, objective="multiclass")
    d.compile(optimizer="sgd")
    logs = d.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    t, s = teacher.predict(x, verbose=0), student.predict(x, verbose=0)
    lt, ls = _np_log_softmax(t / T), _np_log_softmax(s / T)
    kl = (np.exp(lt) * (lt - ls)).sum(-1)
    ce = -_np_log_softmax(s)[np.arange(32), y]
    assert logs["loss"] == pytest.approx(np.mean(alpha * ce + (1 - alpha) * T ** 2 * kl), rel=1e-4)


def test_fit_trains_only_the_student_and_logs_student_metrics():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(128, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    teacher, student = _dense_model(5, 1, 5, "t"), _dense_model(5, 1, 6, "s")
    before_t = [w.copy() for w in teacher.get_weights()]
    before_s = [w.copy() for w in student.get_weights()]
    d = Distiller(student, teacher, alpha=0.5, temperature=2.0)
    d.compile(optimizer=keras.optimizers.Adam(0.05), metrics=[keras.metrics.AUC(from_logits=True, name="auc")])
    hist = d.fit(x, y, batch_size=32, epochs=2, validation_data=(x, y), verbose=0)
    assert {"loss", "student_loss", "distillation_loss", "auc", "val_auc"} <= set(hist.history)
    assert all(np.array_equal(a, b) for a, b in zip(before_t, teacher.get_weights()))
    assert not all(np.array_equal(a, b) for a, b in zip(before_s, student.get_weights()))


def test_mismatched_outputs_are_a_clear_error():
    with pytest.raises(TFCompressError, match="does not match"):
        Distiller(_dense_model(5, 2, 0, "s"), _dense_model(5, 1, 0, "t"))
