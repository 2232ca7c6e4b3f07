"""Evidence for ``tfcompress tune``: on one task and data, the default ``tfcompress run`` recipe's int8 file
against the file a search chooses (time budget and tolerance given): bytes, batch-1 p50 in the LiteRT
interpreter, and the metric on the validation split (what the choice uses) and the test split (reported
apart). Prints a Markdown table and writes it to OUT/tune_evidence.md.

Usage:
    python benchmarks/tune_evidence.py --preset ctr --quick --time-budget 5m --tolerance 1%
    python benchmarks/tune_evidence.py --preset movielens --time-budget 30m --tolerance 1%,0.5%
    (several tolerances: one search, run with the first (give the loosest first, so that no trial another
    tolerance would keep is given up early); the others choose from the same trials)
    (presets: ctr (built-in data, default size), movielens (ranking), reviews (text), fashion_mnist (image))
"""
import argparse
import json
import os

from tfcompress.pipeline import RunConfig, run
from tfcompress.tune import search
from tfcompress.tune.front import choose
from tfcompress.tune.trial import TEACHER_WEIGHTS, tflite_predict, validation_metric

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


def default_row_from_folder(preset, quick, out):
    """The default-recipe row from a finished default run in OUT/default (``--reuse-default``), or None."""
    path = os.path.join(out, "default", "report.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        report = json.load(f)
    row = next(r for r in report["stages"] if r["name"] == "student_int8")
    cfg = RunConfig(quick=quick, out=os.path.join(out, "default"), **PRESETS[preset]).validate()
    data = cfg.task.load(cfg)
    return {"model": "default recipe, int8", "bytes": os.path.getsize(row["path"]), "p50_us": row["latency_p50_us"],
            "val": validation_metric(cfg.task, data, tflite_predict(row["path"])),
            "test": row[cfg.task.metric]}, cfg.task.metric


def teacher_from_default(preset, quick, out):
    """Give the search the default run's trained teacher (its SavedModel's variables, the same config and seed,
    so the same model the search would train) as the search's teacher weights: its budget goes to trials."""
    import tensorflow as tf

    cfg = RunConfig(quick=quick, out=os.path.join(out, "tune"), **PRESETS[preset]).validate()
    target = os.path.join(cfg.out, TEACHER_WEIGHTS)
    if os.path.isfile(target):
        return
    data = cfg.task.load(cfg)
    model = cfg.task.build_teacher(data, **cfg.teacher)
    saved = tf.saved_model.load(os.path.join(out, "sm", f"{cfg.task.name}_teacher")).model_variables
    assert [tuple(v.shape) for v in saved] == [tuple(v.shape) for v in model.variables]
    for v, w in zip(model.variables, saved):
        v.assign(w)
    os.makedirs(cfg.out, exist_ok=True)
    model.save_weights(target)
    print(f"search teacher: the default run's ({model.count_params():,} params) in {target}")


def tuned_rows(preset, quick, out, budget, tolerances, objective):
    """Search with the budget and the first tolerance; the row of the file each tolerance chooses (on
    validation, from the same trials; a tolerance none is within has no row)."""
    result = search(RunConfig(quick=quick, out=os.path.join(out, "tune"), **PRESETS[preset]), tolerance=tolerances[0],
                    objective=objective, time_budget=budget)
    print(result.note)
    finished = [r for r in result.trials if r["state"] == "COMPLETE"]
    rows = []
    for tol in tolerances:
        c = choose(finished, reference=result.teacher_val, tolerance=tol, objective=objective)
        if c is None:
            print(f"tolerance {tol}: no trial is within it")
            continue
        rows.append({"model": f"tuned #{c['number']} ({tol})", "bytes": c["size_bytes"], "p50_us": c["p50_us"],
                     "val": c["val_metric"], "test": c["test"][result.metric]})
    return rows, result


def table(rows, metric, teacher_val):
    lines = [f"teacher validation {metric}: {teacher_val:.4f}", "",
             f"| model | bytes | p50 (us) | val {metric} | test {metric} |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['model']} | {r['bytes']:,} | {r['p50_us']:.1f} | {r['val']:.4f} | {r['test']:.4f} |" for r in rows]
    lines += [""] + [f"default / {r['model']}: bytes {rows[0]['bytes'] / r['bytes']:.2f}x, p50 "
                     f"{rows[0]['p50_us'] / r['p50_us']:.2f}x (above 1: the tuned file is smaller / faster)"
                     for r in rows[1:]]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="ctr")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--time-budget", default="30m")
    p.add_argument("--tolerance", default="1%,0.5%", help="one or more, comma-separated, the loosest first")
    p.add_argument("--objective", default="size", choices=("size", "latency", "both"))
    p.add_argument("--out", default=os.path.join("runs", "tune_evidence"))
    p.add_argument("--reuse-default", action="store_true", help="take the default row from a finished OUT/default")
    p.add_argument("--teacher-from-default", action="store_true",
                   help="the search starts from the default run's trained teacher (its budget then is all trials)")
    a = p.parse_args()
    out = os.path.join(a.out, a.preset)
    found = default_row_from_folder(a.preset, a.quick, out) if a.reuse_default else None
    default, metric = found or default_row(a.preset, a.quick, out)
    if a.teacher_from_default:
        teacher_from_default(a.preset, a.quick, out)
    tuned, result = tuned_rows(a.preset, a.quick, out, a.time_budget, a.tolerance.split(","), a.objective)
    text = table([default] + tuned, metric, result.teacher_val)
    text += (f"\n\n{len(result.trials)} trials in {a.time_budget} ({a.preset}, quick={a.quick}, objective "
             f"{a.objective}); report: {result.report_path}")
    print(text)
    with open(os.path.join(out, "tune_evidence.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
