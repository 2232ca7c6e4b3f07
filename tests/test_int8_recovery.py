"""int8 accuracy recovery at export (``to_tflite(per_channel=, recovery=)``), each option against plain int8 on
the same small model built so that the option's error source is present."""
import numpy as np
import pytest

from tfcompress import keras, tflite_file
from tfcompress.errors import TFCompressError
from tfcompress.export import TFLiteModel, activation_ranges, convert, parity_report, read_sidecar, to_tflite


def _parity(model, path, data):
    return parity_report(model, TFLiteModel(path), data, objective="regression")


def test_per_tensor_weights_have_one_scale(tmp_path):
    x = keras.Input((6,), name="x")
    m = keras.Model({"x": x}, keras.layers.Dense(4, name="h")(x))
    rep = {"x": np.random.RandomState(0).randn(100, 6).astype("float32")}
    scales = {}
    for per_channel in (True, False):
        path = to_tflite(m, tmp_path / f"m_{per_channel}.tflite", mode="int8", representative=rep,
                         objective="regression", per_channel=per_channel)
        (w,) = tflite_file.weights(path)
        scales[per_channel] = len(w["details"]["quantization_parameters"]["scales"])
        assert read_sidecar(path)["per_channel"] is per_channel
    assert scales == {True: 4, False: 1}


def _skewed_dense():
    """Dense whose int8 weight rounding errors all point the same way (each weight 0.4 steps above a grid
    point) on positive inputs: plain int8 has a biased output."""
    rng = np.random.RandomState(1)
    steps = rng.randint(0, 20, size=(64, 3)).astype("float32") + 0.4
    steps[0] = 127.0  # the largest weight sets the channel's scale to exactly 1/127
    x = keras.Input((64,), name="x")
    m = keras.Model({"x": x}, keras.layers.Dense(3, name="h")(x))
    m.get_layer("h").set_weights([steps / 127.0, np.zeros(3, "float32")])
    rows = rng.rand(400, 64).astype("float32")
    rows[:, 0] *= 0.05  # the big weight's input stays small, so the output range is set by the rest
    return m, {"x": rows[:200]}, {"x": rows[200:]}


def test_bias_correction_removes_the_mean_shift(tmp_path):
    m, rep, held = _skewed_dense()
    plain = to_tflite(m, tmp_path / "plain.tflite", mode="int8", representative=rep, objective="regression")
    fixed = to_tflite(m, tmp_path / "bc.tflite", mode="int8", representative=rep, objective="regression",
                      recovery=("bias-correction",))
    before, after = _parity(m, plain, held)["mean_abs"], _parity(m, fixed, held)["mean_abs"]
    assert after < 0.5 * before, (before, after)
    record = read_sidecar(fixed)["recovery"]
    assert record["options"] == ["bias-correction"] and record["bias-correction"]["layers_corrected"] == ["h"]


def _outlier_model():
    """x (16 features) -> Dense(8) -> Dense(1); one calibration value of 100 (the rest ~N(0, 1)) stretches the
    input's min/max range ~25x, and feature 0's small weights keep that outlier out of the later ranges."""
    rng = np.random.RandomState(2)
    x = keras.Input((16,), name="x")
    m = keras.Model({"x": x}, keras.layers.Dense(1, name="out")(keras.layers.Dense(8, name="h")(x)))
    kernel = rng.uniform(-0.5, 0.5, size=(16, 8)).astype("float32")
    kernel[0] = 0.001
    m.get_layer("h").set_weights([kernel, np.zeros(8, "float32")])
    m.get_layer("out").set_weights([rng.uniform(-0.5, 0.5, size=(8, 1)).astype("float32"), np.zeros(1, "float32")])
    rows = rng.randn(3000, 16).astype("float32")
    cal = rows[:2000].copy()
    cal[0, 0] = 100.0
    return m, {"x": cal}, {"x": rows[2000:]}


