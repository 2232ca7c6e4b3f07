"""`tfcompress bench` and `tfcompress report` over a tiny Keras model, its SavedModel and two .tflite files."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from tfcompress import keras
from tfcompress.cli import main

EVENTS = 2000


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from tfcompress.data import make_ecommerce, sample_inputs
    from tfcompress.export import saved_model, to_tflite
    from tfcompress.models import ctr_student

    root = tmp_path_factory.mktemp("bench_models")
    shop = make_ecommerce(EVENTS, seed=0)
    train = shop.split()[0]
    keras.utils.set_random_seed(0)
    model = ctr_student(shop.spec, embedding_dim=2, hidden=(4,))
    paths = {"keras": str(root / "tiny.keras"), "sm": str(root / "tiny_sm")}
    model.save(paths["keras"])
    saved_model(model, paths["sm"])
    rep = sample_inputs(train, shop.spec, 50)
    paths["f32"] = to_tflite(model, str(root / "tiny_f32.tflite"), mode="float32")
    paths["int8"] = to_tflite(model, str(root / "tiny_int8.tflite"), mode="int8", representative=rep,
                              num_calibration=50, metadata={"feature_spec": shop.spec.to_dict()})
    return root, shop, model, paths


@pytest.fixture(scope="module")
def bench_run(models, tmp_path_factory):
    root, shop, model, paths = models
    out = tmp_path_factory.mktemp("bench_out") / "report"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["bench", paths["keras"], paths["sm"], paths["f32"], paths["int8"], paths["int8"],
                     "--events", str(EVENTS), "--batch", "1,4", "--threads", "1", "--xnnpack", "on,off",
                     "--runs", "20", "--baseline", "tiny_f32", "--out", str(out), "--no-progress"])
    with open(out / "report.json") as f:
        report = json.load(f)
    return out, report, buf.getvalue(), code


def test_bench_writes_every_file_and_plot(bench_run):
    out, report, stdout, code = bench_run
    assert code == 0
    for name in ("report.md", "report.csv", "report.json", "report.html", "report_latency.csv",
                 "report_layers.csv", "pareto.png", "latency.png", "latency_vs_quality.png", "sparsity.png"):
        assert (out / name).stat().st_size > 0, name
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "<h3>latency</h3>" in html
    assert "| tiny_int8 |" in stdout and "noise floor (tiny_int8 vs tiny_int8#2, same file)" in stdout
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_bench_rows_quality_and_baseline_diffs(bench_run, models):
    from tfcompress.bench import metrics
    from tfcompress.data import frame_to_inputs
    from tfcompress.data import labels_of

    _, shop, model, paths = models
    _, report, _, _ = bench_run
    stages = {s["name"]: s for s in report["stages"]}
    assert list(stages) == ["tiny", "tiny_sm", "tiny_f32", "tiny_int8", "tiny_int8#2"]
    assert [stages[n]["format"] for n in stages] == ["keras", "savedmodel", "tflite", "tflite", "tflite"]
    # quality on the same test split as a direct evaluation of the Keras model
    test = shop.split()[2]
    logits = model.predict(frame_to_inputs(test, shop.spec), verbose=0).reshape(-1)
    expected = metrics.auc(labels_of(test, shop.spec), logits)
    for name in ("tiny", "tiny_sm", "tiny_f32"):
        assert stages[name]["auc"] == pytest.approx(expected, abs=1e-5)
        assert stages[name]["eval_rows"] == len(test)
    assert abs(stages["tiny_int8"]["auc"] - expected) < 0.05
    # differences against the chosen baseline, with a bootstrap interval around them
    assert stages["tiny_f32"].get("auc_diff") is None
    for name in ("tiny", "tiny_int8"):
        s = stages[name]
        assert s["auc_diff_lo"] <= s["auc_diff"] <= s["auc_diff_hi"]
    assert stages["tiny"]["auc_diff"] == pytest.approx(0.0, abs=1e-5)
    # size, structure and peak interpreter memory (TFLite only)
    assert stages["tiny_int8"]["size_bytes"] < stages["tiny_f32"]["size_bytes"]
    assert stages["tiny"]["params"] == model.count_params()
    for name in ("tiny_f32", "tiny_int8"):
        assert 5e6 < stages[name]["peak_rss_bytes"] < 2e9 and stages[name]["interpreter_rss_bytes"] >= 0
    assert stages["tiny"].get("peak_rss_bytes") is None
    b1 = pd.DataFrame(report["tables"]["latency"]).query("batch == 1 and name == 'tiny_int8' and xnnpack == 'on'")
    assert stages["tiny_int8"]["p50_us"] == pytest.approx(float(b1["p50_us"].iloc[0]))
    assert stages["tiny_int8"]["path"] == os.path.abspath(paths["int8"])
    layers = pd.DataFrame(report["tables"]["layers"])
    assert set(layers["model"]) >= {"tiny", "tiny_f32", "tiny_int8"}
    assert ((layers["sparsity"] >= 0) & (layers["sparsity"] <= 1)).all()


def test_bench_latency_rows_cover_every_configuration(bench_run):
    from tfcompress.bench import gpu_devices

    _, report, _, _ = bench_run
    lat = pd.DataFrame(report["tables"]["latency"])
    timed = lat.dropna(subset=["p50_us"])
    tfl = timed[timed["format"] == "tflite"]
    assert len(tfl) == 3 * 2 * 2  # 3 tflite models x 2 batch sizes x XNNPACK on/off
    assert set(tfl["xnnpack"]) == {"on", "off"} and set(tfl["batch"]) == {1, 4}
    assert (timed["runs"] == 20).all()
    assert ((timed["p50_us"] <= timed["p90_us"]) & (timed["p90_us"] <= timed["p99_us"])).all()
    assert np.allclose(timed["throughput_per_s"], timed["batch"] * 1e6 / timed["mean_us"])
    assert np.allclose(timed["throughput_p50_per_s"], timed["batch"] * 1e6 / timed["p50_us"])
    tf_rows = lat[lat["format"].isin(["keras", "savedmodel"])]
    if not gpu_devices():  # the missing GPU is a row, not silence
        gpu = tf_rows[tf_rows["device"] == "GPU"]
        assert len(gpu) == 2 * 2 and gpu["note"].str.contains("no GPU visible").all()
        assert gpu["p50_us"].isna().all()
    assert len(report["latency_samples_us"]) == len(timed)


def test_report_rerenders_from_report_json(bench_run):
    out, report, _, _ = bench_run
    before = (out / "report.md").read_text()
    for name in ("report.md", "report.html", "pareto.png", "latency.png"):
        (out / name).unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == before
    assert (out / "latency.png").stat().st_size > 0 and (out / "report.html").stat().st_size > 0
    with open(out / "report.json") as f:
        assert json.load(f)["stages"] == report["stages"]


def test_report_rerenders_a_run_folder(tmp_path):
    from tfcompress.bench import Report

    stages = [{"name": "teacher_float32", "format": "tflite", "size_bytes": 150_000, "auc": 0.74,
               "path": "/x/t.tflite"},
              {"name": "student_int8", "format": "tflite", "size_bytes": 15_000, "auc": 0.745,
               "path": "/x/s.tflite"}]
    Report([{k: v for k, v in s.items() if k != "path"} for s in stages]).to_csv(tmp_path / "report.csv")
    with open(tmp_path / "report.json", "w") as f:
        json.dump({"title": "tfcompress run: ctr", "meta": {"seed": 0}, "stages": stages, "parity": {},
                   "summary": {}, "config": {"events": 20000}}, f)
    assert main(["report", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "| student_int8 | tflite | 14.65 KB | 0.7450 |" in md and "path" not in md
    assert (tmp_path / "pareto.png").stat().st_size > 0
    with open(tmp_path / "report.json") as f:
        assert json.load(f)["config"] == {"events": 20000}


def _error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("tfcompress: error: "), err
    return err[0]


def test_bad_input_is_one_line_and_exit_2(models, tmp_path, capsys):
    root, shop, model, paths = models
    text = tmp_path / "notes.tflite"
    text.write_text("not a model")
    assert "notes.tflite' is not a TFLite model" in _error(capsys, ["bench", str(text)])
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0" * 16)
    assert "is not a model file" in _error(capsys, ["bench", str(other)])
    assert "not a SavedModel" in _error(capsys, ["bench", str(tmp_path)])
    assert "does not exist" in _error(capsys, ["bench", str(tmp_path / "missing.keras")])
    # a model whose inputs differ: the differing inputs are named
    x = keras.Input((), name="user_id", dtype="int32")
    small = keras.Model({"user_id": x}, keras.layers.Dense(1)(keras.layers.Embedding(10, 2)(x)))
    small.save(tmp_path / "small.keras")
    msg = _error(capsys, ["bench", paths["keras"], str(tmp_path / "small.keras"), "--no-progress"])
    assert "models take different inputs: small lacks [" in msg and "'price'" in msg
    # a dataset that does not fit: the missing columns are named
    test = shop.split()[2]
    test.drop(columns=["price", "brand"]).to_csv(tmp_path / "rows.csv", index=False)
    msg = _error(capsys, ["bench", paths["f32"], "--data", str(tmp_path / "rows.csv"), "--no-progress"])
    assert "the data lacks columns ['brand', 'price']" in msg
    # ids beyond the model's vocabulary (data of another size than the model was trained on)
    msg = _error(capsys, ["bench", paths["int8"], "--events", "20000", "--no-progress"])
    assert "has ids in" in msg and "--events" in msg
    # without a sidecar to check against, the failing model is named in one line
    msg = _error(capsys, ["bench", paths["f32"], "--events", "20000", "--no-progress", "--no-memory"])
    assert "tiny_f32 failed on the data" in msg
    assert "baseline 'nope'" in _error(capsys, ["bench", paths["f32"], "--baseline", "nope", "--no-progress"])
    assert "batch sizes" in _error(capsys, ["bench", paths["f32"], "--batch", "1,x", "--no-progress"])
    assert "no report.json" in _error(capsys, ["report", str(tmp_path)])


def test_bench_on_a_csv_file(models, tmp_path, capsys):
    root, shop, model, paths = models
    test = shop.split()[2]
    test.to_parquet(tmp_path / "rows.parquet")
    code = main(["bench", paths["int8"], "--data", str(tmp_path / "rows.parquet"), "--batch", "2",
                 "--threads", "1,2", "--xnnpack", "on", "--runs", "20", "--no-memory", "--no-progress",
                 "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    with open(tmp_path / "out" / "report.json") as f:
        report = json.load(f)
    assert report["stages"][0]["eval_rows"] == len(test) and "rows.parquet" in report["meta"]["data"]
    lat = pd.DataFrame(report["tables"]["latency"])
    assert sorted(lat["threads"]) == [1, 2]


def _bench_parser():
    import argparse

    from tfcompress import bench_command

    parser = argparse.ArgumentParser(prog="tfcompress")
    bench_command.add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_bench_command_parser_defaults():
    args = _bench_parser().parse_args(["bench", "a.tflite", "b.keras"])
    assert args.command == "bench" and args.models == ["a.tflite", "b.keras"]
    assert (args.data, args.events, args.seed, args.label) == ("builtin", 20_000, 0, None)
    assert (args.batch, args.threads, args.xnnpack, args.runs, args.warmup) == ("1,32", "1,2,4", "on,off", 100, None)
    assert (args.baseline, args.no_memory, args.no_progress) == (None, False, False)
    assert args.out == os.path.join("runs", "bench")
    args = _bench_parser().parse_args(["bench", "a.tflite", "--events", "2,000", "--runs", "1_000"])
    assert (args.events, args.runs) == (2000, 1000)


def test_bench_command_main(models, tmp_path, capsys):
    from tfcompress import bench_command
    from tfcompress.errors import TFCompressError

    _, _, _, paths = models
    parser = _bench_parser()
    args = parser.parse_args(["bench", paths["int8"], paths["int8"], "--events", str(EVENTS), "--batch", "2",
                              "--threads", "1", "--xnnpack", "on", "--runs", "5", "--no-memory", "--no-progress",
                              "--out", str(tmp_path / "out")])
    assert bench_command.main(args) == 0
    out = capsys.readouterr().out
    assert "| tiny_int8#2 |" in out and "noise floor (tiny_int8 vs tiny_int8#2, same file)" in out
    assert f"report: {tmp_path / 'out' / 'report.md'}" in out and (tmp_path / "out" / "report.json").exists()
    for flag, value, match in (("--xnnpack", "maybe", "xnnpack must be a comma-separated list"),
                               ("--threads", ",", "threads is empty"), ("--batch", "0", "batch sizes must be")):
        with pytest.raises(TFCompressError, match=match):
            bench_command.main(parser.parse_args(["bench", paths["int8"], flag, value, "--no-progress"]))
