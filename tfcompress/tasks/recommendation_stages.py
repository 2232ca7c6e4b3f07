"""The recommendation task's stages: ``teacher``, ``baseline``, ``distill``, ``compress`` and ``export``, each
training (or exporting) a two-tower retrieval model and, for ``teacher``/``distill``, the CTR list ranker.

Every stage reads the task's :class:`~tfcompress.tasks.recommendation_data.RecommendationData` from the
run's :class:`~tfcompress.stages.RunContext` and records :class:`~tfcompress.stages.StageResult` objects
whose ``extra["role"]`` says ``"retrieval"`` or ``"ranking"``.

Example:
    >>> [s.name for s in RECOMMENDATION_STAGES]
    ['teacher', 'baseline', 'distill', 'compress', 'export']
"""
import os
import tempfile
import time

from .._keras import keras
from ..errors import TFCompressError
from ..stages import Stage, StageResult
from .recommendation_data import K, list_inputs
from .recommendation_metrics import (catalog_metrics, choose_within, keras_embedding_bytes, tflite_catalog_bytes,
                                     validation_metrics)

#: student options used by the ``compress`` stage only (the other student stages keep full tables)
COMPRESS_OPTIONS = {"embedding": "qr", "compress_min_vocab": None}
RETRIEVAL, RANKING = "retrieval", "ranking"


def fit_two_tower(context, model, epochs, lr):
    """Fit a two-tower model on the training positives (sampled softmax)."""
    from ..models.retrieval import fit_retrieval

    d = context.data
    return fit_retrieval(model, d.train, d.spec, epochs=epochs, batch_size=d.retrieval_batch_size,
                         learning_rate=lr, seed=context.config.seed, verbose=context.fit_verbose)


def student_options(context):
    """The retrieval student's builder options, without the ``compress`` stage's own."""
    return {k: v for k, v in context.config.student.items() if k not in COMPRESS_OPTIONS}


def list_feed(context, frame=None, items=None):
    """List-ranking inputs: ``frame`` (default the test users) with candidate ids ``items`` (default theirs)."""
    d = context.data
    return list_inputs(d.test if frame is None else frame, d.candidates if items is None else items, d.catalog,
                       d.spec, d.item_features)


def record_retrieval(context, name, model, started, note):
    """Score a two-tower model (catalogue and sampled NDCG/HR), save both towers, record its result."""
    from .._io import ensure_dir
    from ..export import saved_model
    from ..models.retrieval import evaluate_sampled, keras_topk, two_tower_scores

    d = context.data
    _, ids = keras_topk(model, d.test, d.catalog, d.spec, k=d.list_size)
    sampled = evaluate_sampled(two_tower_scores(model, d.test, d.candidates, d.catalog, d.spec), k=K)
    quality = {**catalog_metrics(ids, d.test_labels, seen=d.seen), **{f"sampled_{k}": v for k, v in sampled.items()}}
    validation = validation_metrics(keras_topk(model, d.val, d.catalog, d.spec, k=d.list_size)[1], d) \
        if len(d.val_labels) else {}
    folder = context.path(context.config.savedmodels_dir, name)
    ensure_dir(folder, "savedmodels folder")
    for tower in (model.query_model, model.candidate_model):
        saved_model(tower, os.path.join(folder, tower.name.rsplit("_", 1)[-1]))
    emb, total = keras_embedding_bytes(model.query_model, model.candidate_model)
    result = context.record(StageResult(
        name=name, format="keras", model=model, path=folder,
        params=model.query_model.count_params() + model.candidate_model.count_params(), quality=quality,
        extra={"embedding_bytes": emb, "weight_bytes": total, "role": RETRIEVAL, "validation": validation}))
    context.progress(name, f"{note}; test NDCG@10 {quality['ndcg@10']:.4f} (catalogue), "
                           f"{quality['sampled_ndcg@10']:.4f} (sampled), {result.params:,} params", started)
    return result


