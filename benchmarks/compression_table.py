"""Compression table: method × setting → params, TFLite bytes, gzip bytes, batch-1 p50 latency, quality.

All in one run, each figure with its ratio to the unpruned model measured in the same run:

* CTR (built-in synthetic shop, AUC): a DCN-v2 baseline; unstructured magnitude pruning; 2:4 sparsity;
  structured pruning (units removed); low-rank factorization; weight clustering; and int8 versions of the
  baseline (post-training) and of PCQAT. Every compressed CTR model is fine-tuned the same way: by
  distillation from the baseline (alpha 0.5, T 2) for ``--epochs`` (plain label fine-tuning of an already
  converged CTR model overfits its embeddings and would blur the comparison).
* Images (Fashion-MNIST if present under ``shared_data_dir()``, else the synthetic images; accuracy): the
  image task's MobileNet-style student (``image_student``, 32-64-128-128 wide); its 1x1 convs pruned to 75 %
  (the layers of the XNNPACK pruning policy, converted with ``EXPERIMENTAL_SPARSITY``); structured filter
  pruning.

Data, builders, training and export are the pipeline's: each task's data comes from
``tfcompress.tasks.get_task(...).load(RunConfig(...))`` (the same splits as ``tfcompress run``), models from
the task's builders, label training through ``tfcompress.stages.fit_student`` (the pipeline's fit path),
distillation fine-tuning through ``tfcompress.prune.fine_tune`` and files through ``tfcompress.export``.

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
from tfcompress import export, keras, metrics, prune, tf  # noqa: E402
from tfcompress.bench import latency, size  # noqa: E402
from tfcompress.data import find_dataset  # noqa: E402
from tfcompress.pipeline import RunConfig  # noqa: E402
from tfcompress.quantize import quantize_aware  # noqa: E402
from tfcompress.stages import RunContext, fit_student  # noqa: E402
from tfcompress.tasks import get_task  # noqa: E402


def load_task(name, **options):
    """A :class:`~tfcompress.stages.RunContext` holding the pipeline task ``name`` and its data, loaded as
    ``tfcompress run`` loads them (``options``: :class:`~tfcompress.pipeline.RunConfig` fields)."""
    config = RunConfig(task=name, **options).validate()
    task = get_task(name)
    return RunContext(config=config, task=task, data=task.load(config))


def convert(model, path, *, objective, mode="float32", representative=None, sparse=False):
    """Write a TFLite file with ``tfcompress.export``; ``sparse``: the library's converter for ``mode`` with
    ``EXPERIMENTAL_SPARSITY`` added (``to_tflite`` has no sparse mode)."""
    if not sparse:
        return export.to_tflite(model, path, mode=mode, representative=representative, num_calibration=100,
                                objective=objective)
    with export.converter_for(model, mode=mode) as converter:
        converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        blob = converter.convert()
    with open(path, "wb") as f:
        f.write(blob)
    return path


def tflite_predict(path, inputs):
    out = export.TFLiteModel(path).predict(inputs, batch_size=512)
    return np.asarray(next(iter(out.values())) if isinstance(out, dict) else out)


def row(task, method, setting, model, path, quality, keras_params=None):
    return {"task": task, "method": method, "setting": setting,
            "params": int(keras_params if keras_params is not None else size.count_params(model)),
            "nonzero_kernel_frac": 1.0 - size.keras_sparsity(model),
            "tflite_bytes": size.file_bytes(path), "gzip_bytes": size.gzip_bytes(path),
            "quality": float(quality), "path": path}


def distill_fit(model, ds, epochs, teacher, callbacks=None):
    """Fine-tune a compressed CTR model by distillation from the unpruned baseline (every method alike)."""
    prune.fine_tune(model, ds, teacher=teacher, epochs=epochs, alpha=0.5, temperature=2.0,
                    callbacks=callbacks or [])
    return model


def ctr_rows(args, tmp):
    ctx = load_task("ctr", events=args.events, batch_size=512, calibration_samples=200)
    task, data = ctx.task, ctx.data
    ds, rep = data.train_ds, data.calibration_inputs
    steps = data.steps_per_epoch * args.epochs
    keras.utils.set_random_seed(0)
    base = task.build_teacher(data, embedding_dim=16, cross_layers=1, hidden=(512, 256))
    fit_student(ctx, base, args.epochs, lr=2e-3)

    def auc(m):
        return task.evaluate(m.predict(data.test_inputs, batch_size=4096, verbose=0), data.test_labels)["auc"]

    rows = []

    def add(method, setting, m, quality=None, mode="float32", path_model=None, params=None):
        path = os.path.join(tmp, f"ctr_{method}_{setting}_{mode}.tflite".replace(" ", "").replace("/", "_"))
        convert(path_model or m, path, mode=mode, representative=rep if mode == "int8" else None,
                objective=task.objective)
        q = quality if quality is not None else auc(m)
        rows.append(row("ctr", method, setting, m, path, q, params))
        print(f"  {method:12s} {setting:14s} AUC {q:.4f}", flush=True)

    add("baseline", "float32", base)
    for target in args.sparsities:
        p = distill_fit(prune.prune_low_magnitude(base, target, total_steps=steps), ds, args.epochs, base,
                        prune.pruning_callbacks())
        add("magnitude", f"{target:.0%}", prune.strip_pruning(p))
    p = distill_fit(prune.prune_m_by_n(base, 2, 4, total_steps=steps), ds, args.epochs, base,
                    prune.pruning_callbacks())
    add("2:4", "m=2 n=4", prune.strip_pruning(p))
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
    rows += ctr_int8_rows(ctx, base, steps, args, tmp)
    return rows, data.latency_inputs


def ctr_int8_rows(ctx, base, steps, args, tmp):
    """int8 rows: the baseline (post-training) and PCQAT on a pruned + clustered model."""
    task, data = ctx.task, ctx.data
    ds, rep, rows = data.train_ds, data.calibration_inputs, []
    path = os.path.join(tmp, "ctr_int8_base.tflite")
    convert(base, path, mode="int8", representative=rep, objective=task.objective)
    q_base = metrics.auc(data.test_labels, tflite_predict(path, data.test_inputs).ravel())
    rows.append(row("ctr", "int8 PTQ", "baseline", base, path, q_base))
    print(f"  int8 PTQ     baseline       AUC {q_base:.4f}", flush=True)
    pruned = prune.strip_pruning(distill_fit(prune.prune_low_magnitude(base, 0.5, total_steps=steps), ds, args.epochs,
                                     base, prune.pruning_callbacks()))
    pc = prune.strip_clustering(distill_fit(prune.cluster_weights(pruned, 16, preserve_sparsity=True), ds, 1, base))
    qat = distill_fit(quantize_aware(pc, preserve="both"), ds, 1, base)
    path = os.path.join(tmp, "ctr_int8_pcqat.tflite")
    convert(qat, path, mode="int8", representative=rep, objective=task.objective)
    tflite_auc = metrics.auc(data.test_labels, tflite_predict(path, data.test_inputs).ravel())
    rows.append(row("ctr", "int8 PCQAT", "50% + 16 clusters", pc, path, tflite_auc))
    print(f"  int8 PCQAT   50%+16         AUC {tflite_auc:.4f}", flush=True)
    return rows


def image_rows(args, tmp):
    found = find_dataset("fashion_mnist") is not None
    if not found:
        print("  (Fashion-MNIST not available: using synthetic images)")
    ctx = load_task("image", data="fashion_mnist" if found else None, events=args.images, batch_size=128)
    task, data = ctx.task, ctx.data
    source = "fashion_mnist" if found else "synthetic"
    x_test = {k: v[:args.test_images] for k, v in data.test_inputs.items()}
    y_test = data.test_labels[:args.test_images]
    steps = data.steps_per_epoch * args.image_epochs

    def train(m, epochs, callbacks=None):
        fit_student(ctx, m, epochs, callbacks or (), lr=2e-3)
        return m

    def acc(m):
        return task.evaluate(m.predict(x_test, batch_size=512, verbose=0), y_test)["accuracy"]

    keras.utils.set_random_seed(0)
    base = train(task.build_student(data, stem=32, widths=(64, 128, 128), strides=(2, 1, 1)), args.image_epochs)
    rows = []

    def add(method, setting, m, sparse=False):
        path = os.path.join(tmp, f"img_{method}_{setting}.tflite".replace(" ", "").replace("%", "pct"))
        convert(m, path, sparse=sparse, objective=task.objective)
        rows.append(row(f"images ({source})", method, setting, m, path, acc(m)))
        print(f"  {method:12s} {setting:14s} acc {rows[-1]['quality']:.4f}", flush=True)

    add("baseline", "float32", base)
    # the 1x1 convs (``sep*_pw_conv``), the layers tfmot's XNNPACK policy prunes; the policy itself rejects the
    # student's grey-image stem, which is fine here: the LiteRT interpreter runs the sparse file dense anyway
    p = train(prune.prune_low_magnitude(base, 0.75, total_steps=steps, layers=r"_pw_conv$"), args.image_epochs,
              prune.pruning_callbacks())
    stripped = prune.strip_pruning(p)
    add("xnnpack", "1x1 75% dense", stripped)
    add("xnnpack", "1x1 75% sparse", stripped, sparse=True)
    small, _ = prune.prune_units(base, 0.5)
    train(small, args.image_epochs)
    add("structured", "filters -50%", small)
    return rows, data.latency_inputs


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
        table.to_csv(args.out, index=False)
    return table


if __name__ == "__main__":
    main()
