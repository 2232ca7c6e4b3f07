"""Distillation evidence, one table per task: teacher, student alone and the student distilled by each method.

Every task trains its teacher(s) once (seed 0), then for seeds ``0..S-1`` the student alone and the same
student (same seed, same data order, same optimizer and epochs) distilled by each applicable method of
:mod:`tfcompress.distill`. Each row gives the task metric as mean ± std (sample std, ddof=1) over the
seeds, ``delta_vs_alone`` (mean minus the student-alone mean; for RMSE lower is better) and
``beats_alone``: True when the improvement over the student alone is larger than the pooled std
``sqrt((std_method² + std_alone²) / 2)``; ``verdict`` says "better", "worse" (worse by more than the
pooled std) or "no clear difference". A last line per task says in plain words where distillation did
NOT beat the student alone.

Tasks (alpha = 0.5 label weight and temperature T = 2 for every response term unless said):

* ``ctr`` — built-in synthetic shop as the ctr task loads it (time split 80/10/10, the last 10 % the test),
  ``ctr_teacher`` (32-d embeddings, MLP 256-128) -> ``ctr_student``; metric test AUC. Methods: response
  (binary soft targets), feature hint (``FeatureDistiller`` on ``cross_deep``, the representation under the
  logit, + response), relational (``RelationalDistiller``, batch cosine-similarity matrices of
  ``cross_deep``, + response), multi-teacher (``MultiTeacherDistiller``, equal weights over the teacher and
  a second, smaller teacher of seed 1), offline (``cache_teacher_outputs`` once, then ``OfflineDistiller``
  on ``cached_dataset``; same losses as response).
* ``movielens_rank`` — MovieLens-small, each user's last 20 % of ratings (by time) held out; relevance
  = rating >= 4. Per-user lists of ``list_size`` rated movies from ``make_list_batches`` (short lists padded
  with other users' movies, label 0). Metric: NDCG@10 on the held-out users' lists (lists with at least one
  relevant movie; NOT the sampled leave-last-out protocol). Teacher and student alone train pointwise
  (binary cross-entropy) on the flattened training lists; ``RankingDistiller`` listwise / pairwise / top-K
  (Tang & Wang, K = 3) train on the same lists.
* ``movielens_rating`` — same split, rating regression (DCN models with a linear output, trained on the
  rating minus the training mean); metric test RMSE. Methods: ``Distiller(objective="regression")`` with MSE and
  with Huber (Huber then applies to the label term as well).
* ``fashion`` — Fashion-MNIST subset as the image task loads it, ``image_teacher`` (ResNet, widths 16-32-64,
  78k parameters) -> ``image_student`` (MobileNet-style, 10k parameters); test accuracy. Methods: response
  (softmax KL · T²), feature hint (``FeatureDistiller`` on the pooled features ``pool`` -> ``pool``, both 64
  wide so matched directly, + response).
* ``reviews`` — Women's Clothing reviews as the text task loads them (label ``recommend``, stratified 80/10/10
  split, keras-nlp WordPiece tokens; quick: 6,000 reviews, 64 tokens); ``text_teacher`` (Transformer, width
  64, 2 blocks) -> CNN ``text_student`` and a one-block Transformer ``text_student(kind="transformer")`` of
  width 64; test accuracy. Methods: response (KL) for both students and, for the Transformer student,
  hidden-state matching (``FeatureDistiller`` ``block_0`` -> the teacher's last block, same width so no
  projection, + response). Each distilled row is compared with the same student alone.

The ctr, fashion and reviews tables take their data, builders and label training from the pipeline's
tasks (``get_task(...).load(RunConfig(...))``, the task's builders, ``tfcompress.stages.fit_student``): every
seed and method sees the task's training split in the same order; the MovieLens tables (no pipeline task has
their per-user split) build their own datasets.

Tasks whose data is missing (MovieLens-small, Fashion-MNIST, the reviews CSV in ``../shared/data``) are
skipped with the reason printed.

Usage:
    python benchmarks/distill_table.py --quick --seeds 2          # 7 CPU-minutes (19 min wall at load 7-13)
    python benchmarks/distill_table.py --seeds 3 --out /tmp/distill   # the full run (estimated, not measured)
    python benchmarks/distill_table.py --tasks ctr,fashion --seeds 3
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tfcompress import keras, tf  # noqa: E402
from tfcompress.bench import Report  # noqa: E402
from tfcompress.metrics import ndcg_at_k, rmse  # noqa: E402
from tfcompress.data import find_dataset, frame_to_inputs, missing_data_message  # noqa: E402
from tfcompress.distill import (Distiller, FeatureDistiller, MultiTeacherDistiller, OfflineDistiller,  # noqa: E402
                                RankingDistiller, RelationalDistiller, cache_teacher_outputs, cached_dataset,
                                make_list_batches)
from tfcompress.models import ctr_student, ctr_teacher  # noqa: E402
from tfcompress.pipeline import RunConfig  # noqa: E402
from tfcompress.stages import RunContext, fit_student  # noqa: E402
from tfcompress.tasks import get_task  # noqa: E402

TASKS = ("ctr", "movielens_rank", "movielens_rating", "fashion", "reviews")
ALPHA, TEMPERATURE = 0.5, 2.0

CONFIGS = {
    "quick": {"ctr_events": 12_000, "ctr_epochs": 2, "ml_users": 150, "ml_epochs": 1, "list_size": 20,
              "fashion_train": 3000, "fashion_test": 1000, "fashion_epochs": 2, "teacher_widths": (16, 32, 64),
              "quick_text": True, "text_blocks": 2, "text_epochs": 2, "teacher_extra_epochs": 1},
    "full": {"ctr_events": 50_000, "ctr_epochs": 2, "ml_users": None, "ml_epochs": 2, "list_size": 20,
             "fashion_train": 12_000, "fashion_test": 5000, "fashion_epochs": 2, "teacher_widths": (16, 32, 64),
             "quick_text": False, "text_blocks": 2, "text_epochs": 2, "teacher_extra_epochs": 1},
}


# ---------------------------------------------------------------------------------------------------
# Table helpers


class MethodTable:
    """Collects per-seed metric values of one table (one task's models) and turns them into its rows."""

    def __init__(self, name, metric, higher_is_better, data):
        self.name, self.metric, self.higher, self.data = name, metric, higher_is_better, data
        self.entries = {}  # model name -> dict(values, student, method, params, seconds, baseline)
        self.notes = []

    def add(self, model, value, *, role, student="", baseline=None, params=None, seconds=0.0):
        e = self.entries.setdefault(model, {"values": [], "role": role, "student": student, "baseline": baseline,
                                            "params": params, "seconds": 0.0})
        e["values"].append(float(value))
        e["seconds"] += float(seconds)

    def rows(self):
        def stats(v):
            v = np.asarray(v, float)
            return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else 0.0)

        out = []
        for model, e in self.entries.items():
            mean, std = stats(e["values"])
            row = {"task": self.name, "model": model, "metric": self.metric, "mean": mean, "std": std,
                   "seeds": len(e["values"]), "per_seed": ", ".join(f"{v:.4f}" for v in e["values"]),
                   "delta_vs_alone": None, "pooled_std": None, "beats_alone": None, "verdict": "",
                   "params": e["params"], "train_s": round(e["seconds"], 1)}
            base = self.entries.get(e["baseline"]) if e["baseline"] else None
            if base is not None:
                b_mean, b_std = stats(base["values"])
                delta = mean - b_mean
                gain = delta if self.higher else -delta
                pooled = float(np.sqrt((std ** 2 + b_std ** 2) / 2.0))
                row.update(delta_vs_alone=delta, pooled_std=pooled, beats_alone=bool(gain > pooled),
                           verdict="better" if gain > pooled else ("worse" if gain < -pooled else
                                                                  "no clear difference"))
            out.append(row)
        return out

    def summary(self):
        rows = [r for r in self.rows() if r["verdict"]]
        word = "higher" if self.higher else "lower"
        failed = [f"{r['model']} ({r['verdict']}: delta {r['delta_vs_alone']:+.4f}, pooled std "
                  f"{r['pooled_std']:.4f})" for r in rows if not r["beats_alone"]]
        won = [r["model"] for r in rows if r["beats_alone"]]
        seeds = max((r["seeds"] for r in rows), default=0)
        text = f"{self.name} ({self.metric}, {word} is better, {seeds} seed(s)): "
        if failed:
            text += "distillation did NOT beat the student alone for " + "; ".join(failed) + ". "
        else:
            text += "every distillation method beat the student alone by more than the pooled std. "
        text += ("It did for: " + ", ".join(won) + "." if won else "No method beat the student alone.")
        teachers = [r for r in self.rows() if self.entries[r["model"]]["role"] == "teacher"]
        for base in sorted({r["model"] for r in self.rows() if self.entries[r["model"]]["role"] == "student"}):
            b = next(r for r in self.rows() if r["model"] == base)
            t = teachers[0] if teachers else None
            if t is not None and not ((t["mean"] > b["mean"]) if self.higher else (t["mean"] < b["mean"])):
                text += (f" Note: the teacher ({t['mean']:.4f}) is not better than the {base} ({b['mean']:.4f}), "
                         "so there is little to distil.")
        if seeds < 2:
            text += " (one seed: no spread, so every positive delta counts; not evidence.)"
        for note in self.notes:
            text += " " + note
        return text


