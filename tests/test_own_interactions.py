"""Your own interactions log (issue 14): any ratings or clicks table through ``tfcompress run --task ctr|
retrieval --data FILE``, with column roles named or inferred, no time column (split by user), a rating
label (click = rating >= threshold), and one-line errors that write nothing."""
import json

import numpy as np
import pandas as pd
import pytest

from tfcompress.cli import main
from tfcompress.errors import TFCompressError
from tfcompress.pipeline import RunConfig
from tfcompress.tasks.ctr import interaction_roles, load_interactions, rating_threshold


def _ratings(n_users=200, n_items=150, per_user=30, seed=0):
    """``user_id,book_id,rating`` (1-5 stars, no time): good books and generous users rate higher."""
    rng = np.random.default_rng(seed)
    quality, mood = rng.normal(0, 1, n_items), rng.normal(0, 0.5, n_users)
    rows = []
    for u in range(n_users):
        for b in rng.choice(n_items, per_user, replace=False):
            stars = np.clip(np.round(3.2 + 1.2 * quality[b] + mood[u] + rng.normal(0, 0.5)), 1, 5)
            rows.append((1000 + u, 50_000 + b, int(stars)))
    return pd.DataFrame(rows, columns=["user_id", "book_id", "rating"])


@pytest.fixture(scope="module")
def ratings_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "ratings.csv"
    _ratings().to_csv(path, index=False)
    return path


def _folders(root):
    (root / "few.yaml").write_text("latency_runs: 5\n")
    return ["--out", str(root / "run"), "--savedmodels", str(root / "sm"), "--tflite-dir", str(root / "tfl"),
            "--config", str(root / "few.yaml")]


def test_ctr_on_ratings_without_time_end_to_end(ratings_csv, tmp_path, capsys):
    args = ["run", "--task", "ctr", "--data", str(ratings_csv), "--user", "user_id", "--item", "book_id", "--quick"]
    assert main(args + _folders(tmp_path)) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    rows = {(r["name"], r["format"]): r for r in report["stages"]}
    for key in [("teacher", "keras"), ("student_alone", "keras"), ("student_distilled", "keras"),
                ("student_int8", "tflite")]:
        assert key in rows and 0.5 < rows[key]["auc"] <= 1.0, key
    assert rows[("teacher", "keras")]["auc"] > 0.7  # the taste is learnable
    assert rows[("student_int8", "tflite")]["size_bytes"] < rows[("teacher_float32", "tflite")]["size_bytes"]
    description = report["meta"]["data"]
    assert "by user: each user's last row in the file is test" in description and "(no time column)" in description
    assert "click = rating >= 4, a 1-5 star scale" in description
    assert report["config"]["split"] == "user" and report["config"]["user"] == "user_id"
    assert "by user" in capsys.readouterr().err  # the progress line says it too


def test_retrieval_on_the_same_file(ratings_csv, tmp_path, capsys):
    args = ["run", "--task", "retrieval", "--data", str(ratings_csv), "--quick", "--stages", "teacher,baseline"]
    assert main(args + _folders(tmp_path)) == 0  # roles inferred: user_id, book_id, rating
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    names = [r["name"] for r in report["stages"]]
    assert "teacher" in names and "student_alone" in names
    assert all(0 <= r["sampled_ndcg@10"] <= 1 for r in report["stages"] if "sampled_ndcg@10" in r)
    assert "leave-last-out in file order (no time column)" in report["meta"]["data"]


# ------------------------------------------------------------------------------------------- roles


def test_roles_one_rule_names_then_schema():
    df = pd.DataFrame({"customer": ["a", "b", "a", "c"] * 5, "sku": ["x", "y", "z", "x"] * 5,
                       "bought": ["yes", "no", "no", "yes"] * 5, "colour": ["red", "blue", "red", "red"] * 5})
    assert interaction_roles(df) == {"user": "customer", "item": "sku", "time": None, "label": "bought",
                                     "rating": None}
    today = pd.DataFrame({"user_id": [1, 2], "item_id": [3, 4], "timestamp": [10, 20], "click": [0, 1]})
    assert interaction_roles(today) == {"user": "user_id", "item": "item_id", "time": "timestamp",
                                        "label": "click", "rating": None}
    named = interaction_roles(df, RunConfig(user="sku", item="customer"))
    assert named["user"] == "sku" and named["item"] == "customer"
    with pytest.raises(TFCompressError, match=r"--item 'book': no such column; the table has \['customer'"):
        interaction_roles(df, RunConfig(item="book"))
    with pytest.raises(TFCompressError, match="label column 'colour' holds values like"):
        interaction_roles(df, RunConfig(label="colour"))


