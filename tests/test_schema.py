"""Schema inference, encoding, the vocabulary JSON, FeatureSpec.objective and in-model preprocessing.

The tables are small files written in tmp_path: a session table (numbers, strings, booleans, NaN and a
TRUE/FALSE label, no user/item/time), a headerless ``sentence<TAB>label`` file, a ``user_id,book_id,rating``
log without timestamp; the shared reviews CSV is used when it is on this machine."""
import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from tfcompress.data import Feature, FeatureSpec, Schema, find_dataset, read_table, shared_data_dir, value_key
from tfcompress.errors import TFCompressError


def _sessions(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "Administrative": rng.integers(0, 30, n),
        "ProductRelated_Duration": rng.gamma(1.0, 20_000.0, n).round(2),
        "BounceRates": rng.uniform(0, 0.2, n),
        "Month": rng.choice(["Feb", "Mar", "May", "June", "Nov", "Dec"], n),
        "VisitorType": rng.choice(["Returning_Visitor", "New_Visitor", "Other"], n),
        "OperatingSystems": rng.integers(1, 9, n),
        "Weekend": rng.random(n) < 0.3,
        "Revenue": rng.random(n) < 0.2,
    })
    df.loc[::17, "ProductRelated_Duration"] = np.nan
    df.loc[::23, "Month"] = None
    return df


@pytest.fixture
def sessions_csv(tmp_path):
    path = tmp_path / "sessions.csv"
    _sessions().to_csv(path, index=False)  # booleans written as True/False
    text = path.read_text().replace("True", "TRUE").replace("False", "FALSE")
    path.write_text(text)
    return str(path)


def test_session_table_infers_kinds_roles_and_stats(sessions_csv):
    df = read_table(sessions_csv)
    schema = Schema.infer(df)
    assert (schema.label, schema.objective, schema.classes) == ("Revenue", "binary", ["False", "True"])
    assert schema.user is schema.item is schema.time is None
    kinds = {c.name: c.kind for c in schema.columns if c.role == "feature"}
    assert kinds == {"Administrative": "numeric", "ProductRelated_Duration": "numeric", "BounceRates": "numeric",
                     "Month": "categorical", "VisitorType": "categorical", "OperatingSystems": "categorical",
                     "Weekend": "categorical"}
    dur = schema["ProductRelated_Duration"]
    filled = df[dur.name].fillna(dur.fill)
    assert dur.missing == df[dur.name].isna().sum() and dur.fill == pytest.approx(df[dur.name].median())
    assert (dur.mean, dur.std) == (pytest.approx(filled.mean()), pytest.approx(filled.std(ddof=0)))
    assert schema.roles_line() == "label=Revenue (binary), features: 3 numeric, 4 categorical"
    text = str(schema)
    assert len(text.splitlines()) == 1 + len(schema.columns) and "ProductRelated_Duration" in text


def test_session_table_trains_a_ctr_student_with_preprocessing_inside(sessions_csv):
    from tfcompress import keras
    from tfcompress.models import ctr_student, with_preprocessing

    df = read_table(sessions_csv)
    schema = Schema.infer(df)
    spec = schema.to_feature_spec()
    assert spec.objective == "binary" and spec["productrelated_duration"].normalized
    assert spec["month"].vocab_size == len(schema["Month"].vocabulary) + 1
    x, y = schema.encode(df)
    assert np.isnan(x["productrelated_duration"]).any() and x["month"].dtype == np.int32
    model = with_preprocessing(ctr_student(spec, hidden=(8,)), schema)
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(model.predict(x, verbose=0)).all()
    from tfcompress.data import to_dataset
    batch, labels = next(iter(to_dataset(schema.encode_frame(df), spec, batch_size=32)))
    assert sorted(batch) == sorted(spec.names) and labels.numpy().tolist() == y[:32].tolist()


def test_sentence_tab_label_without_header(tmp_path):
    path = tmp_path / "sst.tsv"
    rows = [f"{w} movie, seen {i} times\t{i % 2}" for i, w in enumerate(["a great", "a dull"] * 30)]
    path.write_text("\n".join(rows) + "\n")
    schema = Schema.infer(read_table(path))
    assert (schema.text, schema.label, schema.objective) == ("column_1", "column_2", "binary")
    assert schema["column_1"].kind == "text" and schema.inputs == []


