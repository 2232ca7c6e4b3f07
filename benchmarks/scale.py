"""The cost curve, first version: how time and memory grow with the events, in memory and streamed.

    python benchmarks/scale.py [--events 100000,1000000] [--full] [--modes memory,streaming] [--quick]
                               [--probes] [--out runs/scale]

For each events count (``--full`` adds 10^7) and mode it runs ``tfcompress run`` on the built-in shop in a
fresh process: ``memory`` draws the shop into a DataFrame (``--events N``); ``streaming`` first writes it as
Parquet shards (``tfcompress data make``, in its own process, timed apart) and runs on the folder
(``--data DIR``), so the table is never loaded. Each row: wall seconds per stage, the run's peak RSS,
the teacher's parameters and float32 file, the int8 student's bytes, and the test AUC of the teacher, the
student alone, the distilled student and the int8 file, the training throughput (train events x epochs / seconds
in ``fit``, validation included) of the teacher and the distillation. Rows go to ``OUT/scale.json``, the
Markdown tables (the rows; the peak RSS reached by the end of each stage) to stdout and ``OUT/scale.md``, the
plot of wall time and peak RSS against events to ``OUT/cost_vs_events.png``; a run that fails is a row
with its error. Where a GPU is visible, GPU rows follow (teacher and distillation train steps/s and the Keras
batch-1 latency, on the GPU against the CPU, same run); where none is, the table says ``no GPU visible: GPU
rows not measured``. ``--probes`` then tells the data's share of the peak from the model's, each in a fresh
process per events count: the streamed data path alone (the held-out pass and one epoch of train batches) and
the teacher alone (built and trained on one batch); ``OUT/memory.json`` and ``OUT/memory.md`` (``--modes ""``
runs the probes only).
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

STAGE_COLUMNS = ("data", "teacher", "student_alone", "student_distilled", "student_pruned", "student_qat",
                 "export", "latency")
AUC_ROWS = {"teacher": ("teacher", "keras"), "alone": ("student_alone", "keras"),
            "distilled": ("student_distilled", "keras"), "int8": ("student_int8", "tflite")}
#: the fits whose throughput a row gives: the stage (its progress name) -> column
FIT_COLUMNS = {"teacher": "teacher", "student_distilled": "distill"}
NO_GPU = "no GPU visible: GPU rows not measured"
#: the memory probes (``--probes``), each in a fresh process per events count
PROBES = ("data", "teacher", "teacher_lazy")


class FitClock:
    """Times every ``keras.Model.fit`` of a run (``Distiller.fit`` ends in it): :meth:`stage` gives the epochs
    and seconds of the fits since the last call, to the stage whose progress line comes next."""

    def __init__(self):
        from tfcompress import keras

        self.fits, self.keras, self.fit = [], keras, keras.Model.fit
        clock = self

        def timed_fit(model, *args, **kwargs):
            t0 = time.perf_counter()
            history = clock.fit(model, *args, **kwargs)
            clock.fits.append((len(history.epoch), time.perf_counter() - t0))
            return history

        keras.Model.fit = timed_fit

    def stage(self):
        fits, self.fits = self.fits, []
        return sum(e for e, _ in fits), sum(t for _, t in fits)

    def close(self):
        self.keras.Model.fit = self.fit


def one_run(events, mode, out, quick):
    """Run one configuration in this process; returns its row (a dict)."""
    from tfcompress.pipeline import RunConfig, run

    seconds, peaks, fits, train_rows, clock = {}, {}, {}, [], FitClock()

    def progress(name, message, started):
        if name != "report":  # the report's line is timed from the run's start: the wall time says it
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
            peaks[name] = _peak_rss_mb()
        if name == "data":
            found = re.search(r"\(([\d,]+) train", message)
            train_rows.extend([int(found.group(1).replace(",", ""))] if found else [])
        fits[name] = clock.stage()
        print(f"[{name}] {message}", file=sys.stderr, flush=True)

    folder = os.path.join(out, f"{mode}-{events}")
    data = os.path.join(out, f"shards-{events}") if mode == "streaming" else None
    t0 = time.perf_counter()
    cfg = RunConfig(quick=quick, data=data, events=None if data else events, out=os.path.join(folder, "run"),
                    savedmodels_dir=os.path.join(folder, "sm"), tflite_dir=os.path.join(folder, "tfl"),
                    overwrite=True, resume=False)
    try:
        run(cfg, progress=progress)
    finally:
        clock.close()
    wall = time.perf_counter() - t0
    report = json.load(open(os.path.join(folder, "run", "report.json")))
    rows = {(r["name"], r["format"]): r for r in report["stages"]}
    teacher = rows.get(("teacher", "keras"), {})
    return {"events": events, "mode": mode, "wall_s": round(wall, 1), "peak_rss_mb": _peak_rss_mb(),
            "stage_s": {k: round(v, 1) for k, v in seconds.items()}, "stage_peak_rss_mb": peaks,
            "teacher_params": teacher.get("params"),
            "teacher_float32_bytes": rows.get(("teacher_float32", "tflite"), {}).get("size_bytes"),
            "int8_bytes": rows.get(("student_int8", "tflite"), {}).get("size_bytes"),
            "auc": {k: rows.get(v, {}).get("auc") for k, v in AUC_ROWS.items()},
            "events_s": {c: fit_rate(train_rows, *fits.get(s, (0, 0))) for s, c in FIT_COLUMNS.items()},
            "data": report["meta"].get("data")}


def fit_rate(train_rows, epochs, seconds):
    """Training events per second: train rows x epochs / seconds in ``fit`` (None when unknown)."""
    if not train_rows or not epochs or not seconds:
        return None
    return round(train_rows[0] * epochs / seconds)


def _peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: kilobytes


def make_shards(events, out):
    """Write the shop's shards for ``events`` once (kept for the next call); returns seconds and peak RSS."""
    from tfcompress.data import read_manifest, write_shop_shards

    folder = os.path.join(out, f"shards-{events}")
    if os.path.isdir(folder) and read_manifest(folder) is not None:
        return {"shards_s": 0.0, "shards_rss_mb": None, "reused": True}
    t0 = time.perf_counter()
    write_shop_shards(events, folder, shard_rows=min(1_000_000, max(10_000, events // 8)))
    return {"shards_s": round(time.perf_counter() - t0, 1), "shards_rss_mb": _peak_rss_mb()}


def _child(args, *what):
    """Run ``what`` in a fresh Python (its own peak RSS); returns its JSON answer or the error."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", *map(str, what), "--out", args.out]
    if args.quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        return {"error": f"exit {done.returncode}"}
    return json.loads(lines[-1])


def table(rows):
    head = ["events", "mode", "shards s", "wall s", "peak RSS MB", *STAGE_COLUMNS, "teacher events/s",
            "distill events/s", "teacher params", "teacher f32 B", "int8 B", "f32/int8", "AUC teacher", "alone",
            "distilled", "int8"]
    out = ["| " + " | ".join(head) + " |", "| ---: | --- |" + " ---: |" * (len(head) - 2)]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['events']:,} | {r['mode']} | {r['error']} |")
            continue
        f32, int8 = r["teacher_float32_bytes"], r["int8_bytes"]
        cells = [f"{r['events']:,}", r["mode"], r.get("shards_s"), r["wall_s"], r["peak_rss_mb"],
                 *(r["stage_s"].get(s, "") for s in STAGE_COLUMNS),
                 *(r.get("events_s", {}).get(c) for c in FIT_COLUMNS.values()), r["teacher_params"], f32, int8,
                 f"{f32 / int8:.1f}x" if f32 and int8 else None, *(r["auc"][k] for k in AUC_ROWS)]
        out.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    return "\n".join(out)


def peak_table(rows):
    """Where the peak is reached: the run's peak RSS (MB) so far at the end of each stage."""
    rows = [r for r in rows if "error" not in r]
    out = ["peak RSS (MB) by the end of each stage:", "",
           "| events | mode | " + " | ".join(STAGE_COLUMNS) + " |", "| ---: | --- |" + " ---: |" * len(STAGE_COLUMNS)]
    for r in rows:
        peaks = r.get("stage_peak_rss_mb", {})
        out.append(f"| {r['events']:,} | {r['mode']} | " + " | ".join(str(peaks.get(s, "")) for s in STAGE_COLUMNS)
                   + " |")
    return "\n".join(out)


def plot(rows, path):
    """``path`` (a PNG): wall seconds and peak RSS against events (log x), one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for mode in sorted({r["mode"] for r in rows}):
        done = sorted((r for r in rows if r["mode"] == mode and "error" not in r), key=lambda r: r["events"])
        for ax, key in zip(axes, ("wall_s", "peak_rss_mb")):
            ax.plot([r["events"] for r in done], [r[key] for r in done], marker="o", label=mode)
    for ax, label in zip(axes, ("wall time (s)", "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_xlabel("events")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("tfcompress run: cost vs events")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def memory_probe(events, out, what, steps=50):
    """Peak RSS (MB) of one part of the streamed run in a fresh process, to tell the data's share of memory
    from the model's: ``data`` is the run's data path (the held-out pass, then one epoch of the streamed,
    shuffled train batches); ``teacher`` builds the teacher for the shards' spec and trains it ``steps`` steps
    on one batch (no data read past it; ``steps_s``: its train steps per second) with Adam, ``teacher_lazy``
    the same with :class:`~tfcompress.optimizers.LazyAdam`."""
    from tfcompress.data import open_shop_log

    log, t0 = open_shop_log(os.path.join(out, f"shards-{events}")), time.perf_counter()
    row = {"events": events, "what": what}
    if what == "data":
        fields = log.task_fields(batch_size=1024, calibration=100)
        rows = sum(int(y.shape[0]) for _, y in fields["train_ds"])
        row.update(train_rows=rows, rows_s=round(rows / (time.perf_counter() - t0)))
    else:
        from throughput import build_job

        teacher = build_job("teacher", log.spec, None, 1, False, lazy=what == "teacher_lazy")
        batch = log.dataset(0, batch_size=1024).take(1).cache().repeat()
        teacher.fit(batch, steps_per_epoch=5, epochs=1, verbose=0)
        t0 = time.perf_counter()
        teacher.fit(batch, steps_per_epoch=steps, epochs=1, verbose=0)
        row.update(params=teacher.count_params(), steps_s=round(steps / (time.perf_counter() - t0), 1))
    return {**row, "peak_rss_mb": _peak_rss_mb()}


def probe_table(rows):
    """What the peak is made of: the data path's and the teacher's peak RSS per events count."""
    out = ["| events | data path peak RSS MB | data path rows/s | teacher params | teacher alone, Adam: peak RSS MB "
           "| steps/s | LazyAdam: peak RSS MB | steps/s |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n in sorted({r["events"] for r in rows}):
        d, t, lazy = (next((r for r in rows if r["events"] == n and r["what"] == w), {}) for w in PROBES)
        cells = [f"{n:,}", d.get("peak_rss_mb", d.get("error")), d.get("rows_s"), t.get("params", lazy.get("params")),
                 t.get("peak_rss_mb", t.get("error")), t.get("steps_s"), lazy.get("peak_rss_mb", lazy.get("error")),
                 lazy.get("steps_s")]
        out.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    return "\n".join(out)


def device_rows(events=20_000, devices=None, steps=20, runs=50):
    """Per device (default: the CPU and every visible GPU; ``[]`` when no GPU is visible): the teacher's and
    the distillation's train steps/s (batch 1024) and the teacher's and student's Keras batch-1 latency (ms)."""
    from tfcompress import tf

    gpus = [f"/GPU:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]
    if devices is None:
        devices = ["/CPU:0", *gpus] if gpus else []
    return [_device_row(d, events, steps, runs) for d in devices]


def _device_row(device, events, steps, runs):
    from throughput import Source, build_job, measure

    from tfcompress import tf
    from tfcompress.data import sample_inputs

    with tf.device(device):
        source = Source("memory", events)
        ds = source.dataset(1024, True)
        teacher = build_job("teacher", source.spec, None, 1, False)
        distiller = build_job("distill", source.spec, teacher, 1, False)
        row = {"device": device, "teacher_steps_s": round(measure(teacher, ds, steps), 1),
               "distill_steps_s": round(measure(distiller, ds, steps), 1)}
        x = {k: tf.constant(v) for k, v in sample_inputs(source.frame, source.spec, 1).items()}
        for name, model in (("teacher", teacher), ("student", distiller.student)):
            row[f"{name}_latency_ms"] = round(_latency_ms(model, x, runs), 3)
    return row


def _latency_ms(model, x, runs):
    for _ in range(5):
        model(x, training=False)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model(x, training=False).numpy()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def device_table(rows):
    """The GPU rows against the CPU's, or the line saying no GPU was visible."""
    if not rows:
        return NO_GPU
    out = ["| device | teacher steps/s | distill steps/s | teacher batch-1 ms | student batch-1 ms |",
           "| --- | ---: | ---: | ---: | ---: |"]
    out += [f"| {r['device']} | {r['teacher_steps_s']} | {r['distill_steps_s']} | {r['teacher_latency_ms']} | "
            f"{r['student_latency_ms']} |" for r in rows]
    return "\n".join(out)


def write_outputs(rows, gpu, out, quick):
    """``scale.json``, ``scale.md`` (the tables) and ``cost_vs_events.png`` in ``out``; returns the text."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "scale.json"), "w") as f:
        json.dump({"machine": f"{os.cpu_count()} cpu", "quick": quick, "rows": rows, "gpu": gpu}, f, indent=1)
    text = table(rows) + "\n\n" + peak_table(rows) + "\n\n" + device_table(gpu)
    with open(os.path.join(out, "scale.md"), "w") as f:
        f.write(text + "\n")
    if any("error" not in r for r in rows):
        plot(rows, os.path.join(out, "cost_vs_events.png"))
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", default="100000,1000000", help="comma-separated events counts")
    p.add_argument("--full", action="store_true", help="add 10,000,000 events")
    p.add_argument("--modes", default="memory,streaming")
    p.add_argument("--quick", action="store_true", help="quick models and epochs (a smoke run)")
    p.add_argument("--out", default=os.path.join("runs", "scale"))
    p.add_argument("--probes", action="store_true",
                   help="also the memory probes: the data path and the teacher alone, each in a fresh process")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        kind, n = a.child[0], int(a.child[1])
        row = make_shards(n, a.out) if kind == "shards" else memory_probe(n, a.out, kind[6:]) \
            if kind.startswith("probe-") else one_run(n, kind, a.out, a.quick)
        print(json.dumps(row))
        return 0
    events = [int(float(e)) for e in a.events.split(",")] + ([10_000_000] if a.full else [])
    rows = []
    for n in events:
        for mode in filter(None, a.modes.split(",")):
            extra = _child(a, "shards", n) if mode == "streaming" else {}
            row = {"events": n, "mode": mode, **_child(a, mode, n), **extra}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if rows:
        print(write_outputs(rows, device_rows(min(events)), a.out, a.quick))
    if a.probes:
        print(write_probes([_probe(a, n, what) for n in events for what in PROBES], a.out))
    return 0


def _probe(a, events, what):
    _child(a, "shards", events)
    row = {"events": events, "what": what, **_child(a, f"probe-{what}", events)}
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def write_probes(rows, out):
    """``memory.json`` and ``memory.md`` (the probe table) in ``out``; returns the table."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "memory.json"), "w") as f:
        json.dump({"machine": f"{os.cpu_count()} cpu", "rows": rows}, f, indent=1)
    text = probe_table(rows)
    with open(os.path.join(out, "memory.md"), "w") as f:
        f.write(text + "\n")
    return text


if __name__ == "__main__":
    sys.exit(main())
