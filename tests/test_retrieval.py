"""Two-tower retrieval (teacher, student, distillation), top-K TFLite export, list ranking, MovieLens."""
import os

import numpy as np
import pytest

import tfcompress  # noqa: F401
from tfcompress import keras, tf
from tfcompress.data.movielens import leave_last_out
from tfcompress.errors import TFCompressError
from tfcompress import tflite_file
from tfcompress.export import TFLiteModel, export_retrieval_tflite, to_tflite
from tfcompress.models.ranking import list_ranking_model
from tfcompress.models.retrieval import (BruteForceTopK, evaluate_sampled, fit_retrieval,
                                         item_catalog,
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
    before = [w.copy() for w in student.get_weights()]
    distilled.compile(keras.optimizers.Adam(0.01))
    hist = distilled.fit(retrieval_dataset(positives(train, spec).iloc[:512], spec, batch_size=128), epochs=1,
                         verbose=0)
    assert np.isfinite(hist.history["loss"][-1])
    # the teacher is frozen: distillation trains the student's towers only
    assert all(np.array_equal(a, b) for a, b in zip(before, student.get_weights()))


def test_bruteforce_topk_ids_with_and_without_id_table():
    cands = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    q = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    want = np.argsort(-(q @ cands.T), axis=1, kind="stable")[:, :5]
    ids_free = np.arange(1, 31)                      # consecutive: no table, row + 1
    ids_odd = np.arange(30)[::-1] * 7 + 3             # arbitrary ids: stored and gathered
    for ids, stored in ((ids_free, False), (ids_odd, True)):
        layer = BruteForceTopK(cands, ids, k=5)
        _, got = layer(q)
        np.testing.assert_array_equal(got.numpy(), ids[want])
        assert (len(layer.weights) == 2) == stored
    with pytest.raises(TFCompressError, match="item ids"):
        BruteForceTopK(cands, ids_free[:5])


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

    # the candidate matrix is stored int8 with ONE scale, quantized from the Keras embeddings (NumPy reference)
    cand = candidate_embeddings(student, catalog, spec)
    interp = tflite_file.interpreter(path8)
    mats = [d for d in interp.get_tensor_details() if tuple(d["shape"]) == cand.shape]
    assert len(mats) == 1 and mats[0]["dtype"] == np.int8
    scales = mats[0]["quantization_parameters"]["scales"]
    assert scales.shape == (1,) and scales[0] == pytest.approx(np.abs(cand).max() / 127, rel=1e-5)
    want_q = np.clip(np.round(cand / scales[0]), -127, 127)
    assert np.abs(interp.get_tensor(mats[0]["index"]).astype(int) - want_q).max() <= 1
    # the int8 top-K is the exact top-K of (Keras query) x (int8 matrix) up to the int8 score rounding
    deq = interp.get_tensor(mats[0]["index"]).astype(np.float32) * scales[0]
    q_all = query_embeddings(student, users, spec) @ deq.T
    row_of = dict(zip(catalog.item_id, range(len(catalog))))
    got = np.array([[q_all[r, row_of[i]] for i in ids] for r, ids in enumerate(out8["item_ids"])])
    kth = -np.sort(-q_all, axis=1)[:, k - 1:k]
    assert (got >= kth - 0.03).all()
    # per-row scales (the converter's) cost 12 bytes per item more; consecutive ids store no id table
    path_row = export_retrieval_tflite(student, catalog, spec, k=k, path=tmp_path / "r8row.tflite", mode="int8",
                                       representative=q_feats, candidate_scales="row")
    assert os.path.getsize(path_row) - os.path.getsize(path8) >= 11 * len(catalog)  # ~12 B + alignment
    from tfcompress.export import read_sidecar
    assert read_sidecar(path8)["size_bytes"] == os.path.getsize(path8)
    consecutive = np.array_equal(catalog.item_id, catalog.item_id.iloc[0] + np.arange(len(catalog)))
    id_tables = [d for d in interp.get_tensor_details() if tuple(d["shape"]) == (len(catalog),)]
    assert len(id_tables) == (0 if consecutive else 1)

    # unknown users: 10**6 and -5 are served as user 0 (the OOV row), never a crash
    odd = {n: np.repeat(v[:1], 3) for n, v in q_feats.items()}
    odd["user_id"] = np.array([0, 10**6, -5], np.int32)
    for p in (path, path8):
        ids = TFLiteModel(p).predict(odd)["item_ids"]
        assert (ids[1] == ids[0]).all() and (ids[2] == ids[0]).all() and np.isin(ids, catalog.item_id).all()


def test_per_row_int4_tables_in_the_topk_file(shop_retrieval, tmp_path):
    from tfcompress.models.embeddings import RowInt4Embedding, tflite_embedding_bytes

    spec, catalog, _, test, student = shop_retrieval
    users = test.iloc[:40]
    q4 = student.quantize_tables(4)
    layer = q4.query_model.get_layer("retrieval_student_query_emb_user_id")
    assert isinstance(layer, RowInt4Embedding) and q4.teacher is None
    _, ids_float = keras_topk(student, users, catalog, spec, k=10)
    _, ids_q4 = keras_topk(q4, users, catalog, spec, k=10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids_q4, ids_float)])
    assert 0.5 <= overlap, overlap  # int4 rows move the top-10 a little, not wholesale
    q_feats = {n: users[n].to_numpy().astype(spec[n].dtype) for n in q4.query_model.input_names}
    path = export_retrieval_tflite(q4, catalog, spec, k=10, path=tmp_path / "q4.tflite")
    out = TFLiteModel(path).predict(q_feats)
    same = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(out["item_ids"], ids_q4)])
    assert same >= 0.95, same  # the float file reproduces the Keras int4-row model
    tables = tflite_embedding_bytes(path)["dtypes"]
    assert any("user_id" in n and t == "int8" for n, t in tables.items()), tables  # packed, never float


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


def test_export_retrieval_tflite_moved_to_export():
    import tfcompress

    with pytest.warns(DeprecationWarning, match="moved to tfcompress.export.export_retrieval_tflite"):
        old = tfcompress.models.export_retrieval_tflite
    assert old is export_retrieval_tflite
    with pytest.warns(DeprecationWarning):
        from tfcompress.models.retrieval import requantize_per_tensor
    assert requantize_per_tensor is tfcompress.export.requantize_per_tensor
