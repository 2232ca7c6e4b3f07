"""bench additions: SavedModel latency, Report extra tables and round trip, multiclass / regression / unlabeled
benchmarks, the peak-memory subprocess."""
import numpy as np
import pandas as pd
import pytest

from tfcompress import keras
from tfcompress.bench import Report, compare_latency, keras_latency, savedmodel_latency
from tfcompress.bench import BenchModel, load_model, run_bench, tflite_peak_memory
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


def test_bench_parts_compose_to_run_bench(tiny):
    from tfcompress.bench import (assemble_report, grid_settings, load_data, load_models, measure_footprint,
                                  measure_latency_grid, measure_quality)

    _, _, sm, tfl, _ = tiny
    frame = _frame()
    frame["label"] = (frame["a"] + frame["b"] > 0).astype(int)
    data = load_data(frame)
    assert data.objective == data.task == "binary"
    with pytest.raises(AttributeError):
        data.task = "regression"  # a read-only alias of objective
    models = load_models([sm, tfl, tfl])
    assert [m.name for m in models] == ["sm", "m", "m#2"]

    quality = measure_quality(models, data, baseline="m", bootstrap=20, seed=3)
    assert quality["auc_diff"].isna().tolist() == [False, True, False]
    assert quality.loc[2, ["auc_diff", "auc_diff_lo", "auc_diff_hi"]].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(TFCompressError, match="baseline 'nope'"):
        measure_quality(models, data, baseline="nope")
    footprint, layers = measure_footprint(models)
    assert "peak_rss_bytes" not in footprint.columns and set(layers["model"]) == {"m", "m#2"}
    grid, samples = measure_latency_grid(models, data, batches=(1, 3), threads=(1, 2), xnnpack=(False,),
                                         runs=3, warmup=1)
    timed = grid.dropna(subset=["p50_us"])
    assert len(timed[timed["format"] == "tflite"]) == 2 * 2 * 2 and len(samples) == len(timed)
    result = assemble_report(footprint, quality, grid, layers=layers, samples=samples, data=data, baseline="m",
                             batches=(1, 3), threads=(1, 2), xnnpack=(False,), runs=3, warmup=1, bootstrap=20)
    assert result.report.meta["baseline"] == "m" and "XNNPACK off" in result.report.meta["headline"]
    assert result.models["p50_us"].notna().all() and list(result.report.tables) == ["latency", "layers"]

    whole = run_bench([sm, tfl, tfl], data=frame, baseline="m", bootstrap=20, seed=3, batches=(1, 3),
                      threads=(1, 2), xnnpack=(False,), runs=3, warmup=1, memory=False, progress=False)
    shared = [c for c in result.models.columns if not c.startswith(("p50", "p90", "p99", "throughput"))]
    pd.testing.assert_frame_equal(whole.models[shared], result.models[shared])
    assert list(whole.models.columns) == list(result.models.columns)

    assert grid_settings((1, 32), (2,), (True, False), runs=30) == ([1, 32], [2], [True, False], 3)
    for bad, match in ((dict(batches="1,32"), "batch sizes"), (dict(threads=(0,)), "threads"),
                       (dict(xnnpack=("on",)), "xnnpack"), (dict(batches=()), "empty"), (dict(runs=0), "runs")):
        with pytest.raises(TFCompressError, match=match):
            grid_settings(**bad)
