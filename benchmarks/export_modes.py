"""Export-mode table for the CTR student: mode → bytes, batch-1 p50 latency (LiteRT, 1 and 2 threads),
AUC, parity figures, all from one run.

Rows: every converter mode (float32, float16, dynamic, int8 with int8 and float I/O, int16x8), the LiteRT
Quantizer recipes on the float32 file (int8/int4 weights, int8 dynamic, int4 blockwise, selective by regex)
and the selective float fallback (the most quantization-sensitive op kept float). A row that fails says why.

    python benchmarks/export_modes.py --quick                 # small shop, short latency runs
    python benchmarks/export_modes.py --events 200000 --epochs 3 --runs 500 --out export_modes.csv
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import tfcompress  # noqa: E402,F401  (selects tf_keras first)
from tfcompress import export  # noqa: E402
from tfcompress._keras import keras  # noqa: E402
from tfcompress.bench import latency  # noqa: E402
from tfcompress.data import frame_to_inputs, make_ecommerce, sample_inputs, to_dataset  # noqa: E402
from tfcompress.errors import TFCompressError  # noqa: E402
from tfcompress.export.parity import parity_report  # noqa: E402
from tfcompress.models import ctr_student  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20k events, 1 epoch, 200 latency runs")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--out", default=None, help="write the table as CSV here")
    args = ap.parse_args(argv)
    if args.quick:
        args.events, args.epochs, args.runs = 20_000, 1, 200

    shop = make_ecommerce(events=args.events, seed=0)
    train, _, test = shop.split()
    keras.utils.set_random_seed(0)
    model = ctr_student(shop.spec, embedding_dim=8, hidden=(32,))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(to_dataset(train, shop.spec, batch_size=512, shuffle=True), epochs=args.epochs, verbose=0)
    rep = sample_inputs(train, shop.spec, 200)
    held = {**frame_to_inputs(test, shop.spec), "labels": test["click"].to_numpy()}

    tmp = tempfile.mkdtemp(prefix="export-modes-")
    files, notes = {}, {}
    for mode, io in [("float32", True), ("float16", True), ("dynamic", True), ("int8", True), ("int8", False),
                     ("int16x8", False)]:  # int16 I/O: bench.latency takes int16 inputs for ids
        name = mode if mode in ("float32", "float16", "dynamic") else f"{mode}{'' if io else ' (float I/O)'}"
        name = "int16x8 (float I/O)" if mode == "int16x8" else name
        try:
            files[name] = export.to_tflite(model, os.path.join(tmp, f"{mode}_{io}.tflite"), mode=mode,
                                           int8_io=io, representative=rep)
        except TFCompressError as e:
            notes[name] = str(e)
    f32 = files["float32"]
    for recipe, regex in [("int8_weights", None), ("int4_weights", None), ("int8_dynamic", None),
                          ("int4_blockwise", None), ("int4_blockwise", "dense_0"), ("int8_weights", "dense_0")]:
        name = f"litert:{recipe}" + (f" [{regex}]" if regex else "")
        try:
            files[name] = export.quantize_with_litert(
                f32, recipe, layers_regex=regex, out_path=os.path.join(tmp, f"{recipe}_{regex}.tflite"))
        except TFCompressError as e:
            notes[name] = str(e)
    table = export.find_sensitive_layers(model, rep)
    worst = table[table["can_fallback"]]["tensor_name"].iloc[0]
    name = f"int8 fallback [{worst.split(';')[0]}]"
    files[name] = export.to_tflite(model, os.path.join(tmp, "fallback.tflite"), mode="int8", representative=rep,
                                   float_fallback=[worst])

    one = {k: v[:1] for k, v in frame_to_inputs(test.iloc[:1], shop.spec).items()}
    cands = {n: ("tflite", p) for n, p in files.items()}
    lat = {t: latency.compare_latency(cands, one, runs=args.runs, warmup=20, threads=t) for t in (1, 2)}
    rows = []
    for n, p in files.items():
        rep_ = parity_report(model, export.TFLiteModel(p), held)
        rows.append({"mode": n, "bytes": os.path.getsize(p), "p50_us_1t": round(lat[1][n].p50_us, 1),
                     "p50_us_2t": round(lat[2][n].p50_us, 1), "auc": round(rep_["tflite"], 4),
                     "auc_diff": round(rep_["metric_diff"], 4), "max_abs": rep_["max_abs"],
                     "mean_abs": rep_["mean_abs"]})
    for n, why in notes.items():
        rows.append({"mode": n, "bytes": np.nan, "note": why})
    df = pd.DataFrame(rows)
    print(f"CTR student, {args.events} events, {args.epochs} epochs; Keras AUC "
          f"{parity_report(model, export.TFLiteModel(f32), held)['keras']:.4f}; parity on {len(test)} rows")
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        print(df.drop(columns=["note"], errors="ignore").dropna(subset=["bytes"]).to_string(index=False))
        for n, why in notes.items():
            print(f"FAILED {n}: {why}")
    if args.out:
        from tfcompress._io import write_text

        write_text(args.out, df.to_csv(index=False))
    return df


if __name__ == "__main__":
    main()
