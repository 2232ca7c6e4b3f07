"""How the CTR student's large id tables are kept, against its test AUC and size, trained alone on shards.

    python benchmarks/student_tables.py SHARDS OUT

Each row is one ``tfcompress run --data SHARDS --stages baseline`` (the student trained on the labels alone,
with the run's early stopping) in a fresh process, with the student options of that row; the table gives
the student's parameters (about its int8 bytes), the epochs it trained and its test AUC. Make the shards with
``tfcompress data make --events 10000000 --out SHARDS``. The figures in ``docs/scale/student_tables.md``
came from it.
"""
import argparse
import json
import os
import subprocess
import sys

#: name -> the student options of that row
VARIANTS = {
    "qr, sqrt(ids) rows": {"compressed_rows": None},
    "qr, 4,096 rows": {"compressed_rows": 4_096},
    "qr, 16,384 rows (default)": {},
    "qr 16,384 rows, tables under 100,000 ids whole": {"compress_min_vocab": 100_000},
    "hash, ids/8 rows": {"embedding": "hash"},
    "whole tables": {"embedding": "full"},
}


def train_alone(shards, out, student):
    """The student trained alone with options ``student``: its report row (params, auc) and epochs."""
    from tfcompress.pipeline import RunConfig, run

    epochs = []
    cfg = RunConfig(data=shards, out=os.path.join(out, "run"), savedmodels_dir=os.path.join(out, "sm"),
                    tflite_dir=os.path.join(out, "tfl"), overwrite=True, resume=False, stages=("baseline",),
                    student=student)
    run(cfg, progress=lambda name, message, _: epochs.append(message) if name == "student_alone" else None)
    rows = json.load(open(os.path.join(out, "run", "report.json")))["stages"]
    row = next(r for r in rows if r["name"] == "student_alone")
    return {"params": row["params"], "auc": row["auc"], "message": epochs[-1] if epochs else ""}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("shards", help="a shard folder (tfcompress data make)")
    p.add_argument("out", help="a folder for the runs")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(train_alone(a.shards, a.out, json.loads(a.child))))
        return 0
    lines = ["| student's large id tables | params | test AUC | trained |", "| --- | ---: | ---: | --- |"]
    for i, (name, student) in enumerate(VARIANTS.items()):
        cmd = [sys.executable, os.path.abspath(__file__), a.shards, os.path.join(a.out, f"variant-{i}"),
               "--child", json.dumps(student)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:  # the child's last line names what went wrong (e.g. no shards there)
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            print(f"row {name!r} failed: {last}", file=sys.stderr)
            return 2
        row = json.loads(done.stdout.strip().splitlines()[-1])
        lines.append(f"| {name} | {row['params']:,} | {row['auc']:.4f} | {row['message'].split(';')[0]} |")
        print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
