"""Every post-training mode on the CTR student, the LiteRT Quantizer backend, selective float fallback,
TFLiteModel extras and clear errors for bad input."""
import os

import numpy as np
import pytest

from tfcompress import export, tflite_file
from tfcompress import keras, tf
from tfcompress.data import frame_to_inputs, sample_inputs
from tfcompress.errors import TFCompressError


@pytest.fixture(scope="module")
def rep(shop, shop_splits):
    return sample_inputs(shop_splits[0], shop.spec, 100)


@pytest.fixture(scope="module")
def held_out(shop, shop_splits):
    test = shop_splits[2].iloc[:500]
    return {**frame_to_inputs(test, shop.spec), "labels": test["click"].to_numpy()}


@pytest.fixture(scope="module")
def float_file(trained_student, tmp_path_factory):
    path = tmp_path_factory.mktemp("f32") / "student.tflite"
    return export.to_tflite(trained_student, path, mode="float32")


MODES = [("float32", True), ("float16", True), ("dynamic", True), ("int8", True), ("int8", False),
         ("int16x8", True)]


def test_every_mode_writes_file_sidecar_and_parity(trained_student, rep, held_out, tmp_path):
    sizes = {}
    for mode, io in MODES:
        path = export.to_tflite(trained_student, tmp_path / f"{mode}_{io}.tflite", mode=mode, int8_io=io,
                                representative=rep, parity_data=held_out, tolerance={"metric_diff": 0.01})
        side = export.read_sidecar(path)
        assert side["mode"] == mode and side["size_bytes"] == os.path.getsize(path)
        assert set(side["inputs"]) == set(trained_student.input_names)
        assert side["parity"]["n"] == 500 and side["parity"]["metric"] == "auc"
        assert side["parity"]["mean_abs"] < 0.01, (mode, side["parity"])
        price = side["inputs"]["price"]
        if mode in ("int8", "int16x8") and io:
            assert price["dtype"] == ("int8" if mode == "int8" else "int16") and price["scale"] > 0
            assert side["outputs"]["logit"]["scale"] > 0
        else:
            assert price["dtype"] == "float32"
        assert side["inputs"]["user_id"]["dtype"] == "int32"
        sizes[(mode, io)] = side["size_bytes"]
    assert sizes[("int8", True)] < sizes[("dynamic", True)] < sizes[("float16", True)] < sizes[("float32", True)]
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp") or n.endswith(".rejected")]


def test_unsupported_op_names_the_op_and_the_layer(tmp_path):
    x = keras.Input((4,), name="x")
    h = keras.layers.Lambda(lambda t: tf.reshape(tf.linalg.det(tf.reshape(t, (-1, 2, 2))), (-1, 1)),
                            name="odd_det")(x)
    m = keras.Model({"x": x}, keras.layers.Dense(1, name="logit")(h))
    with pytest.raises(TFCompressError, match=r"cannot express TensorFlow op 'MatrixDeterminant' in Keras "
                                              r"layer 'odd_det' \(Lambda\).*rewrite that layer") as e:
        export.to_tflite(m, tmp_path / "odd.tflite", mode="float32")
    assert "\n" not in str(e.value)
    assert not os.listdir(tmp_path)


def test_representative_mismatch_names_the_input(trained_student, rep, tmp_path):
    bad = {("userid" if k == "user_id" else k): v for k, v in rep.items()}
    with pytest.raises(TFCompressError, match=r"lacks model inputs \['user_id'\].*unexpected \['userid'\]"):
        export.to_tflite(trained_student, tmp_path / "x.tflite", mode="int8", representative=bad)
    with pytest.raises(TFCompressError, match=r"'price' has shape \(3,\) per example"):
        export.to_tflite(trained_student, tmp_path / "x.tflite", mode="int8",
                         representative={**rep, "price": np.zeros((100, 3), "float32")})
    with pytest.raises(TFCompressError, match=r"'user_id' has dtype <U1"):
        export.to_tflite(trained_student, tmp_path / "x.tflite", mode="int8",
                         representative={**rep, "user_id": np.array(["a"] * 100)})
    with pytest.raises(TFCompressError, match="different numbers of rows"):
        export.to_tflite(trained_student, tmp_path / "x.tflite", mode="int8",
                         representative={**rep, "price": rep["price"][:10]})
    assert not os.listdir(tmp_path)


