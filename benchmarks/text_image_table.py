"""Teacher -> student -> distilled student -> int8 TFLite, for review text and product images, in one run.

For each family this trains the teacher, the student alone and the distilled student (``Distiller``,
``objective="multiclass"``, alpha 0.5, T 2) over ``--seeds`` seeds, then fine-tunes the seed-0 distilled student
with QAT (``quantize_aware``) and exports it to full int8 TFLite (``tfcompress.export.to_tflite``). Every model is
built by the task's builders (``tfcompress.tasks``) and trained by the pipeline's fit path
(``tfcompress.stages.fit_student``: on labels, or by distillation when the run holds a teacher). Every row has
test accuracy (students: mean ± std over the seeds), parameters, bytes (the HDF5 file saved without optimizer
state, or the ``.tflite`` file) and batch-1 p50 latency (``tfcompress.bench.latency``, 1 thread).

Data: the Women's Clothing reviews CSV (``--label recommend|sentiment``, title + text, a random split) and
Fashion-MNIST from the shared data folder, loaded by the image task (``get_task("image").load(RunConfig(...))``,
the pipeline's split); without the CSV the text family falls back to the synthetic product titles (said in the
table).

Usage:
    python benchmarks/text_image_table.py --quick            # a few minutes on 2 cores
    python benchmarks/text_image_table.py --family image --seeds 3 --out /tmp/table
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tfcompress import keras  # noqa: E402
from tfcompress.bench import Report, count_params, file_bytes, keras_latency, tflite_latency  # noqa: E402
from tfcompress.export import TFLiteModel, to_tflite  # noqa: E402
from tfcompress.pipeline import RunConfig  # noqa: E402
from tfcompress.quantize import quantize_aware  # noqa: E402
from tfcompress.stages import RunContext, StageResult, fit_student  # noqa: E402
from tfcompress.tasks import get_task  # noqa: E402

ALPHA, TEMPERATURE = 0.5, 2.0  # label-loss weight and softmax temperature of the distillation

#: Published reference: the Fashion-MNIST README's benchmark table (github.com/zalandoresearch/fashion-mnist),
#: user-submitted deep-learning entries (full 60k training set, test accuracy).
FASHION_REFERENCE = ("Fashion-MNIST README benchmark table: '2 Conv <100K parameters' (no preprocessing) 0.925, "
                     "'2 Conv+pooling+BN' 0.934, 'MobileNet' (with flips) 0.950, 'ResNet18' (with augmentation) "
                     "0.949, 'SqueezeNet' 0.900; best scikit-learn baseline (SVC) 0.897; human 0.835")

CONFIGS = {
    "quick": {"text_train": 3000, "text_test": 1000, "seq_len": 64, "vocab": 3000, "d_model": 64, "blocks": 2,
              "text_epochs": 2, "image_train": 6000, "image_test": 2000, "widths": (16, 32, 64),
              "image_epochs": 2, "teacher_extra_epochs": 2, "qat_epochs": 1, "runs": 100},
    "full": {"text_train": None, "text_test": None, "seq_len": 96, "vocab": 8000, "d_model": 96, "blocks": 2,
             "text_epochs": 3, "image_train": None, "image_test": None, "widths": (32, 64, 128),
             "image_epochs": 5, "teacher_extra_epochs": 2, "qat_epochs": 1, "runs": 300},
}


def _keras_bytes(model, folder):
    """Bytes of the model saved without optimizer state (HDF5), so every Keras row is measured alike."""
    path = os.path.join(folder, f"{model.name}.h5")
    model.save(path, include_optimizer=False)
    return file_bytes(path)


def _row(name, accs, params, nbytes, p50, **extra):
    accs = np.atleast_1d(np.asarray(accs, dtype=float))
    row = {"name": name, "accuracy": float(accs.mean()),
           "accuracy_std": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
           "seeds": len(accs), "params": int(params), "size_bytes": int(nbytes), "p50_us": float(p50)}
    row.update(extra)
    return row


def run_family(family, context, teacher_options, student_options, seeds, cfg, epochs, folder, log):
    """Rows for one family: ``context`` (a :class:`~tfcompress.stages.RunContext`) holds its task and data."""
    task, data = context.task, context.data
    x_test, y_test = data.test_inputs, data.test_labels
    one = {k: v[:1] for k, v in x_test.items()}

    def acc(predict):
        return task.evaluate(predict(x_test), y_test)["accuracy"]

    def lat(model):
        return keras_latency(model, one, runs=cfg["runs"], warmup=10).p50_us

    t0 = time.time()
    keras.utils.set_random_seed(0)
    teacher = task.build_teacher(data, **teacher_options)
    fit_student(context, teacher, epochs + cfg["teacher_extra_epochs"], lr=2e-3)  # teachers train longer
    rows = [_row(f"{family} teacher", acc(lambda x: teacher.predict(x, verbose=0, batch_size=256)),
                 count_params(teacher), _keras_bytes(teacher, folder), lat(teacher))]
    log(f"{family}: teacher {rows[-1]['accuracy']:.4f} ({time.time() - t0:.0f}s)")
    # the same data and config, with the teacher recorded: fit_student then distils (as the distill stage)
    taught = RunContext(config=context.config, task=task, data=data,
                        results=[StageResult(name="teacher", format="keras", model=teacher)])

    alone, distilled, students = [], [], []
    for seed in range(seeds):
        keras.utils.set_random_seed(seed)
        s = task.build_student(data, **student_options)
        fit_student(context, s, epochs, lr=3e-3)
        alone.append(acc(lambda x: s.predict(x, verbose=0, batch_size=512)))
        keras.utils.set_random_seed(seed)
        d_student = task.build_student(data, **student_options)
        fit_student(taught, d_student, epochs, lr=3e-3)
        distilled.append(acc(lambda x: d_student.predict(x, verbose=0, batch_size=512)))
        students.append(d_student)
        log(f"{family}: seed {seed} student alone {alone[-1]:.4f}, distilled {distilled[-1]:.4f} "
            f"({time.time() - t0:.0f}s)")
    student = students[0]
    rows.append(_row(f"{family} student alone", alone, count_params(student), _keras_bytes(s, folder), lat(s)))
    rows.append(_row(f"{family} distilled student", distilled, count_params(student),
                     _keras_bytes(student, folder), lat(student)))

    rows.append(_int8_row(family, context, student, acc, cfg, folder))
    log(f"{family}: int8 {rows[-1]['accuracy']:.4f} (QAT Keras {rows[-1]['qat_keras_accuracy']:.4f}) "
        f"({time.time() - t0:.0f}s)")
    return rows


def _int8_row(family, context, student, acc, cfg, folder):
    """The row of ``student`` fine-tuned with QAT (on labels) and exported to full int8 TFLite."""
    task, data = context.task, context.data
    one = {k: v[:1] for k, v in data.test_inputs.items()}
    qat = quantize_aware(student)
    fit_student(context, qat, cfg["qat_epochs"], lr=3e-4)
    qat_acc = acc(lambda x: qat.predict(x, verbose=0, batch_size=512))
    path = to_tflite(qat, os.path.join(folder, f"{family}_student_int8.tflite"), mode="int8",
                     representative=data.calibration_inputs, name=f"{family}_student_int8", objective=task.objective)
    tfl = TFLiteModel(path)
    int8_acc = acc(lambda x: tfl.predict(x))
    p50 = tflite_latency(path, one, runs=cfg["runs"], warmup=10, threads=1).p50_us
    return _row(f"{family} distilled + QAT, int8 TFLite", [int8_acc], count_params(student), file_bytes(path),
                p50, qat_keras_accuracy=qat_acc)


def _config(task):
    """The resolved run config of ``task`` with this table's distillation settings."""
    return RunConfig(task=task, alpha=ALPHA, temperature=TEMPERATURE).validate()