def record_ranking(context, name, model, started, note):
    """Wrap a row ranker as a list ranker of N candidates, score it (sampled NDCG/HR), save, record it."""
    from ..export import saved_model
    from ..models.ranking import list_ranking_model
    from ..models.retrieval import evaluate_sampled

    n = context.data.list_size
    lm = list_ranking_model(model, n, item_features=context.data.item_features, name=f"{name}_list{n}")
    scores = lm.predict(list_feed(context), batch_size=256, verbose=0)
    quality = {f"sampled_{k}": v for k, v in evaluate_sampled(scores, k=K).items()}
    path = saved_model(lm, context.path(context.config.savedmodels_dir, name))
    emb, total = keras_embedding_bytes(model)
    result = context.record(StageResult(name=name, format="keras", model=lm, path=path, params=model.count_params(),
                                        quality=quality, extra={"embedding_bytes": emb, "weight_bytes": total,
                                                                "role": RANKING, "row_model": model}))
    context.progress(name, f"{note}; sampled NDCG@10 {quality['sampled_ndcg@10']:.4f} re-ranking {n} "
                           f"candidates, {result.params:,} params", started)
    return result


def ranking_dataset(context):
    """The ranking models' training rows as a shuffled ``tf.data`` dataset."""
    from ..data import to_dataset

    return to_dataset(context.data.ranking_train, context.data.spec, batch_size=1024, shuffle=True,
                      seed=context.config.seed)


class RetrievalTeacherStage(Stage):
    """``teacher``: the large two-tower retrieval teacher (sampled softmax with in-batch + catalogue
    negatives), and the CTR ranking teacher (DCN-v2) on every interaction but the test ones."""

    name = "teacher"
    result = "teacher"
    ranking_result = "ranking_teacher"

    def run(self, context):
        from ..models import ctr_teacher
        from ..models.retrieval import retrieval_teacher

        cfg, d = context.config, context.data
        started = time.perf_counter()
        model = fit_two_tower(context, retrieval_teacher(d.spec, candidates=d.catalog, **cfg.teacher),
                              cfg.teacher_epochs, cfg.learning_rate)
        record_retrieval(context, self.result, model, started, f"two-tower teacher, {cfg.teacher_epochs} epoch(s)")
        started = time.perf_counter()
        kwargs, _ = context.task.ranking_kwargs(cfg.quick)
        ranker = ctr_teacher(d.spec, **kwargs)
        ranker.compile(keras.optimizers.Adam(1e-3 if not cfg.quick else 5e-3),
                       keras.losses.BinaryCrossentropy(from_logits=True))
        epochs = max(1, cfg.teacher_epochs - 1)
        ranker.fit(ranking_dataset(context), epochs=epochs, verbose=context.fit_verbose)
        return record_ranking(context, self.ranking_result, ranker, started, f"CTR ranking teacher, {epochs} epoch(s)")


def frozen_teacher(context):
    """The trained retrieval teacher, frozen (a student tracks it as a sub-model: without this its
    variables would count as the student's trainable ones), or None."""
    r = context.find(RetrievalTeacherStage.result)
    if r is None:
        return None
    r.model.trainable = False
    return r.model


class RetrievalBaselineStage(Stage):
    """``baseline``: the small retrieval student alone, on the labels."""

    name = "baseline"
    result = "student_alone"

    def run(self, context):
        from ..models.retrieval import retrieval_student

        cfg, d = context.config, context.data
        started = time.perf_counter()
        model = fit_two_tower(context, retrieval_student(d.spec, candidates=d.catalog, **student_options(context)),
                              cfg.student_epochs, cfg.student_learning_rate)
        return record_retrieval(context, self.result, model, started, f"student alone, {cfg.student_epochs} epoch(s)")