def _fit(model, data, epochs, lr, loss=None, **kw):
    """Compile and fit a distiller (``loss=None``) or a MovieLens model on ``data``; returns seconds."""
    t0 = time.time()
    if loss is None:
        model.compile(keras.optimizers.Adam(lr))
    else:
        model.compile(keras.optimizers.Adam(lr), loss)
    model.fit(data, epochs=epochs, verbose=0, **kw)
    return time.time() - t0


def load_task(name, **options):
    """A RunContext with the pipeline task ``name`` and its data, loaded as ``tfcompress run`` loads them
    (``options``: :class:`~tfcompress.pipeline.RunConfig` fields)."""
    config = RunConfig(task=name, alpha=ALPHA, temperature=TEMPERATURE, **options).validate()
    task = get_task(name)
    return RunContext(config=config, task=task, data=task.load(config))


def _fit_task(context, model, epochs, lr):
    """Train ``model`` on labels on its task's training split, the pipeline's fit path; returns seconds."""
    t0 = time.time()
    fit_student(context, model, epochs, lr=lr)
    return time.time() - t0


def _predict(model, x, batch_size=2048):
    return model.predict(x, batch_size=batch_size, verbose=0)


BCE = keras.losses.BinaryCrossentropy(from_logits=True)


def _run_methods(table, seeds, make_student, alone_fit, methods, evaluate, log, student_label="student", tag=""):
    """For each seed: the student alone, then each ``(name, make_distiller, data_fn)`` method.

    ``alone_fit(student, seed)`` trains the student alone and returns seconds; ``make_distiller(student)`` wraps
    a fresh student, ``data_fn(seed)`` gives its training data; ``evaluate(student)`` the metric."""
    alone_name = f"{student_label} alone"
    for seed in range(seeds):
        keras.utils.set_random_seed(seed)
        s = make_student()
        secs = alone_fit(s, seed)
        table.add(alone_name, evaluate(s), role="student", student=student_label, params=s.count_params(),
                 seconds=secs)
        msg = [f"alone {table.entries[alone_name]['values'][-1]:.4f}"]
        for name, make_distiller, data_fn, epochs, lr in methods:
            keras.utils.set_random_seed(seed)
            s = make_student()
            d = make_distiller(s)
            secs = _fit(d, data_fn(seed), epochs, lr)
            label = f"{student_label} + {name}"
            table.add(label, evaluate(s), role="distilled", student=student_label, baseline=alone_name,
                     params=s.count_params(), seconds=secs)
            msg.append(f"{name} {table.entries[label]['values'][-1]:.4f}")
        log(f"{table.name}{tag}: seed {seed}: " + ", ".join(msg))


