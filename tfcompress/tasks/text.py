"""Text classification: product titles (built-in) or review text (the reviews CSV, or any CSV).

``--data`` selects the corpus: none → product title → category on the built-in shop (no files needed);
``reviews`` → the clothing-reviews CSV found in ``../shared/data`` (``recommend`` label); a path → that CSV
(same columns). Texts are tokenized with a WordPiece vocabulary learned from the training split
(keras-nlp, outside the model), so the TFLite model takes int32 ``token_ids``; the tokenizer is written
beside the ``.tflite`` file for the app.

Example:
    >>> TextTask().defaults(quick=True)["events"]
    150000
"""
import numpy as np

from ..models.text import text_student, text_teacher
from .base import Task, TaskData
from .splits import stratified_split


class TextTask(Task):
    """Transformer-encoder teacher → CNN student on tokenized text; accuracy on a stratified test split."""

    name = "text"
    output = "multiclass"
    metric = "accuracy"
    teacher_builder = staticmethod(text_teacher)
    student_builder = staticmethod(text_student)
    data_args = ("vocab_size", "num_classes", "seq_len")

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
        m = data.metadata
        return {"vocab_size": m["vocab_size"], "num_classes": m["num_classes"], "seq_len": m["seq_len"]}

    def _corpus(self, config):
        from ..data import load_reviews, titles_task

        if config.data is None:
            return titles_task(events=config.events, seed=config.seed), "product titles of the built-in shop"
        if config.data == "reviews":
            return load_reviews(None), "clothing reviews (recommend), ../shared/data"
        return load_reviews(config.data), f"reviews CSV {config.data}"

    def load(self, config):
        from ..data.text import learn_vocabulary, make_tokenizer, tokenize
        from .._keras import tf

        corpus, source = self._corpus(config)
        titles = config.data is None
        vocab_size = (2000 if titles else (4000 if config.quick else 8000))
        seq_len = 16 if titles else (64 if config.quick else 128)
        texts = np.asarray(corpus.texts, dtype=object)
        labels = np.asarray(corpus.labels, np.int32)
        if config.quick and not titles and len(texts) > 6000:
            keep = np.random.default_rng(config.seed).choice(len(texts), 6000, replace=False)
            texts, labels = texts[keep], labels[keep]
        tr, va, te = stratified_split(labels, seed=config.seed)
        tokenizer = make_tokenizer(learn_vocabulary(list(texts[tr]), vocab_size=vocab_size), sequence_length=seq_len)
        ids = tokenize(list(texts), tokenizer)
        vocab = int(tokenizer.vocabulary_size())
        bs = config.batch_size

        def ds(idx, shuffle=False):
            d = tf.data.Dataset.from_tensor_slices(({"token_ids": ids[idx]}, labels[idx]))
            if shuffle:
                d = d.shuffle(len(idx), seed=config.seed, reshuffle_each_iteration=True)
            return d.batch(bs).prefetch(tf.data.AUTOTUNE)

        rng = np.random.default_rng(config.seed)
        return TaskData(
            train_ds=ds(tr, shuffle=True), val_ds=ds(va), test_inputs={"token_ids": ids[te]},
            test_labels=labels[te],
            calibration_inputs={"token_ids": ids[rng.choice(tr, min(len(tr), config.calibration_samples), replace=False)]},
            latency_inputs={"token_ids": ids[te[:1]]},
            steps_per_epoch=int(np.ceil(len(tr) / bs)),
            description=(f"{len(texts):,} texts from {source} ({len(tr):,} train / {len(va):,} validation / "
                         f"{len(te):,} test, stratified), {len(corpus.class_names)} classes, WordPiece vocabulary "
                         f"{vocab:,}, {seq_len} tokens"),
            metadata={"vocab_size": vocab, "num_classes": len(corpus.class_names), "seq_len": seq_len,
                      "class_names": list(map(str, corpus.class_names)), "tokenizer": tokenizer},
        )

    def write_assets(self, data, folder):
        import os

        from ..data.text import save_vocabulary

        path = save_vocabulary(data.metadata["tokenizer"], os.path.join(folder, "text_tokenizer"))
        return {"tokenizer": path}
