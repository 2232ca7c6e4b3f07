"""Text classification: product titles (built-in), review text (the reviews CSV), or any text table.

``--data`` selects the corpus: none → product title → category on the built-in shop (no files needed);
``reviews`` → the clothing-reviews CSV found in ``../shared/data`` (``recommend`` label); a path or a
DataFrame → the reviews CSV when it has its columns, else any table with a text column and a label column
(``--text`` / ``--label`` or inferred; a TSV without header too, ``--no-header`` where sniffing cannot
tell; labels 0/1, booleans, yes/no, class names, or a rating with ``--label-threshold``; see
:func:`tfcompress.data.reviews.load_text_table`). Texts are tokenized with a WordPiece vocabulary learned
from the training split (keras-nlp, outside the model), so the TFLite model takes int32 ``token_ids``; the
tokenizer is written beside the ``.tflite`` file for the app.

With ``--teacher FOLDER`` a pretrained checkpoint (a Hugging Face or keras-hub folder) is the teacher
(:mod:`tfcompress.stages.pretrained_teacher`); ``--labelled N`` keeps N stratified labelled training rows
and makes every other training row (and every row of a text table whose label is blank) a transfer row,
labelled by the teacher for distillation only (:func:`transfer_split`); ``student_vocab="teacher"`` gives
the students the teacher's WordPiece vocabulary, ``student_embeddings="teacher"`` its token embeddings
projected down by PCA.

Example:
    >>> TextTask().defaults(quick=True)["events"]
    150000
"""
from dataclasses import dataclass, field

import numpy as np

from ..models.text import text_student, text_teacher
from ..errors import TFCompressError
from ..stages import DistillationVerdict, KerasVsTFLite
from ..stages.pretrained_report import PretrainedLatency, PretrainedTable, PretrainedVsFinal, pretrained_column
from ..stages.pretrained_teacher import check_pretrained_options, pretrained_folder
from .base import Task, TaskData
from .ctr import data_name
from .splits import stratified_split


