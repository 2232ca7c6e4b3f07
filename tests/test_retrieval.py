"""Two-tower retrieval (teacher, student, distillation), top-K TFLite export, list ranking, MovieLens."""
import numpy as np
import pandas as pd
import pytest

import tfcompress  # noqa: F401
from tfcompress._keras import keras, tf
from tfcompress.data.movielens import leave_last_out
from tfcompress.errors import TFCompressError
from tfcompress.export import TFLiteModel, to_tflite
from tfcompress.models.ranking import list_ranking_model
from tfcompress.models.retrieval import (evaluate_sampled, export_retrieval_tflite, fit_retrieval, item_catalog,
                                         keras_topk, popularity_scores, positives, retrieval_dataset,
                                         retrieval_student,
                                         retrieval_teacher, retrieval_topk_model, sampled_candidates,
                                         two_tower_scores)


@pytest.fixture(scope="module")
def shop_retrieval(shop):
    spec = shop.spec
    catalog = item_catalog(shop.events, spec)
    train, test = leave_last_out(positives(shop.events, spec))
    student = retrieval_student(spec, embedding_dim=8, output_dim=8, candidates=catalog, num_negatives=64)
    fit_retrieval(student, train, spec, epochs=2, batch_size=128)
    return spec, catalog, train, test, student


def test_towers_split_features_by_group(shop):
    m = retrieval_teacher(shop.spec, embedding_dim=8, hidden=(8,), output_dim=8)
    assert sorted(m.candidate_model.input_names) == ["brand", "category", "item_id", "price", "price_bucket"]
    assert "position" not in m.query_model.input_names and "user_id" in m.query_model.input_names


def test_distillation_loss_matches_numpy(shop):
    spec = shop.spec
    keras.utils.set_random_seed(0)
    teacher = retrieval_teacher(spec, embedding_dim=4, hidden=(), output_dim=4, temperature=0.5)
    student = retrieval_student(spec, embedding_dim=4, output_dim=4, teacher=teacher, temperature=0.2,
                                distill_temperature=2.0)
    rows = shop.events.iloc[:6]
    feats = {f.name: tf.constant(rows[f.name].to_numpy().astype(f.dtype)) for f in spec.features}
    q, c = student(feats), student.candidate_embeddings(feats)
    ids = feats["item_id"]
    got = float(student._distill_loss(q, c, feats, feats, ids))
    tq, tc = teacher(feats).numpy(), teacher.candidate_embeddings(feats).numpy()
    t_log, s_log = tq @ tc.T / 0.5, q.numpy() @ c.numpy().T / 0.2
    same = ids.numpy()[:, None] == ids.numpy()[None, :]
    mask = same & ~np.eye(6, dtype=bool)
    t_log[mask], s_log[mask] = -1e9, -1e9

    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))
    p = np.exp(log_softmax(t_log / 2.0))
    want = np.mean(np.sum(p * (np.log(p + 1e-12) - log_softmax(s_log / 2.0)), 1)) * 4.0
    assert got == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_distilled_student_trains(shop_retrieval):
    spec, catalog, train, _, student = shop_retrieval
    distilled = retrieval_student(spec, embedding_dim=4, output_dim=4, teacher=student, embedding="qr",
                                  compress_min_vocab=100, candidates=catalog, num_negatives=32)
    distilled.compile(keras.optimizers.Adam(0.01))
    hist = distilled.fit(retrieval_dataset(positives(train, spec).iloc[:512], spec, batch_size=128), epochs=1,
                         verbose=0)
    assert np.isfinite(hist.history["loss"][-1])


def _check_topk_matches(keras_scores_all, ids_tfl, scores_keras_topk, atol):
    # every id TFLite returns must have a Keras score equal to the Keras top-K score at that rank (ties ok)
    for row in range(len(ids_tfl)):
        got = np.array([keras_scores_all[row][i] for i in ids_tfl[row]])
        np.testing.assert_allclose(got, scores_keras_topk[row], atol=atol)


