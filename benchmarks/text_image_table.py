"""Teacher -> student -> distilled student -> int8 TFLite, for review text and product images, in one run.

For each family this trains the teacher, the student alone and the distilled student (``Distiller``,
``task="multiclass"``, alpha 0.5, T 2) over ``--seeds`` seeds, then fine-tunes the seed-0 distilled student with QAT
(``quantize_aware``) and exports it to full int8 TFLite (``tfcompress.export.to_tflite``). Every row has
test accuracy (students: mean ± std over the seeds), parameters, bytes (the HDF5 file saved without optimizer
state, or the ``.tflite`` file) and batch-1 p50 latency (``tfcompress.bench.latency``, 1 thread).

Data: the Women's Clothing reviews CSV (``--label recommend|sentiment``) and Fashion-MNIST from the shared
data folder; without the CSV the text family falls back to the synthetic product titles (said in the table).

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

from tfcompress._keras import keras  # noqa: E402
from tfcompress.bench import Report, count_params, file_bytes, keras_latency, tflite_latency  # noqa: E402
from tfcompress.bench.metrics import accuracy  # noqa: E402
from tfcompress.distill import Distiller  # noqa: E402
from tfcompress.export import TFLiteModel, to_tflite  # noqa: E402
from tfcompress.quantize import quantize_aware  # noqa: E402

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
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


def _compile(model, lr):
    model.compile(keras.optimizers.Adam(lr), LOSS, metrics=["accuracy"])
    return model


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


def run_family(family, make_teacher, make_student, train_ds, x_test, y_test, rep, seeds, cfg, epochs, folder,
               log):
    """Rows for one family. ``x_test`` is a dict of input arrays; ``rep`` representative input dict."""
    one = {k: v[:1] for k, v in x_test.items()}

    def acc(predict):
        return accuracy(y_test, predict(x_test), from_logits=True)

    def lat(model):
        return keras_latency(model, one, runs=cfg["runs"], warmup=10).p50_us

    t0 = time.time()
    keras.utils.set_random_seed(0)
    teacher = _compile(make_teacher(), 2e-3)
    teacher.fit(train_ds, epochs=epochs + cfg["teacher_extra_epochs"], verbose=0)  # teachers train longer
    rows = [_row(f"{family} teacher", acc(lambda x: teacher.predict(x, verbose=0, batch_size=256)),
                 count_params(teacher), _keras_bytes(teacher, folder), lat(teacher))]
    log(f"{family}: teacher {rows[-1]['accuracy']:.4f} ({time.time() - t0:.0f}s)")

    alone, distilled, students = [], [], []
    for seed in range(seeds):
        keras.utils.set_random_seed(seed)
        s = _compile(make_student(), 3e-3)
        s.fit(train_ds, epochs=epochs, verbose=0)
        alone.append(acc(lambda x: s.predict(x, verbose=0, batch_size=512)))
        keras.utils.set_random_seed(seed)
        d_student = make_student()
        d = Distiller(d_student, teacher, alpha=ALPHA, temperature=TEMPERATURE, task="multiclass")
        d.compile(keras.optimizers.Adam(3e-3), metrics=["accuracy"])
        d.fit(train_ds, epochs=epochs, verbose=0)
        distilled.append(acc(lambda x: d_student.predict(x, verbose=0, batch_size=512)))
        students.append(d_student)
        log(f"{family}: seed {seed} student alone {alone[-1]:.4f}, distilled {distilled[-1]:.4f} "
            f"({time.time() - t0:.0f}s)")
    student = students[0]
    rows.append(_row(f"{family} student alone", alone, count_params(student), _keras_bytes(s, folder), lat(s)))
    rows.append(_row(f"{family} distilled student", distilled, count_params(student),
                     _keras_bytes(student, folder), lat(student)))

    qat = _compile(quantize_aware(student), 3e-4)
    qat.fit(train_ds, epochs=cfg["qat_epochs"], verbose=0)
    qat_acc = acc(lambda x: qat.predict(x, verbose=0, batch_size=512))
    path = to_tflite(qat, os.path.join(folder, f"{family}_student_int8.tflite"), mode="int8", representative=rep,
                     name=f"{family}_student_int8", task="multiclass")
    tfl = TFLiteModel(path)
    int8_acc = acc(lambda x: tfl.predict(x))
    p50 = tflite_latency(path, one, runs=cfg["runs"], warmup=10, threads=1).p50_us
    rows.append(_row(f"{family} distilled + QAT, int8 TFLite", [int8_acc], count_params(student), file_bytes(path),
                     p50, qat_keras_accuracy=qat_acc))
    log(f"{family}: int8 {int8_acc:.4f} (QAT Keras {qat_acc:.4f}) ({time.time() - t0:.0f}s)")
    return rows


def text_family(cfg, seeds, label, folder, log):
    from tfcompress.data.paths import find_dataset
    from tfcompress.data.reviews import load_reviews, titles_task
    from tfcompress.data.text import learn_vocabulary, make_tokenizer, text_dataset, tokenize
    from tfcompress.models.text import text_student, text_teacher

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
    vocab_size, seq_len, n = len(tok.get_vocabulary()), cfg["seq_len"], data.num_classes
    train_ds = text_dataset(train_texts, y_train, tok, batch_size=64, num_classes=n, shuffle=True)
    x_test = {"token_ids": tokenize(test_texts, tok)}
    rep = {"token_ids": tokenize(train_texts[:200], tok)}
    rows = run_family(
        "text", lambda: text_teacher(vocab_size, n, seq_len, d_model=cfg["d_model"], heads=4, blocks=cfg["blocks"]),
        lambda: text_student(vocab_size, n, seq_len), train_ds, x_test, y_test, rep, seeds, cfg,
        cfg["text_epochs"], folder, log)
    for r in rows:
        r["data"] = source
    return rows


def image_family(cfg, seeds, folder, log):
    from tfcompress.data.images import load_fashion_mnist
    from tfcompress.models.image import image_dataset, image_student, image_teacher, scale_images

    (x, y), (xt, yt) = load_fashion_mnist(use_tfds=False)
    rng = np.random.default_rng(0)
    if cfg["image_train"]:
        idx = rng.permutation(len(x))[:cfg["image_train"]]
        x, y = x[idx], y[idx]
    if cfg["image_test"]:
        idx = rng.permutation(len(xt))[:cfg["image_test"]]
        xt, yt = xt[idx], yt[idx]
    log(f"image: Fashion-MNIST {len(x)} train / {len(xt)} test")
    train_ds = image_dataset(x, y, batch_size=64, num_classes=10, shuffle=True)
    x_test = {"image": scale_images(xt)}
    rep = {"image": scale_images(x[:200])}
    rows = run_family("image", lambda: image_teacher((28, 28, 1), 10, widths=cfg["widths"]),
                      lambda: image_student((28, 28, 1), 10), train_ds, x_test, yt, rep, seeds, cfg,
                      cfg["image_epochs"], folder, log)
    for r in rows:
        r["data"] = f"Fashion-MNIST {len(x)}/{len(xt)}"
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