def labelled_rows(labels, n, seed=0):
    """Positions of ``n`` of ``labels`` (integer classes) kept labelled: stratified (each class in its share,
    at least one), seeded.

    Example:
        >>> keep = labelled_rows(np.array([0] * 80 + [1] * 20), 10, seed=0)
        >>> len(keep), int((keep >= 80).sum())
        (10, 2)
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = n * counts / counts.sum()
    quota = np.minimum(counts, np.maximum(1, np.floor(share))).astype(int)
    for i in np.argsort(np.floor(share) - share):  # the largest remainders first
        quota[i] += int(quota.sum() < n and quota[i] < counts[i])
    while quota.sum() > n:
        quota[np.argmax(quota)] -= 1
    picks = [rng.choice(np.flatnonzero(labels == c), q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def transfer_split(labels, labelled=None, seed=0, random=False):
    """``(train, validation, test, transfer)`` row indices: the labelled rows split (stratified unless
    ``random``); rows without a label (-1) and, with ``labelled=N``, all but N stratified training rows are
    transfer rows (the teacher labels them).

    Example:
        >>> labels = np.array([0, 1] * 50 + [-1] * 5)
        >>> [len(i) for i in transfer_split(labels, labelled=20)]
        [20, 10, 10, 65]
    """
    labels = np.asarray(labels)
    known, blank = np.flatnonzero(labels >= 0), np.flatnonzero(labels < 0)
    tr, va, te = (known[i] for i in stratified_split(np.zeros(len(known)) if random else labels[known], seed=seed))
    if labelled is None or labelled >= len(tr):
        return tr, va, te, blank
    keep = labelled_rows(labels[tr], labelled, seed)
    return tr[keep], va, te, np.concatenate([np.delete(tr, keep), blank]).astype(np.int64)


def text_split(split):
    """The split a text table gets: stratified by label (``auto``/None, ``stratified``) or ``random``; a
    time or user split is a one-line error.

    Example:
        >>> text_split(None), text_split("random")
        ('stratified', 'random')
    """
    if split in (None, "auto", "stratified", "random"):
        return "random" if split == "random" else "stratified"
    raise TFCompressError(f"--split {split!r}: the text task splits texts at random, stratified by label; use "
                          "--split auto, stratified or random")


def text_table(data, config):
    """``(corpus, source)`` of a text table ``data`` (``"reviews"``, a path or a DataFrame) with ``config``'s
    ``text``, ``label``, ``label_threshold``, ``sep`` and ``header`` (None: all inferred): the reviews CSV
    (the shared one, a folder, a zip, or a table with its columns and no roles named) through
    :func:`~tfcompress.data.load_reviews` as before, any other table through
    :func:`~tfcompress.data.reviews.load_text_table`.

    Example:
        >>> import pandas as pd
        >>> from tfcompress.pipeline import RunConfig
        >>> df = pd.DataFrame({"review": ["fits well", "runs small"] * 5, "stars": [5, 2] * 5})
        >>> corpus, source = text_table(df, RunConfig(label_threshold=4))
        >>> corpus.labels.tolist()[:2], source
        ([1, 0], "a DataFrame (text 'review', label 'stars' >= 4)")
    """
    import os

    import pandas as pd

    from ..data import load_reviews, read_table
    from ..data.reviews import load_text_table, text_columns

    if isinstance(data, str) and data.strip() == "reviews":
        return load_reviews(None), "clothing reviews (recommend), ../shared/data"
    if not isinstance(data, pd.DataFrame):
        path = os.path.expanduser(str(data).strip())
        if not os.path.exists(path):
            raise TFCompressError(f"--data {data_name(data)} does not exist and is not 'reviews': give a table "
                                  "with a text and a label column (CSV, TSV, Parquet)")
        if os.path.isdir(path) or path.lower().endswith(".zip"):
            return load_reviews(path), f"reviews CSV {data}"
    header = getattr(config, "header", None)
    frame = read_table(data if isinstance(data, pd.DataFrame) else path, sep=getattr(config, "sep", None),
                       header="infer" if header is None else header)
    roles = {k: getattr(config, k, None) for k in ("text", "label", "label_threshold")}
    if not any(v is not None for v in roles.values()) and {"Review Text", "Recommended IND"} <= set(frame.columns):
        return load_reviews(frame), f"reviews CSV {data_name(data, quote=False)}"
    text, label = text_columns(frame, text=roles["text"], label=roles["label"])
    teacher = pretrained_folder(config) is not None
    corpus = load_text_table(frame, text=text, label=label, label_threshold=roles["label_threshold"],
                             blank_labels="keep" if teacher else "drop")
    ignored = [str(c) for c in frame.columns if c not in (text, label)]
    how = f" >= {roles['label_threshold']:g}" if roles["label_threshold"] is not None else ""
    how += f"; column{'s' if len(ignored) > 1 else ''} {', '.join(ignored)} ignored" if ignored else ""
    blank = int(np.sum(np.asarray(corpus.labels) < 0)) if teacher else corpus.dropped.get("missing_label", 0)
    how += ("" if not blank else f"; {blank:,} rows without a label: transfer rows" if teacher else
            f"; {blank:,} rows without a label dropped (--teacher FOLDER would label them)")
    return corpus, f"{data_name(data, quote=False)} (text {text!r}, label {label!r}{how})"


@dataclass
class TextData(TaskData):
    """The text task's data: the splits, the vocabulary size, classes, sequence length and the tokenizer."""

    vocab_size: int = None
    num_classes: int = None
    seq_len: int = None
    class_names: list = field(default_factory=list)
    tokenizer: object = None
    encoder: object = None  # the pretrained teacher's encoder (tfcompress.pretrained), or None
    corpus_texts: np.ndarray = None  # every text (object array: kept out of the sidecar), as split_rows index
    split_rows: dict = field(default_factory=dict)    # rows of "train" (labelled), "transfer", "val", "test"
    split_labels: dict = field(default_factory=dict)  # "train", "val"; "distill": train + transfer (-1)
    split_ids: dict = field(default_factory=dict)     # token ids of "train" (labelled + transfer) and "val"


