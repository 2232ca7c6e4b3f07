"""``tfcompress run --distribute``: two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy) run every
stage and score what one process does; the chief writes the report, the other worker nothing; the
one-line errors of a missing or bad ``TF_CONFIG``; ``mirrored`` on two logical CPU devices.

The runs are subprocesses (a multi-worker strategy, like logical devices, must exist before TensorFlow
runs any op). The two workers and the one-process reference run side by side.
"""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tfcompress.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-c", "import sys; from tfcompress.cli import main; sys.exit(main(sys.argv[1:]))"]
#: the smallest run of every stage (teacher, baseline, distill, prune, qat, export): one epoch each
QUICK = {"quick": True, "events": 2000, "teacher_epochs": 1, "student_epochs": 1, "prune_epochs": 1,
         "qat_epochs": 1, "latency_runs": 5}
#: measured: the two-worker run's test metrics equal the one-process run's up to max |diff| 5.9e-7 over every
#: stage's auc and logloss (float summation order of the all-reduce); the tolerance is ~170x that
TOLERANCE = 1e-4
TIMEOUT_S = 600  # a loaded 2-core machine; the test takes 210-270 s at load 6-8


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tf_config=None):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _folders(base):
    return ["--out", str(base / "out"), "--savedmodels", str(base / "sm"), "--tflite-dir", str(base / "tfl")]


def _qualities(out):
    """``{(result, format): quality}`` from a run folder's run.json (unrounded, unlike report.json)."""
    manifest = json.loads((out / "run.json").read_text())
    return {(r["name"], r["format"]): r["quality"] for s in manifest["stages"] for r in s["results"]}


def _start(args, cwd, env, log):
    """The command in the background, its output in the file ``log`` (a pipe could fill and stall a worker
    while the test waits on the other)."""
    with open(log, "w") as f:
        return subprocess.Popen(CLI + args, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, text=True)


def test_two_workers_match_one_process_and_only_the_chief_writes(tmp_path):
    (tmp_path / "c.yaml").write_text(json.dumps(QUICK))  # JSON is YAML
    common = ["run", "--config", str(tmp_path / "c.yaml")]
    cluster = {"worker": [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]}
    t0 = time.perf_counter()
    procs = {f"w{i}": _start(common + _folders(tmp_path / f"w{i}") + ["--distribute", "multi-worker"], tmp_path,
                             _env({"cluster": cluster, "task": {"type": "worker", "index": i}}), tmp_path / f"w{i}.log")
             for i in range(2)}
    procs["one"] = _start(common + _folders(tmp_path / "one"), tmp_path, _env(), tmp_path / "one.log")
    try:
        for p in procs.values():
            p.wait(timeout=max(1.0, TIMEOUT_S - (time.perf_counter() - t0)))
    except subprocess.TimeoutExpired:
        pass  # killed below; the assertion shows its log
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    wall = time.perf_counter() - t0
    logs = {k: (tmp_path / f"{k}.log").read_text() for k in procs}
    for k, p in procs.items():
        assert p.returncode == 0, f"{k} (after {wall:.0f} s): {logs[k][-3000:]}"
    chief, one = _qualities(tmp_path / "w0" / "out"), _qualities(tmp_path / "one" / "out")
    assert set(chief) == set(one) and ("student_int8", "tflite") in chief, (sorted(chief), sorted(one))
    diffs = {k: max(abs(chief[k][m] - one[k][m]) for m in one[k]) for k in one}
    print(f"two workers vs one process ({wall:.0f} s, max |diff| {max(diffs.values()):.2g}): "
          + ", ".join(f"{k[0]} auc {chief[k]['auc']:.6f} vs {one[k]['auc']:.6f}" for k in one), file=sys.stderr)
    assert max(diffs.values()) <= TOLERANCE, diffs
    assert not (tmp_path / "w1").exists(), sorted(str(p) for p in (tmp_path / "w1").rglob("*"))
    report = json.loads((tmp_path / "w0" / "out" / "report.json").read_text())
    spread = report["distribute"]
    assert (spread["mode"], spread["replicas"], spread["workers"]) == ("multi-worker", 2, 2)
    assert (spread["global_batch"], spread["per_replica_batch"]) == (512, 256)
    assert "unchanged" in spread["learning_rate"] and "2 replicas on 2 workers" in report["meta"]["distribute"]
    md = (tmp_path / "w0" / "out" / "report.md").read_text()
    assert "### training" in md and "256 per replica" in md
    assert "distribute" not in json.loads((tmp_path / "one" / "out" / "report.json").read_text())
    sizes = [os.path.getsize(tmp_path / run / "tfl" / "ctr_student_int8.tflite") for run in ("w0", "one")]
    print(f"int8 file: {sizes[0]:,} bytes (2 workers) vs {sizes[1]:,} (1 process)", file=sys.stderr)
    assert abs(sizes[0] - sizes[1]) < 0.05 * sizes[1]  # the same model; the distributed variables' names differ
    assert "multi-worker: 2 replicas" in logs["w0"] and "worker 1 done" in logs["w1"]