# ---------------------------------------------------------------------------------------------------
# CTR on the built-in shop


def task_ctr(cfg, seeds, log, folder):
    context = load_task("ctr", events=cfg["ctr_events"], batch_size=256)
    task, split = context.task, context.data
    spec = split.spec
    table = MethodTable("ctr", "AUC", True, split.description)
    epochs, batch = cfg["ctr_epochs"], 256

    def data(seed):  # the task's training split, in its order, for every seed
        return split.train_ds

    def evaluate(m):
        return task.evaluate(_predict(m, split.test_inputs), split.test_labels)["auc"]

    t0 = time.time()
    keras.utils.set_random_seed(0)
    teacher = ctr_teacher(spec, embedding_dim=32, hidden=(256, 128))
    secs = _fit_task(context, teacher, epochs, 3e-3)
    table.add("teacher", evaluate(teacher), role="teacher", params=teacher.count_params(), seconds=secs)
    keras.utils.set_random_seed(1)
    teacher_b = ctr_teacher(spec, embedding_dim=16, cross_layers=2, hidden=(128, 64), name="ctr_teacher_b")
    secs = _fit_task(context, teacher_b, epochs, 3e-3)
    table.add("second teacher (smaller, seed 1)", evaluate(teacher_b), role="teacher",
             params=teacher_b.count_params(), seconds=secs)
    cache = cache_teacher_outputs(teacher, split.train_ds, os.path.join(folder, "ctr_cache"), chunk_size=8192)
    log(f"ctr: teachers {table.entries['teacher']['values'][0]:.4f} / "
        f"{table.entries['second teacher (smaller, seed 1)']['values'][0]:.4f}, cache written "
        f"({time.time() - t0:.0f}s)")

    resp = dict(alpha=ALPHA, temperature=TEMPERATURE)
    lr = 3e-3
    methods = [
        ("response", lambda s: Distiller(s, teacher, objective="binary", **resp), data, epochs, lr),
        ("feature hint (cross_deep)", lambda s: FeatureDistiller(s, teacher, pairs={"cross_deep": "cross_deep"},
                                                                 beta=0.1, **resp), data, epochs, lr),
        ("relational (similarity)", lambda s: RelationalDistiller(
            s, teacher, student_layer="cross_deep", teacher_layer="cross_deep", method="similarity", beta=1.0,
            **resp), data, epochs, lr),
        ("multi-teacher (2, equal weights)", lambda s: MultiTeacherDistiller(s, [teacher, teacher_b],
                                                                              weights=[1, 1], **resp), data, epochs,
         lr),
        ("offline (cached teacher)", lambda s: OfflineDistiller(s, **resp),
         lambda seed: cached_dataset(cache, batch_size=batch, shuffle=True, seed=seed), epochs, lr),
    ]
    _run_methods(table, seeds, lambda: ctr_student(spec), lambda s, seed: _fit_task(context, s, epochs, lr),
                 methods, evaluate, log)
    return table


