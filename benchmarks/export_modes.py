"""Export-mode table for the CTR, text and image students: mode → bytes, batch-1 p50 latency (LiteRT, 1 and 2
threads), task metric and parity figures, all from one run.

Models (``--family``, default all): ``ctr`` (the CTR student on the synthetic shop, metric AUC), ``text`` (the
CNN text student, ``text_student(kind="cnn")``, on the reviews CSV, accuracy), ``image`` (the depthwise-separable
image student on Fashion-MNIST, accuracy) and ``transformer`` (the one-block Transformer text student,
``text_student(kind="transformer")``, on the same texts: attention, layer norm and a padding mask, the model
where int16x8 fails). Every model's data, builder and training are the pipeline's: the task's loader
(``get_task(...).load(RunConfig(...))``), its builders and ``tfcompress.stages.fit_student`` (label training, as
the ``baseline`` stage); without the reviews CSV the text models fall back to the synthetic product titles, and
without Fashion-MNIST the image model to ``synthetic_images`` (the header and the ``data`` column say so).

Rows: every converter mode (float32, float16, dynamic, int8 with int8 and float I/O, int16x8), the LiteRT
Quantizer recipes on the float32 file (int8/int4 weights, int8 dynamic, int4 blockwise, selective by regex)
and the selective float fallback (the most quantization-sensitive op kept float, then the three worst, as
ranked by ``export.find_sensitive_layers``). Parity against Keras on the held-out rows: max/mean |Δ| of the
probabilities (sigmoid for CTR, softmax otherwise), the metric Δ and, for the classifiers, top-1 agreement.
A mode that fails on a model is a row whose ``note`` says why (in full below the table and in the CSV).

    python benchmarks/export_modes.py --quick                     # ~7 min on 2 busy cores
    python benchmarks/export_modes.py --family ctr --events 200000 --epochs 3 --runs 500 --out export_modes.csv
"""
import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import tfcompress  # noqa: E402,F401  (selects tf_keras first)
from tfcompress import export, keras  # noqa: E402
from tfcompress.bench import latency  # noqa: E402
from tfcompress.data import find_dataset  # noqa: E402
from tfcompress.errors import TFCompressError  # noqa: E402
from tfcompress.pipeline import RunConfig  # noqa: E402
from tfcompress.stages import RunContext, fit_student  # noqa: E402
from tfcompress.tasks import get_task  # noqa: E402

FAMILIES = ("ctr", "text", "image", "transformer")
#: Training epochs: DEFAULT_EPOCHS[quick][is CTR] (one quick epoch leaves the text students at the majority class).
DEFAULT_EPOCHS = {False: {True: 2, False: 3}, True: {True: 1, False: 2}}

#: Converter modes: (mode, int8_io, row name). int16x8 has float I/O: bench.latency feeds int16 inputs for ids.
CONVERTER_MODES = [("float32", True, "float32"), ("float16", True, "float16"), ("dynamic", True, "dynamic"),
                   ("int8", True, "int8"), ("int8", False, "int8 (float I/O)"),
                   ("int16x8", False, "int16x8 (float I/O)")]
FALLBACK_OPS = 3  # the second fallback row keeps this many of the most sensitive ops float
#: LiteRT Quantizer recipes on the float32 file; ``None`` as regex = every op; "SELECT" = the family's regex.
LITERT_RECIPES = [("int8_weights", None), ("int4_weights", None), ("int8_dynamic", None), ("int4_blockwise", None),
                  ("int4_blockwise", "SELECT"), ("int8_weights", "SELECT")]


@dataclass
class Case:
    """One trained model and the data its rows are measured on."""

    family: str
    model: object
    objective: str     # "binary" (CTR logit) or "multiclass" (class logits): the task's objective
    rep: dict          # representative (calibration) inputs
    held: dict         # held-out inputs
    labels: np.ndarray
    one: dict          # one batch-1 input for the latency runs
    data: str          # where the data came from (says so when a fallback was used)
    regex: str         # the selective LiteRT recipes' op regex (the largest dense layer)


