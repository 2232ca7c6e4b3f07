"""Your own teacher (issue 14, items 6 and 7): ``--teacher PATH`` / ``run(config, teacher=model)``, the
offline path for teachers tf_keras cannot run in-graph, ``--student from-teacher:SHARE`` and the
distillation verdict in the report."""
import os

import numpy as np
import pytest

import tfcompress
from tfcompress import keras
from tfcompress.data import frame_to_inputs, make_ecommerce
from tfcompress.pipeline import RunConfig, load_report, run

EVENTS = 4000
FAST = dict(quick=True, events=EVENTS, latency_runs=5, calibration_samples=20)


def shop_mlp(spec, final=None, extra_input=None, layers=keras.layers, Model=keras.Model, Input=keras.Input):
    """A plain Keras MLP on the built-in shop's inputs (one input per feature, named after it)."""
    inputs, parts = {}, []
    for f in spec.features:
        if f.kind == "categorical":
            x = inputs[f.name] = Input((), name=f.name, dtype="int32")
            parts.append(layers.Embedding(f.vocab_size, 4, name=f"emb_{f.name}")(x))
        else:
            x = inputs[f.name] = Input((), name=f.name, dtype="float32")
            parts.append(layers.Reshape((1,), name=f"col_{f.name}")(x))
    if extra_input:
        x = inputs[extra_input] = Input((), name=extra_input, dtype="float32")
        parts.append(layers.Reshape((1,))(x))
    h = layers.Concatenate(name="concat")(parts)
    h = layers.Dense(128, activation="relu", name="h1")(h)
    h = layers.Dense(64, activation="relu", name="h2")(h)
    return Model(inputs, layers.Dense(1, activation=final, name="out")(h), name="shop_mlp")


def train_mlp(final=None):
    shop = make_ecommerce(EVENTS, seed=0)
    train, _, _ = shop.split()
    keras.utils.set_random_seed(0)
    model = shop_mlp(shop.spec, final)
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=final is None))
    model.fit(frame_to_inputs(train, shop.spec), train[shop.spec.label].to_numpy("float32"), batch_size=256,
              epochs=2, verbose=0)
    return model


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("teacher") / "mlp_teacher.keras")
    train_mlp().save(path)
    return path


def _config(tmp_path, **kw):
    out = str(tmp_path / "run")
    return RunConfig(**FAST, out=out, savedmodels_dir=os.path.join(out, "savedmodels"),
                     tflite_dir=os.path.join(out, "tflite"), **kw)


def _report_md(result):
    with open(os.path.join(result.report_dir, "report.md")) as f:
        return f.read()


def test_keras_file_teacher_is_not_trained_and_is_distilled(tmp_path, teacher_file, capsys):
    cfg = _config(tmp_path, teacher_model=teacher_file, stages=("teacher", "baseline", "distill", "export"))
    result = run(cfg)
    err = capsys.readouterr().err
    assert "your teacher, not trained here" in err and "trained 2 epoch" not in err
    teacher = result.stage("teacher")
    assert teacher.extra["note"] == "your teacher, not trained here" and teacher.format == "keras"
    assert teacher.quality["auc"] > 0.55
    assert result.stage("student_distilled").quality["auc"] > 0.5
    assert os.path.isfile(next(s.path for s in result.stages if s.name == "student_int8"))
    md = _report_md(result)
    assert "### Distillation" in md and "- teacher: your teacher, not trained here" in md
    assert ("distillation has little to transfer" in md) or ("over the student alone;" in md)
    assert load_report(result.report_dir)["summary"]["distillation"]["metric"] == "auc"


def test_in_memory_probability_teacher(tmp_path):
    model = train_mlp(final="sigmoid")
    cfg = _config(tmp_path, stages=("teacher", "distill", "export"))
    result = run(cfg, teacher=model)
    teacher = result.stage("teacher")
    assert teacher.extra["own_teacher"].output == "probabilities"
    # the teacher row is scored on logits (the sigmoid made linear): the same ranking as the model
    probs = model.predict(_test_inputs(), batch_size=4096, verbose=0).ravel()
    logits = teacher.model.predict(_test_inputs(), batch_size=4096, verbose=0).ravel()
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), probs, atol=1e-5)
    assert {"student_distilled", "teacher_float32", "student_int8"} <= {s.name for s in result.stages}
    assert isinstance(load_report(result.report_dir)["config"]["teacher_model"], str)  # a description


def _test_inputs():
    shop = make_ecommerce(EVENTS, seed=0)
    return frame_to_inputs(shop.split()[2], shop.spec)


