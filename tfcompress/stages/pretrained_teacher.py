"""A pretrained teacher from a local checkpoint folder (``tfcompress run --task text --teacher FOLDER``): a
Hugging Face or keras-hub model folder loaded by :mod:`tfcompress.pretrained` (Keras 3), its head fitted
on the labelled training rows, and its logits over the training (labelled + transfer) and validation rows
taken from the on-disk :class:`~tfcompress.pretrained.TeacherOutputCache`; the tf_keras students are
distilled offline from those NumPy arrays (:class:`~tfcompress.distill.OfflineDistiller`), so the two
Kerases never meet in one graph. A transfer row (label -1) teaches the student through the soft loss only.

The teacher's result has format ``keras3`` (:data:`FORMAT`; its report row: :mod:`.pretrained_report`).

Example:
    >>> from types import SimpleNamespace as C
    >>> check_pretrained_options(C(teacher_model=None, labelled=40, student_vocab=None, student_embeddings=None,
    ...                            teacher_head=None), "text")
    Traceback (most recent call last):
    ...
    tfcompress.errors.TFCompressError: --labelled 40 needs --teacher FOLDER (a pretrained checkpoint) to label the other training rows: add one or drop --labelled
"""
import os
from types import SimpleNamespace

import numpy as np

from ..errors import TFCompressError, check
from .base import StageResult

#: the report format of a pretrained (Keras 3) teacher's result
FORMAT = "keras3"
#: the ``extra`` key of a result holding its test-split logits (kept in memory for the report's verdict)
TEST_LOGITS = "test_logits"
#: the ``extra`` key of the teacher result holding the fitted :class:`~tfcompress.pretrained.PretrainedTeacher`
PRETRAINED = "pretrained_teacher"
#: the ``extra`` key holding the teacher's logits ``{"train": ..., "val": ...}`` (rows of the data's splits)
TEACHER_LOGITS = "teacher_logits"
EXPORT_NOTE = ("no teacher_float32 file: the teacher is a Keras 3 model that tf_keras cannot convert; its bytes "
               "are its weights'")


def pretrained_folder(config):
    """The pretrained checkpoint folder of ``config.teacher_model`` (a Hugging Face or keras-hub folder by its
    ``config.json``, complete or not: loading it names a missing file), or None.

    Example:
        >>> from types import SimpleNamespace as C
        >>> pretrained_folder(C(teacher_model=None)) is None
        True
    """
    path = getattr(config, "teacher_model", None)
    if not isinstance(path, (str, os.PathLike)):
        return None
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isdir(path) or os.path.isfile(os.path.join(path, "saved_model.pb")):
        return None
    from ..pretrained.checkpoint import folder_format

    return path if folder_format(path) is not None else None


def check_pretrained_options(config, task, train_rows=None):
    """One line, before anything is written, for options of a pretrained teacher that cannot apply: a
    checkpoint folder for a task other than ``text``; ``--labelled``, ``--student-vocab teacher``,
    ``--student-embeddings`` or ``--teacher-head`` without one; ``--labelled`` above the ``train_rows``."""
    folder = pretrained_folder(config)
    if folder is not None:
        check(task == "text", f"--teacher {config.teacher_model}: a pretrained checkpoint folder is a teacher for "
                              f"--task text only, not --task {task}; give a trained model file instead")
    else:
        for flag, value in (("--labelled", config.labelled), ("--teacher-head", config.teacher_head),
                            ("--student-embeddings", config.student_embeddings),
                            ("--student-vocab", None if config.student_vocab in (None, "own") else "teacher")):
            what = "label the other training rows" if flag == "--labelled" else "take it from"
            check(value is None, f"{flag} {value} needs --teacher FOLDER (a pretrained checkpoint) to {what}: "
                                 f"add one or drop {flag}")
    if config.labelled is not None and train_rows is not None:
        check(config.labelled <= train_rows,
              f"--labelled {config.labelled} is more than the {train_rows:,} labelled training rows: give at most "
              f"{train_rows:,}, or leave it out to use them all")