class TextTask(Task):
    """Transformer-encoder teacher → CNN student on tokenized text; accuracy on a stratified test split."""

    name = "text"
    objective = "multiclass"
    metric = "accuracy"
    teacher_builder = staticmethod(text_teacher)
    student_builder = staticmethod(text_student)
    data_args = ("vocab_size", "num_classes", "seq_len")
    data_class = TextData
    latency = PretrainedLatency()
    table = PretrainedTable(columns=(pretrained_column,))
    report_sections = (PretrainedVsFinal(), DistillationVerdict(), KerasVsTFLite())

    def __init__(self, sequence_length=None):
        """``sequence_length``: tokens per text (None: 64 in quick runs, 128 otherwise; 16 for titles)."""
        self.sequence_length = None if sequence_length is None else int(sequence_length)

    def defaults(self, quick):
        if quick:
            return dict(events=150_000, batch_size=64, teacher_epochs=2, student_epochs=2, prune_epochs=1,
                        qat_epochs=1, learning_rate=2e-3, student_learning_rate=5e-3, calibration_samples=100,
                        latency_runs=30)
        return dict(events=300_000, batch_size=64, teacher_epochs=6, student_epochs=8, prune_epochs=2,
                    qat_epochs=1, learning_rate=1e-3, student_learning_rate=3e-3, calibration_samples=300,
                    latency_runs=300)

    def teacher_kwargs(self, quick):
        return dict(d_model=32, heads=2, blocks=1) if quick else dict(d_model=128, heads=4, blocks=4)

    def student_kwargs(self, quick):
        return dict(embed_dim=16, filters=16, hidden=16) if quick else {}

    def model_args(self, data):
        return {"vocab_size": data.vocab_size, "num_classes": data.num_classes, "seq_len": data.seq_len}

    def _corpus(self, config):
        """``(corpus, source)``: the :class:`tfcompress.data.TextData` of ``config.data`` and its words."""
        from ..data import titles_task

        if config.data is None:
            return titles_task(events=config.events, seed=config.seed), "product titles of the built-in shop"
        return text_table(config.data, config)

    def check_data(self, data, config=None):
        """A bad ``--data`` is one line, before anything is written (``config``: the text/label columns, the
        reading options and the split). Returns the split (None for the built-in titles)."""
        if data is None:
            return None
        how = text_split(getattr(config, "split", None))
        corpus, _ = text_table(data, config)
        known = np.asarray(corpus.labels)[np.asarray(corpus.labels) >= 0]
        if len(set(known.tolist())) < 2:
            raise TFCompressError(f"the label of --data {data_name(data)} has one value ({corpus.class_names[0]!r} "
                                  "on every row): give texts of at least two classes or another --label")
        if len(known) < 10:
            raise TFCompressError(f"--data {data_name(data)} has {len(known)} usable labelled texts: too few to "
                                  "split into train/validation/test (give at least 10)")
        return how

    def resolve_data(self, config):
        """Called by ``RunConfig.validate``: :meth:`check_data` with the config's columns, and the options of
        a pretrained teacher (:func:`~tfcompress.stages.pretrained_teacher.check_pretrained_options`)."""
        how = self.check_data(config.data, config)
        rows = None
        if config.labelled is not None and pretrained_folder(config) is not None:
            labels = self._texts(config)[1]
            rows = len(transfer_split(labels, seed=config.seed, random=text_split(config.split) == "random")[0])
        check_pretrained_options(config, self.name, rows)
        if pretrained_folder(config) is not None:
            from ..pretrained.checkpoint import check_folder

            check_folder(pretrained_folder(config))
        return {} if how is None else {"split": how}

    def _texts(self, config):
        """``(texts, labels, class_names, source, titles)``: the corpus, subsampled for quick runs."""
        corpus, source = self._corpus(config)
        titles = config.data is None
        texts = np.asarray(corpus.texts, dtype=object)
        labels = np.asarray(corpus.labels, np.int32)
        if config.quick and not titles and len(texts) > 6000:
            keep = np.random.default_rng(config.seed).choice(len(texts), 6000, replace=False)
            texts, labels = texts[keep], labels[keep]
        return texts, labels, corpus.class_names, source, titles

    def load(self, config):
        from ..data.text import tokenize
        from .._keras import tf

        texts, labels, class_names, source, titles = self._texts(config)
        seq_len = self.sequence_length or (16 if titles else (64 if config.quick else 128))
        random = text_split(config.split) == "random"
        tr, va, te, transfer = transfer_split(labels, config.labelled, seed=config.seed, random=random)
        encoder = _encoder(config, seq_len)
        tokenizer, vocab_words = _student_tokenizer(config, texts[np.concatenate([tr, transfer])], encoder,
                                                    2000 if titles else (4000 if config.quick else 8000), seq_len)
        ids = tokenize(list(texts), tokenizer)
        vocab = int(tokenizer.vocabulary_size())
        bs = config.batch_size

        def ds(idx, shuffle=False):
            d = tf.data.Dataset.from_tensor_slices(({"token_ids": ids[idx]}, labels[idx]))
            if shuffle:
                d = d.shuffle(len(idx), seed=config.seed, reshuffle_each_iteration=True)
            return d.batch(bs).prefetch(tf.data.AUTOTUNE)

        rng = np.random.default_rng(config.seed)
        pool = np.concatenate([tr, transfer])
        rows = (f"{len(tr):,} labelled + {len(transfer):,} transfer (labelled by the teacher)"
                if len(transfer) or config.labelled is not None else f"{len(tr):,}")
        return TextData(
            train_ds=ds(tr, shuffle=True), val_ds=ds(va), test_inputs={"token_ids": ids[te]},
            test_labels=labels[te],
            calibration_inputs={"token_ids": ids[rng.choice(pool, min(len(pool), config.calibration_samples),
                                                            replace=False)]},
            latency_inputs={"token_ids": ids[te[:1]]},
            steps_per_epoch=int(np.ceil(len(tr) / bs)),
            description=(f"{len(texts):,} texts from {source} ({rows} train / {len(va):,} validation / "
                         f"{len(te):,} test, {'random' if random else 'stratified'}), {len(class_names)} classes, "
                         f"{vocab_words} {vocab:,}, {seq_len} tokens"),
            vocab_size=vocab, num_classes=len(class_names), seq_len=seq_len,
            class_names=list(map(str, class_names)), tokenizer=tokenizer, encoder=encoder,
            corpus_texts=np.asarray(texts, dtype=object), split_rows={"train": tr, "transfer": transfer, "val": va, "test": te},
            split_labels={"train": labels[tr], "val": labels[va],
                          "distill": np.concatenate([labels[tr], np.full(len(transfer), -1, labels.dtype)])},
            split_ids={"train": ids[pool], "val": ids[va]},
        )

    def write_assets(self, data, folder):
        import os

        from ..data.text import save_vocabulary

        path = save_vocabulary(data.tokenizer, os.path.join(folder, "text_tokenizer"))
        return {"tokenizer": path}