class RetrievalDistillStage(Stage):
    """``distill``: a fresh retrieval student distilled from the teacher (the teacher's scores over the
    batch's sampled candidates as soft targets), and the CTR ranking student distilled from its teacher."""

    name = "distill"
    result = "student_distilled"
    ranking_result = "ranking_student"
    requires = (RetrievalTeacherStage.name,)
    needs = "the model it learns from"

    def run(self, context):
        from ..models.retrieval import retrieval_student

        cfg, d = context.config, context.data
        started = time.perf_counter()
        model = retrieval_student(d.spec, teacher=frozen_teacher(context), candidates=d.catalog, alpha=cfg.alpha,
                                  distill_temperature=cfg.temperature, **student_options(context))
        fit_two_tower(context, model, cfg.student_epochs, cfg.student_learning_rate)
        record_retrieval(context, self.result, model, started,
                         f"distilled (alpha {cfg.alpha:g}, T {cfg.temperature:g}), {cfg.student_epochs} epoch(s)")
        return self._ranking_student(context)

    def _ranking_student(self, context):
        from ..distill import Distiller
        from ..models import ctr_student

        cfg = context.config
        started = time.perf_counter()
        _, kwargs = context.task.ranking_kwargs(cfg.quick)
        student = ctr_student(context.data.spec, **kwargs)
        teacher = context.find(RetrievalTeacherStage.ranking_result).extra["row_model"]
        distiller = Distiller(student, teacher, alpha=cfg.alpha, temperature=cfg.temperature, objective="binary")
        # measured on the shop (benchmarks/recsys_table.py protocol): 2 epochs at 3e-3 left the student at 80 %
        # of the teacher's sampled NDCG@10, 4 epochs at 1e-2 at 99 %
        distiller.compile(optimizer=keras.optimizers.Adam(cfg.student_learning_rate))
        epochs = max(1, cfg.student_epochs - 1)
        distiller.fit(ranking_dataset(context), epochs=epochs, verbose=context.fit_verbose)
        return record_ranking(context, self.ranking_result, student, started,
                              f"CTR ranking student distilled, {epochs} epoch(s)")


#: the trained retrieval students before compression, the preferred first
_TRAINED = (RetrievalDistillStage.result, RetrievalBaselineStage.result)


class CompressStage(Stage):
    """``compress``: the distilled student again with compressed embedding tables (``student["embedding"]``:
    ``qr`` by default; also ``hash``, ``mixed``, ``lowrank``) for every id feature with at least
    ``compress_min_vocab`` ids, distilled from the teacher; or (``int8row``, ``int4row``) the trained
    student's own tables quantized per row, without retraining."""

    name = "compress"
    result = "student_compressed"

    def run(self, context):
        cfg = context.config
        kind = cfg.student.get("embedding", COMPRESS_OPTIONS["embedding"])
        min_vocab = cfg.student.get("compress_min_vocab") or (1000 if cfg.data is not None else 100)
        if kind in ("int8row", "int4row"):
            return self._quantize_tables(context, kind, min_vocab)
        return self._retrain(context, kind, min_vocab)

    def _quantize_tables(self, context, kind, min_vocab):
        started = time.perf_counter()
        trained = [r for r in map(context.find, _TRAINED) if r is not None]
        # the same file size either way: the better validation NDCG@10 (the distilled one on ties)
        source = max(trained, key=lambda r: r.extra["validation"].get(context.task.metric, 0), default=None)
        if source is None:
            raise TFCompressError(f"embedding={kind!r} quantizes a trained student's tables: run the "
                                  f"{RetrievalDistillStage.name!r} or {RetrievalBaselineStage.name!r} stage "
                                  f"before {self.name!r}")
        bits = 8 if kind == "int8row" else 4
        model = source.model.quantize_tables(bits, min_vocab=min_vocab)
        result = record_retrieval(context, self.result, model, started, f"{source.name}'s tables (the better "
                                  f"validation {context.task.metric}) with >= {min_vocab} ids as per-row int{bits}, "
                                  "no retraining")
        result.extra["embedding"] = kind
        return result

    def _retrain(self, context, kind, min_vocab):
        from ..models.retrieval import retrieval_student

        cfg, d = context.config, context.data
        started = time.perf_counter()
        model = retrieval_student(d.spec, teacher=frozen_teacher(context), candidates=d.catalog, alpha=cfg.alpha,
                                  distill_temperature=cfg.temperature, embedding=kind, frequencies=d.frequencies,
                                  compress_min_vocab=min_vocab, **student_options(context))
        fit_two_tower(context, model, cfg.student_epochs, cfg.student_learning_rate)
        how = "distilled" if frozen_teacher(context) is not None else "alone"
        result = record_retrieval(context, self.result, model, started,
                                  f"{kind} embeddings for ids with >= {min_vocab} values, {how}")
        result.extra["embedding"] = kind
        return result


