"""Calibration rows are checked before an int8 conversion, and a .tflite model's inputs before it runs:
one error line or one warning line naming the input and what to do."""
import json
import warnings

import numpy as np
import pytest

from tfcompress import TFCompressError, keras
from tfcompress.export import TFLiteModel, sidecar_path, to_tflite

ROWS = 200


def _model(safe=False):
    from tfcompress.models import SafeEmbedding

    price = keras.Input((), name="price")
    item = keras.Input((), name="item", dtype="int32")
    table = SafeEmbedding(50, 4, name="items") if safe else keras.layers.Embedding(50, 4, name="items")
    x = keras.layers.Concatenate()([keras.layers.Reshape((1,))(price), table(item)])
    return keras.Model({"price": price, "item": item}, keras.layers.Dense(1, name="logit")(x))


def _rows(n=ROWS, seed=0):
    rng = np.random.RandomState(seed)
    return {"price": rng.uniform(0, 10, n).astype("float32"), "item": rng.randint(0, 50, n).astype("int32")}


@pytest.fixture(scope="module")
def plain_int8(tmp_path_factory):
    return to_tflite(_model(), tmp_path_factory.mktemp("plain") / "m.tflite", mode="int8", representative=_rows())


def _convert(tmp_path, rows, **kw):
    return to_tflite(_model(), tmp_path / "m.tflite", mode="int8", representative=rows, **kw)


def test_an_all_nan_column_is_one_error(tmp_path):
    rows = {**_rows(), "price": np.full(ROWS, np.nan, "float32")}
    with pytest.raises(TFCompressError, match=r"^calibration input 'price' has 200 NaN/inf value\(s\) in 200 "
                       r"row\(s\): drop or impute them"):
        _convert(tmp_path, rows)
    assert not (tmp_path / "m.tflite").exists()


def test_too_few_rows_are_an_error_and_few_a_warning(tmp_path):
    with pytest.raises(TFCompressError, match=r"calibration data has 5 row\(s\): give at least 10"):
        _convert(tmp_path, _rows(5))
    with pytest.warns(UserWarning, match="calibration data has only 40 rows"):
        _convert(tmp_path, _rows(40))


def test_a_constant_column_warns(tmp_path):
    with pytest.warns(UserWarning, match=r"calibration input 'price' is constant \(3 everywhere\)"):
        _convert(tmp_path, {**_rows(), "price": np.full(ROWS, 3.0, "float32")})


def test_ids_outside_the_vocabulary_are_an_error(tmp_path):
    rows = _rows()
    rows["item"][:3] = [50, 77, -1]
    with pytest.raises(TFCompressError, match=r"calibration input 'item' has 3 id\(s\) outside the vocabulary "
                       r"\[0, 50\) \(min -1, max 77\)"):
        _convert(tmp_path, rows)


def test_a_narrow_calibration_range_warns_against_the_validation_data(tmp_path):
    narrow = {**_rows(), "price": np.linspace(0, 2, ROWS, dtype="float32")}
    with pytest.warns(UserWarning, match=r"calibration input 'price' spans \[0, 2\], 19% of the validation "
                      r"data's range \[0.1, 9.9\] \(1st-99th percentile\)"):
        _convert(tmp_path, narrow, validation={**_rows(500), "price": np.linspace(0, 10, 500, dtype="float32")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _convert(tmp_path, _rows(), validation=_rows(500, seed=1))  # drawn alike: no warning


def test_predict_refuses_text_and_nan(plain_int8):
    model = TFLiteModel(plain_int8)
    rows = _rows(4)
    with pytest.raises(TFCompressError, match=r"input 'item' holds text \(e\.g\. 'shoe'\); the model takes int32"):
        model.predict({**rows, "item": np.array(["shoe", "a", "b", "c"])})
    with pytest.raises(TFCompressError, match=r"input 'price' has 1 NaN/inf"):
        model.predict({**rows, "price": np.array([1.0, np.nan, 2.0, 3.0], "float32")})


def test_predict_out_of_vocabulary_ids_error_without_an_oov_id(plain_int8):
    rows = _rows(4)
    rows["item"][1] = 999
    with pytest.raises(TFCompressError, match=r"input 'item' has 1 id\(s\) outside the vocabulary \[0, 50\)"):
        TFLiteModel(plain_int8).predict(rows)


def test_predict_maps_out_of_vocabulary_ids_to_the_oov_id(tmp_path, plain_int8):
    safe = to_tflite(_model(safe=True), tmp_path / "safe.tflite", mode="int8", representative=_rows())
    assert json.loads(open(sidecar_path(safe)).read())["vocabulary"]["item"] == {"size": 50, "oov": 0}
    rows = _rows(4)
    unknown = {**rows, "item": np.array([999, -5, 3, 50], "int32")}
    known = {**rows, "item": np.array([0, 0, 3, 0], "int32")}
    np.testing.assert_array_equal(TFLiteModel(safe).predict(unknown), TFLiteModel(safe).predict(known))
    # a file whose sidecar has the data's feature spec (id 0 = unknown) maps them too
    side = json.loads(open(sidecar_path(plain_int8)).read())
    side["feature_spec"] = {"features": [{"name": "item", "kind": "categorical", "vocab_size": 50}]}
    open(sidecar_path(plain_int8), "w").write(json.dumps(side))
    model = TFLiteModel(plain_int8)
    np.testing.assert_array_equal(model.predict(unknown), model.predict(known))
