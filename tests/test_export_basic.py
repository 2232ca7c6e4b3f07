"""Export: SavedModel signatures, int8 TFLite I/O types, parity with Keras, the runner, clear errors."""
import os

import numpy as np
import pytest

from tfcompress import export
from tfcompress.bench import metrics
from tfcompress.data import frame_to_inputs, sample_inputs
from tfcompress.errors import TFCompressError

from conftest import sigmoid


@pytest.fixture(scope="module")
def int8_student(trained_student, shop, shop_splits, tmp_path_factory):
    train, _, _ = shop_splits
    path = tmp_path_factory.mktemp("tfl") / "student.tflite"
    export.to_tflite(trained_student, path, mode="int8", representative=sample_inputs(train, shop.spec, 200))
    return str(path)


def test_int8_file_has_int8_float_io_and_int32_ids(int8_student):
    sig = export.TFLiteModel(int8_student).signature()
    assert sig["inputs"]["price"]["dtype"] == "int8"       # the float input became int8
    assert sig["inputs"]["user_id"]["dtype"] == "int32"    # ids stay ids
    assert sig["outputs"]["logit"]["dtype"] == "int8"
    side = export.read_sidecar(int8_student)
    assert side["mode"] == "int8" and side["outputs"]["logit"]["scale"] > 0


def test_int8_predictions_agree_with_keras(trained_student, int8_student, shop, shop_splits):
    _, _, test = shop_splits
    x, y = frame_to_inputs(test, shop.spec), test["click"].to_numpy()
    p_keras = sigmoid(trained_student.predict(x, batch_size=4096, verbose=0)[:, 0])
    p_tfl = sigmoid(export.TFLiteModel(int8_student).predict(x)[:, 0])
    assert abs(metrics.auc(y, p_keras) - metrics.auc(y, p_tfl)) <= 0.01
    assert np.mean(np.abs(p_keras - p_tfl)) < 0.01


def test_float_io_when_asked(trained_student, shop, shop_splits, tmp_path):
    rep = sample_inputs(shop_splits[0], shop.spec, 50)
    path = export.to_tflite(trained_student, tmp_path / "f.tflite", mode="int8", int8_io=False, representative=rep)
    sig = export.TFLiteModel(path).signature()
    assert sig["inputs"]["price"]["dtype"] == "float32" and sig["outputs"]["logit"]["dtype"] == "float32"


def test_runner_takes_dicts_frames_and_datasets(int8_student, shop, shop_splits):
    from tfcompress.data import to_dataset

    test = shop_splits[2].iloc[:300]
    m = export.TFLiteModel(int8_student)
    a = m.predict(frame_to_inputs(test, shop.spec))
    b = m.predict(test)
    c = m.predict(to_dataset(test, shop.spec, batch_size=128))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert "user_id:int32" in repr(m)


def test_saved_model_signature_names_inputs_and_outputs(trained_student, tmp_path):
    from tfcompress import tf

    path = export.saved_model(trained_student, tmp_path / "sm")
    sig = tf.saved_model.load(path).signatures["serving_default"]
    assert sorted(sig.structured_input_signature[1]) == sorted(trained_student.input_names)
    assert list(sig.structured_outputs) == ["logit"]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_parity_gate_rejects_and_keeps_the_file(trained_student, shop, shop_splits, tmp_path):
    test = shop_splits[2]
    data = {**frame_to_inputs(test, shop.spec), "labels": test["click"].to_numpy()}
    with pytest.raises(export.ParityError, match="fails parity"):
        export.to_tflite(trained_student, tmp_path / "g.tflite", mode="float16", parity_data=data,
                         tolerance={"max_abs": 0.0})
    assert (tmp_path / "g.tflite.rejected").exists() and not (tmp_path / "g.tflite").exists()