# ---------------------------------------------------------------------------------------------------
# MovieLens-small


def _movielens(cfg):
    """(events, spec, train, test, source): each user's last 20 % of ratings by time held out."""
    from tfcompress.data.movielens import load_movielens

    d = load_movielens(use_tfds=False)
    events, spec = d.events, d.spec
    if cfg["ml_users"]:
        users = np.random.default_rng(0).permutation(events.user_id.unique())[:cfg["ml_users"]]
        events = events[events.user_id.isin(users)].reset_index(drop=True)
    ordered = events.sort_values(["user_id", "timestamp"], kind="stable")
    pos = ordered.groupby("user_id").cumcount()
    size = ordered.groupby("user_id")["user_id"].transform("size")
    is_test = pos >= np.ceil(0.8 * size)
    train = ordered[~is_test].reset_index(drop=True)
    test = ordered[is_test].reset_index(drop=True)
    source = (f"MovieLens-small {events.user_id.nunique()} users, {len(events)} ratings; per-user last 20 % "
              f"by time held out: {len(train)} train / {len(test)} test")
    return events, spec, train, test, source


def _flat(x, y=None):
    flat = {k: v.reshape(-1) for k, v in x.items()}
    return flat if y is None else (flat, y.reshape(-1).astype("float32"))


def task_movielens_rank(cfg, seeds, log, folder):
    events, spec, train, test, source = _movielens(cfg)
    L, lists_per_batch, epochs = cfg["list_size"], 16, cfg["ml_epochs"]
    tx, ty = make_list_batches(test, spec, list_size=L, as_arrays=True, shuffle=False, seed=0, min_positives=1)
    table = MethodTable("movielens_rank", "NDCG@10", True,
                f"{source}; lists of {L} (test: {len(ty)} lists with >= 1 relevant movie)")
    tx_flat = _flat(tx)

    def lists(seed):
        return make_list_batches(train, spec, list_size=L, batch_size=lists_per_batch, seed=seed)

    def rows(seed):  # the same lists, flattened, for pointwise training
        x, y = make_list_batches(train, spec, list_size=L, as_arrays=True, seed=seed)
        fx, fy = _flat(x, y)
        return tf.data.Dataset.from_tensor_slices((fx, fy)).batch(lists_per_batch * L).prefetch(tf.data.AUTOTUNE)

    def evaluate(m):
        return ndcg_at_k(ty, _predict(m, tx_flat, 4096).reshape(ty.shape), k=10)

    keras.utils.set_random_seed(0)
    teacher = ctr_teacher(spec, embedding_dim=32, hidden=(256, 128))
    secs = _fit(teacher, rows(0), epochs + cfg["teacher_extra_epochs"], 3e-3, BCE)
    table.add("teacher", evaluate(teacher), role="teacher", params=teacher.count_params(), seconds=secs)
    rand = np.mean([ndcg_at_k(ty, np.random.default_rng(i).random(ty.shape), k=10) for i in range(5)])
    table.notes.append(f"Random order gives NDCG@10 {rand:.4f}.")
    log(f"movielens_rank: teacher {table.entries['teacher']['values'][0]:.4f} ({secs:.0f}s)")
    lr = 3e-3
    methods = [(f"ranking {m}", (lambda s, m=m: RankingDistiller(s, teacher, method=m, top_k=3, alpha=ALPHA,
                                                                 temperature=TEMPERATURE)), lists, epochs, lr)
               for m in ("listwise", "pairwise", "topk")]
    _run_methods(table, seeds, lambda: ctr_student(spec), lambda s, seed: _fit(s, rows(seed), epochs, lr, BCE),
                 methods, evaluate, log)
    return table


