"""Tests of the real-data loaders (MovieLens, Fashion-MNIST, reviews) and their no-data stand-ins.

Real-data tests use the shared data folder when :func:`shared_data_dir` finds it, else they skip with the reason.
"""
import gzip
import os
import zipfile

import numpy as np
import pandas as pd
import pytest

from tfcompress.data.images import (FASHION_MNIST_CLASSES, check_images, load_fashion_mnist, read_idx,
                                    synthetic_images)
from tfcompress.data.movielens import interactions_from_frame, leave_last_out, load_movielens
from tfcompress.data.paths import find_dataset, missing_data_message, shared_data_dir
from tfcompress.data.reviews import load_reviews, titles_task
from tfcompress.data.synthetic import time_split
from tfcompress.errors import TFCompressError


def _need(name):
    path = find_dataset(name)
    if path is None:
        pytest.skip(f"{name}: .../shared/data not found (shared_data_dir()={shared_data_dir()!r}); "
                    f"set TFCOMPRESS_DATA to run this test")
    return path


@pytest.fixture(scope="module")
def movielens():
    _need("movielens-small")
    return load_movielens(use_tfds=False)


@pytest.fixture(scope="module")
def fashion():
    _need("fashion_mnist")
    return load_fashion_mnist(use_tfds=False)


# ----------------------------------------------------------------- paths


def test_paths_explicit_missing_path_is_clear(tmp_path):
    with pytest.raises(TFCompressError, match="does not exist"):
        find_dataset("movielens-small", tmp_path / "nope.zip")
    with pytest.raises(TFCompressError, match="unknown dataset"):
        find_dataset("imagenet")


def test_no_data_anywhere_gives_where_to_put_files(tmp_path, monkeypatch):
    import tfcompress.data.paths as paths

    monkeypatch.setattr(paths, "shared_data_dir", lambda: None)
    monkeypatch.setattr(paths, "_EXTRA_DIRS", {})
    assert paths.find_dataset("fashion_mnist") is None
    with pytest.raises(TFCompressError, match="train-images-idx3-ubyte.gz"):
        load_fashion_mnist(use_tfds=False)
    with pytest.raises(TFCompressError, match="ml-latest-small.zip"):
        load_movielens(use_tfds=False)
    with pytest.raises(TFCompressError, match="no stock TensorFlow Datasets"):
        load_reviews()
    assert "needs internet" in missing_data_message("movielens-small")


def test_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("TFCOMPRESS_DATA", str(tmp_path))
    assert shared_data_dir() == str(tmp_path)


# ----------------------------------------------------------------- MovieLens


def test_movielens_counts(movielens):
    ev = movielens.events
    assert len(ev) == 100_836
    assert ev.user_id.nunique() == 610 and ev.item_id.nunique() == 9_724
    assert int(ev.click.sum()) == 48_580  # rating >= 4.0, checked with pandas on ratings.csv
    assert abs(ev.click.mean() - 48_580 / 100_836) < 1e-12
    assert ev.hour.between(1, 24).all()
    assert (ev.timestamp.diff().dropna() >= 0).all()


def test_movielens_ids_in_spec_range(movielens):
    spec, ev = movielens.spec, movielens.events
    assert spec.label == "click" and spec.task == "binary"
    assert [f.name for f in spec.categorical] == ["user_id", "item_id", "genre", "hour"]
    spec.check_frame(ev)
    assert spec["user_id"].vocab_size == 611 and spec["item_id"].vocab_size == 9_725
    assert ev.user_id.min() == 1 and ev.item_id.min() == 1 and ev.genre.max() == spec["genre"].vocab_size - 1
    # maps back to the original ids, and unknown ids encode to 0
    assert movielens.user_ids.loc[1] == 1 and movielens.user_ids.loc[610] == 610
    assert list(movielens.encode_items([1, 10**9])) == [1, 0]  # movieId 1 (Toy Story) is dense id 1
    assert movielens.vocabularies["genre"].loc[ev.genre[ev.item_id == 1].iloc[0]] == "Adventure"


def test_movielens_leave_last_out(movielens):
    train, test = leave_last_out(movielens.events)
    assert len(test) == 610 and len(train) + len(test) == 100_836
    latest = movielens.events.groupby("user_id").timestamp.max()
    assert (test.set_index("user_id").timestamp == latest.loc[test.user_id].to_numpy()).all()
    assert set(train.user_id) == set(test.user_id)
    parts = time_split(movielens.events, (0.8, 0.1, 0.1))
    assert sum(map(len, parts)) == 100_836 and parts[0].timestamp.max() <= parts[2].timestamp.min()


