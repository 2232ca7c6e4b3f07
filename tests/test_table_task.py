"""The ``table`` task: ``tfcompress run --data FILE`` on any labelled table (CSV, Parquet, a DataFrame),
task inference from the data's shape, and one-line errors (exit 2, nothing written) for bad tables.

The tables are small files written in tmp_path: a session table (numbers with large durations, string
months, booleans, a TRUE/FALSE label, no user/item/time; plus an empty and a constant column), a Parquet
regression table, a multiclass table, a ratings log and a headerless ``sentence<TAB>label`` file."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from tfcompress.cli import main
from tfcompress.errors import TFCompressError
from tfcompress.pipeline import RunConfig
from tfcompress.tasks import infer_task


def _sessions(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    dur = rng.gamma(1.0, 20_000.0, n).round(2)
    pages = rng.integers(0, 30, n)
    month = rng.choice(["Feb", "Mar", "May", "June", "Nov", "Dec"], n)
    visitor = rng.choice(["Returning_Visitor", "New_Visitor", "Other"], n)
    z = 4e-5 * dur + 0.08 * pages + (month == "Nov") + 0.7 * (visitor == "New_Visitor") - 2.2
    df = pd.DataFrame({"Administrative": pages, "ProductRelated_Duration": dur,
                       "BounceRates": rng.uniform(0, 0.2, n), "Month": month, "VisitorType": visitor,
                       "OperatingSystems": rng.integers(1, 9, n), "Weekend": rng.random(n) < 0.3,
                       "Notes": np.nan, "Browser": 1, "Revenue": rng.random(n) < 1 / (1 + np.exp(-z))})
    df.loc[::17, "ProductRelated_Duration"] = np.nan
    return df


def _write_sessions(path, df=None):
    df = _sessions() if df is None else df
    path.write_text(df.to_csv(index=False).replace("True", "TRUE").replace("False", "FALSE"))
    return str(path)


def _run(tmp_path, *args, out="run"):
    out = str(tmp_path / out)
    argv = ["run", *args, "--quick", "--out", out, "--savedmodels", os.path.join(out, "sm"),
            "--tflite-dir", os.path.join(out, "tfl")]
    return main(argv), out


def test_session_table_runs_end_to_end_with_raw_numbers_in_the_int8_file(tmp_path, capsys):
    from tfcompress.data import Schema
    from tfcompress.export import TFLiteModel

    csv = _write_sessions(tmp_path / "sessions.csv")
    code, out = _run(tmp_path, "--data", csv)
    err = capsys.readouterr().err
    assert code == 0, err
    progress = [ln for ln in err.splitlines() if ln.startswith("[")]
    assert progress[0].startswith("[    data] label=Revenue (binary), features: 3 numeric, 4 categorical")
    assert "stratified split" in progress[0]
    warned = [ln for ln in err.splitlines() if ln.startswith("tfcompress: warning:")]
    assert any("'Notes'" in w for w in warned) and any("'Browser'" in w for w in warned)
    report = json.load(open(os.path.join(out, "report.json")))
    names = [r["name"] for r in report["stages"]]
    assert {"teacher", "student_alone", "student_distilled", "student_int8"} <= set(names)
    assert report["config"]["task"] == "table" and report["config"]["split"] == "stratified"
    parity = report["parity"]
    assert parity["max_abs_prob_diff"] < 0.15 and abs(parity["auc_diff"]) < 0.05
    schema = Schema.load(os.path.join(out, "schema.json"))
    assert schema.label == "Revenue" and set(schema.dropped) == {"Notes", "Browser"}
    vocab = json.load(open(os.path.join(out, "tfl", "table_vocabulary.json")))
    # the app's path (the JSON mapping) and the Python path (Schema.encode) give the same inputs
    raw = pd.read_csv(csv).iloc[:64]
    x, _ = schema.encode(raw)
    for column, entry in vocab["columns"].items():
        if "vocabulary" in entry:
            ids = [entry["vocabulary"].get(str(v), vocab["oov_id"]) if pd.notna(v) else 0 for v in raw[column]]
            assert ids == x[entry["input"]].tolist(), column
    path = os.path.join(out, "tfl", "table_student_int8.tflite")
    raw.loc[3, "Month"] = "Brumaire"  # an unknown category: the OOV id 0
    x, _ = schema.encode(raw)
    assert x["month"][3] == 0
    x["productrelated_duration"][:3] = [np.nan, np.inf, 1e9]  # missing and out of range: fill and clip
    got = _interpreter_predict(path, x)
    assert np.isfinite(got).all()
    # TFLiteModel.predict lets NaN through to the inputs the model fills itself (its sidecar says which)
    np.testing.assert_allclose(TFLiteModel(path).predict(x).ravel(), got.ravel(), atol=1e-6)
    filled = {k: np.where(np.isfinite(v), v, schema[c].fill).astype(v.dtype) if v.dtype.kind == "f" else v
              for c, k, v in ((c.name, c.input, x[c.input]) for c in schema.inputs)}
    np.testing.assert_allclose(got[3:], TFLiteModel(path).predict(filled)[3:], atol=1e-5)


def _interpreter_predict(path, x):
    """The LiteRT interpreter itself on raw inputs, NaN included."""
    from tfcompress.tflite_file import interpreter

    interp = interpreter(path)
    details = {d["name"].split(":")[0].replace("serving_default_", ""): d for d in interp.get_input_details()}
    for name, d in details.items():
        interp.resize_tensor_input(d["index"], [len(x[name])])
    interp.allocate_tensors()
    for name, d in details.items():
        interp.set_tensor(d["index"], x[name].astype(d["dtype"]))
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def test_parquet_regression_reports_rmse_lower_is_better(tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 600
    df = pd.DataFrame({"weight_g": rng.gamma(2.0, 300.0, n), "category": rng.choice(["shoes", "bags", "hats"], n)})
    df["shipping_cost"] = 2.0 + df["weight_g"] / 200.0 + (df["category"] == "bags") * 1.5 + rng.normal(0, 0.3, n)
    df.to_parquet(tmp_path / "items.parquet")
    cfg = RunConfig(data=str(tmp_path / "items.parquet"), label="shipping_cost", quick=True).validate()
    assert (cfg.task.name, cfg.task.objective, cfg.task.metric, cfg.task.metric_mode) == (
        "table", "regression", "rmse", "min")
    code, out = _run(tmp_path, "--data", str(tmp_path / "items.parquet"), "--label", "shipping_cost",
                     "--stages", "baseline,export")
    assert code == 0, capsys.readouterr().err
    rows = {r["name"]: r for r in json.load(open(os.path.join(out, "report.json")))["stages"]}
    assert rows["student_alone"]["rmse"] < df["shipping_cost"].std()  # learned something
    assert abs(rows["student_int8"]["rmse"] - rows["student_alone"]["rmse"]) < 0.25 * df["shipping_cost"].std()


def test_multiclass_label_runs_prune_and_qat(tmp_path, capsys):
    rng = np.random.default_rng(2)
    n = 900
    price = rng.uniform(5, 200, n)
    df = pd.DataFrame({"price": price, "brand": rng.choice(["a", "b", "c", "d"], n),
                       "segment": np.where(price < 50, "budget", np.where(price < 120, "mid", "premium"))})
    df.to_csv(tmp_path / "products.csv", index=False)
    code, out = _run(tmp_path, "--data", str(tmp_path / "products.csv"), "--label", "segment",
                     "--stages", "baseline,prune,qat,export")
    assert code == 0, capsys.readouterr().err
    report = json.load(open(os.path.join(out, "report.json")))
    rows = {r["name"]: r for r in report["stages"]}
    assert rows["student_int8"]["accuracy"] > 0.5 and report["parity"]["metric"] == "accuracy"


def test_task_inference_picks_the_task_for_three_shapes(tmp_path):
    sessions = _write_sessions(tmp_path / "s.csv", _sessions(200))
    ratings = tmp_path / "ratings.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"user_id": rng.integers(0, 40, 400), "book_id": rng.integers(0, 60, 400),
                  "rating": rng.integers(1, 6, 400)}).to_csv(ratings, index=False)
    reviews = tmp_path / "reviews.tsv"
    words = ["lovely", "dress", "too", "small", "great", "fit", "poor", "fabric", "soft", "colour"]
    lines = [f"{' '.join(rng.choice(words, 6))} {i}\t{i % 2}" for i in range(120)]
    reviews.write_text("\n".join(lines) + "\n")
    assert infer_task(sessions) == "table"
    assert infer_task(str(ratings)) == "ctr"
    assert infer_task(str(reviews)) == "text"
    assert infer_task(str(ratings), label="rating", user=None) == "ctr"
    assert RunConfig(data=_sessions(200), quick=True).validate().task.name == "table"  # a DataFrame
    assert RunConfig(task="table", data=str(ratings), label="rating", quick=True).validate().task.name == "table"
    assert RunConfig(quick=True).validate().task.name == "ctr"  # no data: the built-in shop


def _bad_tables(tmp_path):
    """``(name, argv extra, message part)`` per bad-input case."""
    df = _sessions(300)
    one = df.assign(Revenue=True)
    mixed = df.assign(Administrative=df["Administrative"].astype(object))
    mixed.loc[[3, 9], "Administrative"] = "unknown"
    ids = df.assign(order_id=np.arange(100_000, 100_300))
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "latin1.csv").write_bytes("name,label\ncaf\xe9,1\nna\xefve,0\n".encode("latin-1") * 20)
    return [
        ("one_label", ["--data", _write_sessions(tmp_path / "one.csv", one)], "only one value"),
        ("no_label", ["--data", _write_sessions(tmp_path / "s.csv", df), "--label", "Bought"],
         "label column 'Bought' is missing: the table has ['Administrative'"),
        ("no_feature", ["--data", str(tmp_path / "s.csv"), "--features", "Month,Price"], "'Price' is missing"),
        ("mixed", ["--data", _write_sessions(tmp_path / "mixed.csv", mixed)], "mixes numbers and text"),
        ("ids", ["--data", _write_sessions(tmp_path / "ids.csv", ids), "--task", "table"], "'order_id' has 300"),
        ("empty", ["--data", str(tmp_path / "empty.csv")], "is empty"),
        ("latin1", ["--data", str(tmp_path / "latin1.csv")], "is not UTF-8"),
    ]


def test_bad_tables_are_one_line_errors_and_write_nothing(tmp_path, capsys):
    for name, extra, part in _bad_tables(tmp_path):
        capsys.readouterr()
        code, out = _run(tmp_path, *extra, out=name)
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("tfcompress: error")]
        assert code == 2 and len(err) == 1 and part in err[0], (name, err)
        assert not os.path.exists(out), name


def test_table_config_fields_are_checked():
    with pytest.raises(TFCompressError, match="split = 'sideways'"):
        RunConfig(data="x.csv", split="sideways").validate()
    with pytest.raises(TFCompressError, match="sep = ';;'"):
        RunConfig(data="x.csv", sep=";;").validate()
    assert RunConfig.from_dict({"features": "a, b", "drop": ["c"]}).features == ("a", "b")
    with pytest.raises(TFCompressError, match="table task needs --data"):
        RunConfig(task="table").validate()
    assert RunConfig(data=_sessions(50)).to_dict()["data"] == "DataFrame (50 rows x 10 columns)"