def test_ratings_log_without_timestamp(tmp_path):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"user_id": rng.integers(0, 30, 600), "book_id": rng.integers(0, 80, 600),
                       "rating": rng.integers(1, 11, 600)})
    df.to_csv(tmp_path / "r.csv", index=False)
    schema = Schema.infer(read_table(tmp_path / "r.csv"))
    assert (schema.user, schema.item, schema.label, schema.time) == ("user_id", "book_id", "rating", None)
    assert schema.objective == "regression" and schema["user_id"].kind == "id"
    assert schema.roles_line().startswith("label=rating (regression), user=user_id, item=book_id")
    spec = schema.to_feature_spec()
    assert [f.group for f in spec.features] == ["user", "item"]
    binary = Schema.infer(df, label_threshold=8)
    assert binary.objective == "binary"
    np.testing.assert_array_equal(binary.encode(df)[1], (df["rating"] >= 8).astype("float32"))


def test_time_columns_dates_and_epoch_seconds():
    df = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=50, freq="h").astype(str),
                       "x": np.linspace(0, 1, 50), "clicked": [0, 1] * 25})
    assert Schema.infer(df).time == "when"
    df["when"] = 1_700_000_000 + np.arange(50) * 60
    schema = Schema.infer(df.rename(columns={"when": "timestamp"}))
    assert schema.time == "timestamp" and schema["timestamp"].role == "time" and not schema["timestamp"].is_input


def test_label_kinds_yes_no_classes_and_regression():
    df = pd.DataFrame({"x": np.linspace(0, 1, 60), "bought": ["yes", "no", "no"] * 20,
                       "cls": ["shoes", "bags", "hats"] * 20, "price": np.linspace(1, 99, 60)})
    yes_no = Schema.infer(df, label="bought")
    assert yes_no.classes == ["no", "yes"] and yes_no.encode(df)[1][:3].tolist() == [1.0, 0.0, 0.0]
    multi = Schema.infer(df, label="cls")
    assert multi.objective == "multiclass" and multi.classes == ["bags", "hats", "shoes"]
    assert multi.to_feature_spec().num_classes == 3 and multi.encode(df)[1].dtype == np.int32
    assert Schema.infer(df, label="price").objective == "regression"
    assert Schema.infer(df, label="price", objective="multiclass").objective == "multiclass"


def test_encode_and_vocabulary_json_give_the_same_ids(tmp_path):
    train = pd.DataFrame({"color": ["red", "blue", "red", "green", "red", "blue"], "size": [1, 2, 3, 1, 2, 2],
                          "member": [True, False, True, True, False, True], "price": [1.5, 2.0, np.nan, 4.0, 5.5, 3.0],
                          "y": [1, 0, 1, 0, 1, 0]})
    schema = Schema.infer(train, label="y", min_count=2)
    assert schema["color"].vocabulary == ["red", "blue"]  # green was seen once: OOV
    serve = pd.DataFrame({"color": ["red", "purple", None, "green"], "size": [2, 9, np.nan, 1.0],
                          "member": [False, None, True, True], "price": [np.nan, 1e9, -3.0, 2.0]})
    x, y = schema.encode(serve)
    assert y is None and x["color"].tolist() == [1, 0, 0, 0] and x["size"][1:3].tolist() == [0, 0]
    doc = json.load(open(schema.vocabulary_json(tmp_path / "vocab.json")))
    assert doc["oov_id"] == 0 and doc["columns"]["price"]["fill"] == schema["price"].fill
    for name, entry in doc["columns"].items():
        if "vocabulary" in entry:  # what an app does: key of the raw value, dict lookup, 0 when absent
            app_ids = [entry["vocabulary"].get(value_key(v), doc["oov_id"]) for v in serve[name]]
            assert app_ids == x[entry["input"]].tolist(), name
    assert np.isnan(x["price"][0]) and x["price"][1] == np.float32(1e9)  # raw: the model fills and clips


