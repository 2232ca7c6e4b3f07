"""Your own text file (issue 14): any table with a text column and a label column through ``tfcompress run
--task text --data FILE`` (a TSV without header too), labels of every usual shape, one-line errors that
write nothing, and the reviews path unchanged."""
import json

import numpy as np
import pandas as pd
import pytest

from tfcompress.cli import main
from tfcompress.data import find_dataset
from tfcompress.data.reviews import load_text_table, text_columns
from tfcompress.errors import TFCompressError
from tfcompress.pipeline import RunConfig

GOOD = ["lovely", "soft", "flattering", "perfect", "comfy", "elegant"]
BAD = ["itchy", "tight", "cheap", "sheer", "boxy", "returned"]


def _sentences(n=800, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    texts = [f"the dress is {' and '.join(rng.choice(GOOD if k else BAD, 2))} on me, {rng.choice(['sadly', 'really'])}"
             for k in y]
    return texts, y


@pytest.fixture(scope="module")
def headerless_tsv(tmp_path_factory):
    texts, y = _sentences()
    path = tmp_path_factory.mktemp("text") / "sentences.tsv"
    path.write_text("".join(f"{t}\t{k}\n" for t, k in zip(texts, y)))
    return path


def test_text_on_a_headerless_tsv_end_to_end(headerless_tsv, tmp_path):
    (tmp_path / "few.yaml").write_text("latency_runs: 5\nteacher_epochs: 3\n")
    args = ["run", "--task", "text", "--data", str(headerless_tsv), "--quick", "--config", str(tmp_path / "few.yaml"),
            "--out", str(tmp_path / "run"), "--savedmodels", str(tmp_path / "sm"), "--tflite-dir", str(tmp_path / "tfl")]
    assert main(args) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    rows = {(r["name"], r["format"]): r for r in report["stages"]}
    for key in [("teacher", "keras"), ("student_alone", "keras"), ("student_distilled", "keras"),
                ("student_int8", "tflite")]:
        assert key in rows and 0 <= rows[key]["accuracy"] <= 1, key
    assert rows[("student_alone", "keras")]["accuracy"] > 0.8  # the words give the label away
    description = report["meta"]["data"]
    assert "(text 'column_1', label 'column_2')" in description and "stratified" in description
    assert report["config"]["split"] == "stratified"
    assert (tmp_path / "tfl" / "text_tokenizer").exists() or any(p.name.startswith("text_tokenizer")
                                                                   for p in (tmp_path / "tfl").iterdir())


def test_no_header_flag_and_sniffing_agree(headerless_tsv):
    sniffed = load_text_table(str(headerless_tsv))
    told = load_text_table(str(headerless_tsv), header=False, sep="\t")
    assert sniffed.texts == told.texts and sniffed.labels.tolist() == told.labels.tolist()
    assert len(sniffed) == 800 and sniffed.class_names == ["0", "1"]


@pytest.mark.parametrize("values, names, ids", [
    ([True, False] * 5, ["False", "True"], [1, 0]),
    (["yes", "no"] * 5, ["no", "yes"], [1, 0]),
    (["Positive", "negative"] * 5, ["negative", "Positive"], [1, 0]),
    (["dress", "tops", "jackets", "tops", "dress"] * 2, ["dress", "jackets", "tops"], [0, 2]),
    ([5, 1, 2, 4, 3] * 2, ["1", "2", "3", "4", "5"], [4, 0]),
])
def test_labels_of_every_shape(values, names, ids):
    texts = [f"review number {i} of the shop" for i in range(10)]
    d = load_text_table(pd.DataFrame({"text": texts, "y": values}))
    assert d.class_names == names and d.labels.tolist()[:2] == ids


def test_a_rating_with_a_threshold_and_named_columns():
    df = pd.DataFrame({"id": range(10), "body": [f"review {i} is a long enough text" for i in range(10)],
                       "title": ["short"] * 10, "stars": [1, 2, 3, 4, 5] * 2})
    d = load_text_table(df, text="body", label="stars", label_threshold=4)
    assert d.labels.tolist()[:5] == [0, 0, 0, 1, 1] and d.class_names == ["< 4", ">= 4"]
    assert text_columns(df, label="stars") == ("body", "stars")  # the longest strings are the text
    with pytest.raises(TFCompressError, match="holds numbers with 30 values: give --label-threshold"):
        load_text_table(pd.DataFrame({"t": [f"text {i} here" for i in range(30)], "score": np.arange(30) / 7}))


def _bad_files(tmp):
    (tmp / "empty.tsv").write_text("")
    (tmp / "latin.tsv").write_bytes("tr\xe8s jolie robe\t1\nrobe trop petite\t0\n".encode("latin-1") * 10)
    (tmp / "ragged.csv").write_text("text,label\nnice one,1\nbad, very bad,0,0\nok,1\n")
    (tmp / "one.tsv").write_text("".join(f"the dress number {i} fits\t1\n" for i in range(30)))
    (tmp / "numbers.csv").write_text("a,b\n1,2\n3,4\n")
    return {"empty.tsv": "is empty", "latin.tsv": "is not UTF-8", "ragged.csv": "cannot read it as a table",
            "one.tsv": "has only one value", "numbers.csv": "has no text column (columns ['a', 'b']): name it with --text"}


def test_bad_text_files_are_one_line_and_write_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = _bad_files(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for name, words in expected.items():
        assert main(["run", "--task", "text", "--data", name]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (name, err)
    assert main(["run", "--task", "text", "--data", "one.tsv", "--split", "user"]) == 2
    assert "the text task splits texts at random, stratified by label" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_reviews_path_is_unchanged():
    if find_dataset("reviews") is None:
        pytest.skip("reviews CSV not found: put it in ../shared/data/reviews")
    from tfcompress.data import load_reviews
    from tfcompress.tasks.text import text_table

    cfg = RunConfig(task="text", data="reviews", quick=True).validate()
    corpus, source = text_table("reviews", cfg)
    assert source == "clothing reviews (recommend), ../shared/data" and cfg.split == "stratified"
    today = load_reviews(None)
    assert corpus.texts == today.texts and corpus.labels.tolist() == today.labels.tolist()
    assert corpus.class_names == ["not recommended", "recommended"]