def task_movielens_rating(cfg, seeds, log, folder):
    events, spec, train, test, source = _movielens(cfg)
    mean = float(train["rating"].mean())
    table = MethodTable("movielens_rating", "RMSE", False, f"{source}; targets centred on the training mean {mean:.3f}")
    x_train, y_train = frame_to_inputs(train, spec), (train["rating"].to_numpy() - mean).astype("float32")
    x_test, y_test = frame_to_inputs(test, spec), test["rating"].to_numpy()
    epochs, batch, lr = cfg["ml_epochs"], 256, 3e-3

    def data(seed):
        ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
        return ds.shuffle(len(y_train), seed=seed).batch(batch).prefetch(tf.data.AUTOTUNE)

    def evaluate(m):
        return rmse(y_test, _predict(m, x_test).ravel() + mean)

    mse = keras.losses.MeanSquaredError()
    keras.utils.set_random_seed(0)
    teacher = ctr_teacher(spec, embedding_dim=32, hidden=(256, 128))
    secs = _fit(teacher, data(0), epochs + cfg["teacher_extra_epochs"], 3e-3, mse)
    table.add("teacher", evaluate(teacher), role="teacher", params=teacher.count_params(), seconds=secs)
    table.notes.append(f"Predicting the training mean gives RMSE {rmse(y_test, np.full(len(y_test), mean)):.4f}.")
    log(f"movielens_rating: teacher {table.entries['teacher']['values'][0]:.4f} ({secs:.0f}s)")
    methods = [(f"response ({loss})", (lambda s, loss=loss: Distiller(s, teacher, objective="regression",
                                                                       regression_loss=loss, alpha=ALPHA)),
                data, epochs, lr) for loss in ("mse", "huber")]
    _run_methods(table, seeds, lambda: ctr_student(spec), lambda s, seed: _fit(s, data(seed), epochs, lr, mse),
                 methods, evaluate, log)
    return table


