"""LazyAdam against a NumPy reference of Adam on the looked-up rows; adam_for's choice."""
import numpy as np
import pytest

from tfcompress import keras, tf
from tfcompress.optimizers import LAZY_MIN_ROWS, LazyAdam, adam_for, largest_table_rows


def _numpy_lazy_adam(w, grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-7):
    """Adam applied row by row to the rows each step's gradient has (a dict row -> gradient row)."""
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t, grad in enumerate(grads, start=1):
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        for r, g in grad.items():
            m[r] = b1 * m[r] + (1 - b1) * g
            v[r] = b2 * v[r] + (1 - b2) * g * g
            w[r] -= alpha * m[r] / (np.sqrt(v[r]) + eps)
    return w


def test_sparse_updates_match_adam_on_the_rows_of_each_step_and_leave_the_others():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(6, 3)).astype("float32")
    steps = [{0: rng.normal(size=3), 2: rng.normal(size=3)}, {2: rng.normal(size=3), 5: rng.normal(size=3)},
             {0: rng.normal(size=3)}]
    var, opt = tf.Variable(w0), LazyAdam(0.01)
    for grad in steps:
        rows = sorted(grad)
        opt.apply_gradients([(tf.IndexedSlices(tf.constant(np.array([grad[r] for r in rows]), tf.float32),
                                               tf.constant(rows)), var)])
    want = _numpy_lazy_adam(w0.astype("float64"), steps)
    np.testing.assert_allclose(var.numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(var.numpy()[[1, 3, 4]], w0[[1, 3, 4]])


def test_duplicate_rows_are_summed_first_and_dense_gradients_get_adam():
    w0 = np.ones((4, 2), "float32")
    var, opt = tf.Variable(w0), LazyAdam(0.01)
    g = tf.IndexedSlices(tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([1, 1]))
    opt.apply_gradients([(g, var)])
    np.testing.assert_allclose(var.numpy(), _numpy_lazy_adam(w0, [{1: np.array([4.0, 6.0])}]), rtol=1e-6)
    dense, lazy, plain = np.full((3,), 2.0, "float32"), tf.Variable([1.0, 2.0, 3.0]), tf.Variable([1.0, 2.0, 3.0])
    LazyAdam(0.1).apply_gradients([(tf.constant(dense), lazy)])
    keras.optimizers.Adam(0.1).apply_gradients([(tf.constant(dense), plain)])
    np.testing.assert_allclose(lazy.numpy(), plain.numpy())
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)


def test_adam_for_picks_lazy_adam_for_a_big_table_in_a_nested_model_and_trains_it():
    inner = keras.Sequential([keras.layers.Embedding(LAZY_MIN_ROWS, 2), keras.layers.Flatten()])
    model = keras.Sequential([keras.Input((1,)), inner, keras.layers.Dense(1)])
    assert largest_table_rows(model) == LAZY_MIN_ROWS and isinstance(adam_for(model, 1e-3), LazyAdam)
    assert type(adam_for(model, 1e-3, min_rows=LAZY_MIN_ROWS + 1)) is keras.optimizers.Adam
    model.compile(optimizer=adam_for(model, 0.05), loss="mse")
    x, y = np.arange(64).reshape(64, 1) % 8, (np.arange(64) % 8 / 8.0).reshape(64, 1)
    loss = model.fit(x, y, epochs=30, verbose=0).history["loss"]
    assert loss[-1] < 0.2 * loss[0]


def test_the_run_report_says_when_the_teacher_trains_with_lazy_adam():
    from types import SimpleNamespace

    from tfcompress.data import Feature, FeatureSpec
    from tfcompress.tasks.ctr import student_note

    def spec(rows):
        return FeatureSpec([Feature("user_id", "categorical", vocab_size=rows), Feature("x", "numeric")],
                           label="click", objective="binary")

    cfg = SimpleNamespace(student=None)
    note = student_note(spec(LAZY_MIN_ROWS), cfg)
    assert "quotient-remainder" in note and note.endswith(
        "; id tables of 50,000+ rows train with lazy Adam (a step updates only the rows its batch looked up)")
    assert student_note(spec(LAZY_MIN_ROWS - 1), cfg) == ""
    own_teacher = SimpleNamespace(student=None, teacher_model="teacher.keras")  # not trained here: no lazy Adam
    assert "quotient-remainder" in student_note(spec(LAZY_MIN_ROWS), own_teacher)
    assert "lazy Adam" not in student_note(spec(LAZY_MIN_ROWS), own_teacher)
    own_full = SimpleNamespace(student={"embedding": "full"}, teacher_model="teacher.keras")
    assert student_note(spec(LAZY_MIN_ROWS), own_full).endswith("looked up)")


def test_release_optimizer_frees_the_moments_and_the_model_still_evaluates():
    import gc
    import weakref
    from types import SimpleNamespace

    from tfcompress.stages import RunContext
    from tfcompress.stages.training import release_optimizer

    task = SimpleNamespace(loss=lambda: "mse", keras_metrics=lambda: ["mae"])
    model = keras.Sequential([keras.Input((1,), dtype="int32"), keras.layers.Embedding(LAZY_MIN_ROWS, 4),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    model.compile(optimizer=adam_for(model, 0.01), loss="mse")
    x, y = np.arange(64).reshape(-1, 1), np.linspace(0, 1, 64)
    model.fit(x, y, epochs=1, verbose=0)
    before = model.evaluate(x, y, verbose=0)
    moments = [weakref.ref(v) for v in model.optimizer.variables()]
    assert len(moments) > 3  # iterations + two moments per weight
    release_optimizer(RunContext(config=None, task=task, data=None), model)
    gc.collect()
    assert [m for m in moments if m() is not None] == []  # freed, not merely unreferenced by the model
    loss, mae = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(before, rel=1e-6) and mae > 0
