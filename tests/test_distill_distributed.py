"""Every distiller under ``MirroredStrategy`` (two logical CPU devices) matches single-device training.

Logical devices must be configured before TensorFlow initialises, so the training runs in a fresh
``python`` subprocess (this file, run as a script) that prints the largest weight difference per
distiller as JSON.
"""
import json
import os
import subprocess
import sys

import pytest

TOLERANCE = 1e-5  # measured max |weight diff| after 2 SGD steps: ~6e-8 (float summation order)


def test_every_distiller_matches_single_device_under_mirrored_strategy():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                        os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], capture_output=True, text=True, env=env,
                          timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    assert result.pop("_replicas") == 2
    relational = result.pop("relational")  # similarity matrices are per replica: a different loss, by design
    assert set(result) == {"response_binary", "response_regression", "feature", "ranking_listwise",
                           "multi_teacher", "multi_task", "offline", "feature_multi_teacher"}
    for name, diff in result.items():
        assert diff < TOLERANCE, (name, diff)
    assert relational < 0.1


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(os.environ.get("TFCOMPRESS_SLOW_TESTS") != "1",
                    reason="multi-worker test takes ~70 s on 2 shared cores: set TFCOMPRESS_SLOW_TESTS=1 to run it")
def test_multi_worker_mirrored_strategy_matches_single_device(tmp_path):
    """Two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy) train the same student as one."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                        os.environ.get("PYTHONPATH", "")]))
    ports = [_free_port(), _free_port()]
    cluster = json.dumps({"worker": [f"127.0.0.1:{p}" for p in ports]})
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--multiworker", str(i), cluster,
                               str(tmp_path / f"w{i}.json")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        errs = [p.communicate(timeout=240)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), errs[0][-2000:] + errs[1][-2000:]
    result = json.loads((tmp_path / "w0.json").read_text())
    assert result["replicas"] == 2
    print("multi-worker vs single device:", result)
    assert result["max_diff"] < TOLERANCE, result


def _multiworker(index, cluster, out):
    os.environ["TF_CONFIG"] = json.dumps({"cluster": json.loads(cluster), "task": {"type": "worker", "index": index}})
    import numpy as np

    from tfcompress import keras, tf
    from tfcompress.distill import Distiller

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")

    def mlp(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(1)])

    def train(strategy):
        with strategy.scope():
            d = Distiller(mlp(2), mlp(1), alpha=0.3)
            d.compile(optimizer=keras.optimizers.SGD(0.1))
        d.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=1, verbose=0)
        return [w.numpy() for w in d.student.trainable_variables]

    multi = train(strategy)
    single = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
    diff = float(max(np.abs(a - b).max() for a, b in zip(single, multi)))
    with open(out, "w") as f:
        json.dump({"replicas": strategy.num_replicas_in_sync, "max_diff": diff}, f)


def _worker():
    import tempfile

    import numpy as np

    import time

    from tfcompress import keras, tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfcompress import distill as D

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, :1] > 0).astype("float32")
    lx = rng.normal(size=(16, 4, 4)).astype("float32")  # 16 lists of 4 candidates, 4 features each
    ly = (lx[:, :, 0] > 0).astype("float32")
    tmp = tempfile.mkdtemp()

    def mlp(seed, outputs=1, hidden=8):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(hidden, "relu", name="hidden"),
                                 keras.layers.Dense(outputs, name="out")])

    def multi_head(seed):
        keras.utils.set_random_seed(seed)
        inp = keras.Input((4,))
        h = keras.layers.Dense(8, activation="relu")(inp)
        return keras.Model(inp, {"click": keras.layers.Dense(1, name="click")(h),
                                 "rating": keras.layers.Dense(1, name="rating")(h)})

    cache = D.cache_teacher_outputs(mlp(1), tf.data.Dataset.from_tensor_slices((x, y)).batch(16),
                                    os.path.join(tmp, "cache"))

    cases = {
        "response_binary": (lambda: D.Distiller(mlp(2), mlp(1), alpha=0.3), (x, y)),
        "response_regression": (lambda: D.Distiller(mlp(2, 2), mlp(1, 2), alpha=0.0, objective="regression"),
                                (x, None)),
        "feature": (lambda: D.FeatureDistiller(mlp(2), mlp(1, hidden=16), pairs={"hidden": "hidden"}), (x, y)),
        "relational": (lambda: D.RelationalDistiller(mlp(2), mlp(1, hidden=16), student_layer="hidden",
                                                     teacher_layer="hidden"), (x, y)),
        "ranking_listwise": (lambda: D.RankingDistiller(mlp(2), mlp(1), method="listwise"), (lx, ly)),
        "multi_teacher": (lambda: D.MultiTeacherDistiller(mlp(2), [mlp(1), mlp(3)], weights="learned"), (x, y)),
        "multi_task": (lambda: D.MultiTaskDistiller(multi_head(2), {"click": mlp(1), "rating": mlp(3)},
                                                    objectives={"click": "binary", "rating": "regression"}),
                       (x, {"click": y, "rating": x[:, :1]})),
        "offline": (lambda: D.OfflineDistiller(mlp(2), alpha=0.3), None),
        "feature_multi_teacher": (lambda: D.Distiller(mlp(2), [mlp(1, hidden=16), mlp(3)], alpha=0.3, losses=[
            D.LogitsDistillation(teacher_weights="learned"), D.FeatureDistillation("hidden", "hidden", teacher=0)]),
            (x, y)),
    }

    def train(strategy, make, arrays):
        with strategy.scope():
            d = make()
            d.compile(optimizer=keras.optimizers.SGD(0.1))
        if arrays is None:
            ds = D.cached_dataset(cache, batch_size=16)
        else:
            ds = tf.data.Dataset.from_tensor_slices(arrays if arrays[1] is not None else arrays[0]).batch(16)
        d.fit(ds, epochs=1, verbose=0)
        return [w.numpy() for w in d.student_variables]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = {"_replicas": mirrored.num_replicas_in_sync}
    for name, (make, arrays) in cases.items():
        t0 = time.time()
        single = train(tf.distribute.get_strategy(), make, arrays)
        multi = train(mirrored, make, arrays)
        result[name] = float(max(np.abs(a - b).max() for a, b in zip(single, multi)))
        print(f"{name}: {time.time() - t0:.1f} s", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--multiworker":
        _multiworker(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        _worker()