def test_movielens_from_csv_and_min_interactions(tmp_path):
    path = _need("movielens-small")
    zpath = os.path.join(path, "ml-latest-small.zip")
    with zipfile.ZipFile(zpath) as zf:
        zf.extract("ml-latest-small/ratings.csv", tmp_path)
    data = load_movielens(tmp_path / "ml-latest-small" / "ratings.csv", min_interactions=100, positive_threshold=5)
    counts = data.events.groupby("user_id").size()
    assert counts.min() >= 100 and data.spec["genre"].vocab_size == 2  # no movies.csv beside it: genre unknown
    assert data.events.click.sum() == (data.events.rating >= 5).sum()


# ----------------------------------------------------------------- interactions_from_frame


def test_interactions_from_frame_small():
    df = pd.DataFrame({
        "customer": ["bob", "ann", "bob", "ann", "cat"],
        "sku": ["B", "A", "A", "C", "A"],
        "when": pd.to_datetime(["2024-01-01 05:00", "2024-01-01 01:30", "2024-01-02 23:10",
                                "2024-01-03 00:00", "2024-01-01 12:00"]),
        "stars": [5, 3, 4, 1, 4.5],
        "shop": ["x", "y", None, "x", "y"],
    })
    d = interactions_from_frame(df, user="customer", item="sku", time="when", rating="stars",
                                side_features=[("shop", "context")])
    ev = d.events
    assert ev.user_id.tolist() == [1, 2, 3, 2, 1]  # sorted by time; ann=1, bob=2, cat=3
    assert ev.item_id.tolist() == [1, 2, 1, 1, 3]
    assert ev.hour.tolist() == [2, 6, 13, 24, 1]
    assert ev.click.tolist() == [0, 1, 1, 1, 0]
    assert ev.shop.tolist() == [2, 1, 2, 0, 1]  # None -> 0
    assert d.spec["user_id"].vocab_size == 4 and d.spec["shop"].vocab_size == 3
    d.spec.check_frame(ev)
    assert d.user_ids.loc[2] == "bob" and list(d.encode_users(["cat", "zed"])) == [3, 0]
    train, test = d.leave_last_out()
    assert sorted(test.user_id) == [1, 2]  # cat has one interaction: stays in train
    assert len(train) == 3


def test_interactions_from_frame_label_and_errors(tmp_path):
    df = pd.DataFrame({"u": [1, 2, 2], "i": [5, 5, 6], "t": [10, 20, 30], "y": [0, 1, 1]})
    assert interactions_from_frame(df, user="u", item="i", time="t", label="y").events.click.tolist() == [0, 1, 1]
    assert interactions_from_frame(df, user="u", item="i", time="t").events.click.tolist() == [1, 1, 1]
    csv = tmp_path / "log.csv"
    df.to_csv(csv, index=False)
    assert len(interactions_from_frame(csv, user="u", item="i", time="t").events) == 3
    with pytest.raises(TFCompressError, match=r"item='sku'.*it has \['u', 'i', 't', 'y'\]"):
        interactions_from_frame(df, user="u", item="sku", time="t")
    with pytest.raises(TFCompressError, match="must hold 0/1"):
        interactions_from_frame(df.assign(y=[0, 2, 1]), user="u", item="i", time="t", label="y")
    with pytest.raises(TFCompressError, match="empty values"):
        interactions_from_frame(df.assign(u=[1, None, 2]), user="u", item="i", time="t")


# ----------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_shapes_and_counts(fashion):
    (x, y), (xt, yt) = fashion
    assert x.shape == (60_000, 28, 28) and xt.shape == (10_000, 28, 28)
    assert x.dtype == np.uint8 and xt.dtype == np.uint8
    assert np.bincount(y).tolist() == [6_000] * 10 and np.bincount(yt).tolist() == [1_000] * 10
    assert len(FASHION_MNIST_CLASSES) == 10 and x.max() == 255
    check_images(x[:10])


def test_truncated_and_corrupt_idx(tmp_path):
    good = tmp_path / "t10k-labels-idx1-ubyte.gz"
    payload = (2049).to_bytes(4, "big") + (1000).to_bytes(4, "big") + bytes(range(10)) * 100
    with gzip.open(good, "wb") as f:
        f.write(payload)
    assert read_idx(good, expect_magic=2049).shape == (1000,)
    raw = good.read_bytes()
    cut = tmp_path / "cut-idx1-ubyte.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(TFCompressError, match="cut-idx1-ubyte.gz.*truncated or corrupt"):
        read_idx(cut)
    short = tmp_path / "short-idx1-ubyte.gz"
    with gzip.open(short, "wb") as f:
        f.write(payload[:-7])
    with pytest.raises(TFCompressError, match="short-idx1-ubyte.gz.*header"):
        read_idx(short)
    with pytest.raises(TFCompressError, match="magic number 2049, expected 2051"):
        read_idx(good, expect_magic=2051)
    junk = tmp_path / "junk.gz"
    junk.write_bytes(b"not gzip at all")
    with pytest.raises(TFCompressError, match="junk.gz"):
        read_idx(junk)