@pytest.mark.parametrize("tf_config, what", [
    (None, "needs TF_CONFIG"),
    ("{not json", "not valid JSON"),
    ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "no cluster of workers"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}', "is not one of its"),
])
def test_multi_worker_without_a_usable_tf_config_is_one_line(monkeypatch, capsys, tmp_path, tf_config, what):
    monkeypatch.chdir(tmp_path)
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert main(["run", "--quick", "--distribute", "multi-worker"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfcompress: error:") and what in err and "TF_CONFIG=" in err and "\n" not in err, err
    assert not os.listdir(tmp_path)  # nothing written, no run started


_MIRRORED = """
import json, sys
from tfcompress.pipeline import RunConfig, run
from tfcompress import tf
from tfcompress.pipeline.distribute import make_distribution
make_distribution("mirrored")  # first: two logical CPU devices need an uninitialised TensorFlow
cfg = dict(quick=True, events=2000, student_epochs=1, stages=("baseline",), latency_runs=5)
two = run(RunConfig(distribute="mirrored", out="m/out", savedmodels_dir="m/sm", tflite_dir="m/tfl", **cfg))
one = run(RunConfig(out="o/out", savedmodels_dir="o/sm", tflite_dir="o/tfl", **cfg))
report = json.load(open("m/out/report.json"))
print(json.dumps({"two": two.stage("student_alone").quality, "one": one.stage("student_alone").quality,
                  "distribute": report["distribute"], "gpus": len(tf.config.list_physical_devices("GPU"))}))
"""


def test_mirrored_on_two_cpu_replicas_matches_one_device(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _MIRRORED], cwd=tmp_path, env=_env(), capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    spread = result["distribute"]
    replicas = result["gpus"] or 2  # every local GPU, else two CPU replicas
    assert (spread["mode"], spread["replicas"], spread["per_replica_batch"]) == ("mirrored", replicas, 512 / replicas)
    assert result["gpus"] or ("no GPU visible" in spread["note"] and "2 CPU replicas" in spread["note"])
    for metric, value in result["one"].items():
        assert abs(result["two"][metric] - value) <= TOLERANCE, (metric, result)


def test_multi_worker_after_tensorflow_started_is_one_line(tmp_path):
    code = ("from tfcompress import tf\ntf.constant(1.0) + 1  # TensorFlow initialised\n"
            "from tfcompress.pipeline import RunConfig, run\n"
            "try:\n    run(RunConfig(quick=True, distribute='multi-worker'))\n"
            "except ValueError as e:\n    print('ERROR', e)\n")
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{_free_port()}"]}, "task": {"type": "worker", "index": 0}}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tf_config), capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
    assert lines and "must start before TensorFlow runs any op" in lines[0] and "fresh process" in lines[0], \
        proc.stdout + proc.stderr[-2000:]
    assert not os.listdir(tmp_path)