def test_schema_round_trips_and_is_editable(tmp_path):
    df = _sessions(100)
    schema = Schema.infer(df)
    again = Schema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    schema["Administrative"].kind = "categorical"
    schema["Administrative"].vocabulary = ["0", "1"]
    path = schema.save(tmp_path / "schema.json")
    loaded = Schema.load(path)
    assert loaded["Administrative"].kind == "categorical" and loaded.to_feature_spec()["administrative"].vocab_size == 3
    with pytest.raises(TFCompressError, match="unknown keys"):
        Schema.from_dict({**schema.to_dict(), "colour": 1})
    with pytest.raises(TFCompressError, match="no column"):
        schema["nope"]


def test_roles_and_options_from_arguments():
    df = _sessions(100)
    schema = Schema.infer(df, label="Weekend", features=["Month", "BounceRates"], drop=["VisitorType"])
    assert schema.label == "Weekend" and [c.name for c in schema.inputs] == ["BounceRates", "Month"]
    assert schema.dropped["VisitorType"] == "drop=" and schema.dropped["Revenue"] == "not in features="
    forced = Schema.infer(df, kinds={"OperatingSystems": "numeric"})
    assert forced["OperatingSystems"].kind == "numeric"
    assert Schema.infer(df, label=False).label is None


@pytest.mark.parametrize("frame, kwargs, words", [
    (pd.DataFrame({"x": [1.0, 2.0], "y": [1, 1]}), {"label": "y"}, "'y' has only one value"),
    (pd.DataFrame({"x": [1.0, 2.0]}), {"label": "clicked"}, "label column 'clicked' is missing"),
    (pd.DataFrame({"x": [1.0, 2.0], "y": [np.nan, np.nan]}), {"label": "y"}, "'y' is empty"),
    (pd.DataFrame({"q": ["1", "2", "n/a?", "4", "5", "6"], "y": [0, 1] * 3}), {}, "'q' mixes numbers and text: rows 2"),
    (pd.DataFrame({"code": [1, "a", 2, 3], "y": [0, 1] * 2}, dtype=object), {}, "'code' mixes numbers and text: rows 1 hold 'a'"),
    (pd.DataFrame({"session": [f"s{i}" for i in range(1000)], "y": [0, 1] * 500}), {}, "'session' has 1000 distinct"),
    (pd.DataFrame(), {}, "the table is empty"),
    (pd.DataFrame({"x": []}), {}, "the table is empty"),
    (pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), {"label": "y", "label_threshold": 5}, "one class"),
    (pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]}), {"time": "x", "drop": ["x"]}, "both time= and in drop="),
    (pd.DataFrame({"t": ["soon", "later"], "y": [0, 1]}), {"time": "t"}, "does not hold dates"),
])
def test_bad_input_is_one_line_naming_the_column(frame, kwargs, words):
    with pytest.raises(TFCompressError, match=words) as e:
        Schema.infer(frame, **kwargs)
    assert "\n" not in str(e.value)


def test_constant_and_empty_columns_are_dropped_with_a_warning():
    df = pd.DataFrame({"x": np.linspace(0, 1, 20), "const": [7] * 20, "blank": [np.nan] * 20,
                       "same": ["a"] * 20, "Unnamed: 0": range(20), "y": [0, 1] * 10})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        schema = Schema.infer(df, label="y")
    assert set(schema.dropped) == {"const", "blank", "same", "Unnamed: 0"}
    assert [c.name for c in schema.inputs] == ["x"]
    assert len(seen) == 4 and all("\n" not in str(w.message) for w in seen)
    assert "dropped: " in schema.roles_line()


def test_unknown_label_values_are_a_clear_error():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["yes", "no", "yes"]})
    schema = Schema.infer(df, label="y")
    with pytest.raises(TFCompressError, match="row 1, value 'maybe'"):
        schema.encode(pd.DataFrame({"x": [1.0, 2.0], "y": ["no", "maybe"]}))