def text_family(cfg, seeds, label, folder, log):
    """The text family on the reviews CSV with ``label`` (title + text): the text task (its builders, loss and
    metric) on a random split of this table's size; the text task's own loader has no label choice."""
    from tfcompress.data import (find_dataset, learn_vocabulary, load_reviews, make_tokenizer, text_dataset,
                                 titles_task, tokenize)

    if find_dataset("reviews") is not None:
        data = load_reviews(label=label, include_title=True)
        source = f"reviews CSV, label={label!r}"
    else:
        data, source = titles_task(), "synthetic product titles (reviews CSV not found)"
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.texts))
    n_test = cfg["text_test"] or len(order) // 5
    test_idx = order[:n_test]
    train_idx = order[n_test:n_test + cfg["text_train"]] if cfg["text_train"] else order[n_test:]
    train_texts, y_train = [data.texts[i] for i in train_idx], data.labels[train_idx]
    test_texts, y_test = [data.texts[i] for i in test_idx], data.labels[test_idx]
    log(f"text: {source}: {len(train_texts)} train / {len(test_texts)} test, classes {data.class_names}, "
        f"majority-class accuracy {np.bincount(y_test).max() / len(y_test):.4f}")
    tok = make_tokenizer(learn_vocabulary(train_texts, cfg["vocab"]), cfg["seq_len"])
    task = get_task("text")
    x_test = {"token_ids": tokenize(test_texts, tok)}
    split = task.data_class(
        train_ds=text_dataset(train_texts, y_train, tok, batch_size=64, num_classes=data.num_classes, shuffle=True),
        val_ds=None, test_inputs=x_test, test_labels=y_test,
        calibration_inputs={"token_ids": tokenize(train_texts[:200], tok)},
        latency_inputs={k: v[:1] for k, v in x_test.items()}, steps_per_epoch=int(np.ceil(len(train_texts) / 64)),
        description=source, vocab_size=len(tok.get_vocabulary()), num_classes=data.num_classes,
        seq_len=cfg["seq_len"], class_names=list(data.class_names), tokenizer=tok)
    context = RunContext(config=_config("text"), task=task, data=split)
    rows = run_family("text", context, dict(d_model=cfg["d_model"], heads=4, blocks=cfg["blocks"]), {}, seeds,
                      cfg, cfg["text_epochs"], folder, log)
    for r in rows:
        r["data"] = source
    return rows


