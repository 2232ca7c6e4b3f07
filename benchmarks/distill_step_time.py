"""Distiller train-step time vs teacher forward + student train step, measured in the same run.

    python benchmarks/distill_step_time.py [--events 20000] [--batch 1024] [--steps 50]

Prints milliseconds per step for (a) the teacher's forward pass, (b) the student's own train step
(``model.fit``-style, compiled), (c) the :class:`~tfcompress.distill.Distiller` train step, and the ratio
c / (a + b) (goal: <= 1.15). All three run as compiled ``tf.function``\\ s on the same batch.
"""
import argparse
import time

import numpy as np

import tfcompress
from tfcompress import keras, tf
from tfcompress.distill import Distiller


def _time(fn, steps, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = fn()
        tf.nest.map_structure(lambda v: v.numpy() if hasattr(v, "numpy") else v, out)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=50)
    a = p.parse_args(argv)
    data = tfcompress.data.make_ecommerce(events=a.events, seed=0)
    x, y = next(iter(tfcompress.data.to_dataset(data.events, data.spec, batch_size=a.batch)))
    keras.utils.set_random_seed(0)
    teacher = tfcompress.models.ctr_teacher(data.spec)
    student = tfcompress.models.ctr_student(data.spec)
    student.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    student.make_train_function()
    distiller = Distiller(tfcompress.models.ctr_student(data.spec), teacher, alpha=0.1, temperature=3.0)
    distiller.compile(optimizer="adam")
    distiller.make_train_function()

    teacher_fwd = tf.function(lambda: teacher(x, training=False))
    student_step = tf.function(lambda: student.train_step((x, y)))
    distill_step = tf.function(lambda: distiller.train_step((x, y)))
    rows = {}
    for _ in range(2):  # interleave to share the machine's noise
        rows.setdefault("teacher forward", []).append(_time(teacher_fwd, a.steps))
        rows.setdefault("student train step", []).append(_time(student_step, a.steps))
        rows.setdefault("distiller train step", []).append(_time(distill_step, a.steps))
    ms = {k: min(v) for k, v in rows.items()}
    for k, v in ms.items():
        print(f"{k:22s} {v:8.2f} ms/step (batch {a.batch})")
    ratio = ms["distiller train step"] / (ms["teacher forward"] + ms["student train step"])
    print(f"distiller / (teacher forward + student step) = {ratio:.3f}  (goal <= 1.15)")
    return ratio


if __name__ == "__main__":
    main()