# ---------------------------------------------------------------------------------------------------
# Fashion-MNIST


def task_fashion(cfg, seeds, log, folder):
    context = load_task("image", data="fashion_mnist", events=cfg["fashion_train"], batch_size=64)
    task, split = context.task, context.data
    x_test = {k: v[:cfg["fashion_test"]] for k, v in split.test_inputs.items()}
    y_test = split.test_labels[:cfg["fashion_test"]]
    table = MethodTable("fashion", "accuracy", True, f"{split.description}; the first {len(y_test)} test images")
    epochs, lr = cfg["fashion_epochs"], 3e-3

    def data(seed):  # the task's training split, in its order, for every seed
        return split.train_ds

    def evaluate(m):
        return task.evaluate(_predict(m, x_test, 1024), y_test)["accuracy"]

    keras.utils.set_random_seed(0)
    teacher = task.build_teacher(split, widths=cfg["teacher_widths"])
    secs = _fit_task(context, teacher, epochs + cfg["teacher_extra_epochs"], 2e-3)
    table.add("teacher", evaluate(teacher), role="teacher", params=teacher.count_params(), seconds=secs)
    log(f"fashion: teacher {table.entries['teacher']['values'][0]:.4f} ({secs:.0f}s)")
    resp = dict(alpha=ALPHA, temperature=TEMPERATURE, objective="multiclass")
    methods = [
        ("response (KL·T²)", lambda s: Distiller(s, teacher, **resp), data, epochs, lr),
        ("feature hint (pool)", lambda s: FeatureDistiller(s, teacher, pairs={"pool": "pool"}, beta=1.0, **resp),
         data, epochs, lr),
    ]
    _run_methods(table, seeds, lambda: task.build_student(split),
                 lambda s, seed: _fit_task(context, s, epochs, lr), methods, evaluate, log)
    return table


# ---------------------------------------------------------------------------------------------------
# Reviews


def task_reviews(cfg, seeds, log, folder):
    context = load_task("text", data="reviews", quick=cfg["quick_text"], batch_size=64)
    task, split = context.task, context.data
    x_test, y_test = split.test_inputs, split.test_labels
    majority = np.bincount(y_test).max() / len(y_test)
    table = MethodTable("reviews", "accuracy", True, split.description)
    table.notes.append(f"Majority-class accuracy is {majority:.4f}.")
    epochs, lr, d_model = cfg["text_epochs"], 2e-3, 64

    def data(seed):  # the task's training split, in its order, for every seed
        return split.train_ds

    def evaluate(m):
        return task.evaluate(_predict(m, x_test, 512), y_test)["accuracy"]

    keras.utils.set_random_seed(0)
    teacher = task.build_teacher(split, d_model=d_model, heads=4, blocks=cfg["text_blocks"])
    secs = _fit_task(context, teacher, epochs + cfg["teacher_extra_epochs"], 1e-3)
    table.add("teacher", evaluate(teacher), role="teacher", params=teacher.count_params(), seconds=secs)
    log(f"reviews: teacher {table.entries['teacher']['values'][0]:.4f} ({secs:.0f}s)")
    resp = dict(alpha=ALPHA, temperature=TEMPERATURE, objective="multiclass")
    last = f"block_{cfg['text_blocks'] - 1}"

    def alone(s, seed):
        return _fit_task(context, s, epochs, lr)

    _run_methods(table, seeds, lambda: task.build_student(split, kind="cnn"), alone,
                 [("response (KL·T²)", lambda s: Distiller(s, teacher, **resp), data, epochs, lr)],
                 evaluate, log, student_label="CNN student", tag=" (CNN)")
    _run_methods(table, seeds, lambda: task.build_student(split, kind="transformer", embed_dim=d_model),
                 alone,
                 [("response (KL·T²)", lambda s: Distiller(s, teacher, **resp), data, epochs, lr),
                  (f"hidden states (block_0 -> {last})", lambda s: FeatureDistiller(
                      s, teacher, pairs={"block_0": last}, beta=1.0, **resp), data, epochs, lr)],
                 evaluate, log, student_label="Transformer student", tag=" (Transformer)")
    return table


