"""read_table (CSV, TSV, Parquet, sniffing, bad files) and split_table (time, user, stratified, random).

Every test writes its own small files in pytest's tmp_path."""
import numpy as np
import pandas as pd
import pytest

from tfcompress.data import Schema, read_table, sniff_format, split_table
from tfcompress.errors import TFCompressError


def _write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)
    return str(path)


def test_csv_with_header_strings_booleans_nan_and_dates(tmp_path):
    p = _write(tmp_path / "t.csv", "day,color,price,member\n2024-01-02,red,3.5,TRUE\n2024-01-03,,4.0,FALSE\n"
                                   "2024-01-04,blue,,TRUE\n")
    df = read_table(p)
    assert list(df.columns) == ["day", "color", "price", "member"]
    assert df["member"].dtype == bool and df["price"].isna().sum() == 1 and df["color"].isna().sum() == 1


def test_tsv_without_header_gets_numbered_columns(tmp_path):
    p = _write(tmp_path / "s.tsv", "a lovely dress, really\t1\ntoo small for me\t0\nfits well\t1\n")
    assert sniff_format(p) == ("\t", False)
    df = read_table(p)
    assert list(df.columns) == ["column_1", "column_2"] and len(df) == 3
    assert df["column_1"][0] == "a lovely dress, really"


def test_all_numeric_file_without_header(tmp_path):
    p = _write(tmp_path / "n.csv", "1,2,3\n4,5,6\n")
    assert read_table(p).shape == (2, 3)
    assert read_table(p, header=True).columns.tolist() == ["1", "2", "3"]


def test_header_of_words_over_words(tmp_path):
    p = _write(tmp_path / "w.csv", "user,item\nu1,i1\nu2,i2\nu1,i3\n")
    assert read_table(p).columns.tolist() == ["user", "item"]


def test_semicolon_and_pipe_delimiters_and_explicit_sep(tmp_path):
    assert read_table(_write(tmp_path / "a.csv", "x;y\n1;2\n3;4\n")).columns.tolist() == ["x", "y"]
    assert read_table(_write(tmp_path / "b.csv", "x|y\n1|2\n3|4\n")).columns.tolist() == ["x", "y"]
    assert read_table(_write(tmp_path / "c.txt", "x y\n1 2\n"), sep=" ").shape == (1, 2)


def test_parquet_and_frame_pass_through(tmp_path):
    df = pd.DataFrame({"x": [1.5, 2.5], "s": ["a", "b"], "b": [True, False]})
    df.to_parquet(tmp_path / "t.parquet")
    back = read_table(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(back, df)
    assert read_table(df) is df


def test_gzip_csv(tmp_path):
    import gzip

    with gzip.open(tmp_path / "t.csv.gz", "wt") as f:
        f.write("x,y\n1,2\n")
    assert read_table(tmp_path / "t.csv.gz").shape == (1, 2)


@pytest.mark.parametrize("make, words", [
    (lambda d: str(d / "missing.csv"), "does not exist"),
    (lambda d: str(d), "is a folder"),
    (lambda d: _write(d / "empty.csv", ""), "is empty"),
    (lambda d: _write(d / "blank.csv", "\n\n"), "no text lines"),
    (lambda d: _write(d / "head.csv", "x,y\n"), "no data rows"),
    (lambda d: _write(d / "latin.csv", "name,x\ncaf\xe9,1\n".encode("latin-1"), "wb"), "not UTF-8"),
    (lambda d: _write(d / "ragged.csv", "a,b\n1,2\n3,4,5,6\n"), "cannot read it as a table"),
    (lambda d: _write(d / "bad.parquet", "not parquet"), "Parquet"),
])
def test_bad_files_give_one_line(tmp_path, make, words):
    with pytest.raises(TFCompressError, match=words) as e:
        read_table(make(tmp_path))
    assert "\n" not in str(e.value)


def test_non_utf8_names_the_encoding(tmp_path):
    p = _write(tmp_path / "latin.csv", "name,x\ncaf\xe9,1\n".encode("cp1252"), "wb")
    with pytest.raises(TFCompressError, match="cp1252"):
        read_table(p)


def test_header_argument_is_checked(tmp_path):
    with pytest.raises(TFCompressError, match="header="):
        read_table(_write(tmp_path / "a.csv", "x\n1\n"), header="yes")


def _interactions(n_users=20, per_user=6, time=True, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(u, int(rng.integers(0, 50)), int(rng.integers(1, 6)), 1_700_000_000 + 60 * (u * per_user + k))
            for u in range(n_users) for k in range(per_user)]
    df = pd.DataFrame(rows, columns=["user_id", "book_id", "rating", "timestamp"]).sample(frac=1, random_state=0)
    return df if time else df.drop(columns="timestamp")


def test_split_by_time_keeps_the_latest_rows_for_test():
    df = _interactions()
    parts = split_table(df, Schema.infer(df))
    assert parts.how == "time"
    assert parts.train["timestamp"].max() <= parts.val["timestamp"].min()
    assert parts.val["timestamp"].max() <= parts.test["timestamp"].min()
    assert len(parts.train) + len(parts.val) + len(parts.test) == len(df)


def test_split_by_user_without_time_is_leave_last_out():
    df = _interactions(time=False).reset_index(drop=True)
    schema = Schema.infer(df)
    assert schema.time is None and schema.user == "user_id"
    train, val, test, how = split_table(df, schema)
    assert how == "user" and len(test) == len(val) == 20 and test["user_id"].is_unique
    last = df.groupby("user_id").tail(1).sort_values("user_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(test.sort_values("user_id").reset_index(drop=True), last)


def test_stratified_split_keeps_the_class_share():
    df = pd.DataFrame({"x": np.linspace(0, 1, 1000), "y": [1] * 100 + [0] * 900})
    parts = split_table(df, Schema.infer(df, label="y"), seed=3)
    assert parts.how == "stratified" and (parts.test["y"].mean(), parts.val["y"].mean()) == (0.1, 0.1)
    again = split_table(df, Schema.infer(df, label="y"), seed=3)
    pd.testing.assert_frame_equal(parts.test, again.test)


def test_random_split_for_regression_and_forced_splits():
    df = pd.DataFrame({"x": np.linspace(0, 1, 50), "y": np.linspace(3, 9, 50) ** 2})
    schema = Schema.infer(df, label="y")
    assert schema.objective == "regression" and split_table(df, schema).how == "random"
    with pytest.raises(TFCompressError, match="needs a time column"):
        split_table(df, schema, how="time")
    with pytest.raises(TFCompressError, match="is not one of"):
        split_table(df, schema, how="by-day")
    with pytest.raises(TFCompressError, match="cannot be split"):
        split_table(df.head(2), schema)