def test_truncated_real_file_in_folder(tmp_path):
    src = _need("fashion_mnist")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (tmp_path / name).write_bytes(open(os.path.join(src, name), "rb").read())
    raw = open(os.path.join(src, "train-images-idx3-ubyte.gz"), "rb").read(200_000)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(raw)
    with pytest.raises(TFCompressError, match="train-images-idx3-ubyte.gz"):
        load_fashion_mnist(tmp_path, use_tfds=False)


def test_check_images_errors():
    x, _ = synthetic_images(8)
    assert check_images(x[..., None].astype(np.float32) / 255).shape == (8, 28, 28, 1)
    with pytest.raises(TFCompressError, match="shape"):
        check_images(np.zeros((8, 32, 32), np.uint8))
    with pytest.raises(TFCompressError, match="dtype"):
        check_images(np.zeros((2, 28, 28), bool))
    with pytest.raises(TFCompressError, match="outside"):
        check_images(np.full((2, 28, 28), 300.0))
    with pytest.raises(TFCompressError, match="NaN"):
        check_images(np.full((2, 28, 28), np.nan))


def test_synthetic_images_deterministic_and_learnable():
    x1, y1 = synthetic_images(600, seed=0)
    x2, y2 = synthetic_images(600, seed=0)
    x3, _ = synthetic_images(600, seed=1)
    assert (x1 == x2).all() and (y1 == y2).all() and not (x1 == x3).all()
    assert x1.dtype == np.uint8 and np.bincount(y1).tolist() == [60] * 10
    xt, yt = synthetic_images(400, seed=7)
    centroids = np.stack([x1[y1 == k].reshape(-1, 784).mean(0) for k in range(10)])
    dist = ((xt.reshape(-1, 1, 784).astype(np.float64) - centroids[None]) ** 2).sum(-1)
    accuracy = (dist.argmin(1) == yt).mean()
    assert accuracy > 0.6, accuracy  # chance is 0.1
    assert synthetic_images(30, size=16, classes=3)[0].shape == (30, 16, 16)


# ----------------------------------------------------------------- reviews


def test_reviews_recommend_counts():
    _need("reviews")
    d = load_reviews(label="recommend")
    assert len(d) == 23_486 - 845 and d.dropped["empty_text"] == 845
    assert d.class_counts() == {"not recommended": 4_101, "recommended": 18_540}
    assert d.labels.dtype == np.int64 and len(d.frame) == len(d.texts) and all(t.strip() for t in d.texts)


def test_reviews_sentiment_and_department():
    _need("reviews")
    s = load_reviews(label="sentiment")
    assert s.dropped == {"empty_text": 845, "neutral_rating": 2_823}
    assert s.class_counts() == {"negative": 2_370, "positive": 17_448}
    dep = load_reviews(label="department")
    assert dep.class_names == ["Bottoms", "Dresses", "Intimate", "Jackets", "Tops", "Trend"]
    assert dep.dropped["missing_label"] == 13 and len(dep) == 22_641 - 13
    assert dep.class_counts()["Tops"] == 10_048


def test_reviews_bad_csv(tmp_path):
    csv = tmp_path / "r.csv"
    pd.DataFrame({"Review Text": ["a", "b"], "Rating": [5, 1]}).to_csv(csv, index=False)
    with pytest.raises(TFCompressError, match=r"'Recommended IND'.*available columns: \['Review Text', 'Rating'\]"):
        load_reviews(csv, label="recommend")
    zpath = tmp_path / "r.csv.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(csv, "inner.csv")
    assert load_reviews(zpath, label="sentiment").labels.tolist() == [1, 0]
    with pytest.raises(TFCompressError, match="all 2 rows have an empty"):
        load_reviews(pd.DataFrame({"Review Text": ["", None], "Recommended IND": [1, 0]}))
    with pytest.raises(TFCompressError, match=r"\['2'\] outside the declared classes"):
        load_reviews(pd.DataFrame({"Review Text": ["x", "y"], "Recommended IND": [1, 2]}))
    with pytest.raises(TFCompressError, match="outside the declared classes"):
        load_reviews(pd.DataFrame({"Review Text": ["x", "y"], "Size": ["S", "XL"]}), label="Size", classes=["S", "M"])
    d = load_reviews(pd.DataFrame({"Review Text": ["x", "y"], "Size": ["S", "M"]}), label="Size", classes=["M", "S"])
    assert d.labels.tolist() == [1, 0] and d.class_names == ["M", "S"]


