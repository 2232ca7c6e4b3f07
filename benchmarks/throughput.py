"""Train-step throughput of the ctr recipe: today's settings against XLA, tf.data tuning and batch x4, in one run.

    python benchmarks/throughput.py [--events 100000] [--batch 1024] [--steps 20] [--repeats 3]
                                    [--sources memory,shards] [--jobs teacher,distill,distill_qr,distill_hash]
                                    [--out runs/throughput/throughput.md]

Jobs, built as the pipeline builds them (``ctr_teacher`` / ``ctr_student`` of the shop's spec, Adam, the task's
loss and AUC metric): ``teacher`` (its label train step), ``distill`` (the :class:`~tfcompress.distill.Distiller`
step, teacher into the student), ``distill_qr`` / ``distill_hash`` (the student with quotient-remainder or hashed
id tables, as for big vocabularies: ``compress_min_vocab=1000`` here (or the largest table's size) so the shop's
user table is compressed).
Sources: ``memory`` (``to_dataset`` of the drawn shop) and ``shards`` (Parquet shards by ``write_shop_shards``,
streamed by ``ShardLog.dataset``). Variants:

* ``today``: the settings before this benchmark (in memory: the per-row ``from_tensor_slices`` pipeline, kept
  here as :func:`rows_dataset`);
* ``xla``: ``compile(jit_compile=True)`` (a model XLA cannot compile falls back, the reason in the table);
* ``data``: tf.data tuned (in memory: the library's index-gather ``to_dataset``; shards: ``tf.data.Options``
  autotune on top of the parallel interleave and map it has);
* ``batch4``: batch x4, learning rate x2 (the square-root rule, for Adam; the linear rule x4 is SGD's);
* ``data+batch4`` and ``xla+data+batch4``: the combinations.

Every variant is built and warmed up first (XLA compiles, shuffle buffers fill: excluded); then ``--repeats``
rounds time ``--steps`` train steps of each variant in turn (a fresh iterator and ``--warmup`` steps before
each timing), so the machine's load falls on all alike; the table has the medians. Mixed precision is measured
only where a GPU is visible. The Markdown table is printed and written to ``--out``.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

VARIANTS = {  # name -> (jit_compile, tuned data, batch factor)
    "today": (False, False, 1), "xla": (True, False, 1), "data": (False, True, 1), "batch4": (False, False, 4),
    "data+batch4": (False, True, 4), "xla+data+batch4": (True, True, 4)}
JOBS = ("teacher", "distill", "distill_qr", "distill_hash")
#: the ctr task's learning rates (``CTRTask.defaults``): the teacher's and the student's
TEACHER_LR, STUDENT_LR = 1e-3, 3e-3
NO_GPU = "no GPU visible: mixed precision (and GPU rows) not measured"


def rows_dataset(df, spec, *, batch_size, shuffle=True, seed=0):
    """Today's in-memory pipeline (``to_dataset`` before the index gather): one element per row, shuffled."""
    from tfcompress import tf
    from tfcompress.data import frame_to_inputs, labels_of

    ds = tf.data.Dataset.from_tensor_slices((frame_to_inputs(df, spec), labels_of(df, spec)))
    if shuffle:
        ds = ds.shuffle(min(len(df), 100_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def tuned_options():
    """The ``tf.data.Options`` tried on the shard stream: autotune with every core and a RAM budget."""
    from tfcompress import tf

    o = tf.data.Options()
    o.autotune.enabled = True
    o.autotune.cpu_budget = os.cpu_count()
    o.autotune.ram_budget = 2 << 30
    o.experimental_optimization.inject_prefetch = True
    o.experimental_optimization.map_parallelization = True
    return o


class Source:
    """The shop in memory or as shards: its spec and ``dataset(batch_size, tuned)`` (train part, shuffled)."""

    def __init__(self, kind, events, folder=None):
        from tfcompress.data import make_ecommerce, open_shop_log, write_shop_shards

        self.kind = kind
        if kind == "memory":
            shop = make_ecommerce(events, seed=0)
            self.frame, self.spec = shop.events, shop.spec
        else:
            folder = folder or tempfile.mkdtemp(prefix="tfc-shards-")
            if not os.path.exists(os.path.join(folder, "manifest.json")):
                write_shop_shards(events, folder, shard_rows=max(1000, events // 8))
            self.log = open_shop_log(folder)
            self.spec = self.log.spec

    def dataset(self, batch_size, tuned):
        from tfcompress.data import to_dataset

        if self.kind == "memory":
            if tuned:
                return to_dataset(self.frame, self.spec, batch_size=batch_size, shuffle=True, seed=0)
            return rows_dataset(self.frame, self.spec, batch_size=batch_size)
        ds = self.log.dataset(0, batch_size=batch_size, shuffle=True, seed=0)
        return ds.with_options(tuned_options()) if tuned else ds


def build_job(job, spec, teacher, lr_factor, jit, lazy=False):
    """The compiled model of ``job`` (its train step is what is timed); ``teacher`` is shared by distillers;
    ``lazy``: the teacher trains with :class:`~tfcompress.optimizers.LazyAdam` instead of Adam."""
    from tfcompress import keras
    from tfcompress.distill import Distiller
    from tfcompress.models import ctr_student, ctr_teacher
    from tfcompress.optimizers import LazyAdam
    from tfcompress.tasks import CTRTask

    task = CTRTask()
    if job == "teacher":
        model = ctr_teacher(spec)
        model.compile(optimizer=(LazyAdam if lazy else keras.optimizers.Adam)(TEACHER_LR * lr_factor), loss=task.loss(),
                      metrics=task.keras_metrics(), jit_compile=jit)
        return model
    least = min(1000, max(f.vocab_size for f in spec.categorical))  # the user table at least is compressed
    tables = {"distill": {}, "distill_qr": dict(embedding="qr", compress_min_vocab=least),
              "distill_hash": dict(embedding="hash", compress_min_vocab=least)}[job]
    model = Distiller(ctr_student(spec, **tables), teacher, alpha=0.1, temperature=3.0, objective="binary")
    model.compile(optimizer=keras.optimizers.Adam(STUDENT_LR * lr_factor), metrics=task.keras_metrics(),
                  jit_compile=jit)
    return model


def measure(model, dataset, steps, warmup=2):
    """Steps per second of ``model``'s compiled train step over ``steps`` batches of a fresh iterator of
    ``dataset`` (repeated), after ``warmup`` untimed steps.

    Example:
        >>> import numpy as np
        >>> from tfcompress import keras, tf
        >>> m = keras.Sequential([keras.layers.Dense(1)]); m.compile("adam", "mse")
        >>> ds = tf.data.Dataset.from_tensor_slices((np.ones((8, 2)), np.ones(8))).batch(4)
        >>> measure(m, ds, 3) > 0
        True
    """
    step = model.make_train_function()
    it = iter(dataset.repeat())
    for _ in range(warmup):
        _sync(step(it))
    t0 = time.perf_counter()
    for _ in range(steps):
        logs = step(it)
    _sync(logs)
    return steps / (time.perf_counter() - t0)


def _sync(logs):
    for v in logs.values():
        v.numpy()


def prepare(job, source, variant, teacher, batch, steps):
    """Build and warm up one cell; returns ``(model, dataset, batch, jit, note)`` (XLA falls back with its
    reason when the model cannot be compiled)."""
    jit, tuned, factor = VARIANTS[variant]
    lr = factor ** 0.5
    ds, note = source.dataset(batch * factor, tuned), ""
    model = build_job(job, source.spec, teacher, lr, jit)
    try:
        one_epoch(model, ds) if jit else measure(model, ds, 1, warmup=1)
    except Exception as e:  # noqa: BLE001 - any XLA failure: fall back, say why
        if not jit:
            raise
        note = "XLA cannot compile: " + _first_line(e)
        jit, model = False, build_job(job, source.spec, teacher, lr, False)
        measure(model, ds, 1, warmup=1)
    return model, ds, batch * factor, jit, note


def one_epoch(model, dataset):
    """Train steps over one pass of ``dataset``: XLA compiles once per batch shape, the epoch's last (partial)
    batch included, so no timed step compiles."""
    from tfcompress import tf

    step, it = model.make_train_function(), iter(dataset)
    try:
        while True:
            _sync(step(it))
    except (tf.errors.OutOfRangeError, StopIteration):
        pass


def _first_line(e):
    """The error's gist: from XLA's "Detected unsupported operations" on (the op and its types), else its start."""
    text = " ".join(str(e).split())
    at = text.find("Detected unsupported operations")
    text = text[at:] if at >= 0 else text
    dtype = text.find("T=DT_")
    gist = text[:text.find("(")] + text[dtype:dtype + 11] if at >= 0 and dtype >= 0 else text[:160]
    return type(e).__name__ + ": " + gist.strip()


def xla_probe():
    """Whether XLA compiles a string-hashing model (``Hashing`` of a string input, as a model with raw string
    ids has): ``""`` when it does, else the reason."""
    import numpy as np

    from tfcompress import keras, tf

    inp = keras.Input((), dtype=tf.string, name="sku")
    x = keras.layers.Embedding(64, 4)(keras.layers.Hashing(64)(inp))
    model = keras.Model(inp, keras.layers.Dense(1)(x))
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=True)
    ds = tf.data.Dataset.from_tensor_slices((np.array(["a", "b", "c", "d"]), np.ones(4, "float32"))).batch(2)
    try:
        measure(model, ds, 1, warmup=0)
        return ""
    except Exception as e:  # noqa: BLE001
        return _first_line(e)


def run(events, batch, steps, repeats, sources, jobs, warmup=2, shards=None):
    """Measure every (job, source, variant); returns rows (dicts) with the median steps/s and examples/s."""
    from tfcompress.models import ctr_teacher

    cells, times = {}, {}
    for kind in sources:
        source = Source(kind, events, shards)
        teacher = ctr_teacher(source.spec)
        for job in jobs:
            for variant in VARIANTS:
                cells[(job, kind, variant)] = prepare(job, source, variant, teacher, batch, steps)
                print(f"ready {job} {kind} {variant}", file=sys.stderr, flush=True)
    for r in range(repeats):
        for key, (model, ds, *_rest) in cells.items():
            times.setdefault(key, []).append(measure(model, ds, steps, warmup))
        print(f"round {r + 1}/{repeats} done\n" + table(medians(cells, times)), file=sys.stderr, flush=True)
    return medians(cells, times)


def medians(cells, times):
    """Rows (dicts) of the median steps/s and examples/s of each cell, and the ratio to ``today``'s."""
    rows = []
    for (job, kind, variant), (_m, _d, b, jit, note) in cells.items():
        sps = statistics.median(times[(job, kind, variant)])
        rows.append({"job": job, "source": kind, "variant": variant, "batch": b, "xla": jit, "steps_s": sps,
                     "examples_s": sps * b, "note": note, "runs": times[(job, kind, variant)]})
    base = {(r["job"], r["source"]): r["examples_s"] for r in rows if r["variant"] == "today"}
    for r in rows:
        r["ratio"] = r["examples_s"] / base[(r["job"], r["source"])]
    return rows


def table(rows):
    """The Markdown table of :func:`run`'s rows; the best variant of each job and source in bold."""
    best = {}
    for r in rows:
        k = (r["job"], r["source"])
        if k not in best or r["examples_s"] > best[k]["examples_s"]:
            best[k] = r
    out = ["| job | source | variant | batch | XLA | steps/s | examples/s | x today | note |",
           "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        mark = "**" if best[(r["job"], r["source"])] is r else ""
        out.append(f"| {r['job']} | {r['source']} | {mark}{r['variant']}{mark} | {r['batch']} | "
                   f"{'on' if r['xla'] else 'off'} | {r['steps_s']:.1f} | {r['examples_s']:,.0f} | "
                   f"{mark}{r['ratio']:.2f}{mark} | {r['note']} |")
    return "\n".join(out)


def gpu_line():
    """A line on mixed precision: measured only with a GPU; without one it says so."""
    from tfcompress import tf

    gpus = tf.config.list_physical_devices("GPU")
    return NO_GPU if not gpus else f"{len(gpus)} GPU(s) visible: run with --mixed to add mixed_float16 rows"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sources", default="memory,shards")
    p.add_argument("--jobs", default=",".join(JOBS))
    p.add_argument("--shards", help="a shop shard folder to reuse (default: written to a temporary folder)")
    p.add_argument("--mixed", action="store_true", help="with a GPU: set the mixed_float16 policy for all")
    p.add_argument("--out", default=os.path.join("runs", "throughput", "throughput.md"))
    a = p.parse_args(argv)
    if a.mixed:
        from tfcompress import keras, tf

        if tf.config.list_physical_devices("GPU"):
            keras.mixed_precision.set_global_policy("mixed_float16")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    rows = run(a.events, a.batch, a.steps, a.repeats, a.sources.split(","), a.jobs.split(","), a.warmup, a.shards)
    probe = xla_probe()
    lines = [f"`python benchmarks/throughput.py {' '.join(argv if argv is not None else sys.argv[1:])}`: "
             f"{a.events:,} events, {a.steps} timed steps x {a.repeats} rounds (medians), {os.cpu_count()} CPUs, "
             f"load average {load0[0]:.1f} -> {os.getloadavg()[0]:.1f}, {time.perf_counter() - t0:.0f} s", "",
             table(rows), "",
             "XLA on a string-hashing model (Hashing of a string input): "
             + ("compiles" if not probe else f"cannot compile, falls back: {probe}"), gpu_line()]
    publish("\n".join(lines), a.out)
    return rows


def publish(text, out):
    """Print ``text`` and write it to the file ``out`` (its folder made)."""
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
