"""On-device recommendation: two-tower retrieval (top-K) plus list ranking, teacher vs distilled int8 students.

``tfcompress run --task retrieval`` trains, on the positive interactions of the data (leave-last-out: each
user's last positive is the test item):

=============  ==========================================================================================
stage          what it does
=============  ==========================================================================================
``teacher``    the large two-tower retrieval teacher (sampled softmax with in-batch + catalogue
               negatives), and the CTR ranking teacher (DCN-v2) on every interaction but the test ones
``baseline``   the small retrieval student alone, on the labels
``distill``    a fresh retrieval student distilled from the teacher (the teacher's scores over the batch's
               sampled candidates as soft targets), and the CTR ranking student distilled from its teacher
``compress``   the distilled student again with compressed embedding tables (``student["embedding"]``:
               ``qr`` by default; also ``hash``, ``mixed``, ``lowrank``) for every id feature with at
               least ``compress_min_vocab`` ids, distilled from the teacher; or (``int8row``,
               ``int4row``) the distilled student's own tables quantized per row, without retraining
``export``     float32 TFLite of the teachers and int8 TFLite of a student (the compressed one when its
               tables make the file >= 10 % smaller, else the distilled one): a retrieval signature
               (the user's and context features → ``item_ids`` and ``scores`` of the top K, K = the list
               size) and a list-ranking signature (one user, N candidates → N ``scores``) for re-scoring
=============  ==========================================================================================

Quality: ``ndcg@10``/``hr@10`` rank the held-out item in the top 10 of the whole catalogue, after removing
the user's training items from the top K as the app would when the data never repeats a (user, item)
pair (MovieLens; the shop's users re-click items, so nothing is removed there) (the retrieval models; for
TFLite files, from the file's own top-K output); ``sampled_ndcg@10``/``sampled_hr@10`` rank
it among N − 1 sampled items the user never interacted with (retrieval Keras models and the ranking
models, Keras and TFLite). ``embedding_bytes``/``embedding_share``: Keras rows, bytes of embedding tables
vs all weights (4 bytes a value); TFLite rows, the tables read by GATHER plus the stored catalogue (item
vectors and ids) vs the file.

``--data``: none → the built-in shop; ``movielens`` or a path → as for the ctr task
(:func:`tfcompress.tasks.ctr.load_interactions`).

Example:
    >>> RetrievalTask().stages
    ('teacher', 'baseline', 'distill', 'compress', 'export')
"""
import os
import time

import numpy as np

from .._keras import keras
from ..errors import TFCompressError
from ..models.retrieval import retrieval_student, retrieval_teacher
from ..pipeline import Pipeline, StageResult
from .base import Task, TaskData, check_builder_kwargs

K = 10
RETRIEVAL_STAGES = ("teacher", "baseline", "distill", "compress", "export")
#: student options used by the ``compress`` stage only (the other student stages keep full tables)
COMPRESS_OPTIONS = {"embedding": "qr", "compress_min_vocab": None}