def _task_context(family, dataset, fallback, args, cache, **options):
    """A RunContext with the pipeline task ``family`` and its data (``tfcompress.tasks``), and where the data
    came from: ``dataset`` from the shared folder when present, else the task's built-in data (``fallback``
    says what that is); ``dataset=None``: the built-in data."""
    if family not in cache:
        found = dataset is not None and find_dataset(dataset) is not None
        config = RunConfig(task=family, data=dataset if found else None, quick=args.quick, **options).validate()
        task = get_task(family)
        data = task.load(config)
        source = (data.description if found or dataset is None
                  else f"FALLBACK ({dataset} not found): {fallback}: {data.description}")
        cache[family] = (RunContext(config=config, task=task, data=data), source)
    return cache[family]


def _case(family, context, source, build, epochs, lr, regex):
    """Seed, build and train ``family``'s model on its task's training split (the pipeline's fit path)."""
    keras.utils.set_random_seed(0)
    model = build(context.task, context.data)
    fit_student(context, model, epochs, lr=lr)
    data = context.data
    return Case(family, model, context.task.objective, data.calibration_inputs, data.test_inputs,
                data.test_labels, data.latency_inputs, source, regex)


def ctr_case(args, epochs, cache):
    context, _ = _task_context("ctr", None, None, args, cache, events=args.events, batch_size=512,
                               calibration_samples=200)
    build = lambda task, data: task.build_student(data, embedding_dim=8, hidden=(32,))  # noqa: E731
    return _case("ctr", context, f"synthetic shop, {args.events} events", build, epochs, 1e-2, "dense_0")


def text_case(args, epochs, cache, kind="cnn"):
    context, source = _task_context("text", "reviews", "synthetic product titles (titles_task)", args, cache)
    family = "text" if kind == "cnn" else kind
    build = lambda task, data: task.build_student(data, kind=kind)  # noqa: E731
    return _case(family, context, source, build, epochs, 3e-3, "hidden" if kind == "cnn" else "ffn_in")


def transformer_case(args, epochs, cache):
    return text_case(args, epochs, cache, kind="transformer")


def image_case(args, epochs, cache):
    context, source = _task_context("image", "fashion_mnist", "synthetic_images", args, cache,
                                    events=6_000 if args.quick else 60_000)  # images to use
    return _case("image", context, source, lambda task, data: task.build_student(data), epochs, 3e-3, "sep2_pw")


CASES = {"ctr": ctr_case, "text": text_case, "image": image_case, "transformer": transformer_case}


def _one_line(e):
    return " ".join(str(e).split())


def export_files(case, folder):
    """Every mode's file for ``case``, in row order: ``{row name: (path, None) or (None, why it failed)}``."""
    results = {}

    def attempt(name, make):
        try:
            results[name] = (make(), None)
        except TFCompressError as e:
            results[name] = (None, _one_line(e))

    for mode, io, name in CONVERTER_MODES:
        attempt(name, lambda: export.to_tflite(case.model, os.path.join(folder, f"{mode}_{io}.tflite"), mode=mode,
                                               int8_io=io, representative=case.rep,
                                               objective=case.objective))
    f32 = results["float32"][0]
    for recipe, regex in LITERT_RECIPES:
        regex = case.regex if regex == "SELECT" else regex
        attempt(f"litert:{recipe}" + (f" [{regex}]" if regex else ""),
                lambda: export.quantize_with_litert(f32, recipe, layers_regex=regex,
                                                    out_path=os.path.join(folder, f"{recipe}_{regex}.tflite")))
    try:
        table = export.find_sensitive_layers(case.model, case.rep)
    except TFCompressError as e:
        results["int8 fallback"] = (None, _one_line(e))
        return results
    ranked = table[table["can_fallback"]]
    if ranked.empty:
        results["int8 fallback"] = (None, "no quantized op can be kept float (find_sensitive_layers)")
    for k in sorted({1, min(FALLBACK_OPS, len(ranked))} - {0}):  # the worst op, then the FALLBACK_OPS worst
        kept = ranked.iloc[:k]
        labels = [r["keras_layer"] or r["tensor_name"].split(";")[0] for _, r in kept.iterrows()]
        attempt(f"int8 fallback [{', '.join(labels)}]",
                lambda: export.to_tflite(case.model, os.path.join(folder, f"fallback{k}.tflite"), mode="int8",
                                         representative=case.rep, float_fallback=list(kept["tensor_name"]),
                                         objective=case.objective))
    return results