@pytest.fixture(scope="module")
def outliers():
    return _outlier_model()


def test_percentile_ranges_clip_the_outlier_and_lower_the_error(tmp_path, outliers):
    m, rep, held = outliers
    blob = convert(m, mode="float32")
    lo_max = activation_ranges(blob, rep, method="minmax")["serving_default_x:0"]
    lo_pct = activation_ranges(blob, rep, method="percentile")["serving_default_x:0"]
    assert lo_max[1] == pytest.approx(100.0) and lo_pct[1] < 10.0
    plain = to_tflite(m, tmp_path / "plain.tflite", mode="int8", representative=rep, num_calibration=2000,
                      objective="regression")
    pct = to_tflite(m, tmp_path / "pct.tflite", mode="int8", representative=rep, num_calibration=2000,
                    objective="regression", recovery=("percentile",))
    # mean |Δ|: the clipped range is ~25x finer; the rare held-out values beyond it are clipped (max |Δ|)
    before, after = _parity(m, plain, held)["mean_abs"], _parity(m, pct, held)["mean_abs"]
    assert after < 0.5 * before, (before, after)
    record = read_sidecar(pct)["recovery"]
    assert "serving_default_x:0" in record["percentile"]["clipped"]


def _wide_output_model():
    """x -> Dense(2): output 1 sits near 50 (its bias), so the output tensor's int8 step (~0.2) is coarse for
    output 0 (about ±1): the op writing it is the sensitive one, and 16-bit activations fix it."""
    rng = np.random.RandomState(3)
    x = keras.Input((8,), name="x")
    m = keras.Model({"x": x}, keras.layers.Dense(2, name="out")(x))
    kernel = rng.uniform(-0.5, 0.5, size=(8, 2)).astype("float32")
    m.get_layer("out").set_weights([kernel, np.array([0.0, 50.0], "float32")])
    rows = rng.uniform(-1, 1, size=(600, 8)).astype("float32")  # held-out rows inside the calibrated range
    return m, {"x": rows[:300]}, {"x": rows[300:]}


def test_mixed_keeps_the_sensitive_op_out_of_int8_and_lowers_the_error(tmp_path):
    m, rep, held = _wide_output_model()
    plain = to_tflite(m, tmp_path / "plain.tflite", mode="int8", representative=rep, objective="regression")
    mixed = to_tflite(m, tmp_path / "mixed.tflite", mode="int8", representative=rep, objective="regression",
                      recovery=("mixed",), validation=held, tolerance={"max_abs": 0.05})
    plan = read_sidecar(mixed)["recovery"]["mixed"]
    assert plan["int16"] + plan["float"] == ["StatefulPartitionedCall:0"], plan  # the FC writing the output
    assert plan["steps"][-1]["parity"]["max_abs"] < 0.8 * plan["steps"][0]["parity"]["max_abs"]
    before, after = _parity(m, plain, held)["max_abs"], _parity(m, mixed, held)["max_abs"]
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("kwargs, words", [
    ({"recovery": ("magic",)}, "unknown recovery option 'magic'"),
    ({"recovery": ("percentile",), "mode": "float32"}, "applies to mode='int8' only"),
    ({"recovery": ("percentile", "mse")}, "pick one"),
    ({"recovery": ("mixed",)}, "needs validation="),
    ({"per_channel": False, "mode": "float16"}, "applies to the quantized modes"),
])
def test_bad_recovery_is_one_line(tmp_path, kwargs, words):
    x = keras.Input((2,), name="x")
    m = keras.Model({"x": x}, keras.layers.Dense(1)(x))
    kwargs = {"mode": "int8", **kwargs}
    with pytest.raises(TFCompressError, match=words) as e:
        to_tflite(m, tmp_path / "m.tflite", representative={"x": np.zeros((20, 2), "float32") + 1},
                  objective="regression", **kwargs)
    assert "\n" not in str(e.value)
