"""A pretrained BERT-class teacher (all-MiniLM-L6-v2 from ``../shared/data/minilm-l6``) distilled into the text
task's CNN student through a transfer set, then int8 TFLite: the evidence of issue 17, as one Markdown table.

For each label of the shared reviews CSV (``--labels recommend,sentiment``) and each labelled-set size
(``--labelled 1000,all``) and seed (``--seeds``), one ``tfcompress.pipeline.run`` of the text task with the
checkpoint folder as teacher (``teacher_head``: the linear probe by default) and stages teacher → baseline
(the CNN alone on the labelled rows) → distill (the CNN on labelled + transfer rows, offline from the
teacher's cached logits) → export (int8 TFLite). The teacher's outputs are cached on disk
(``--cache``, :class:`tfcompress.pretrained.TeacherOutputCache`) once per corpus, so the seeds and the
labelled sizes do not pay the teacher again. ``--finetune top:2`` adds one run (seed 0, the first label
and size) with that head. Students: test accuracy mean ± std over the seeds; the teacher: its weights'
bytes and its Keras 3 forward's batch-1 p50; the int8 student: its file's bytes and LiteRT batch-1 p50
(1 thread, the interpreter's invoke), side by side; latencies are the median over the seeds' runs.

Usage:
    python benchmarks/pretrained_teacher.py --quick      # the tiny slice: 6,000 reviews, 1 seed, seq 64
    python benchmarks/pretrained_teacher.py --labelled 1000 --seeds 3 --seq 64 --out /tmp/pretrained
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tfcompress.data import load_reviews, shared_data_dir  # noqa: E402
from tfcompress.pipeline import RunConfig, run  # noqa: E402
from tfcompress.tasks.text import TextTask  # noqa: E402

STAGES = ("teacher", "baseline", "distill", "export")


def reviews_frame(label):
    """The reviews CSV as a two-column table (text, class name) for ``label``."""
    corpus = load_reviews(None, label=label)
    return pd.DataFrame({"text": corpus.texts, "label": [corpus.class_names[y] for y in corpus.labels]})


def one_run(frame, teacher, labelled, seed, args, head=None):
    """The figures of one pipeline run: ``{result name: row}`` of its report, and its data description."""
    out = tempfile.mkdtemp(prefix="tfcompress_pretrained_bench_")
    cfg = RunConfig(task=TextTask(sequence_length=args.seq), data=frame, text="text", label="label",
                    teacher_model=teacher, teacher_head=head, labelled=labelled, seed=seed, quick=args.quick,
                    stages=STAGES, teacher_cache=args.cache, out=os.path.join(out, "run"), overwrite=True,
                    savedmodels_dir=os.path.join(out, "savedmodels"), tflite_dir=os.path.join(out, "tflite"),
                    latency_runs=args.runs, student_epochs=args.epochs, student_vocab=args.student_vocab)
    result = run(cfg)
    with open(os.path.join(result.report_dir, "report.json")) as f:
        report = json.load(f)
    shutil.rmtree(out, ignore_errors=True)
    return {r["name"]: r for r in report["stages"]}, report["meta"]["data"]


def mean_std(values):
    values = np.asarray(values, np.float64)
    return f"{values.mean():.4f} ± {values.std():.4f}" if len(values) > 1 else f"{values[0]:.4f}"


def table_row(label, labelled, head, runs):
    """One Markdown row from the runs (``[(rows, description)]``) of one setting."""
    rows = [r for r, _ in runs]
    t, q = rows[0]["teacher"], [r["student_int8"] for r in rows]
    acc = {k: [r[k]["accuracy"] for r in rows] for k in ("teacher", "student_alone", "student_distilled",
                                                          "student_int8")}
    t_p50 = float(np.median([r["teacher"]["latency_p50_us"] for r in rows])) / 1000
    s_p50 = float(np.median([r["latency_p50_us"] for r in q])) / 1000
    b32 = float(np.median([r["teacher"].get("keras3_p50_b32_ms", np.nan) for r in rows]))
    size = float(np.mean([r["size_bytes"] for r in q]))
    share = np.mean(acc["student_distilled"]) / np.mean(acc["teacher"])
    return (f"| {label} | {labelled} | {head} | {mean_std(acc['teacher'])} | {mean_std(acc['student_alone'])} | "
            f"{mean_std(acc['student_distilled'])} | {mean_std(acc['student_int8'])} | {share:.1%} | "
            f"{t['size_bytes'] / 1e6:.1f} MB | {size / 1e3:.0f} KB | {t['size_bytes'] / size:.0f}x | "
            f"{t_p50:.1f} | {b32:.0f} | {s_p50:.3f} | {t_p50 / s_p50:.0f}x |")


HEADER = ("| label | labelled | teacher head | teacher acc | CNN alone | CNN distilled | int8 TFLite | "
          "distilled / teacher | teacher weights | int8 file | smaller | teacher p50 b1 ms | teacher p50 b32 ms | "
          "int8 p50 b1 ms | faster |\n|" + " --- |" * 15)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="6,000 reviews, seq 64, 1 seed, small students")
    p.add_argument("--teacher", default=None, help="checkpoint folder (default: ../shared/data/minilm-l6)")
    p.add_argument("--labels", default="sentiment,recommend")
    p.add_argument("--labelled", default="1000,all", help="labelled-set sizes, comma separated ('all': every row)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per setting (default 3; quick 1)")
    p.add_argument("--seq", type=int, default=None, help="tokens per text (default 64 quick, 128 full)")
    p.add_argument("--head", default="probe", help="the teacher's head: probe, top:N or full")
    p.add_argument("--finetune", default=None, help="one more run with this head, e.g. top:2")
    p.add_argument("--epochs", type=int, default=None, help="student epochs (default: the task's)")
    p.add_argument("--runs", type=int, default=50, help="latency runs per model")
    p.add_argument("--cache", default=None, help="teacher-output cache folder (default: the user's cache)")
    p.add_argument("--student-vocab", default="own", choices=("own", "teacher"), help="the CNN's vocabulary: own "
                   "(WordPiece learned on the data) or the teacher's")
    p.add_argument("--out", default=None, help="also write the table to OUT/pretrained_teacher.md")
    args = p.parse_args(argv)
    teacher = args.teacher or os.path.join(shared_data_dir() or "", "minilm-l6")
    if not os.path.isdir(teacher):
        print("SKIPPED: no ../shared/data/minilm-l6 checkpoint folder (give --teacher FOLDER)")
        return 0
    seeds = args.seeds or (1 if args.quick else 3)
    lines, started = [HEADER], time.perf_counter()
    settings = [(label, None if n == "all" else int(n), args.head) for label in args.labels.split(",")
                for n in args.labelled.split(",")]
    if args.finetune:
        settings.append((settings[0][0], settings[0][1], args.finetune))
    frames = {}
    for label, labelled, head in settings:
        frame = frames.setdefault(label, reviews_frame(label))
        n_seeds = 1 if head == args.finetune and head != args.head else seeds
        runs = [one_run(frame, teacher, labelled, seed, args, None if head == "probe" else head)
                for seed in range(n_seeds)]
        shown = head if args.student_vocab == "own" else f"{head}, student vocab: teacher's"
        lines.append(table_row(label, labelled or "all", shown, runs))
        print(f"[{time.perf_counter() - started:7.0f} s] {label}, {labelled or 'all'} labelled, {head}: "
              f"{runs[0][1]}\n{lines[-1]}", file=sys.stderr, flush=True)
    table = "\n".join(lines)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "pretrained_teacher.md"), "w") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
