"""QAT for text-model layers (LayerNormalization config, attention left float with a reason), selective QAT
by regex, and int8 / int16x8 export of a small Transformer-ish model."""
import numpy as np
import pytest

from tfcompress import export
from tfcompress import keras
from tfcompress.errors import TFCompressError
from tfcompress.quantize import LayerNormQuantizeConfig, config_for, float_layers, layer_plan, quantize_aware


def tiny_text():
    keras.utils.set_random_seed(0)
    tok = keras.Input((8,), dtype="int32", name="tokens")
    e = keras.layers.Embedding(50, 16, name="emb")(tok)
    a = keras.layers.MultiHeadAttention(2, 8, name="mha")(e, e)
    h = keras.layers.LayerNormalization(name="ln")(keras.layers.Add(name="res")([e, a]))
    p = keras.layers.GlobalAveragePooling1D(name="pool")(h)
    out = keras.layers.Dense(1, name="logit")(keras.layers.Dense(8, activation="relu", name="head")(p))
    return keras.Model({"tokens": tok}, out, name="tiny_text")


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    x = rng.randint(1, 50, (256, 8)).astype("int32")
    return x, (x[:, 0] > 25).astype("float32")


def test_layer_plan_reports_configs_and_float_reasons():
    plan = {n: (a, why) for n, a, why in layer_plan(tiny_text())}
    assert plan["ln"] == ("custom", "LayerNormQuantizeConfig")
    assert plan["mha"][0] == "float" and "(query, value)" in plan["mha"][1]
    assert plan["emb"][0] == "float" and plan["logit"][0] == "quantize"
    assert isinstance(config_for(keras.layers.LayerNormalization()), LayerNormQuantizeConfig)
    assert config_for(keras.layers.MultiHeadAttention(2, 4)) is None
    assert set(float_layers(tiny_text(), layers="logit|head")) == {"emb", "mha", "res", "ln", "pool"}


def test_transformer_qat_trains_and_converts_to_int8(data, tmp_path):
    x, y = data
    q = quantize_aware(tiny_text())
    names = [l.name for l in q.layers]
    assert {"quant_ln", "quant_logit", "quant_res", "mha"} <= set(names)
    q.compile(keras.optimizers.Adam(1e-2), keras.losses.BinaryCrossentropy(from_logits=True))
    q.fit({"tokens": x}, y, epochs=1, batch_size=64, verbose=0)
    path = export.to_tflite(q, tmp_path / "text_qat.tflite", mode="int8", representative={"tokens": x},
                            num_calibration=64, parity_data={"tokens": x, "labels": y},
                            tolerance={"metric_diff": 0.02})
    side = export.read_sidecar(path)
    assert side["outputs"]["logit"]["dtype"] == "int8"
    assert side["parity"]["mean_abs"] < 0.02, side["parity"]
    ops = export.TFLiteModel(path).op_counts()
    assert "BATCH_MATMUL" in ops and "SOFTMAX" in ops   # the attention block made it into the int8 file


def test_selective_qat_by_regex(data):
    q = quantize_aware(tiny_text(), layers="^(head|logit)$")
    names = [l.name for l in q.layers]
    assert "quant_head" in names and "quant_logit" in names
    assert "ln" in names and "res" in names and "quant_ln" not in names
    with pytest.raises(TFCompressError, match="no layer named"):
        quantize_aware(tiny_text(), layers=["nope"])


def test_int16x8_attention_crash_becomes_a_clear_error(data, tmp_path):
    # LiteRT 2.3's int16 kernels abort the process on this attention block; the export runs the model in
    # a child process first, so the caller gets an error instead of a dead kernel
    x, _ = data
    with pytest.raises(TFCompressError, match="crashed .* in mode 'int16x8'.*use mode='int8'"):
        export.to_tflite(tiny_text(), tmp_path / "t16.tflite", mode="int16x8", representative={"tokens": x})
    assert not (tmp_path / "t16.tflite").exists()