def test_teacher_missing_an_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    shop = make_ecommerce(EVENTS, seed=0)
    path = str(tmp_path / "needs_coupon.keras")
    shop_mlp(shop.spec, extra_input="coupon").save(path)
    out = tmp_path / "run"
    code = tfcompress.cli.main(["run", "--quick", "--events", str(EVENTS), "--teacher", path, "--out", str(out),
                                "--savedmodels", str(out / "sm"), "--tflite-dir", str(out / "tfl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "missing ['coupon']" in err[-1] and err[-1].startswith("tfcompress: error:")
    written = [os.path.join(d, f) for d, _, files in os.walk(out) for f in files] if out.exists() else []
    assert not written, written


def test_tflite_teacher_is_distilled_offline(tmp_path, teacher_file):
    from tfcompress.export import to_tflite

    path = to_tflite(keras.models.load_model(teacher_file), str(tmp_path / "teacher.tflite"), mode="float32")
    result = run(_config(tmp_path, teacher_model=path, stages=("teacher", "distill", "export")))
    teacher = result.stage("teacher")
    assert teacher.format == "tflite" and not teacher.extra["own_teacher"].in_graph
    assert teacher.extra["own_teacher"].cache is not None  # the offline cache fed the distiller
    copied = [s for s in result.stages if s.name == "teacher_float32"]
    assert copied and os.path.isfile(copied[0].path)
    assert result.stage("student_distilled").quality["auc"] > 0.5
    assert result.summary["size_ratio"] > 1


def test_keras3_teacher_runs_offline(tmp_path):
    keras3 = pytest.importorskip("keras", reason="a Keras 3 teacher needs Keras 3: pip install 'keras>=3'")
    if not keras3.__version__.startswith("3"):
        pytest.skip("a Keras 3 teacher needs Keras 3: pip install 'keras>=3'")
    shop = make_ecommerce(EVENTS, seed=0)
    model = shop_mlp(shop.spec, layers=keras3.layers, Model=keras3.Model, Input=keras3.Input)
    path = str(tmp_path / "k3.keras")
    model.save(path)
    result = run(_config(tmp_path, teacher_model=path, stages=("teacher", "distill", "export")))
    teacher = result.stage("teacher")
    assert teacher.extra["own_teacher"].kind == "keras3" and teacher.format == "savedmodel"
    names = {s.name for s in result.stages}
    assert "student_distilled" in names and "teacher_float32" not in names  # no float32 file of a Keras 3 model
    assert result.summary["baseline"] == "teacher" and "SavedModel" in result.summary["baseline_format"]


def test_student_from_teacher_has_at_most_the_share(tmp_path, teacher_file):
    cfg = _config(tmp_path, teacher_model=teacher_file, student_init="from-teacher:0.25",
                  stages=("teacher", "baseline", "distill"))
    result = run(cfg)
    teacher, student = result.stage("teacher"), result.stage("student_distilled")
    assert student.params <= 0.25 * teacher.params
    assert student.extra["student_init"] == "student from teacher, 25% of its parameters"
    assert "student from teacher, 25% of its parameters" in _report_md(result)


def test_student_from_a_subclassed_teacher_is_a_clear_error(tmp_path):
    from tfcompress.errors import TFCompressError

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(1)

        def call(self, x):
            return self.d(keras.layers.Reshape((1,))(x["price"]))

    with pytest.raises(TFCompressError, match="no defined inputs"):
        run(_config(tmp_path, stages=("teacher", "baseline")), teacher=Sub())


def test_student_from_a_teacher_that_is_not_tf_keras_is_a_clear_error():
    from types import SimpleNamespace

    from tfcompress.errors import TFCompressError
    from tfcompress.stages import OwnTeacher, RunContext, StageResult, build_student

    context = RunContext(config=SimpleNamespace(student_init="from-teacher:0.25"), task=None, data=None)
    own = OwnTeacher("tflite", "t.tflite", path="t.tflite")
    context.record(StageResult("teacher", "tflite", path="t.tflite", extra={"own_teacher": own}))
    with pytest.raises(TFCompressError, match="must be a tf_keras functional model; the teacher is a tflite model"):
        build_student(context)


def test_verdict_lines_for_both_cases():
    from tfcompress.stages import DistillationVerdict

    base = {"metric": "auc", "teacher": 0.80, "alone": 0.70, "distilled": 0.75, "teacher_gain": 0.10,
            "teacher_gain_ci": [0.08, 0.12], "gain": 0.05, "gain_ci": [0.03, 0.07]}
    gained = DistillationVerdict().markdown({"distillation": {**base, "little_to_transfer": False}})
    assert any(line.startswith("- distillation gained +0.0500 auc (95% CI [+0.0300, +0.0700]) over the student "
                               "alone") for line in gained)
    little = DistillationVerdict().markdown({"distillation": {**base, "teacher_gain": 0.004,
                                                              "little_to_transfer": True}})
    assert "- the teacher beats the student alone by only +0.0040 auc (+0.57%): distillation has little to " \
           "transfer" in little
