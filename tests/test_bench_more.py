"""bench additions: SavedModel latency, Report extra tables and round trip, multiclass / regression / unlabeled
benchmarks, the peak-memory subprocess."""
import numpy as np
import pandas as pd
import pytest

from tfcompress._keras import keras
from tfcompress.bench import Report, compare_latency, keras_latency, savedmodel_latency
from tfcompress.bench.runner import BenchModel, load_model, run_bench, tflite_peak_memory
from tfcompress.errors import TFCompressError


def _dense(n_out=1, activation=None, seed=0):
    keras.utils.set_random_seed(seed)
    a = keras.Input((), name="a")
    b = keras.Input((), name="b")
    x = keras.layers.Concatenate()([keras.layers.Reshape((1,))(a), keras.layers.Reshape((1,))(b)])
    out = keras.layers.Dense(n_out, activation=activation, name="out")(keras.layers.Dense(8, activation="relu")(x))
    return keras.Model({"a": a, "b": b}, out)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tfcompress.export import saved_model, to_tflite

    root = tmp_path_factory.mktemp("more")
    model = _dense()
    sm = saved_model(model, str(root / "sm"))
    tfl = to_tflite(model, str(root / "m.tflite"), mode="float32")
    rng = np.random.default_rng(0)
    inputs = {"a": rng.normal(size=(4,)).astype("float32"), "b": rng.normal(size=(4,)).astype("float32")}
    return root, model, sm, tfl, inputs


def test_savedmodel_latency_and_predictions_match_keras(tiny):
    _, model, sm, tfl, inputs = tiny
    stats = savedmodel_latency(sm, inputs, runs=10, warmup=2)
    assert stats.runs == 10 and stats.batch_size == 4 and stats.p50_us > 0
    out = compare_latency({"k": ("keras", model), "s": ("savedmodel", sm), "t": ("tflite", tfl)}, inputs,
                          runs=5, warmup=1, xnnpack=False)
    assert [out[n].runs for n in "kst"] == [5, 5, 5]
    expected = model.predict(inputs, verbose=0)
    for path in (sm, tfl):
        np.testing.assert_allclose(load_model(path).predict(inputs), expected, atol=1e-5)
    with pytest.raises(TFCompressError, match="not a SavedModel folder"):
        savedmodel_latency(str(tiny[0]), inputs, runs=2)
    with pytest.raises(TFCompressError, match=r"needs inputs \['b'\]"):
        savedmodel_latency(sm, {"a": inputs["a"]}, runs=2)
    assert keras_latency(model, inputs, runs=3, warmup=1).runs == 3


def test_report_extra_tables_round_trip(tmp_path):
    r = Report([{"name": "a", "size_bytes": 2048, "auc": 0.7}], title="t", meta={"seed": 1})
    r.add_table("latency grid", [{"name": "a", "p50_us": 12.34}])
    md = r.to_markdown()
    assert "### latency grid" in md and "| a | 12.3 |" in md and "2.00 KB" in md
    paths = r.save(tmp_path)
    assert pd.read_csv(paths["csv_latency_grid"])["p50_us"].tolist() == [12.34]
    back = Report.from_dict(r.to_dict())
    assert back.title == "t" and back.meta == {"seed": 1} and back.to_markdown() == md
    assert "<h3>latency grid</h3>" in back.to_html()
    with pytest.raises(TFCompressError, match="'stages' list"):
        Report.from_dict({"title": "x"})
    with pytest.raises(TFCompressError, match="list of dicts"):
        r.add_table("bad", "nope")


def _frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(size=n).astype("float32"), "b": rng.normal(size=n).astype("float32")})


def test_multiclass_regression_and_unlabeled_benchmarks(tmp_path):
    frame = _frame()
    multi = _dense(3, "softmax")
    feed = {k: frame[k].to_numpy() for k in "ab"}
    frame["label"] = np.argmax(multi.predict(feed, verbose=0), axis=1)  # the model is always right  # the model is always right
    m = BenchModel("multi", "keras", str(tmp_path), multi, {"a": np.float32, "b": np.float32})
    res = run_bench([m], data=frame, label="label", batches=(2,), runs=5, warmup=1, progress=False)
    row = res.models.iloc[0]
    assert row["accuracy"] == 1.0 and "auc" not in res.models.columns and row["logloss"] > 0
    assert res.report.meta["task"] == "multiclass"

    reg = frame.drop(columns=["label"]).assign(target=frame["a"] * 2.0)
    r = _dense(1, seed=1)
    m = BenchModel("reg", "keras", str(tmp_path), r, {"a": np.float32, "b": np.float32})
    res = run_bench([m], data=reg, label="target", batches=(1,), runs=5, warmup=1, progress=False)
    pred = r.predict(feed, verbose=0).reshape(-1)
    assert res.models.iloc[0]["rmse"] == pytest.approx(np.sqrt(np.mean((pred - reg["target"]) ** 2)), rel=1e-5)

    res = run_bench([m], data=frame.drop(columns=["label"]), batches=(1,), runs=5, warmup=1, progress=False,
                    out=str(tmp_path / "out"))
    assert "auc" not in res.models.columns and "quality not measured" in res.report.meta["task"]
    assert (tmp_path / "out" / "latency.png").exists() and not (tmp_path / "out" / "pareto.png").exists()


def test_tflite_peak_memory_runs_in_its_own_process(tiny):
    _, _, _, tfl, inputs = tiny
    peak, grown = tflite_peak_memory(tfl, inputs)
    assert 5e6 < peak < 1e9 and 0 <= grown < peak
    with pytest.raises(TFCompressError, match="measuring the memory"):
        tflite_peak_memory(tfl, {"a": inputs["a"]})