#: the retrieval students the export chooses from, the least lossy first (kept on ties)
RETRIEVAL_STUDENTS = _TRAINED + (CompressStage.result,)


class RecommendationExportStage(Stage):
    """``export``: float32 TFLite of the teachers and int8 TFLite of a student: every retrieval student is
    exported as int8 and scored on the validation users; the smallest file within the run's tolerance of
    the best one's validation NDCG@10 ships (:func:`choose_within`; ``extra["choice"]`` says which and
    why). A retrieval signature (the user's and context features → ``item_ids`` and ``scores`` of the top
    K, K = the list size) and a list-ranking signature (one user, N candidates → N ``scores``)."""

    name = "export"
    teacher_result = "teacher_float32"
    student_result = "student_int8"
    ranking_teacher_result = "ranking_teacher_float32"
    ranking_student_result = "ranking_student_int8"

    def run(self, context):
        started = time.perf_counter()
        done, k = [], context.data.list_size
        teacher = context.find(RetrievalTeacherStage.result)
        if teacher is not None:
            self._export_retrieval(context, self.teacher_result, teacher, "float32")
            done.append(f"{self.teacher_result} (float32, top-{k})")
        shipped = self._ship_student(context)
        if shipped is not None:
            done.append(f"{self.student_result} (int8, top-{k}) from {shipped.extra['exported_from']}: "
                        f"{shipped.extra['choice']['reason']}")
        for name, source, mode in ((self.ranking_teacher_result, RetrievalTeacherStage.ranking_result, "float32"),
                                   (self.ranking_student_result, RetrievalDistillStage.ranking_result, "int8")):
            source = context.find(source)
            if source is not None:
                self._export_ranking(context, name, source, mode)
                done.append(f"{name} ({mode}, list of {k})")
        context.progress(self.name, ", ".join(done) or "nothing to export", started)
        return context.find(self.student_result, "tflite")

    @staticmethod
    def _sidecar(context, source):
        d = context.data
        return {"list_size": d.list_size, "k": d.list_size, "feature_spec": d.feature_spec, "source": source.name}

    def _write_retrieval(self, context, path, source, mode):
        from ..export import export_retrieval_tflite

        cfg, d = context.config, context.data
        return export_retrieval_tflite(
            source.model, d.catalog, d.spec, k=d.list_size, path=path, mode=mode,
            representative=d.calibration_inputs if mode == "int8" else None,
            num_calibration=cfg.calibration_samples, metadata=self._sidecar(context, source))

    def _export_retrieval(self, context, name, source, mode):
        path = self._write_retrieval(context, context.path(context.config.tflite_dir, name) + ".tflite", source, mode)
        return record_tflite(context, name, path, RETRIEVAL, source)

    def _export_ranking(self, context, name, source, mode):
        from ..export import to_tflite

        cfg, d = context.config, context.data
        calib = list_feed(context, d.calibration_frame, self._calibration_lists(context, len(d.calibration_frame)))
        path = to_tflite(source.model, context.path(cfg.tflite_dir, name) + ".tflite", mode=mode,
                         representative=calib if mode == "int8" else None, num_calibration=cfg.calibration_samples,
                         name=f"{context.task.name}_{name}", metadata=self._sidecar(context, source))
        return record_tflite(context, name, path, RANKING, source)

    def _ship_student(self, context):
        """Export each retrieval student as int8 (in a temporary folder), score each file on the validation
        users, keep the one :func:`choose_within` picks as ``student_int8``, record it with the choice."""
        from .._io import ensure_dir
        from ..export import TFLiteModel, sidecar_path

        cfg, d = context.config, context.data
        sources = [r for r in map(context.find, RETRIEVAL_STUDENTS) if r is not None]
        if not sources:
            return None
        final = context.path(cfg.tflite_dir, self.student_result) + ".tflite"
        with tempfile.TemporaryDirectory(prefix=".candidates.", dir=ensure_dir(cfg.tflite_dir, "tflite folder")) as tmp:
            paths = {r.name: self._write_retrieval(context, os.path.join(tmp, f"{r.name}.tflite"), r, "int8")
                     for r in sources}
            figures = {n: tflite_validation(TFLiteModel(p), d) for n, p in paths.items()}
            choice = choose_within([dict(name=n, validation=figures[n].get(context.task.metric),
                                         bytes=os.path.getsize(p)) for n, p in paths.items()], cfg.tolerance,
                                   context.task.metric)
            chosen = paths[choice["shipped"]]
            os.replace(chosen, final)
            os.replace(sidecar_path(chosen), sidecar_path(final))
        result = record_tflite(context, self.student_result, final, RETRIEVAL, context.find(choice["shipped"]),
                               validation=figures[choice["shipped"]])
        result.extra["choice"] = choice
        return result

    @staticmethod
    def _calibration_lists(context, rows):
        """Candidate lists for calibration rows: the catalogue's items, sampled uniformly."""
        import numpy as np

        rng = np.random.default_rng(context.config.seed + 7)
        items = context.data.catalog["item_id"].to_numpy()
        return rng.choice(items, size=(rows, context.data.list_size), replace=True).astype(np.int64)