def test_truncated_file_and_unwritable_path(trained_student, float_file, tmp_path):
    blob = open(float_file, "rb").read()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(TFCompressError, match="cut.tflite is not a valid TFLite model"):
        export.TFLiteModel(cut)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(TFCompressError, match="is a file, not a folder"):
        export.to_tflite(trained_student, tmp_path / "afile" / "m.tflite", mode="float32")
    assert sorted(os.listdir(tmp_path)) == ["afile", "cut.tflite"]


def test_runner_summary_and_input_errors(float_file, held_out):
    m = export.TFLiteModel(float_file)
    text = m.summary(print_fn=None)
    assert "user_id" in text and "FULLY_CONNECTED" in text and "GATHER" in text
    assert m.op_counts()["GATHER"] == 10  # one lookup per categorical feature
    feed = {k: v for k, v in held_out.items() if k not in ("labels", "user_id")}
    with pytest.raises(TFCompressError, match=r"lack \['user_id'\] and have unexpected \['uid'\]"):
        m.predict({**feed, "uid": held_out["user_id"]})


def test_litert_quantizer_recipes(trained_student, float_file, held_out, tmp_path):
    from tfcompress.export.parity import parity_report

    f32 = os.path.getsize(float_file)
    results = {}
    for recipe, regex in [("int8_weights", None), ("int4_weights", None), ("int8_dynamic", None),
                          ("int8_weights", "dense_0")]:
        out = export.quantize_with_litert(float_file, recipe, layers_regex=regex,
                                          out_path=tmp_path / f"{recipe}_{regex}.tflite")
        tfl = export.TFLiteModel(out)
        report = parity_report(trained_student, tfl, held_out)
        assert abs(report["metric_diff"]) < 0.01 and report["mean_abs"] < 0.01, (recipe, report)
        side = export.read_sidecar(out)
        assert side["mode"] == f"litert:{recipe}" and side["source_model"] == trained_student.name
        results[(recipe, regex)] = side["size_bytes"]
    assert results[("int4_weights", None)] < results[("int8_weights", None)] < f32
    # selective: only dense_0 quantized, so bigger than all-int8 but smaller than float
    assert results[("int8_weights", None)] < results[("int8_weights", "dense_0")] < f32
    # the student's 41-wide cross kernel is not a multiple of 32: a clear error, nothing written
    with pytest.raises(TFCompressError, match="not divisible by block size 32.*int4_weights"):
        export.quantize_with_litert(float_file, "int4_blockwise", out_path=tmp_path / "b.tflite")
    assert not (tmp_path / "b.tflite").exists()
    with pytest.raises(TFCompressError, match="not one of"):
        export.quantize_with_litert(float_file, "int3")


def _op_dtypes(path):
    """{output tensor name: (op name, first operand dtype)} of a .tflite file."""
    it = export.TFLiteModel(path).interpreter
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    return {names[o["outputs"][0]]: (o["op_name"], o["operand_types"][0].__name__)
            for o in tflite_file.ops(it)}


def test_sensitive_layers_and_float_fallback(trained_student, rep, held_out, tmp_path):
    table = export.find_sensitive_layers(trained_student, rep, top_k=5)
    assert len(table) == 5 and table["rmse_scale"].is_monotonic_decreasing
    assert set(table["keras_layer"]) & {"cross_0", "dense_0", "logit", "features"}
    first = table[table["can_fallback"]]["tensor_name"].iloc[0]
    path = export.to_tflite(trained_student, tmp_path / "fb.tflite", mode="int8", representative=rep,
                            float_fallback=[first], parity_data=held_out, tolerance={"metric_diff": 0.01})
    side = export.read_sidecar(path)
    assert side["float_fallback"] == [first] and side["inputs"]["price"]["dtype"] == "float32"
    ops = _op_dtypes(path)
    assert ops[first][1] == "float32", ops[first]            # the denylisted op runs in float
    assert any(dt == "int8" for _, dt in ops.values())       # the rest stays int8
    with pytest.raises(export.ParityError, match="even with the 1 most sensitive ops float"):
        export.export_with_fallback(trained_student, tmp_path / "never.tflite", representative=rep,
                                    parity_data=held_out, tolerance={"max_abs": 0.0}, max_float=1,
                                    strategy="ranked")
    assert (tmp_path / "never.tflite.rejected").exists() and not (tmp_path / "never.tflite").exists()