def test_feature_spec_objective_and_the_task_alias():
    spec = FeatureSpec([Feature("x", "numeric", mean=2.0, std=3.0, fill=1.0)], label="y", objective="regression")
    assert spec.task == spec.objective == "regression"
    assert FeatureSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["objective"] == "regression"
    old = {"features": [{"name": "x", "kind": "numeric", "vocab_size": 0, "group": "context"}], "label": "y",
           "task": "multiclass", "num_classes": 3}
    assert FeatureSpec.from_dict(old).objective == "multiclass"
    assert "mean" not in FeatureSpec.from_dict(old).to_dict()["features"][0]
    with pytest.warns(DeprecationWarning, match="objective="):
        assert FeatureSpec([Feature("x", "numeric")], task="regression").objective == "regression"
    with pytest.raises(TFCompressError, match="std > 0"):
        Feature("x", "numeric", std=0.0)
    with pytest.raises(TFCompressError, match="objective 'ranking'"):
        FeatureSpec([Feature("x", "numeric")], objective="ranking")


def test_int8_tflite_with_preprocessing_matches_keras_on_raw_inputs_with_nan(tmp_path):
    from tfcompress import keras
    from tfcompress.export import TFLiteModel, to_tflite
    from tfcompress.models import NumericNormalization, with_preprocessing

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"duration": rng.gamma(1.0, 20_000.0, 500), "pages": rng.normal(50, 10, 500),
                          "y": rng.integers(0, 2, 500)})
    schema = Schema.infer(train, label="y")
    spec = schema.to_feature_spec()
    inputs = {f.name: keras.Input((), name=f.name) for f in spec.features}
    h = keras.layers.Concatenate()([keras.layers.Reshape((1,))(t) for t in inputs.values()])
    inner = keras.Model(inputs, keras.layers.Dense(1, name="logit")(keras.layers.Dense(8, activation="tanh")(h)))
    model = with_preprocessing(inner, schema)
    assert isinstance(keras.models.clone_model(model).layers[2], NumericNormalization)
    x, _ = schema.encode(train)
    path = to_tflite(model, tmp_path / "m.tflite", mode="int8", representative=x, int8_io=False)
    raw = {"duration": np.array([np.nan, 15_000.0, np.inf, 80_000.0, 0.0], "float32"),
           "pages": np.array([45.0, np.nan, 60.0, -np.inf, 51.0], "float32")}
    want = model.predict(raw, verbose=0)
    got = TFLiteModel(path).predict(raw)
    assert np.isfinite(want).all() and np.abs(got.ravel() - want.ravel()).max() < 0.05 * (np.abs(want).max() + 1)
    filled = {"duration": np.array([schema["duration"].fill, 15_000.0, schema["duration"].fill, 80_000.0, 0.0]),
              "pages": np.array([45.0, schema["pages"].fill, 60.0, schema["pages"].fill, 51.0])}
    np.testing.assert_allclose(model.predict(filled, verbose=0), want, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "m.keras")
    from tfcompress.models import custom_objects
    again = keras.models.load_model(tmp_path / "m.keras", custom_objects=custom_objects())
    np.testing.assert_allclose(again.predict(raw, verbose=0), want, rtol=1e-6)


def test_reviews_csv_infers_a_mixed_type_table():
    folder = find_dataset("reviews")
    if folder is None:
        pytest.skip(f"reviews: shared data not found (shared_data_dir()={shared_data_dir()!r}); "
                    "set TFCOMPRESS_DATA to run this test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schema = Schema.infer(read_table(os.path.join(folder, "Womens Clothing E-Commerce Reviews.csv.zip")))
    assert (schema.label, schema.objective, schema.text, schema.item) == (
        "Recommended IND", "binary", "Review Text", "Clothing ID")
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds["Age"] == kinds["Positive Feedback Count"] == "numeric"
    assert kinds["Division Name"] == kinds["Department Name"] == kinds["Class Name"] == "categorical"
    assert kinds["Title"] == "text" and "Unnamed: 0" in schema.dropped


def test_a_count_named_after_products_is_a_number_not_the_item_id():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ProductRelated": rng.integers(0, 700, 3000), "product_id": rng.integers(0, 2000, 3000),
                          "Revenue": rng.integers(0, 2, 3000).astype(bool)})
    schema = Schema.infer(frame)
    assert schema.item == "product_id" and schema["ProductRelated"].kind == "numeric"
