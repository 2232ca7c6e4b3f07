"""Adam against LazyAdam for the ctr teacher on streamed shards: train time, events/s and test AUC, in one run.

    python benchmarks/lazy_adam.py --shards DIR [--epochs 2] [--steps-per-epoch N] [--out runs/lazy_adam.md]

``DIR`` is a shop shard folder (``tfcompress data make``). Both teachers start from the same seed and read the
same stream; each trains ``--epochs`` epochs (``--steps-per-epoch`` caps an epoch, for big shops) and is
scored on the held-out test rows. Keras's Adam does full-table work on every step for an id table's sparse
gradient; :class:`~tfcompress.optimizers.LazyAdam` updates only the looked-up rows, so its step time does
not grow with the table.
"""
import argparse
import os
import resource
import sys
import time

TEACHER_LR = 1e-3


def train(log, fields, optimizer, epochs, steps):
    """One teacher: ``(seconds in fit, events trained, test AUC, peak RSS MB so far)``."""
    from tfcompress import keras
    from tfcompress.metrics import auc
    from tfcompress.models import ctr_teacher
    from tfcompress.tasks import CTRTask

    keras.utils.set_random_seed(0)
    task, model = CTRTask(), ctr_teacher(log.spec)
    model.compile(optimizer=optimizer(TEACHER_LR), loss=task.loss(), metrics=task.keras_metrics())
    steps = min(steps or fields["steps_per_epoch"], fields["steps_per_epoch"])
    t0 = time.perf_counter()
    model.fit(fields["train_ds"].repeat(), epochs=epochs, steps_per_epoch=steps, verbose=0)
    seconds = time.perf_counter() - t0
    scores = model.predict(fields["test_inputs"], batch_size=8192, verbose=0).reshape(-1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, epochs * steps * 1024, auc(fields["test_labels"], scores), peak


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", required=True)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--out", default=os.path.join("runs", "lazy_adam.md"))
    a = p.parse_args(argv)
    from throughput import publish

    from tfcompress import keras
    from tfcompress.data import open_shop_log
    from tfcompress.models import ctr_teacher
    from tfcompress.optimizers import LazyAdam, largest_table_rows

    log = open_shop_log(a.shards)
    fields = log.task_fields(batch_size=1024, calibration=100)
    rows = ["| optimizer | largest table | epochs x steps | fit s | events/s | test AUC | peak RSS MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    table_rows = largest_table_rows(ctr_teacher(log.spec))
    for name, optimizer in (("Adam", keras.optimizers.Adam), ("LazyAdam", LazyAdam)):
        seconds, events, score, peak = train(log, fields, optimizer, a.epochs, a.steps_per_epoch)
        rows.append(f"| {name} | {table_rows:,} | {a.epochs} x {events // a.epochs // 1024} | {seconds:.1f} | "
                    f"{events / seconds:,.0f} | {score:.4f} | {peak:,.0f} |")
        print(rows[-1], file=sys.stderr, flush=True)
    text = (f"`python benchmarks/lazy_adam.py {' '.join(argv if argv is not None else sys.argv[1:])}`: "
            f"{log.rows:,} events, {os.cpu_count()} CPUs (peak RSS is the process's so far)\n\n" + "\n".join(rows))
    publish(text, a.out)
    return text


if __name__ == "__main__":
    main()