def _encoder(config, seq_len):
    """The pretrained teacher's encoder (``config.teacher_model`` a checkpoint folder), or None."""
    folder = pretrained_folder(config)
    if folder is None:
        return None
    from ..pretrained import load_encoder

    return load_encoder(folder, sequence_length=seq_len)


def _student_tokenizer(config, texts, encoder, vocab_size, seq_len):
    """``(tokenizer, words)``: the teacher's WordPiece vocabulary (``student_vocab="teacher"``) or one learned
    on the training texts (labelled and transfer) with ``vocab_size`` tokens."""
    from ..data.text import learn_vocabulary, make_tokenizer, vocabulary_tokenizer

    if config.student_vocab == "teacher":
        if encoder is None:
            raise TFCompressError("student_vocab='teacher' needs a pretrained teacher (--teacher FOLDER)")
        options = {k: bool(getattr(encoder.tokenizer, k)) for k in ("lowercase", "strip_accents")
                   if getattr(encoder.tokenizer, k, None) is not None}
        return vocabulary_tokenizer(encoder.vocabulary, seq_len, **options), "the teacher's WordPiece vocabulary"
    return make_tokenizer(learn_vocabulary(list(texts), vocab_size=vocab_size), sequence_length=seq_len), \
        "WordPiece vocabulary"
