"""The throughput and cost-curve benchmarks on tiny sizes, and the index-gather datasets (same batches as before)."""
import os
import sys

import numpy as np
import pytest

from tfcompress import keras, tf
from tfcompress.data import array_dataset, to_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import lazy_adam  # noqa: E402
import scale  # noqa: E402
import throughput  # noqa: E402

sys.path.pop(0)


def _same(a, b):
    """Every batch of ``a`` equals the batch of ``b`` at its place (nests of tensors)."""
    count = 0
    for x, y in zip(a, b, strict=True):
        flat_x, flat_y = tf.nest.flatten(x), tf.nest.flatten(y)
        assert len(flat_x) == len(flat_y)
        assert all(np.array_equal(u.numpy(), v.numpy()) for u, v in zip(flat_x, flat_y))
        count += 1
    return count


@pytest.mark.parametrize("shuffle", [True, False])
def test_to_dataset_gives_the_batches_of_the_per_row_pipeline(shop, shuffle):
    df = shop.events.iloc[:3000]
    new = to_dataset(df, shop.spec, batch_size=256, shuffle=shuffle, seed=3).repeat(2)
    old = throughput.rows_dataset(df, shop.spec, batch_size=256, shuffle=shuffle, seed=3).repeat(2)
    assert _same(new, old) == 2 * 12  # two epochs (reshuffled alike), the partial batch included
    assert to_dataset(df, shop.spec, batch_size=256).cardinality().numpy() == 12


def test_array_dataset_gives_the_batches_of_the_per_row_pipeline():
    x, y = np.arange(50 * 3, dtype="float32").reshape(50, 3), [i % 2 for i in range(50)]  # a list: one tensor

    def transform(b):
        return {"x": 2 * b}

    new = array_dataset(x, y, batch_size=8, transform=transform, shuffle=True, seed=5, buffer=20).repeat(2)
    old = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(20, seed=5, reshuffle_each_iteration=True) \
        .batch(8).map(lambda b, t: (transform(b), t)).repeat(2)
    assert _same(new, old) == 14


def test_measure_times_steps_of_the_pipeline_models(shop):
    source = throughput.Source.__new__(throughput.Source)
    source.kind, source.frame, source.spec = "memory", shop.events.iloc[:2000], shop.spec
    teacher = throughput.build_job("teacher", shop.spec, None, 1, False)
    distiller = throughput.build_job("distill_qr", shop.spec, teacher, 2, False)
    assert "QREmbedding" in {type(layer).__name__ for layer in distiller.student.layers}
    rates = [throughput.measure(teacher, source.dataset(128, False), 3, warmup=1),
             throughput.measure(distiller, source.dataset(128, True), 3, warmup=1)]
    assert all(r > 0 for r in rates)


def test_throughput_table_marks_the_best_and_xla_fallback_says_why():
    rows = [{"job": "distill", "source": "memory", "variant": v, "batch": b, "xla": False, "steps_s": s,
             "examples_s": s * b, "note": n, "ratio": s * b / 1000} for v, b, s, n in
            [("today", 100, 10.0, ""), ("batch4", 400, 5.0, ""), ("xla", 100, 9.0, "XLA cannot compile: x")]]
    text = throughput.table(rows)
    assert "| **batch4** | 400 | off | 5.0 | 2,000 | **2.00** |" in text and "XLA cannot compile: x" in text
    reason = throughput.xla_probe()
    assert "Detected unsupported operations" in reason and "DT_STRING" in reason, reason


def test_scale_tables_and_plot_from_two_rows(tmp_path):
    rows = [{"events": n, "mode": "streaming", "shards_s": 1.0, "wall_s": w, "peak_rss_mb": m,
             "stage_s": {"teacher": w / 2}, "stage_peak_rss_mb": {"teacher": m - 1, "export": m},
             "events_s": {"teacher": 5000, "distill": 20000},
             "teacher_params": 900_000, "teacher_float32_bytes": 3_600_000, "int8_bytes": 40_000,
             "auc": {"teacher": 0.7, "alone": 0.68, "distilled": 0.69, "int8": 0.69}}
            for n, w, m in [(20_000, 30.0, 900.0), (50_000, 60.0, 910.0)]]
    text = scale.write_outputs(rows, [], str(tmp_path), quick=True)
    assert "| 50,000 | streaming | 1.0 | 60.0 | 910.0 | " in text and "| 90.0x |" in text
    assert "| 50,000 | streaming |  | 909.0 |  |  |  |  | 910.0 |  |" in text  # the peak by each stage's end
    assert text.endswith(scale.NO_GPU)
    png = tmp_path / "cost_vs_events.png"
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    assert (tmp_path / "scale.md").read_text().strip() == text


def test_scale_device_rows_and_fit_clock():
    row, = scale.device_rows(3000, devices=["/CPU:0"], steps=2, runs=3)
    assert row["device"] == "/CPU:0" and all(row[k] > 0 for k in row if k != "device")
    assert "| /CPU:0 |" in scale.device_table([row])
    clock = scale.FitClock()
    try:
        m = keras.Sequential([keras.layers.Dense(1)])
        m.compile("adam", "mse")
        m.fit(np.ones((8, 2)), np.ones(8), epochs=2, verbose=0)
        epochs, seconds = clock.stage()
    finally:
        clock.close()
    assert epochs == 2 and seconds > 0 and clock.stage() == (0, 0)
    assert scale.fit_rate([1000], 2, 0.5) == 4000 and scale.fit_rate([], 2, 0.5) is None


def test_memory_probes_read_the_whole_train_part_and_train_the_teacher(tmp_path):
    from tfcompress.data import open_shop_log, write_shop_shards
    from tfcompress.models import ctr_teacher

    write_shop_shards(3000, str(tmp_path / "shards-3000"), shard_rows=1000)
    log = open_shop_log(str(tmp_path / "shards-3000"))
    data = scale.memory_probe(3000, str(tmp_path), "data")
    teacher, lazy = (scale.memory_probe(3000, str(tmp_path), w, steps=2) for w in ("teacher", "teacher_lazy"))
    assert data["train_rows"] == log.held_out(calibration=100).counts[0] > 2000 and data["rows_s"] > 0
    assert teacher["params"] == lazy["params"] == ctr_teacher(log.spec).count_params()
    assert teacher["peak_rss_mb"] > 100 and teacher["steps_s"] > 0 and lazy["steps_s"] > 0
    text = scale.write_probes([data, teacher, lazy], str(tmp_path))
    assert (f"| 3,000 | {data['peak_rss_mb']} | {data['rows_s']} | {teacher['params']} | {teacher['peak_rss_mb']} | "
            f"{teacher['steps_s']} | {lazy['peak_rss_mb']} | {lazy['steps_s']} |") in text
    assert (tmp_path / "memory.md").read_text().strip() == text


def test_lazy_adam_benchmark_trains_both_teachers_on_the_same_stream(tmp_path):
    from tfcompress.data import write_shop_shards

    write_shop_shards(3000, str(tmp_path / "shards"), shard_rows=1000)
    text = lazy_adam.main(["--shards", str(tmp_path / "shards"), "--epochs", "1", "--steps-per-epoch", "2",
                           "--out", str(tmp_path / "lazy.md")])
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith(("| Adam", "| LazyAdam"))]
    assert [r[0] for r in rows] == ["| Adam", "| LazyAdam"] and all(r[2] == "1 x 2" for r in rows)
    assert all(0.0 <= float(r[5]) <= 1.0 for r in rows) and (tmp_path / "lazy.md").read_text().strip() == text
