"""int8 accuracy recovery, each option against plain int8 on the same trained model (``to_tflite(recovery=)``).

Models: the text task's Transformer student and CNN student (``tfcompress.tasks`` text data: the built-in
product titles) and the CTR student (built-in shop), each trained briefly by the pipeline's fit path
(``tfcompress.stages.fit_student``). Every row is one ``.tflite`` file of the same model: plain int8 (the
TFLite converter, int8 I/O), per-tensor int8, then each recovery option and the combination. Figures on the
test split: max / mean |Δp| against Keras (probabilities), accuracy or AUC, bytes, batch-1 p50 (LiteRT,
1 thread, XNNPACK); ``mixed`` measures sensitivity on the validation split, limit max |Δp| 0.05.

Usage:
    python benchmarks/int8_recovery.py --quick              # a few minutes on 2 cores
    python benchmarks/int8_recovery.py --families transformer --out /tmp/recovery
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfcompress import keras  # noqa: E402
from tfcompress.bench import tflite_latency  # noqa: E402
from tfcompress.errors import TFCompressError  # noqa: E402
from tfcompress.export import TFLiteModel, parity_report, read_sidecar, to_tflite  # noqa: E402
from tfcompress.pipeline import RunConfig  # noqa: E402
from tfcompress.stages import RunContext, fit_student  # noqa: E402
from tfcompress.tasks import get_task  # noqa: E402

FAMILIES = ("transformer", "cnn", "ctr")
#: (row name, to_tflite keyword arguments)
ROWS = [("int8 (converter)", {}), ("int8 per-tensor", {"per_channel": False}),
        ("bias-correction", {"recovery": ("bias-correction",)}), ("percentile", {"recovery": ("percentile",)}),
        ("mse", {"recovery": ("mse",)}), ("mixed", {"recovery": ("mixed",)}),
        ("bias-correction + percentile + mixed", {"recovery": ("bias-correction", "percentile", "mixed")})]
LIMIT = {"max_abs": 0.05}


def trained(family, quick, cache):
    """``(model, context)``: the family's student trained on its task's training split."""
    task_name = "ctr" if family == "ctr" else "text"
    if task_name not in cache:
        options = dict(events=60_000 if quick else 200_000, batch_size=512) if task_name == "ctr" else {}
        config = RunConfig(task=task_name, quick=quick, **options).validate()
        task = get_task(task_name)
        cache[task_name] = RunContext(config=config, task=task, data=task.load(config))
    context = cache[task_name]
    keras.utils.set_random_seed(0)
    if family == "ctr":
        model = context.task.build_student(context.data, embedding_dim=8, hidden=(32,))
        fit_student(context, model, 1 if quick else 2, lr=1e-2)
    else:
        model = context.task.build_student(context.data, kind=family)
        fit_student(context, model, 3 if quick else 6, lr=3e-3)
    return model, context


def measure(family, model, context, folder, runs):
    """One table row per entry of :data:`ROWS`."""
    task, data = context.task, context.data
    held = {**data.test_inputs, "labels": data.test_labels}
    validation, _ = data.validation_arrays()
    rows = []
    for name, kwargs in ROWS:
        path = os.path.join(folder, f"{family}_{len(rows)}.tflite")
        start = time.perf_counter()
        try:
            to_tflite(model, path, mode="int8", representative=data.calibration_inputs, objective=task.objective,
                      validation=validation, tolerance=LIMIT if "recovery" in kwargs else None, **kwargs)
        except TFCompressError as e:
            rows.append({"family": family, "row": name, "error": " ".join(str(e).split())[:160]})
            continue
        seconds = time.perf_counter() - start
        report = parity_report(model, TFLiteModel(path), held, objective=task.objective)
        rows.append({"family": family, "row": name, "max_abs": report["max_abs"], "mean_abs": report["mean_abs"],
                     "metric": report["metric"], "keras": report["keras"], "tflite": report["tflite"],
                     "bytes": os.path.getsize(path), "export_s": seconds,
                     "p50_us": tflite_latency(path, data.latency_inputs, runs=runs).p50_us,
                     "what": _what(read_sidecar(path).get("recovery", {}))})
    return rows


def _what(record):
    """A short account of what recovery changed (from the sidecar)."""
    parts = []
    if "bias-correction" in record:
        parts.append(f"{len(record['bias-correction']['layers_corrected'])} biases corrected")
    for method in ("percentile", "mse"):
        if method in record:
            parts.append(f"{record[method]['tensors_clipped']}/{record[method]['of']} ranges narrowed")
    if "mixed" in record:
        plan = record["mixed"]
        parts.append(f"{len(plan['int16'])} ops 16x8, {len(plan['float'])} float"
                     + ("" if plan.get("met") else " (limit not met)"))
    return "; ".join(parts)


def markdown(rows):
    lines = ["| model | file | max \\|Δp\\| | mean \\|Δp\\| | metric (Keras → TFLite) | bytes | p50 µs | "
             "export s | what recovery did |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['family']} | {r['row']} | failed: {r['error']} | | | | | | |")
            continue
        lines.append(f"| {r['family']} | {r['row']} | {r['max_abs']:.4f} | {r['mean_abs']:.5f} | "
                     f"{r['metric']} {r['keras']:.4f} → {r['tflite']:.4f} | {r['bytes']:,} | {r['p50_us']:.0f} | "
                     f"{r['export_s']:.1f} | {r['what']} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick task sizes and training")
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--out", default=None, help="folder for the files and table (default: a temp folder)")
    args = parser.parse_args(argv)
    folder = args.out or tempfile.mkdtemp(prefix="int8-recovery-")
    os.makedirs(folder, exist_ok=True)
    cache, rows = {}, []
    for family in args.families:
        model, context = trained(family, args.quick, cache)
        rows += measure(family, model, context, folder, runs=50 if args.quick else 300)
        print(markdown(rows), flush=True)
    table = markdown(rows)
    with open(os.path.join(folder, "int8_recovery.md"), "w") as f:
        f.write(table + "\n")
    print(f"\nwritten {os.path.join(folder, 'int8_recovery.md')}")


if __name__ == "__main__":
    main()