def test_a_ten_point_rating_is_split_at_its_median_and_the_description_says_so():
    assert rating_threshold([1, 3, 5]) == (4.0, ", a 1-5 star scale")
    assert rating_threshold(range(11)) == (5.0, ", the median rating")
    df = _ratings().assign(rating=lambda d: d.rating * 2)  # 2..10
    events, spec, description = load_interactions(df)
    threshold = float(np.median(df.rating))
    assert (events.click == (events.rating >= threshold)).all()
    assert f"click = rating >= {threshold:g}, the median rating" in description
    events, _, description = load_interactions(df, RunConfig(label_threshold=9))
    assert events.click.mean() == pytest.approx((df.rating >= 9).mean()) and "rating >= 9)" in description


def test_user_split_and_the_splits_a_log_without_time_refuses(ratings_csv):
    cfg = RunConfig(task="ctr", data=str(ratings_csv), quick=True, split="random").validate()
    data = cfg.task.load(cfg)
    assert cfg.split == "random" and "random" in data.description
    cfg = RunConfig(task="ctr", data=str(ratings_csv), quick=True).validate()
    data = cfg.task.load(cfg)
    assert len(data.test_labels) == 200  # one row per user (each has 30)
    with pytest.raises(TFCompressError, match="--split time needs a time column"):
        RunConfig(task="ctr", data=str(ratings_csv), split="time").validate()
    with pytest.raises(TFCompressError, match="retrieval task holds out each user's last positive"):
        RunConfig(task="retrieval", data=str(ratings_csv), split="stratified").validate()


def test_tsv_parquet_and_extra_columns(tmp_path):
    df = _ratings(n_users=40).assign(genre=lambda d: np.where(d.book_id % 3 == 0, "poetry", "novel"))
    df.to_csv(tmp_path / "log.tsv", sep="\t", index=False)
    _, spec, description = load_interactions(str(tmp_path / "log.tsv"))
    assert spec.names == ["user_id", "item_id"] and "column genre ignored in this pass" in description
    try:
        df.to_parquet(tmp_path / "log.parquet")
    except ImportError:
        pytest.skip("no parquet engine")
    events, _, _ = load_interactions(str(tmp_path / "log.parquet"))
    assert len(events) == len(df)


# ------------------------------------------------------------------------------------------- errors


def _bad_files(tmp):
    (tmp / "empty.csv").write_text("")
    (tmp / "latin.csv").write_bytes("user_id,item_id\n1,caf\xe9\n2,th\xe9\n".encode("latin-1"))
    (tmp / "ragged.csv").write_text("user_id,item_id\n1,2\n3,4,5,6\n7,8\n")
    (tmp / "noids.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp / "allclick.csv").write_text("user_id,item_id,click\n" + "".join(f"{i % 7},{i % 11},1\n" for i in range(60)))
    return {"empty.csv": "is empty", "latin.csv": "is not UTF-8", "ragged.csv": "cannot read it as a table",
            "noids.csv": "has no user/item column (it has ['a', 'b']): name them with --user COLUMN --item COLUMN",
            "allclick.csv": "has only one label value (1 on every row)"}


@pytest.mark.parametrize("task", ["ctr", "retrieval"])
def test_bad_files_are_one_line_and_write_nothing(task, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = _bad_files(tmp_path)
    if task == "retrieval":
        expected.pop("allclick.csv")  # every row a positive is a fine implicit log for retrieval
    before = sorted(p.name for p in tmp_path.iterdir())
    for name, words in expected.items():
        assert main(["run", "--task", task, "--data", name]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (name, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run folder was made