def tflite_validation(model, data):
    """:func:`validation_metrics` of a top-K file (a ``TFLiteModel``) on ``data``'s validation users."""
    if not len(data.val_labels):
        return {}
    return validation_metrics(model.predict(data.val_inputs, batch_size=1024)["item_ids"], data)


def record_tflite(context, name, path, role, source, validation=None):
    """Score an exported file (retrieval: from its own top-K output, on the test users and, unless
    ``validation`` gives those figures, the validation users; ranking: sampled NDCG/HR), record it."""
    from ..bench import size
    from ..export import TFLiteModel
    from ..models.retrieval import evaluate_sampled

    d = context.data
    model = TFLiteModel(path)
    if role == RETRIEVAL:
        out = model.predict(d.test_inputs, batch_size=1024)
        quality = catalog_metrics(out["item_ids"], d.test_labels, seen=d.seen)
        emb, total = tflite_catalog_bytes(path, len(d.catalog))
        validation = tflite_validation(model, d) if validation is None else validation
    else:
        scores = model.predict(list_feed(context), batch_size=256)
        quality = {f"sampled_{k}": v for k, v in evaluate_sampled(scores, k=K).items()}
        emb, total = tflite_catalog_bytes(path, 0)
    return context.record(StageResult(name=name, format="tflite", model=path, path=path,
                                      params=size.tflite_params(path), quality=quality,
                                      extra={"embedding_bytes": emb, "weight_bytes": total, "role": role,
                                             "exported_from": source.name, "validation": validation or {}}))


RECOMMENDATION_STAGES = (RetrievalTeacherStage(), RetrievalBaselineStage(), RetrievalDistillStage(), CompressStage(),
                         RecommendationExportStage())
