"""Evidence for ``tfcompress tune``: on one task and data, the default ``tfcompress run`` recipe's int8 file
against the file a search chooses (time budget and tolerance given): bytes, batch-1 p50 in the LiteRT
interpreter, and the metric on the validation split (what the choice uses) and the test split (reported
apart). Prints a Markdown table and writes it to OUT/tune_evidence.md.

Usage:
    python benchmarks/tune_evidence.py --preset ctr --quick --time-budget 5m --tolerance 1%
    python benchmarks/tune_evidence.py --preset movielens --time-budget 30m --tolerance 0.5%
    (presets: ctr (built-in data, default size), movielens (ranking), reviews (text), fashion_mnist (image))
"""
import argparse
import os

from tfcompress.pipeline import RunConfig, run
from tfcompress.tune import search
from tfcompress.tune.trial import tflite_predict, validation_metric

PRESETS = {"ctr": dict(task="ctr"), "movielens": dict(task="ctr", data="movielens"),
           "reviews": dict(task="text", data="reviews"), "fashion_mnist": dict(task="image", data="fashion_mnist")}


def default_row(preset, quick, out):
    """Run the default recipe; the row of its int8 student file."""
    result = run(RunConfig(quick=quick, out=os.path.join(out, "default"), savedmodels_dir=os.path.join(out, "sm"),
                           tflite_dir=os.path.join(out, "tflite"), overwrite=True, **PRESETS[preset]).validate())
    cfg, student = result.config, result.stage("student_int8")
    data = cfg.task.load(cfg)
    return {"model": "default recipe, int8", "bytes": os.path.getsize(student.path),
            "p50_us": student.extra["latency"].p50_us,
            "val": validation_metric(cfg.task, data, tflite_predict(student.path)),
            "test": student.quality[cfg.task.metric]}, cfg.task.metric


def tuned_row(preset, quick, out, budget, tolerance, objective):
    """Search with the budget and tolerance; the row of the chosen file (None when none is within)."""
    result = search(RunConfig(quick=quick, out=os.path.join(out, "tune"), **PRESETS[preset]), tolerance=tolerance,
                    objective=objective, time_budget=budget)
    print(result.note)
    if result.chosen is None:
        return None, result
    c = result.chosen
    return {"model": f"tuned #{c['number']} ({tolerance})", "bytes": c["size_bytes"], "p50_us": c["p50_us"],
            "val": c["val_metric"], "test": c["test"][result.metric]}, result


def table(rows, metric, teacher_val):
    lines = [f"teacher validation {metric}: {teacher_val:.4f}", "",
             f"| model | bytes | p50 (us) | val {metric} | test {metric} |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['model']} | {r['bytes']:,} | {r['p50_us']:.1f} | {r['val']:.4f} | {r['test']:.4f} |" for r in rows]
    if len(rows) == 2:
        lines += ["", f"default / tuned: bytes {rows[0]['bytes'] / rows[1]['bytes']:.2f}x, "
                      f"p50 {rows[0]['p50_us'] / rows[1]['p50_us']:.2f}x (above 1: the tuned file is smaller / faster)"]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="ctr")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--time-budget", default="30m")
    p.add_argument("--tolerance", default="0.5%")
    p.add_argument("--objective", default="size", choices=("size", "latency", "both"))
    p.add_argument("--out", default=os.path.join("runs", "tune_evidence"))
    a = p.parse_args()
    out = os.path.join(a.out, a.preset)
    default, metric = default_row(a.preset, a.quick, out)
    tuned, result = tuned_row(a.preset, a.quick, out, a.time_budget, a.tolerance, a.objective)
    text = table([default] + ([tuned] if tuned else []), metric, result.teacher_val)
    text += (f"\n\n{len(result.trials)} trials in {a.time_budget} ({a.preset}, quick={a.quick}, objective "
             f"{a.objective}); report: {result.report_path}")
    print(text)
    with open(os.path.join(out, "tune_evidence.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