def fit_pretrained_teacher(context, started):
    """The ``teacher`` stage for a checkpoint folder: fit the head on the labelled training rows (the probe's L2
    chosen on validation; a fine-tuned head keeps its best validation epoch), score it on the test split, cache its logits over the training and validation
    rows, time its Keras 3 forward at batch 1 and 32; record and return its result."""
    from ..pretrained import PretrainedTeacher, TeacherOutputCache

    cfg, data, task = context.config, context.data, context.task
    rows, corpus, labels = data.split_rows, list(data.corpus_texts), data.split_labels
    head, cache = cfg.teacher_head or "probe", TeacherOutputCache(cfg.teacher_cache)
    if head == "probe":
        warm_probe_cache(data.encoder, cache, corpus, (rows["train"], rows["val"]))
    teacher = PretrainedTeacher.fit(data.encoder, [corpus[i] for i in rows["train"]], labels["train"],
                                    data.num_classes, head=head, seed=cfg.seed, batch_size=32,
                                    val=([corpus[i] for i in rows["val"]], labels["val"]),
                                    cache=cache)
    every = np.asarray(teacher.logits(corpus), np.float32)  # one cached pass: seeds and splits share it
    test_logits = every[rows["test"]]
    logits = {"train": every[np.concatenate([rows["train"], rows["transfer"]])], "val": every[rows["val"]]}
    b1 = data.encoder.latency_ms(1, runs=max(5, min(50, cfg.latency_runs)))
    b32 = data.encoder.latency_ms(32, runs=max(3, min(10, cfg.latency_runs // 10)))
    result = StageResult(
        name="teacher", format=FORMAT, model=None, path=os.path.abspath(pretrained_folder(cfg)),
        params=int(teacher.params), quality=task.evaluate(test_logits, data.test_labels),
        extra={TEST_LOGITS: test_logits, PRETRAINED: teacher, TEACHER_LOGITS: logits,
               "weight_bytes": int(teacher.weight_bytes), "teacher_head": head, "note": teacher.describe(),
               "export": EXPORT_NOTE,
               "keras3_p50_b1_ms": round(float(b1["p50"]), 3), "keras3_p50_b32_ms": round(float(b32["p50"]), 3),
               "latency": SimpleNamespace(p50_us=1000.0 * b1["p50"], p90_us=1000.0 * b1["p90"])})
    context.record(result)
    context.progress("teacher", f"pretrained teacher ({head}) {teacher.describe()}; test {task.metric} "
                                f"{result.quality[task.metric]:.4f}, {result.params:,} params", started)
    return result


def warm_probe_cache(encoder, cache, corpus, subsets):
    """Cut the frozen embeddings of each of ``subsets`` (row indices of ``corpus``) from one cached pass over
    the whole ``corpus``, and cache them under their own keys: a new split or seed pays no teacher forward."""
    from ..pretrained import cache_key, frozen_embeddings

    every = frozen_embeddings(encoder, corpus, cache)
    for rows in subsets:
        key = cache_key(encoder, [corpus[i] for i in rows], head="frozen", seed=None, what="embeddings")
        if cache.get(key) is None:
            cache.put(key, every[rows])


def pretrained_result(context):
    """The run's pretrained teacher result, or None."""
    found = context.find("teacher", FORMAT)
    return found if found is not None and PRETRAINED in found.extra else None


def offline_datasets(context):
    """``(train, val)`` batches ``((inputs, teacher logits), labels)`` for
    :class:`~tfcompress.distill.OfflineDistiller` from the pretrained teacher's logits (labelled and transfer
    rows, the latter labelled -1), or None without a pretrained teacher."""
    from .._keras import tf

    found = pretrained_result(context)
    if found is None:
        return None
    cfg, data, logits = context.config, context.data, found.extra[TEACHER_LOGITS]

    def ds(split, shuffle):
        d = tf.data.Dataset.from_tensor_slices((({"token_ids": data.split_ids[split]}, logits[split]),
                                                data.split_labels[split if split == "val" else "distill"]))
        if shuffle:
            d = d.shuffle(len(logits[split]), seed=cfg.seed, reshuffle_each_iteration=True)
        return d.batch(cfg.batch_size).prefetch(tf.data.AUTOTUNE)

    return ds("train", True), ds("val", False)


def projected_embeddings(vectors, width, std=0.05):
    """Rows of ``vectors`` ``[tokens, hidden]`` projected onto their top ``width`` principal components (PCA by
    NumPy SVD), scaled to standard deviation ``std`` (a fresh embedding's scale).

    Example:
        >>> v = np.random.default_rng(0).normal(size=(50, 8))
        >>> out = projected_embeddings(v, 3)
        >>> out.shape, round(float(out.std()), 3)
        ((50, 3), 0.05)
    """
    vectors = np.asarray(vectors, np.float64)
    check(width <= min(vectors.shape), f"student_embeddings='teacher': the student's embedding width {width} "
                                       f"is more than the teacher's {vectors.shape[1]} dimensions (or its "
                                       f"{vectors.shape[0]} tokens): give the student a width <= {min(vectors.shape)}")
    centred = vectors - vectors.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:width].T
    return (out * (std / max(out.std(), 1e-12))).astype(np.float32)


def teacher_token_vectors(vocabulary, encoder, tokenizer):
    """``[len(vocabulary), hidden]``: for each student token the teacher's embedding of the same token, else
    the mean of the teacher's embeddings of its pieces under the teacher's ``tokenizer`` (a ``##`` piece
    read as its word; no piece: the teacher's ``[UNK]``)."""
    from ..data.text import UNK, tokenize

    index = {t: i for i, t in enumerate(encoder.vocabulary)}
    table = np.asarray(encoder.token_embeddings, np.float32)
    out = np.zeros((len(vocabulary), table.shape[1]), np.float32)
    missing = [(i, t[2:] if t.startswith("##") else t) for i, t in enumerate(vocabulary) if t not in index]
    for i, t in enumerate(vocabulary):
        if t in index:
            out[i] = table[index[t]]
    if missing:
        ids = tokenize([w or UNK for _, w in missing], tokenizer)
        for (i, _), row in zip(missing, ids):
            pieces = row[row > 0]
            out[i] = table[pieces].mean(0) if len(pieces) else table[index[UNK]]
    return out


def init_student_embeddings(context, student):
    """With ``student_embeddings="teacher"``: set ``student``'s ``token_embedding`` from the pretrained
    teacher's token embeddings projected to its width (:func:`projected_embeddings`); returns ``student``."""
    from ..data.text import vocabulary_tokenizer

    cfg, data = context.config, context.data
    if cfg.student_embeddings != "teacher":
        return student
    encoder = getattr(data, "encoder", None)
    check(encoder is not None, "student_embeddings='teacher' needs a pretrained teacher (--teacher FOLDER)")
    try:
        layer = student.get_layer("token_embedding")
    except ValueError:
        raise TFCompressError(f"student_embeddings='teacher': the student {student.name!r} has no layer "
                              "'token_embedding' to initialize: use the task's students or drop the option") from None
    vocab_size, width = layer.get_weights()[0].shape
    vocabulary = list(data.tokenizer.get_vocabulary())
    check(len(vocabulary) == vocab_size, f"student_embeddings='teacher': the student's embedding has {vocab_size} "
                                         f"rows but the vocabulary {len(vocabulary)} tokens")
    options = {k: bool(getattr(encoder.tokenizer, k)) for k in ("lowercase", "strip_accents")
               if getattr(encoder.tokenizer, k, None) is not None}
    tokenizer = vocabulary_tokenizer(encoder.vocabulary, 16, **options)
    layer.set_weights([projected_embeddings(teacher_token_vectors(vocabulary, encoder, tokenizer), width)])
    return student