def test_bad_inputs_are_clear_errors(trained_student, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(TFCompressError, match="not a valid TFLite model"):
        export.TFLiteModel(bad)
    with pytest.raises(TFCompressError, match="needs representative data"):
        export.to_tflite(trained_student, tmp_path / "x.tflite", mode="int8")
    with pytest.raises(TFCompressError, match="lacks model inputs"):
        export.to_tflite(trained_student, tmp_path / "x.tflite", mode="int8", representative={"price": [1.0]})
    with pytest.raises(TFCompressError, match="not one of"):
        export.to_tflite(trained_student, tmp_path / "x.tflite", mode="int3")
    assert not (tmp_path / "x.tflite").exists()


def test_rewrite_comes_before_the_sidecar_and_a_single_parity_gate(trained_student, shop, shop_splits, tmp_path,
                                                                   monkeypatch):
    import tfcompress.export.tflite as tflite_module

    test = shop_splits[2].iloc[:300]
    data = {**frame_to_inputs(test, shop.spec), "labels": test["click"].to_numpy()}
    gates, sizes = [], []
    real = tflite_module.parity_report
    monkeypatch.setattr(tflite_module, "parity_report", lambda *a, **k: gates.append(1) or real(*a, **k))

    def pad(blob):
        sizes.append(len(blob))
        return blob + bytes(16)

    path = export.to_tflite(trained_student, tmp_path / "r.tflite", mode="float32", parity_data=data,
                            tolerance={"max_abs": 1e-4}, rewrite=pad)
    assert os.path.getsize(path) == sizes[0] + 16 == export.read_sidecar(path)["size_bytes"]
    assert gates == [1] and export.read_sidecar(path)["parity"]["max_abs"] <= 1e-4
    with pytest.raises(TFCompressError, match="rewrite '<lambda>' returned the model bytes is not a valid"):
        export.to_tflite(trained_student, tmp_path / "cut.tflite", mode="float32", rewrite=lambda b: b[:64])
    with pytest.raises(TFCompressError, match="must return the new flatbuffer bytes"):
        export.to_tflite(trained_student, tmp_path / "none.tflite", mode="float32", rewrite=lambda b: None)
    assert sorted(os.listdir(tmp_path)) == ["r.json", "r.tflite"]


def test_task_keyword_is_a_deprecated_alias_of_objective(trained_student, tmp_path):
    a = np.array([[0.1], [0.7]])
    with pytest.warns(DeprecationWarning, match="pass objective='regression'"):
        old = export.compare_outputs(a, a + 0.1, task="regression")
    assert old == export.compare_outputs(a, a + 0.1, objective="regression")
    with pytest.raises(TFCompressError, match="pass objective= only"):
        export.compare_outputs(a, a, objective="multiclass", task="regression")
    with pytest.warns(DeprecationWarning, match="to_tflite"):
        path = export.to_tflite(trained_student, tmp_path / "t.tflite", mode="float32", task="regression")
    assert export.read_sidecar(path)["objective"] == "regression"
    with pytest.raises(TFCompressError, match="objective='retrieval' is not one of"):
        export.compare_outputs(a, a, objective="retrieval")


def test_tflite_file_reads_ops_constants_and_tables(int8_student, tmp_path):
    from tfcompress import tflite_file

    counts = tflite_file.op_counts(int8_student)
    assert counts == export.TFLiteModel(int8_student).op_counts() and counts["GATHER"] >= 1
    blob = open(int8_student, "rb").read()
    assert tflite_file.op_names(blob) == set(counts)
    tables = tflite_file.gather_tables(int8_student)
    assert tables and all(t["dtype"] == "int8" and t["nbytes"] == np.prod(t["shape"]) for t in tables)
    it = tflite_file.interpreter(int8_student)
    assert tflite_file.constant(it, tables[0]["index"]).shape == tables[0]["shape"]
    assert tflite_file.constant(it, it.get_input_details()[0]["index"]) is None
    assert {w["op_name"] for w in tflite_file.weights(it)} == {"FULLY_CONNECTED"}
    with pytest.raises(TFCompressError, match="does not exist"):
        tflite_file.interpreter(tmp_path / "missing.tflite")
    with pytest.raises(TFCompressError, match="either the path"):
        tflite_file.interpreter()
    with pytest.raises(TFCompressError, match="threads must be an integer"):
        tflite_file.interpreter(int8_student, num_threads=0)