def _hostile_model():
    """x -> h (unit 0 always 0) -> hostile (weight 1000 on that dead unit: per-channel int8 rounds the useful
    weights 0.5 to 0) -> out. Only keeping ``hostile`` float recovers the output."""
    from tfcompress import keras

    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(4, name="h")
    hostile = keras.layers.Dense(1, name="hostile")
    out = keras.layers.Dense(1, name="out")
    m = keras.Model({"x": x}, out(hostile(h(x))))
    wh = np.random.default_rng(0).normal(size=(4, 4)).astype("float32")
    wh[:, 0] = 0.0
    h.set_weights([wh, np.zeros(4, "float32")])
    hostile.set_weights([np.array([[1000.0], [0.5], [0.5], [0.5]], "float32"), np.zeros(1, "float32")])
    out.set_weights([np.ones((1, 1), "float32"), np.zeros(1, "float32")])
    return m


def test_greedy_fallback_keeps_the_hostile_op_float_and_records_steps(tmp_path):
    m = _hostile_model()
    rng = np.random.default_rng(1)
    rep = {"x": rng.normal(size=(64, 4)).astype("float32")}
    data = {"x": rng.normal(size=(64, 4)).astype("float32")}
    tol = {"mean_abs": 0.1}  # plain int8: ~1.5
    with pytest.raises(export.ParityError):
        export.to_tflite(m, tmp_path / "plain.tflite", mode="int8", representative=rep, int8_io=False,
                         parity_data=data, tolerance=tol, objective="regression", num_calibration=64)
    path, kept = export.export_with_fallback(m, tmp_path / "fb.tflite", representative=rep, parity_data=data,
                                             tolerance=tol, objective="regression", num_calibration=64)
    assert 1 <= len(kept) <= 2 and "hostile" in kept[0], kept
    side = export.read_sidecar(path)
    assert side["float_fallback"] == kept and side["parity"]["mean_abs"] <= 0.1
    steps = side["fallback_steps"]
    assert steps[0]["float_ops"] == [] and steps[0]["parity"]["mean_abs"] > 0.1
    assert steps[-1]["float_ops"] == kept and steps[-1]["parity"]["mean_abs"] <= 0.1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fb.json", "fb.tflite", "plain.tflite.rejected",
                                                         "plain.tflite.rejected.json"]


def test_greedy_fallback_says_when_no_single_op_helps(trained_student, rep, held_out, tmp_path):
    with pytest.raises(export.ParityError, match="no single op of the 2 most sensitive"):
        export.export_with_fallback(trained_student, tmp_path / "s.tflite", representative=rep,
                                    parity_data=held_out, tolerance={"max_abs": 0.0}, candidates=2)
    assert not (tmp_path / "s.tflite").exists()

def test_int16x8_on_a_transformer_student_fails_with_a_hint(tmp_path):
    """int16x8 calibration cannot range the attention padding mask path: one line that says what to use instead."""
    from tfcompress.models.text import text_student

    m = text_student(50, 3, 12, kind="transformer", embed_dim=8, hidden=8)
    rep = {"token_ids": np.random.default_rng(0).integers(1, 50, (16, 12)).astype("int32")}
    with pytest.raises(TFCompressError, match=r"mode 'int16x8'.*recorded during calibration.*use mode='int8'"):
        export.to_tflite(m, tmp_path / "t.tflite", mode="int16x8", representative=rep)
    assert not list(tmp_path.iterdir())  # nothing half-written


def _offset_buffers(path):
    from ai_edge_litert import schema_py_generated as schema

    blob = open(path, "rb").read()
    return [b.offset for b in schema.ModelT.InitFromPackedBuf(blob, 0).buffers if b.offset]


def test_big_float32_files_keep_their_weights_after_the_tables(trained_student, held_out, tmp_path, monkeypatch):
    from tfcompress.export import tflite as tflite_module

    small = export.to_tflite(trained_student, tmp_path / "inline.tflite", mode="float32")
    assert _offset_buffers(small) == []  # below BUFFER_OFFSET_MIN_BYTES: the usual layout
    monkeypatch.setattr(tflite_module, "BUFFER_OFFSET_MIN_BYTES", 1)  # the student counts as big now
    big = export.to_tflite(trained_student, tmp_path / "offset.tflite", mode="float32", parity_data=held_out,
                           tolerance={"max_abs": 1e-5})
    assert _offset_buffers(big), "the weights are still inside the flatbuffer's tables"
    inputs = {k: v for k, v in held_out.items() if k != "labels"}
    np.testing.assert_allclose(export.TFLiteModel(big).predict(inputs), trained_student.predict(inputs, verbose=0),
                               atol=1e-5)
    kept = export.to_tflite(trained_student, tmp_path / "kept.tflite", mode="float32", buffer_offset=False)
    assert _offset_buffers(kept) == []
    with pytest.raises(TFCompressError, match="buffer_offset=True applies to mode='float32'"):
        export.convert(trained_student, mode="dynamic", buffer_offset=True)