class RetrievalTask(Task):
    """Two-tower retrieval teacher → distilled (and embedding-compressed) student, plus the CTR list ranker;
    NDCG@10 / HR@10 on leave-last-out positives. Runs its own stages (:class:`RetrievalPipeline`).

    Example:
        >>> from tfcompress.tasks import get_task
        >>> task = get_task("retrieval")
        >>> task.metric, task.stages
        ('ndcg@10', ('teacher', 'baseline', 'distill', 'compress', 'export'))
    """

    name = "retrieval"
    output = "binary"
    metric = "ndcg@10"
    teacher_builder = staticmethod(retrieval_teacher)
    student_builder = staticmethod(retrieval_student)
    data_args = ("spec",)
    stages = RETRIEVAL_STAGES

    @property
    def pipeline_class(self):
        return RetrievalPipeline

    def defaults(self, quick):
        if quick:
            return dict(events=20_000, batch_size=256, teacher_epochs=2, student_epochs=2, prune_epochs=1,
                        qat_epochs=1, learning_rate=3e-3, student_learning_rate=1e-2, calibration_samples=100,
                        latency_runs=30)
        return dict(events=100_000, batch_size=512, teacher_epochs=5, student_epochs=5, prune_epochs=1,
                    qat_epochs=1, learning_rate=3e-3, student_learning_rate=1e-2, calibration_samples=300,
                    latency_runs=200)

    def teacher_kwargs(self, quick):
        return dict(embedding_dim=32, hidden=(64,), output_dim=32) if quick else {}

    def student_kwargs(self, quick):
        # d=8 towers: the int8 top-K file stores one 8-wide int8 vector per item (measured on MovieLens-small:
        # 44.6x smaller pair at 100 % of the teacher's sampled NDCG@10, benchmarks/recsys_table.py --quick)
        return {} if quick else dict(embedding_dim=8, output_dim=8)

    def ranking_kwargs(self, quick):
        """Builder options of the CTR ranking (teacher, student)."""
        if quick:
            return dict(embedding_dim=16, cross_layers=1, hidden=(64, 32)), dict(embedding_dim=4, cross_layers=1,
                                                                                 hidden=(16,))
        return {}, {}

    def list_size(self, quick):
        """N: candidates the ranking signature re-scores, the K of the retrieval top-K, and 1 + the sampled
        negatives of the evaluation."""
        return 50 if quick else 100

    def check_options(self, teacher, student):
        check_builder_kwargs(retrieval_teacher, teacher, "retrieval teacher", exclude=self.data_args)
        known = {k: v for k, v in student.items() if k not in COMPRESS_OPTIONS}
        check_builder_kwargs(retrieval_student, known, "retrieval student", exclude=self.data_args)
        kind = student.get("embedding", COMPRESS_OPTIONS["embedding"])
        from ..models.embeddings import EMBEDDING_KINDS

        if kind not in EMBEDDING_KINDS:
            raise TFCompressError(f"retrieval student embedding={kind!r} is not one of {list(EMBEDDING_KINDS)}")

    def model_args(self, data):
        return {"spec": data.metadata["spec"]}

    def check_data(self, data):
        """Called by ``RunConfig.validate``: a bad ``--data`` fails before anything is written."""
        from .ctr import check_interactions_data

        check_interactions_data(data)

    def load(self, config):
        from ..data import make_ecommerce
        from ..data.movielens import leave_last_out
        from ..models.retrieval import (id_frequencies, item_catalog, positives, retrieval_dataset,
                                        sampled_candidates)
        from .ctr import load_interactions

        if config.data is None:
            shop = make_ecommerce(config.events, seed=config.seed)
            events, spec, source = shop.events, shop.spec, "synthetic shop impressions"
        else:
            events, spec, source = load_interactions(config.data)
        catalog = item_catalog(events, spec)
        train, test = leave_last_out(positives(events, spec))
        if len(test) < 10:
            raise TFCompressError(f"only {len(test)} users have 2+ positive interactions: too few to evaluate "
                                  "retrieval; use more events (--events) or a bigger interactions file")
        if config.quick and len(test) > 600:
            test = test.sample(600, random_state=config.seed).sort_values("timestamp").reset_index(drop=True)
        n = int(min(self.list_size(config.quick), len(catalog) // 2))
        if n < K:
            raise TFCompressError(f"the catalogue has {len(catalog)} items, too few for top-{K} retrieval "
                                  f"(need {2 * K}+)")
        cands = sampled_candidates(train, test, catalog, num_negatives=n - 1, seed=config.seed)
        # the ranking models learn from every interaction (clicks and non-clicks) but the held-out ones
        held = set(zip(test.user_id, test.item_id, test.timestamp))
        ranking_train = events[[t not in held for t in zip(events.user_id, events.item_id, events.timestamp)]]
        ranking_train = with_sampled_negatives(ranking_train, catalog, spec, seed=config.seed)
        seen = seen_items(train, test)
        # ~50 steps per epoch at least: in-batch negatives need full batches, small data needs steps
        bs = int(np.clip(len(train) // 50, 32, config.batch_size))
        rng = np.random.default_rng(config.seed)
        query_names = [f.name for f in spec.features if f.group in ("user", "context") and f.name != "position"]
        calib = train.iloc[rng.choice(len(train), min(len(train), config.calibration_samples), replace=False)]
        meta = {
            "spec": spec, "feature_spec": spec.to_dict(), "events": events, "train": train, "test": test,
            "catalog": catalog, "candidates": cands, "ranking_train": ranking_train, "list_size": n, "seen": seen,
            "frequencies": id_frequencies(train, spec), "query_names": query_names,
            "calibration_frame": calib, "retrieval_batch_size": bs,
        }
        return TaskData(
            train_ds=retrieval_dataset(train, spec, batch_size=bs, seed=config.seed), val_ds=None,
            test_inputs=_frame_inputs(test, query_names, spec), test_labels=test["item_id"].to_numpy(),
            calibration_inputs=_frame_inputs(calib, query_names, spec),
            latency_inputs=_frame_inputs(test.iloc[:1], query_names, spec),
            steps_per_epoch=int(np.ceil(len(train) / bs)),
            description=(f"{source}: {len(events):,} events, {len(train) + len(test):,} positives of "
                         f"{events.user_id.nunique():,} users on {len(catalog):,} items; leave-last-out "
                         f"{len(train):,} train / {len(test):,} test users; lists of {n} candidates; past "
                         f"items {'kept (users repeat items)' if seen is None else 'removed from the top K'}"),
            metadata=meta,
        )


def seen_items(train, test, user="user_id", item="item_id"):
    """Per test row, the set of the user's training items to remove from a top K before scoring it, as the
    app would; ``None`` when users come back to items (then showing a past item is a fair recommendation):
    MovieLens rates a movie once, the shop's users re-click.

    Example:
        >>> import pandas as pd
        >>> train = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 11, 10]})
        >>> seen_items(train, pd.DataFrame({"user_id": [1, 2], "item_id": [12, 13]}))
        [{10, 11}, {10}]
        >>> seen_items(train, pd.DataFrame({"user_id": [1], "item_id": [10]})) is None  # user 1 repeats 10
        True
    """
    import pandas as pd

    if pd.concat([train, test])[[user, item]].duplicated().any():
        return None
    history = train.groupby(user)[item].agg(set)
    return [history.get(u, set()) for u in test[user].to_numpy()]


def with_sampled_negatives(events, catalog, spec, *, per_positive=2, seed=0):
    """``events`` plus ``per_positive`` rows per positive with a uniformly sampled catalogue item and label
    0 (same user and context): the ranker then learns which items a user interacts with at all, not
    only which shown or rated ones they liked, matching the candidates it re-scores on the phone.

    Example:
        >>> from tfcompress.data import make_ecommerce
        >>> d = make_ecommerce(events=2000, seed=0)
        >>> from tfcompress.models.retrieval import item_catalog
        >>> out = with_sampled_negatives(d.events, item_catalog(d.events, d.spec), d.spec)
        >>> len(out) == len(d.events) + 2 * int(d.events.click.sum())
        True
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    pos = events[events[spec.label] > 0]
    neg = pos.loc[pos.index.repeat(per_positive)].reset_index(drop=True)
    pick = catalog.iloc[rng.integers(0, len(catalog), len(neg))].reset_index(drop=True)
    for col in catalog.columns:
        if col in neg.columns:
            neg[col] = pick[col].to_numpy()
    neg[spec.label] = 0
    return pd.concat([events, neg], ignore_index=True)


def _frame_inputs(frame, names, spec):
    return {n: frame[n].to_numpy().astype(spec[n].dtype) for n in names}


def catalog_metrics(top_ids, true_items, k=K, seen=None):
    """NDCG@k and HR@k of ``true_items`` in ranked ``top_ids`` (``(n, >=k)``, best first): the
    whole-catalogue figures of a top-K retrieval output. ``seen`` (one set of item ids per row, e.g. what
    the user already interacted with) is removed from each row first, as the app would before showing
    the first ``k``.

    Example:
        >>> {k: round(v, 4) for k, v in catalog_metrics(np.array([[5, 3], [1, 2]]), [3, 9], k=2).items()}
        {'ndcg@2': 0.3155, 'hr@2': 0.5}
        >>> catalog_metrics(np.array([[5, 3, 7]]), [3], k=1, seen=[{5}])
        {'ndcg@1': 1.0, 'hr@1': 1.0}
    """
    top = np.asarray(top_ids)
    if seen is not None:
        rows = []
        for ids, skip in zip(top, seen):
            kept = [i for i in ids if i not in skip][:k]
            rows.append(kept + [-1] * (k - len(kept)))
        top = np.asarray(rows)
    top = top[:, :k]
    hits = top == np.asarray(true_items).reshape(-1, 1)
    found = hits.any(1)
    rank = hits.argmax(1)
    ndcg = np.where(found, 1.0 / np.log2(rank + 2.0), 0.0)
    return {f"ndcg@{k}": float(ndcg.mean()), f"hr@{k}": float(found.mean())}


def list_inputs(frame, item_ids, catalog, spec, item_features):
    """Inputs of a list-ranking model: each row of ``frame``'s user/context features once (``[n]``) and the
    item features of its candidates ``item_ids`` (``[n, N]``, looked up in ``catalog``)."""
    cat = catalog.set_index("item_id")
    out = {}
    for f in spec.features:
        if f.name in item_features:
            values = item_ids if f.name == "item_id" else cat[f.name].reindex(item_ids.ravel()).to_numpy()
            out[f.name] = np.asarray(values).reshape(item_ids.shape).astype(f.dtype)
        elif f.name in frame.columns:
            out[f.name] = frame[f.name].to_numpy().astype(f.dtype)
        else:  # e.g. the slot position, unknown before ranking: the first slot
            out[f.name] = np.ones(len(frame), f.dtype)
    return out


def keras_embedding_bytes(*models):
    """``(embedding bytes, all weight bytes)`` of Keras models, each weight at its stored dtype (float32
    and int32 4 bytes a value, the int8 values of per-row tables 1).

    Example:
        >>> from tfcompress._keras import keras
        >>> ids = keras.Input((), dtype="int32")
        >>> m = keras.Model(ids, keras.layers.Dense(1)(keras.layers.Embedding(100, 8)(ids)))
        >>> keras_embedding_bytes(m)
        (3200, 3236)
    """
    from ..models.embeddings import embedding_bytes

    emb = sum(embedding_bytes(m) for m in models)
    total = sum(int(np.prod(w.shape)) * w.dtype.size for m in models for w in m.weights)
    return emb, total


def tflite_catalog_bytes(path, num_items):
    """``(embedding bytes, file bytes)`` of a ``.tflite`` file: tables read by GATHER ops (see
    :func:`tfcompress.models.embeddings.tflite_embedding_bytes`) plus constant 2-D tensors with one row per
    catalogue item (the stored candidate vectors of a top-K retrieval file)."""
    from ..export.runner import _interpreter
    from ..models.embeddings import tflite_embedding_bytes

    info = tflite_embedding_bytes(path)
    extra = 0
    if num_items:
        interp = _interpreter(os.fspath(path))
        for d in interp.get_tensor_details():
            shape = d["shape"]
            if len(shape) == 2 and shape[0] == num_items and shape[1] > 1:
                try:
                    interp.get_tensor(d["index"])
                except ValueError:
                    continue
                extra += int(np.prod(shape)) * np.dtype(d["dtype"]).itemsize
    return info["embedding"] + extra, info["total"]


class RetrievalPipeline(Pipeline):
    """The retrieval task's stages (``teacher``, ``baseline``, ``distill``, ``compress``, ``export``), run by
    :func:`tfcompress.pipeline.run` like the standard ones: same progress lines, report files,
    ``savedmodels/`` and ``tflite_export/`` artifacts.

    Example:
        >>> from tfcompress.pipeline import RunConfig
        >>> cfg = RunConfig(task="retrieval", quick=True, latency_runs=5)
        >>> # pipe = RetrievalPipeline(cfg); pipe.teacher(); pipe.distill(); pipe.export()
    """

    def __init__(self, config, progress=None):
        super().__init__(config, progress=progress)
        m = self.data.metadata
        self.spec, self.catalog, self.cands = m["spec"], m["catalog"], m["candidates"]
        self.train, self.test, self.n = m["train"], m["test"], m["list_size"]
        self.item_features = [f.name for f in self.spec.features if f.group == "item"]
        self.seen = m["seen"]

    # --- helpers -------------------------------------------------------------------------------------
    def _find(self, name, fmt="keras"):
        return next((r for r in self.results if r.name == name and r.format == fmt), None)

    def _fit(self, model, epochs, lr):
        from ..models.retrieval import fit_retrieval

        return fit_retrieval(model, self.train, self.spec, epochs=epochs, batch_size=self.data.metadata[
            "retrieval_batch_size"], learning_rate=lr, seed=self.config.seed, verbose=self.fit_verbose)

    def _student_kwargs(self):
        return {k: v for k, v in self.config.student.items() if k not in COMPRESS_OPTIONS}

    def _record_retrieval(self, name, model, started, note):
        from ..export import saved_model
        from ..models.retrieval import keras_topk, two_tower_scores, evaluate_sampled
        from .._io import ensure_dir

        _, ids = keras_topk(model, self.test, self.catalog, self.spec, k=self.n)
        sampled = evaluate_sampled(two_tower_scores(model, self.test, self.cands, self.catalog, self.spec), k=K)
        quality = {**catalog_metrics(ids, self.data.test_labels, seen=self.seen),
                   **{f"sampled_{k}": v for k, v in sampled.items()}}
        folder = os.path.join(self.config.savedmodels_dir, f"retrieval_{name}")
        ensure_dir(folder, "savedmodels folder")
        for tower in (model.query_model, model.candidate_model):
            saved_model(tower, os.path.join(folder, tower.name.rsplit("_", 1)[-1]))
        emb, total = keras_embedding_bytes(model.query_model, model.candidate_model)
        result = StageResult(name=name, format="keras", model=model, path=folder,
                             params=model.query_model.count_params() + model.candidate_model.count_params(),
                             quality=quality, extra={"embedding_bytes": emb, "weight_bytes": total,
                                                     "role": "retrieval"})
        self.results.append(result)
        self.progress(name, f"{note}; test NDCG@10 {quality['ndcg@10']:.4f} (catalogue), "
                            f"{quality['sampled_ndcg@10']:.4f} (sampled), {result.params:,} params", started)
        return result

    def _list_feed(self, frame=None, items=None):
        frame = self.test if frame is None else frame
        return list_inputs(frame, self.cands if items is None else items, self.catalog, self.spec,
                           self.item_features)

    def _record_ranking(self, name, model, started, note):
        from ..export import saved_model
        from ..models.ranking import list_ranking_model
        from ..models.retrieval import evaluate_sampled

        lm = list_ranking_model(model, self.n, item_features=self.item_features, name=f"{name}_list{self.n}")
        scores = lm.predict(self._list_feed(), batch_size=256, verbose=0)
        quality = {f"sampled_{k}": v for k, v in evaluate_sampled(scores, k=K).items()}
        path = saved_model(lm, os.path.join(self.config.savedmodels_dir, f"retrieval_{name}"))
        emb, total = keras_embedding_bytes(model)
        result = StageResult(name=name, format="keras", model=lm, path=path, params=model.count_params(),
                             quality=quality, extra={"embedding_bytes": emb, "weight_bytes": total,
                                                     "role": "ranking", "row_model": model})
        self.results.append(result)
        self.progress(name, f"{note}; sampled NDCG@10 {quality['sampled_ndcg@10']:.4f} re-ranking {self.n} "
                            f"candidates, {result.params:,} params", started)
        return result

    def _ranking_dataset(self, shuffle=True):
        from ..data import to_dataset

        return to_dataset(self.data.metadata["ranking_train"], self.spec, batch_size=1024, shuffle=shuffle,
                          seed=self.config.seed)

    def _latest_student(self):
        for name in ("student_compressed", "student_distilled", "student_alone"):
            r = self._find(name)
            if r is not None:
                return r
        return None

    # --- stages ----------------------------------------------------------------------------------------
    def teacher(self):
        from ..models import ctr_teacher

        cfg = self.config
        started = time.perf_counter()
        model = self._fit(retrieval_teacher(self.spec, candidates=self.catalog, **cfg.teacher), cfg.teacher_epochs,
                          cfg.learning_rate)
        self._record_retrieval("teacher", model, started, f"two-tower teacher, {cfg.teacher_epochs} epoch(s)")
        started = time.perf_counter()
        kwargs, _ = self.task.ranking_kwargs(cfg.quick)
        ranker = ctr_teacher(self.spec, **kwargs)
        ranker.compile(keras.optimizers.Adam(1e-3 if not cfg.quick else 5e-3),
                       keras.losses.BinaryCrossentropy(from_logits=True))
        epochs = max(1, cfg.teacher_epochs - 1)
        ranker.fit(self._ranking_dataset(), epochs=epochs, verbose=self.fit_verbose)
        return self._record_ranking("ranking_teacher", ranker, started, f"CTR ranking teacher, {epochs} epoch(s)")

    def baseline(self):
        cfg = self.config
        started = time.perf_counter()
        model = self._fit(retrieval_student(self.spec, candidates=self.catalog, **self._student_kwargs()),
                          cfg.student_epochs, cfg.student_learning_rate)
        return self._record_retrieval("student_alone", model, started,
                                      f"student alone, {cfg.student_epochs} epoch(s)")

    def _teacher_model(self):
        """The trained retrieval teacher, frozen (a student tracks it as a sub-model: without this its
        variables would count as the student's trainable ones)."""
        r = self._find("teacher")
        if r is None:
            return None
        r.model.trainable = False
        return r.model

    def distill(self):
        from ..distill import Distiller
        from ..models import ctr_student

        cfg = self.config
        started = time.perf_counter()
        model = retrieval_student(self.spec, teacher=self._teacher_model(), candidates=self.catalog,
                                  alpha=cfg.alpha, distill_temperature=cfg.temperature, **self._student_kwargs())
        self._fit(model, cfg.student_epochs, cfg.student_learning_rate)
        self._record_retrieval("student_distilled", model, started,
                               f"distilled (alpha {cfg.alpha:g}, T {cfg.temperature:g}), {cfg.student_epochs} "
                               "epoch(s)")
        started = time.perf_counter()
        _, kwargs = self.task.ranking_kwargs(cfg.quick)
        student = ctr_student(self.spec, **kwargs)
        teacher = self._find("ranking_teacher").extra["row_model"]
        distiller = Distiller(student, teacher, alpha=cfg.alpha, temperature=cfg.temperature, task="binary")
        # measured on the shop (benchmarks/recsys_table.py protocol): 2 epochs at 3e-3 left the student at 80 %
        # of the teacher's sampled NDCG@10, 4 epochs at 1e-2 at 99 %
        distiller.compile(optimizer=keras.optimizers.Adam(cfg.student_learning_rate))
        epochs = max(1, cfg.student_epochs - 1)
        distiller.fit(self._ranking_dataset(), epochs=epochs, verbose=self.fit_verbose)
        return self._record_ranking("ranking_student", student, started,
                                    f"CTR ranking student distilled, {epochs} epoch(s)")

    def compress(self):
        cfg = self.config
        started = time.perf_counter()
        kind = cfg.student.get("embedding", COMPRESS_OPTIONS["embedding"])
        min_vocab = cfg.student.get("compress_min_vocab") or (1000 if cfg.data is not None else 100)
        if kind in ("int8row", "int4row"):  # post-training: the trained student's tables, per-row int8/int4
            source = self._find("student_distilled") or self._find("student_alone")
            if source is None:
                raise TFCompressError(f"embedding={kind!r} quantizes a trained student's tables: run the "
                                      "'distill' or 'baseline' stage before 'compress'")
            bits = 8 if kind == "int8row" else 4
            model = source.model.quantize_tables(bits, min_vocab=min_vocab)
            result = self._record_retrieval("student_compressed", model, started,
                                            f"{source.name}'s tables with >= {min_vocab} ids as per-row "
                                            f"int{bits}, no retraining")
            result.extra["embedding"] = kind
            return result
        model = retrieval_student(self.spec, teacher=self._teacher_model(), candidates=self.catalog,
                                  alpha=cfg.alpha, distill_temperature=cfg.temperature, embedding=kind,
                                  frequencies=self.data.metadata["frequencies"], compress_min_vocab=min_vocab,
                                  **self._student_kwargs())
        self._fit(model, cfg.student_epochs, cfg.student_learning_rate)
        result = self._record_retrieval("student_compressed", model, started,
                                        f"{kind} embeddings for ids with >= {min_vocab} values, "
                                        f"{'distilled' if self._teacher_model() is not None else 'alone'}")
        result.extra["embedding"] = kind
        return result

    def export(self):
        from ..export import to_tflite
        from ..models.retrieval import export_retrieval_tflite

        cfg = self.config
        started = time.perf_counter()
        folder = cfg.tflite_dir
        meta = {"list_size": self.n, "k": self.n, "feature_spec": self.data.metadata["feature_spec"]}
        done = []
        teacher, (student, why) = self._find("teacher"), self._student_to_ship()
        if why:
            done.append(why)
        for name, source, mode in (("teacher_float32", teacher, "float32"), ("student_int8", student, "int8")):
            if source is None:
                continue
            path = export_retrieval_tflite(
                source.model, self.catalog, self.spec, k=self.n, path=os.path.join(folder, f"retrieval_{name}.tflite"),
                mode=mode, representative=self.data.calibration_inputs if mode == "int8" else None,
                num_calibration=cfg.calibration_samples, metadata={**meta, "source": source.name})
            self._record_tflite(name, path, "retrieval", source)
            done.append(f"{name} ({mode}, top-{self.n})")
        calib = self._list_feed(self.data.metadata["calibration_frame"],
                                self._calibration_lists(len(self.data.metadata["calibration_frame"])))
        ranking = [("ranking_teacher_float32", self._find("ranking_teacher"), "float32"),
                   ("ranking_student_int8", self._find("ranking_student"), "int8")]
        for name, source, mode in ranking:
            if source is None:
                continue
            path = to_tflite(source.model, os.path.join(folder, f"retrieval_{name}.tflite"), mode=mode,
                             representative=calib if mode == "int8" else None,
                             num_calibration=cfg.calibration_samples, name=f"retrieval_{name}",
                             metadata={**meta, "source": source.name})
            self._record_tflite(name, path, "ranking", source)
            done.append(f"{name} ({mode}, list of {self.n})")
        self.progress("export", ", ".join(done) or "nothing to export", started)

    def _student_to_ship(self):
        """``(result, note)``: the retrieval student the int8 file is made from. The file stores the query
        tower and the catalogue's vectors, not the item tower, so the compressed student ships only when
        its tables shrink the file by at least 10 % (estimated from parameter counts, not test quality);
        otherwise the less lossy uncompressed student does."""
        comp = self._find("student_compressed")
        base = self._find("student_distilled") or self._find("student_alone")
        if comp is None or base is None:
            return self._latest_student(), ""
        n = len(self.catalog)

        def file_values(m):
            return m.query_model.count_params() + n * m.candidate_model.output_shape[-1]

        saving = 1.0 - file_values(comp.model) / file_values(base.model)
        comp.extra["file_saving_estimate"] = round(float(saving), 4)
        if saving >= 0.10:
            return comp, f"int8 file from {comp.name} (its tables make it ~{saving:.0%} smaller)"
        return base, (f"int8 file from {base.name}: {comp.name} would make it only ~{saving:.0%} smaller "
                      f"(the item tower's tables are not in the file)")

    def _calibration_lists(self, rows):
        """Candidate lists for calibration rows: the catalogue's items, sampled uniformly."""
        rng = np.random.default_rng(self.config.seed + 7)
        items = self.catalog["item_id"].to_numpy()
        return rng.choice(items, size=(rows, self.n), replace=True).astype(np.int64)

    def _record_tflite(self, name, path, role, source):
        from ..bench import size
        from ..export import TFLiteModel
        from ..models.retrieval import evaluate_sampled

        model = TFLiteModel(path)
        if role == "retrieval":
            out = model.predict(self.data.test_inputs, batch_size=1024)
            quality = catalog_metrics(out["item_ids"], self.data.test_labels, seen=self.seen)
            emb, total = tflite_catalog_bytes(path, len(self.catalog))
        else:
            scores = model.predict(self._list_feed(), batch_size=256)
            quality = {f"sampled_{k}": v for k, v in evaluate_sampled(scores, k=K).items()}
            emb, total = tflite_catalog_bytes(path, 0)
        self.results.append(StageResult(name=name, format="tflite", model=path, path=path,
                                        params=size.tflite_params(path), quality=quality,
                                        extra={"embedding_bytes": emb, "weight_bytes": total, "role": role,
                                               "exported_from": source.name}))

    # --- the report --------------------------------------------------------------------------------------
    def measure_latency(self):
        from ..bench import compare_latency
        from ..models.retrieval import retrieval_topk_model

        started = time.perf_counter()
        runs = self.config.latency_runs
        groups = {"retrieval": ({}, self.data.latency_inputs),
                  "ranking": ({}, {k: v[:1] for k, v in self._list_feed().items()})}
        for r in self.results:
            role = r.extra["role"]
            key = f"{r.name}/{r.format}"
            if r.format == "tflite":
                groups[role][0][key] = ("tflite", r.path)
            elif role == "retrieval":
                groups[role][0][key] = ("keras", retrieval_topk_model(r.model, self.catalog, self.spec, k=self.n))
            else:
                groups[role][0][key] = ("keras", r.model)
        stats = {}
        for candidates, one in groups.values():
            if candidates:
                stats.update(compare_latency(candidates, one, runs=runs, warmup=max(5, runs // 10), threads=1))
        for r in self.results:
            r.extra["latency"] = stats[f"{r.name}/{r.format}"]
        self.progress("latency", f"{len(stats)} models x {runs} interleaved batch-1 runs (retrieval: top-{self.n} of "
                                 f"{len(self.catalog):,} items; ranking: {self.n} candidates)", started)

    def parity(self):
        """Top-K agreement of the int8 retrieval file with its Keras source on the test users (unfiltered)."""
        from ..export import TFLiteModel
        from ..models.retrieval import keras_topk

        int8 = self._find("student_int8", "tflite")
        if int8 is None:
            return {}
        source = self._find(int8.extra["exported_from"])
        _, ref = keras_topk(source.model, self.test, self.catalog, self.spec, k=K)
        got = TFLiteModel(int8.path).predict(self.data.test_inputs, batch_size=1024)["item_ids"][:, :K]
        overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(ref, got)])
        out = {"keras_stage": source.name, "tflite_stage": int8.name, "k": K,
               "top1_agreement": float(np.mean(ref[:, 0] == got[:, 0])), "topk_overlap": float(overlap),
               "n": int(len(ref))}
        out["lines"] = parity_lines(out)
        return out

    def rows(self):
        from ..bench import size

        rows = []
        for r in self.results:
            lat = r.extra.get("latency")
            emb = r.extra.get("embedding_bytes")
            total = r.extra.get("weight_bytes")
            rows.append({
                "name": r.name, "format": r.format, "params": r.params,
                "size_bytes": size.file_bytes(r.path), "gzip_bytes": size.gzip_bytes(r.path),
                "embedding_bytes": emb, "embedding_share": round(emb / total, 4) if total else None,
                **{q: round(float(r.quality[q]), 5) if q in r.quality else None
                   for q in (f"ndcg@{K}", f"hr@{K}", f"sampled_ndcg@{K}", f"sampled_hr@{K}")},
                "latency_p50_us": round(lat.p50_us, 2) if lat else None,
                "latency_p90_us": round(lat.p90_us, 2) if lat else None,
            })
        return rows

    def summary(self, rows):
        by = {(r["name"], r["format"]): r for r in rows}
        pairs = {"teacher": (by.get(("teacher_float32", "tflite")), by.get(("ranking_teacher_float32", "tflite"))),
                 "final": (by.get(("student_int8", "tflite")), by.get(("ranking_student_int8", "tflite")))}
        t_ret, t_rank = pairs["teacher"]
        s_ret, s_rank = pairs["final"]
        if not t_ret or not s_ret:
            return {}
        m = f"ndcg@{K}"
        t_bytes = t_ret["size_bytes"] + (t_rank["size_bytes"] if t_rank and s_rank else 0)
        s_bytes = s_ret["size_bytes"] + (s_rank["size_bytes"] if t_rank and s_rank else 0)
        out = {
            "baseline": "teacher_float32" + (" + ranking_teacher_float32" if t_rank and s_rank else ""),
            "final": "student_int8" + (" + ranking_student_int8" if t_rank and s_rank else ""),
            "metric": m, "teacher_bytes": t_bytes, "final_bytes": s_bytes,
            "size_ratio": t_bytes / s_bytes,
            "gzip_ratio": (t_ret["gzip_bytes"] + (t_rank["gzip_bytes"] if t_rank and s_rank else 0))
            / (s_ret["gzip_bytes"] + (s_rank["gzip_bytes"] if t_rank and s_rank else 0)),
            f"{m}_teacher": t_ret[m], f"{m}_final": s_ret[m],
            f"{m}_relative_change": (s_ret[m] - t_ret[m]) / t_ret[m] if t_ret[m] else None,
            f"{m}_percent_of_teacher": 100 * s_ret[m] / t_ret[m] if t_ret[m] else None,
            "embedding_share_teacher": t_ret["embedding_share"], "embedding_share_final": s_ret["embedding_share"],
            "latency_p50_speedup": (t_ret["latency_p50_us"] / s_ret["latency_p50_us"]
                                    if s_ret["latency_p50_us"] else None),
        }
        if t_rank and s_rank:
            sm = f"sampled_ndcg@{K}"
            out.update({f"ranking_{sm}_teacher": t_rank[sm], f"ranking_{sm}_final": s_rank[sm],
                        "ranking_size_ratio": t_rank["size_bytes"] / s_rank["size_bytes"],
                        "ranking_embedding_share_teacher": t_rank["embedding_share"],
                        "ranking_embedding_share_final": s_rank["embedding_share"]})
        shipped = self._find("student_int8", "tflite")
        out["int8_retrieval_from"] = shipped.extra.get("exported_from") if shipped else None
        out["lines"] = summary_lines(out)
        out["headline"] = (f"int8 on-device pair ({out['final']}) vs float32 teachers: {out['size_ratio']:.1f}x "
                           f"smaller ({s_bytes:,} vs {t_bytes:,} bytes); retrieval NDCG@10 {out[m + '_final']:.4f} "
                           f"vs {out[m + '_teacher']:.4f} ({_pct(out[m + '_percent_of_teacher'])} of the teacher's)")
        return out


def _pct(value):
    return "n/a" if value is None else f"{value:.0f}%"


def summary_lines(s):
    """The Markdown lines of a retrieval run's summary (also used when re-rendering a report)."""
    m = s["metric"]
    lines = [f"### Float32 teachers ({s['baseline']}) vs the int8 on-device pair ({s['final']})", "",
             f"- the int8 retrieval file is made from {s.get('int8_retrieval_from')}",
             f"- size: {s['size_ratio']:.1f}x smaller ({s['final_bytes']:,} vs {s['teacher_bytes']:,} bytes; "
             f"{s['gzip_ratio']:.1f}x gzipped)",
             f"- retrieval {m} (top 10 of the whole catalogue, from the files): {s[m + '_teacher']:.4f} → "
             f"{s[m + '_final']:.4f} ({_pct(s[m + '_percent_of_teacher'])} of the teacher's)",
             f"- embedding share of the retrieval file: {s['embedding_share_teacher']:.1%} (teacher) → "
             f"{s['embedding_share_final']:.1%} (int8 student)"]
    if "ranking_size_ratio" in s:
        sm = f"sampled_ndcg@{K}"
        lines += [f"- ranking (list signature): {s['ranking_size_ratio']:.1f}x smaller, sampled NDCG@10 "
                  f"{s[f'ranking_{sm}_teacher']:.4f} → {s[f'ranking_{sm}_final']:.4f}; embedding share "
                  f"{s['ranking_embedding_share_teacher']:.1%} → {s['ranking_embedding_share_final']:.1%}"]
    if s.get("latency_p50_speedup"):
        lines.append(f"- retrieval batch-1 p50 latency: {s['latency_p50_speedup']:.1f}x lower")
    return lines + [""]


def parity_lines(p):
    """The Markdown lines of a retrieval run's parity figures.

    Example:
        >>> parity_lines({"keras_stage": "s", "tflite_stage": "s_int8", "top1_agreement": 0.9, "n": 10,
        ...               "k": 10, "topk_overlap": 0.95})[2]
        '- top-1 item identical for 90.0% of 10 test users; top-10 overlap 95.0%'
    """
    return [f"### Parity: {p['keras_stage']} (Keras) vs {p['tflite_stage']} (TFLite top-K)", "",
            f"- top-1 item identical for {p['top1_agreement']:.1%} of {p['n']:,} test users; "
            f"top-{p['k']} overlap {p['topk_overlap']:.1%}", ""]