RUNNERS = {"ctr": task_ctr, "movielens_rank": task_movielens_rank, "movielens_rating": task_movielens_rating,
           "fashion": task_fashion, "reviews": task_reviews}
NEEDS = {"movielens_rank": "movielens-small", "movielens_rating": "movielens-small", "fashion": "fashion_mnist",
         "reviews": "reviews"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    parser.add_argument("--seeds", type=int, default=3, help="student seeds (mean ± std)")
    parser.add_argument("--quick", action="store_true", help="small subsets, 1-2 epochs (7 CPU-minutes)")
    parser.add_argument("--out", default=None, help="folder for distill_<task>.md/.csv/.json/.html and "
                                                    "distill_table.md (default: print only)")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in RUNNERS]
    if unknown:
        parser.error(f"unknown task(s) {unknown}: choose from {','.join(TASKS)}")
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    cfg = CONFIGS["quick" if args.quick else "full"]
    start = time.time()

    def log(msg):
        print(f"[{time.time() - start:6.0f}s] {msg}", flush=True)

    reports, summaries, skipped = [], [], []
    with tempfile.TemporaryDirectory(prefix="tfcompress-distill-") as folder:
        for name in tasks:
            need = NEEDS.get(name)
            if need and find_dataset(need) is None:
                reason = f"SKIPPED {name}: {missing_data_message(need)}"
                print(reason, flush=True)
                skipped.append(reason)
                continue
            t0 = time.time()
            table = RUNNERS[name](cfg, args.seeds, log, folder)
            meta = {"data": table.data, "config": "quick" if args.quick else "full", "seeds": args.seeds,
                    "alpha": ALPHA, "temperature": TEMPERATURE, "seconds": round(time.time() - t0),
                    "beats_alone": "improvement over the student alone > pooled std sqrt((s_m^2 + s_alone^2) / 2)"}
            report = Report(table.rows(), title=f"Distillation: {name} ({table.metric})", meta=meta)
            reports.append((name, report))
            summaries.append(table.summary())
            print(f"\n## {name}: {table.data}\n{report.to_markdown()}\n{summaries[-1]}\n", flush=True)
    total = time.time() - start
    print("Summary (where distillation did NOT beat the student alone):")
    for line in summaries + skipped:
        print(f"- {line}")
    print(f"total {total:.0f}s ({'quick' if args.quick else 'full'}, {args.seeds} seeds, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    if args.out:
        write_tables(args, reports, summaries, skipped, total)
    return reports, summaries


def write_tables(args, reports, summaries, skipped, total):
    """Write each table (``distill_<task>.md/.csv/.json/.html``) and ``distill_table.md`` into ``args.out``."""
    os.makedirs(args.out, exist_ok=True)
    parts = [f"# Distillation table ({'quick' if args.quick else 'full'}, {args.seeds} seeds, {total:.0f}s)\n",
             "beats_alone: the improvement over the student alone is larger than the pooled std "
             "sqrt((std_method² + std_alone²) / 2) over the seeds.\n"]
    for (name, report), line in zip(reports, summaries):
        report.save(args.out, basename=f"distill_{name}")
        parts += [report.to_markdown(), f"\n**{name}:** {line}\n"]
    parts += [f"- {s}" for s in skipped]
    with open(os.path.join(args.out, "distill_table.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
