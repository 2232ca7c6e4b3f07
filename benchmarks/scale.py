"""The cost curve, first version: how time and memory grow with the events, in memory and streamed.

    python benchmarks/scale.py [--events 100000,1000000] [--full] [--modes memory,streaming] [--quick]
                               [--out runs/scale]

For each events count (``--full`` adds 10^7) and mode it runs ``tfcompress run`` on the built-in shop in a
fresh process: ``memory`` draws the shop into a DataFrame (``--events N``); ``streaming`` first writes it as
Parquet shards (``tfcompress data make``, in its own process, timed apart) and runs on the folder
(``--data DIR``), so the table is never loaded. Each row: wall seconds per stage, the run's peak RSS,
the teacher's parameters and float32 file, the int8 student's bytes, and the test AUC of the teacher, the
student alone, the distilled student and the int8 file. Rows go to ``OUT/scale.json`` and a Markdown table
on stdout; a run that fails is a row with its error.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

STAGE_COLUMNS = ("data", "teacher", "student_alone", "student_distilled", "student_pruned", "student_qat",
                 "export", "latency")
AUC_ROWS = {"teacher": ("teacher", "keras"), "alone": ("student_alone", "keras"),
            "distilled": ("student_distilled", "keras"), "int8": ("student_int8", "tflite")}


def one_run(events, mode, out, quick):
    """Run one configuration in this process; returns its row (a dict)."""
    from tfcompress.pipeline import RunConfig, run

    seconds = {}

    def progress(name, message, started):
        if name != "report":  # the report's line is timed from the run's start: the wall time says it
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
        print(f"[{name}] {message}", file=sys.stderr, flush=True)

    folder = os.path.join(out, f"{mode}-{events}")
    data = os.path.join(out, f"shards-{events}") if mode == "streaming" else None
    t0 = time.perf_counter()
    cfg = RunConfig(quick=quick, data=data, events=None if data else events, out=os.path.join(folder, "run"),
                    savedmodels_dir=os.path.join(folder, "sm"), tflite_dir=os.path.join(folder, "tfl"),
                    overwrite=True, resume=False)
    run(cfg, progress=progress)
    wall = time.perf_counter() - t0
    report = json.load(open(os.path.join(folder, "run", "report.json")))
    rows = {(r["name"], r["format"]): r for r in report["stages"]}
    teacher = rows.get(("teacher", "keras"), {})
    return {"events": events, "mode": mode, "wall_s": round(wall, 1), "peak_rss_mb": _peak_rss_mb(),
            "stage_s": {k: round(v, 1) for k, v in seconds.items()},
            "teacher_params": teacher.get("params"),
            "teacher_float32_bytes": rows.get(("teacher_float32", "tflite"), {}).get("size_bytes"),
            "int8_bytes": rows.get(("student_int8", "tflite"), {}).get("size_bytes"),
            "auc": {k: rows.get(v, {}).get("auc") for k, v in AUC_ROWS.items()},
            "data": report["meta"].get("data")}


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
    head = ["events", "mode", "shards s", "wall s", "peak RSS MB", *STAGE_COLUMNS, "teacher params", "teacher f32 B",
            "int8 B", "AUC teacher", "alone", "distilled", "int8"]
    out = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['events']:,} | {r['mode']} | {r['error']} |")
            continue
        cells = [f"{r['events']:,}", r["mode"], r.get("shards_s"), r["wall_s"], r["peak_rss_mb"],
                 *(r["stage_s"].get(s, "") for s in STAGE_COLUMNS), r["teacher_params"], r["teacher_float32_bytes"],
                 r["int8_bytes"], *(r["auc"][k] for k in AUC_ROWS)]
        out.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", default="100000,1000000", help="comma-separated events counts")
    p.add_argument("--full", action="store_true", help="add 10,000,000 events")
    p.add_argument("--modes", default="memory,streaming")
    p.add_argument("--quick", action="store_true", help="quick models and epochs (a smoke run)")
    p.add_argument("--out", default=os.path.join("runs", "scale"))
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        row = make_shards(int(a.child[1]), a.out) if a.child[0] == "shards" else \
            one_run(int(a.child[1]), a.child[0], a.out, a.quick)
        print(json.dumps(row))
        return 0
    events = [int(float(e)) for e in a.events.split(",")] + ([10_000_000] if a.full else [])
    rows = []
    for n in events:
        for mode in a.modes.split(","):
            extra = _child(a, "shards", n) if mode == "streaming" else {}
            row = {"events": n, "mode": mode, **_child(a, mode, n), **extra}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "scale.json"), "w") as f:
        json.dump({"machine": f"{os.cpu_count()} cpu", "quick": a.quick, "rows": rows}, f, indent=1)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