def mode_rows(case, runs, folder):
    """One row per mode: bytes, batch-1 p50 latency at 1 and 2 threads, metric and parity (or why it failed)."""
    results = export_files(case, os.path.join(folder, case.family))
    cands = {n: ("tflite", p) for n, (p, _) in results.items() if p}
    lat = {t: latency.compare_latency(cands, case.one, runs=runs, warmup=20, threads=t) for t in (1, 2)}
    keras_out = case.model.predict(case.held, batch_size=2048, verbose=0)
    rows = []
    for n, (p, why) in results.items():
        if p is None:
            rows.append({"mode": n, "note": why})
            continue
        out = export.TFLiteModel(p).predict(case.held, batch_size=2048)
        par = export.compare_outputs(keras_out, out, case.labels, objective=case.objective)
        agree = (float(np.mean(keras_out.argmax(-1) == out.argmax(-1))) if case.objective == "multiclass"
                 else np.nan)
        rows.append({"mode": n, "bytes": os.path.getsize(p), "p50_us_1t": round(lat[1][n].p50_us, 1),
                     "p50_us_2t": round(lat[2][n].p50_us, 1), "metric": par["metric"],
                     "value": round(par["tflite"], 4), "diff": round(par["metric_diff"], 4),
                     "max_abs": par["max_abs"], "mean_abs": par["mean_abs"], "top1_agree": round(agree, 4)})
    df = pd.DataFrame(rows).astype({"bytes": "Int64"})
    df.insert(0, "family", case.family)
    df["data"] = case.data
    keras_metric = export.compare_outputs(keras_out, keras_out, case.labels, objective=case.objective)
    return df, f"{keras_metric['metric']} {keras_metric['keras']:.4f}"


def print_table(df, width=60):
    """The rows of one model (metric columns named after the metric); a failed mode's row shows the start of
    its reason, and the full reasons follow the table."""
    metric = df["metric"].dropna().iloc[0] if df["metric"].notna().any() else "metric"
    show = df.drop(columns=["family", "data", "metric"]).rename(columns={"value": metric, "diff": f"{metric}_diff"})
    notes = show.pop("note") if "note" in show else pd.Series(dtype=object)
    if notes.notna().any():
        show["note"] = ["" if pd.isna(n) else "FAILED: " + (n if len(n) <= width else n[:width] + "...") for n in notes]
    print(show.astype(object).fillna("").to_string(index=False))
    for mode, why in zip(df["mode"], notes):
        if isinstance(why, str):
            print(f"  FAILED {mode}: {why}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default=",".join(FAMILIES),
                    help=f"comma-separated subset of {','.join(FAMILIES)} (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="CTR 20k events, 6k texts / 6k images, 1-2 epochs, 200 latency runs")
    ap.add_argument("--events", type=int, default=100_000, help="CTR shop events")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs for every model (default: CTR 2, "
                                                             "text/transformer/image 3; --quick: 1 and 2)")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--out", default=None, help="write the table as CSV here")
    args = ap.parse_args(argv)
    families = [f.strip() for f in args.family.split(",") if f.strip()]
    bad = [f for f in families if f not in FAMILIES]
    if bad or not families:
        ap.error(f"--family {args.family!r}: choose from {','.join(FAMILIES)}")
    if args.quick:
        args.events, args.runs = 20_000, 200
    start, cache, tables = time.time(), {}, []
    with tempfile.TemporaryDirectory(prefix="export-modes-") as tmp:
        for family in families:
            epochs = args.epochs or DEFAULT_EPOCHS[args.quick][family == "ctr"]
            t0 = time.time()
            case = CASES[family](args, epochs, cache)
            t1 = time.time()
            df, keras_metric = mode_rows(case, args.runs, tmp)
            tables.append(df)
            base = (f" (majority class {np.bincount(case.labels).max() / len(case.labels):.4f})"
                    if case.objective == "multiclass" else "")
            print(f"\n{family} student ({case.model.count_params():,} params), {case.data}, {epochs} epoch(s); "
                  f"Keras {keras_metric}{base}; parity on {len(case.labels):,} held-out rows; data + training "
                  f"{t1 - t0:.0f}s, exports + measurements {time.time() - t1:.0f}s")
            print_table(df)
    df = pd.concat(tables, ignore_index=True)
    failed = int(df["note"].notna().sum()) if "note" in df else 0
    print(f"\n{len(df)} rows ({failed} failed modes) in {time.time() - start:.0f}s")
    if args.out:
        df.to_csv(args.out, index=False)
    return df


if __name__ == "__main__":
    main()