def test_float_tflite_topk_equals_keras_and_int8_overlaps(shop_retrieval, tmp_path):
    spec, catalog, _, test, student = shop_retrieval
    users = test.iloc[:40]
    k = 10
    s_keras, ids_keras = keras_topk(student, users, catalog, spec, k=k)
    q_feats = {n: users[n].to_numpy().astype(spec[n].dtype) for n in student.query_model.input_names}
    from tfcompress.models.retrieval import candidate_embeddings, query_embeddings
    all_scores = query_embeddings(student, users, spec) @ candidate_embeddings(student, catalog, spec).T
    by_id = [dict(zip(catalog.item_id, row)) for row in all_scores]

    path = export_retrieval_tflite(student, catalog, spec, k=k, path=tmp_path / "r.tflite")
    out = TFLiteModel(path).predict(q_feats)
    assert out["item_ids"].shape == (40, k) and out["item_ids"].dtype == np.int32
    _check_topk_matches(by_id, out["item_ids"], s_keras, atol=1e-5)
    np.testing.assert_allclose(out["scores"], s_keras, atol=1e-5)

    path8 = export_retrieval_tflite(student, catalog, spec, k=k, path=tmp_path / "r8.tflite", mode="int8",
                                    representative=q_feats)
    out8 = TFLiteModel(path8).predict(q_feats)
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(out8["item_ids"], ids_keras)])
    assert overlap >= 0.6, overlap

    # unknown users: 10**6 and -5 are served as user 0 (the OOV row), never a crash
    odd = {n: np.repeat(v[:1], 3) for n, v in q_feats.items()}
    odd["user_id"] = np.array([0, 10**6, -5], np.int32)
    for p in (path, path8):
        ids = TFLiteModel(p).predict(odd)["item_ids"]
        assert (ids[1] == ids[0]).all() and (ids[2] == ids[0]).all() and np.isin(ids, catalog.item_id).all()


def test_too_large_catalogue_and_bad_k_are_refused(shop_retrieval):
    spec, catalog, _, _, student = shop_retrieval
    with pytest.raises(TFCompressError, match="max_items"):
        retrieval_topk_model(student, catalog, spec, k=5, max_items=100)
    with pytest.raises(TFCompressError, match="k=500"):
        retrieval_topk_model(student, catalog, spec, k=500)
    with pytest.raises(TFCompressError, match="DataFrame"):
        retrieval_topk_model(student, catalog.item_id.to_numpy(), spec, k=5)


def test_list_ranking_scores_equal_per_row_student(shop, trained_student, tmp_path):
    spec = shop.spec
    items = [f.name for f in spec.features if f.group == "item"]
    n = 12
    lm = list_ranking_model(trained_student, n, item_features=items)
    ev = shop.events.iloc[:n]
    user = {f.name: ev[f.name].to_numpy()[:1].astype(f.dtype) for f in spec.features if f.name not in items}
    cands = {name: ev[name].to_numpy()[None].astype(spec[name].dtype) for name in items}
    rows = {f.name: (np.repeat(user[f.name], n) if f.name in user else cands[f.name][0]) for f in spec.features}
    want = trained_student.predict(rows, verbose=0).ravel()
    np.testing.assert_allclose(lm.predict({**user, **cands}, verbose=0).ravel(), want, atol=1e-5)
    path = to_tflite(lm, tmp_path / "rank.tflite", mode="float32")
    tfl = TFLiteModel(path)
    assert tfl.signature()["outputs"]["scores"]["shape"][-1] == n
    np.testing.assert_allclose(tfl.predict({**user, **cands}).ravel(), want, atol=1e-5)
    with pytest.raises(TFCompressError, match="item_features"):
        list_ranking_model(trained_student, n, item_features=["nope"])


def test_empty_history_and_sampled_eval_helpers(shop_retrieval):
    spec, catalog, train, test, student = shop_retrieval
    # a user with no history at all (not in train): the OOV query still scores every candidate
    new_user = test.iloc[:1].assign(user_id=0)
    cands = sampled_candidates(train, new_user, catalog, num_negatives=20)
    s = two_tower_scores(student, new_user, cands, catalog, spec)
    assert s.shape == (1, 21) and np.isfinite(s).all()
    assert evaluate_sampled(np.array([[0.9, 0.1, 0.2], [0.1, 0.5, 0.2]]), k=1) == {"ndcg@1": 0.5, "hr@1": 0.5}
    with pytest.raises(TFCompressError, match="too few"):
        sampled_candidates(train, test, catalog.iloc[:5], num_negatives=100)


def test_movielens_student_beats_popularity():
    from tfcompress.data.paths import find_dataset

    if find_dataset("movielens-small") is None:
        pytest.skip("MovieLens-small not found in the shared data folder (../shared/data/movielens-small)")
    from tfcompress.data.movielens import load_movielens

    data = load_movielens(use_tfds=False)
    spec = data.spec
    catalog = item_catalog(data.events, spec)
    train, test = leave_last_out(positives(data.events, spec))
    cands = sampled_candidates(train, test, catalog, num_negatives=100, seed=0)
    pop = evaluate_sampled(popularity_scores(train, cands))
    student = retrieval_student(spec, embedding_dim=16, output_dim=16, candidates=catalog, num_negatives=1024)
    fit_retrieval(student, train, spec, epochs=3, batch_size=512, learning_rate=0.01)
    got = evaluate_sampled(two_tower_scores(student, test, cands, catalog, spec))
    assert got["ndcg@10"] > pop["ndcg@10"], (got, pop)