def test_titles_task_without_data(monkeypatch, tmp_path):
    monkeypatch.setenv("TFCOMPRESS_DATA", str(tmp_path / "absent"))
    t = titles_task()
    assert len(t) >= 1_000 and t.labels.min() >= 0 and t.labels.max() < t.num_classes == 20
    assert all(text.split()[-1] == t.class_names[k] for text, k in zip(t.texts, t.labels))


def test_tfds_fallback_failure_is_one_clear_error(monkeypatch):
    import tensorflow_datasets as tfds

    import tfcompress.data.paths as paths

    def offline(*args, **kwargs):
        raise ConnectionError("no internet")

    monkeypatch.setattr(paths, "shared_data_dir", lambda: None)
    monkeypatch.setattr(paths, "_EXTRA_DIRS", {})
    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(TFCompressError, match=r"ml-latest-small.zip.*needs internet.*ConnectionError: no internet"):
        load_movielens()
    with pytest.raises(TFCompressError, match=r"train-images-idx3-ubyte.gz.*ConnectionError"):
        load_fashion_mnist()


@pytest.fixture
def no_local_data(monkeypatch):
    import tfcompress.data.paths as paths

    monkeypatch.setattr(paths, "shared_data_dir", lambda: None)
    monkeypatch.setattr(paths, "_EXTRA_DIRS", {})


def test_tfds_fallback_fashion_mnist_success(monkeypatch, no_local_data):
    """With no local files the loader asks TFDS for ``fashion_mnist`` and returns the same arrays as locally."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    rng = np.random.default_rng(0)
    fake = {split: (rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64))
            for split, n in (("train", 12), ("test", 5))}
    calls = []

    def fake_load(name, split, batch_size, as_supervised):
        calls.append((name, tuple(split), batch_size, as_supervised))
        return [tuple(tf.constant(a) for a in fake[s]) for s in split]

    monkeypatch.setattr(tfds, "load", fake_load)
    (x, y), (xt, yt) = load_fashion_mnist()
    assert calls == [("fashion_mnist", ("train", "test"), -1, True)]
    assert x.shape == (12, 28, 28) and x.dtype == np.uint8 and xt.shape == (5, 28, 28)
    np.testing.assert_array_equal(x, fake["train"][0][..., 0])
    np.testing.assert_array_equal(yt, fake["test"][1])


def test_tfds_fallback_movielens_success(monkeypatch, no_local_data):
    """TFDS ``movielens/latest-small-ratings`` examples (string ids, genre class ids) become the same Interactions."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    genre_names = tfds.builder("movielens/latest-small-ratings").info.features["movie_genres"].feature.names
    users = [b"1", b"1", b"1", b"2", b"2", b"3"]
    movies = [b"10", b"20", b"30", b"10", b"40", b"20"]
    ratings = [5.0, 3.0, 4.0, 4.5, 1.0, 4.0]
    genres = [[1], [2, 3], [], [1], [4], [2, 3]]
    examples = {"user_id": users, "movie_id": movies, "user_rating": ratings,
                "timestamp": [100, 200, 300, 150, 250, 50],
                "movie_genres": tf.ragged.constant(genres, dtype=tf.int64),
                "movie_title": [b"t"] * len(users)}

    def fake_load(name, split):
        assert (name, split) == ("movielens/latest-small-ratings", "train")
        return tf.data.Dataset.from_tensor_slices(examples)

    monkeypatch.setattr(tfds, "load", fake_load)
    data = load_movielens()
    ev = data.events
    assert len(ev) == 6 and int(ev["click"].sum()) == 4  # rating >= 4
    assert data.spec["user_id"].vocab_size == 4 and data.spec["item_id"].vocab_size == 5  # 3 users / 4 movies + OOV
    assert data.spec.metadata["source"] == "movielens-small"
    # first listed genre by name; movie 30 lists none → genre id 0 (unknown)
    assert set(data.vocabularies["genre"]) == {genre_names[1], genre_names[2], genre_names[4]}
    assert sorted(int(m) for m in data.item_ids.to_numpy()) == [10, 20, 30, 40]
    names = data.vocabularies["genre"]
    genre_of = {int(data.item_ids[i]): (names[g] if g else None) for i, g in zip(ev["item_id"], ev["genre"])}
    assert genre_of == {10: genre_names[1], 20: genre_names[2], 30: None, 40: genre_names[4]}
