"""Compression table: method × setting → params, TFLite bytes, gzip bytes, batch-1 p50 latency, quality.

All in one run, each figure with its ratio to the unpruned model measured in the same run:

* CTR (built-in synthetic shop, AUC): a DCN-v2 baseline; unstructured magnitude pruning; 2:4 sparsity;
  structured pruning (units removed); low-rank factorization; weight clustering; and int8 versions of the
  baseline (post-training) and of PCQAT. Every compressed CTR model is fine-tuned the same way: by
  distillation from the baseline (alpha 0.5, T 2) for ``--epochs`` (plain label fine-tuning of an already
  converged CTR model overfits its embeddings and would blur the comparison).
* Images (Fashion-MNIST if present under ``shared_data_dir()``, else the synthetic images; accuracy): a
  MobileNet-like conv net; the XNNPACK pruning policy (1x1 convs at 75 %, converted with
  ``EXPERIMENTAL_SPARSITY``); structured filter pruning.

Latency: LiteRT interpreter, 1 thread, batch 1, all models of a task interleaved (``compare_latency``).

    python benchmarks/compression_table.py --quick            # a small configuration, about a minute
    python benchmarks/compression_table.py --events 200000 --epochs 3 --images 60000 --image-epochs 5 \
        --runs 500 --out table.csv
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import tfcompress  # noqa: E402,F401  (selects tf_keras first)
from tfcompress import prune  # noqa: E402
from tfcompress._keras import keras, tf  # noqa: E402
from tfcompress.bench import latency, metrics, size  # noqa: E402
from tfcompress.data import frame_to_inputs, make_ecommerce, to_dataset  # noqa: E402
from tfcompress.data.pipeline import labels_of  # noqa: E402
from tfcompress.models import dcn  # noqa: E402
from tfcompress.quantize import quantize_aware  # noqa: E402

LOGITS = keras.losses.BinaryCrossentropy(from_logits=True)


def convert(model, path, *, mode="float32", representative=None, sparse=False):
    """Write a TFLite file: tfcompress.export when present (and not sparse), else a local converter."""
    if not sparse:
        try:
            from tfcompress.export import convert as export_convert

            data = export_convert(model, mode=mode, representative=representative, num_calibration=100)
            with open(path, "wb") as f:
                f.write(data)
            return path
        except ImportError:
            pass
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if sparse:
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    with open(path, "wb") as f:
        f.write(converter.convert())
    return path


def tflite_predict(path, inputs):
    from tfcompress.export import TFLiteModel

    out = TFLiteModel(path).predict(inputs, batch_size=512)
    return np.asarray(next(iter(out.values())) if isinstance(out, dict) else out)


def row(task, method, setting, model, path, quality, keras_params=None):
    return {"task": task, "method": method, "setting": setting,
            "params": int(keras_params if keras_params is not None else size.count_params(model)),
            "nonzero_kernel_frac": 1.0 - size.keras_sparsity(model),
            "tflite_bytes": size.file_bytes(path), "gzip_bytes": size.gzip_bytes(path),
            "quality": float(quality), "path": path}


def fit(model, ds, epochs, callbacks=None):
    model.compile(keras.optimizers.Adam(2e-3), LOGITS)
    model.fit(ds, epochs=epochs, verbose=0, callbacks=callbacks or [])
    return model


def distill_fit(model, ds, epochs, teacher, callbacks=None):
    """Fine-tune a compressed CTR model by distillation from the unpruned baseline (every method alike)."""
    prune.fine_tune(model, ds, teacher=teacher, epochs=epochs, alpha=0.5, temperature=2.0,
                    callbacks=callbacks or [])
    return model


def ctr_rows(args, tmp):
    data = make_ecommerce(events=args.events, seed=0)
    train, val, test = data.split()
    spec = data.spec
    ds = to_dataset(train, spec, batch_size=512, shuffle=True, seed=0)
    steps = int(np.ceil(len(train) / 512)) * args.epochs
    x_test, y_test = frame_to_inputs(test, spec), labels_of(test, spec)
    keras.utils.set_random_seed(0)
    base = fit(dcn(spec, embedding_dim=16, cross_layers=1, hidden=(512, 256), name="ctr_base"), ds, args.epochs)

    def auc(m):
        return metrics.auc(y_test, m.predict(x_test, batch_size=4096, verbose=0).ravel())

    rows = []

    def add(method, setting, m, quality=None, mode="float32", path_model=None, params=None):
        path = os.path.join(tmp, f"ctr_{method}_{setting}_{mode}.tflite".replace(" ", "").replace("/", "_"))
        convert(path_model or m, path, mode=mode, representative=val.head(200) if mode == "int8" else None)
        q = quality if quality is not None else auc(m)
        rows.append(row("ctr", method, setting, m, path, q, params))
        print(f"  {method:12s} {setting:14s} AUC {q:.4f}", flush=True)

    add("baseline", "float32", base)
    for target in args.sparsities:
        p = distill_fit(prune.prune_low_magnitude(base, target, total_steps=steps), ds, args.epochs, base,
                        prune.pruning_callbacks())
        add("magnitude", f"{target:.0%}", prune.strip(p))
    p = distill_fit(prune.prune_m_by_n(base, 2, 4, total_steps=steps), ds, args.epochs, base,
                    prune.pruning_callbacks())
    add("2:4", "m=2 n=4", prune.strip(p))
    for fraction in args.fractions:
        small, _ = prune.prune_units(base, fraction, importance="l1")
        distill_fit(small, ds, args.epochs, base)
        add("structured", f"units -{fraction:.0%}", small)
    for energy in args.energies:
        small, _ = prune.factorize(base, energy=energy)
        distill_fit(small, ds, args.epochs, base)
        add("low-rank", f"energy {energy}", small)
    c = distill_fit(prune.cluster_weights(base, 16), ds, args.epochs, base)
    clustered = prune.strip_clustering(c)
    add("cluster", "16", clustered)
    # int8: the baseline (post-training) and PCQAT on a pruned + clustered model
    path = os.path.join(tmp, "ctr_int8_base.tflite")
    convert(base, path, mode="int8", representative=val.head(200))
    q_base = metrics.auc(y_test, tflite_predict(path, x_test).ravel())
    rows.append(row("ctr", "int8 PTQ", "baseline", base, path, q_base))
    print(f"  int8 PTQ     baseline       AUC {q_base:.4f}", flush=True)
    pruned = prune.strip(distill_fit(prune.prune_low_magnitude(base, 0.5, total_steps=steps), ds, args.epochs,
                                     base, prune.pruning_callbacks()))
    pc = prune.strip_clustering(distill_fit(prune.cluster_weights(pruned, 16, preserve_sparsity=True), ds, 1, base))
    qat = distill_fit(quantize_aware(pc, preserve="both"), ds, 1, base)
    path = os.path.join(tmp, "ctr_int8_pcqat.tflite")
    convert(qat, path, mode="int8", representative=val.head(200))
    tflite_auc = metrics.auc(y_test, tflite_predict(path, x_test).ravel())
    rows.append(row("ctr", "int8 PCQAT", "50% + 16 clusters", pc, path, tflite_auc))
    print(f"  int8 PCQAT   50%+16         AUC {tflite_auc:.4f}", flush=True)
    sample = {k: v[:1] for k, v in frame_to_inputs(test.head(1), spec).items()}
    return rows, sample


def image_data(args):
    from tfcompress.data.images import load_fashion_mnist, synthetic_images

    try:
        (xtr, ytr), (xte, yte) = load_fashion_mnist(use_tfds=False)
        source = "fashion_mnist"
        xtr, ytr = xtr[:args.images], ytr[:args.images]
        xte, yte = xte[:args.test_images], yte[:args.test_images]
    except Exception as e:  # noqa: BLE001 - absent data: fall back to the synthetic set, and say so
        print(f"  (Fashion-MNIST not available: {str(e).splitlines()[0][:100]}; using synthetic images)")
        x, y = synthetic_images(n=args.images + 1000, size=28, classes=10, seed=0)
        xtr, ytr, xte, yte = x[:args.images], y[:args.images], x[args.images:], y[args.images:]
        source = "synthetic"

    def prep(x):
        x = (x.astype("float32") / 255.0)[..., None]
        return np.repeat(x, 3, axis=-1)

    return source, prep(xtr), ytr, prep(xte), yte


def mobilenet_like(classes=10, width=32):
    x = keras.Input((28, 28, 3), name="img")
    h = keras.layers.ZeroPadding2D(1)(x)
    h = keras.layers.Conv2D(width, 3, strides=2, padding="valid", name="stem")(h)
    h = keras.layers.ReLU()(h)
    for i, filters in enumerate((2 * width, 4 * width, 4 * width)):
        h = keras.layers.DepthwiseConv2D(3, padding="same", name=f"dw{i}")(h)
        h = keras.layers.ReLU()(h)
        h = keras.layers.Conv2D(filters, 1, name=f"pw{i}")(h)
        h = keras.layers.ReLU()(h)
    h = keras.layers.GlobalAveragePooling2D(keepdims=True)(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(x, keras.layers.Dense(classes, name="logits")(h), name="mobilenet_like")


def image_rows(args, tmp):
    source, xtr, ytr, xte, yte = image_data(args)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    steps = int(np.ceil(len(xtr) / 128)) * args.image_epochs

    def train(m, epochs, callbacks=None):
        m.compile(keras.optimizers.Adam(2e-3), ce)
        m.fit(xtr, ytr, batch_size=128, epochs=epochs, verbose=0, callbacks=callbacks or [])
        return m

    def acc(m):
        return metrics.accuracy(yte, m.predict(xte, batch_size=512, verbose=0), from_logits=True)

    keras.utils.set_random_seed(0)
    base = train(mobilenet_like(), args.image_epochs)
    rows = []

    def add(method, setting, m, sparse=False):
        path = os.path.join(tmp, f"img_{method}_{setting}.tflite".replace(" ", "").replace("%", "pct"))
        convert(m, path, sparse=sparse)
        rows.append(row(f"images ({source})", method, setting, m, path, acc(m)))
        print(f"  {method:12s} {setting:14s} acc {rows[-1]['quality']:.4f}", flush=True)

    add("baseline", "float32", base)
    p = train(prune.prune_low_magnitude(base, 0.75, total_steps=steps, pruning_policy="xnnpack"), args.image_epochs,
              prune.pruning_callbacks())
    stripped = prune.strip(p)
    add("xnnpack", "1x1 75% dense", stripped)
    add("xnnpack", "1x1 75% sparse", stripped, sparse=True)
    small, _ = prune.prune_units(base, 0.5)
    train(small, args.image_epochs)
    add("structured", "filters -50%", small)
    return rows, {"img": xte[:1]}


def finish(rows, sample, runs):
    frame = pd.DataFrame(rows)
    stats = latency.compare_latency({f"{r['method']}|{r['setting']}": ("tflite", r["path"]) for r in rows},
                                    sample, runs=runs, warmup=max(5, runs // 10), threads=1)
    frame["p50_us"] = [stats[f"{r['method']}|{r['setting']}"].p50_us for r in rows]
    base = frame.iloc[0]
    for col in ("params", "tflite_bytes", "gzip_bytes", "p50_us"):
        frame[f"{col}_x"] = frame[col] / base[col]
    frame["quality_delta"] = frame["quality"] - base["quality"]
    return frame.drop(columns=["path"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--image-epochs", type=int, default=None, help="epochs for the image models (default: --epochs)")
    ap.add_argument("--test-images", type=int, default=10_000, help="Fashion-MNIST test images to score")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="a small configuration (about a minute or two)")
    ap.add_argument("--skip-images", action="store_true")
    ap.add_argument("--out", help="write the table as CSV here")
    args = ap.parse_args(argv)
    args.sparsities, args.fractions, args.energies = (0.5, 0.8), (0.5, 0.75), (0.9, 0.6)
    args.image_epochs = args.image_epochs or args.epochs
    if args.quick:
        args.events, args.images, args.epochs, args.runs, args.test_images = 20_000, 3000, 1, 100, 2000
        args.image_epochs = 3
        args.sparsities, args.fractions, args.energies = (0.8,), (0.75,), (0.6,)
    start = time.time()
    frames = []
    with tempfile.TemporaryDirectory(prefix="tfcompress-bench-") as tmp:
        print("CTR:", flush=True)
        rows, sample = ctr_rows(args, tmp)
        frames.append(finish(rows, sample, args.runs))
        if not args.skip_images:
            print("Images:", flush=True)
            rows, sample = image_rows(args, tmp)
            frames.append(finish(rows, sample, args.runs))
    table = pd.concat(frames, ignore_index=True)
    pd.set_option("display.width", 200)
    cols = ["task", "method", "setting", "params", "params_x", "tflite_bytes", "tflite_bytes_x", "gzip_bytes",
            "gzip_bytes_x", "p50_us", "p50_us_x", "quality", "quality_delta"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"({time.time() - start:.0f} s)")
    if args.out:
        from tfcompress._io import write_text

        write_text(args.out, table.to_csv(index=False))
    return table


if __name__ == "__main__":
    main()