def image_family(cfg, seeds, folder, log):
    """The image family: Fashion-MNIST as the image task loads it (``cfg["image_train"]`` training images, of
    which a tenth validate; quick runs score a fixed 2,000 of the test images)."""
    config = RunConfig(task="image", data="fashion_mnist", events=cfg["image_train"] or 60_000, batch_size=64,
                       calibration_samples=200, quick=cfg["image_test"] is not None,  # quick: 2,000 test images
                       alpha=ALPHA, temperature=TEMPERATURE).validate()
    task = get_task("image")
    data = task.load(config)
    n_train, n_test = sum(int(y.shape[0]) for _, y in data.train_ds), len(data.test_labels)
    log(f"image: {data.description}")
    rows = run_family("image", RunContext(config=config, task=task, data=data), dict(widths=cfg["widths"]), {},
                      seeds, cfg, cfg["image_epochs"], folder, log)
    for r in rows:
        r["data"] = f"Fashion-MNIST {n_train}/{n_test}"
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subsets and models (a few minutes)")
    parser.add_argument("--family", choices=("text", "image", "both"), default="both")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for the students (mean ± std)")
    parser.add_argument("--label", default="recommend", choices=("recommend", "sentiment"))
    parser.add_argument("--out", default=None, help="folder for report.md/.csv/.json (default: print only)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="student epochs for both families (teachers train --epochs + a few more)")
    parser.add_argument("--image-train", type=int, default=None,
                        help="use this many Fashion-MNIST training images (a fixed random subset; default: all)")
    args = parser.parse_args(argv)
    cfg = dict(CONFIGS["quick" if args.quick else "full"])
    if args.image_train:
        cfg["image_train"] = args.image_train
    if args.epochs:
        cfg["text_epochs"] = cfg["image_epochs"] = args.epochs
    start = time.time()

    def log(msg):
        print(f"[{time.time() - start:6.0f}s] {msg}", flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="tfcompress-bench-") as folder:
        if args.family in ("text", "both"):
            rows += text_family(cfg, args.seeds, args.label, folder, log)
        if args.family in ("image", "both"):
            rows += image_family(cfg, args.seeds, folder, log)
    meta = {"config": "quick" if args.quick else "full", "seeds": args.seeds, "alpha": ALPHA,
            "temperature": TEMPERATURE, "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(), "seconds": round(time.time() - start),
            "fashion_mnist_reference": FASHION_REFERENCE}
    report = Report(rows, title="Text and image: teacher -> distilled student -> int8", meta=meta)
    print(report.to_markdown())
    print(f"reference: {FASHION_REFERENCE}")
    if args.out:
        report.save(args.out, basename="text_image_table")
    return report


if __name__ == "__main__":
    main()
