"""A run folder is one unit: a killed run resumes to what an uninterrupted one computes; a second run on
the same folders is refused while the first lives; another run's folder is refused or moved aside."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tfcompress.cli import main
from tfcompress.pipeline import check_run_folder, read_manifest

STAGES = "teacher,baseline,distill,export"


def _argv(root, *extra):
    return ["run", "--quick", "--stages", STAGES, "--out", str(root / "r"), "--savedmodels", str(root / "s"),
            "--tflite-dir", str(root / "t"), *extra]


def _command(root, *extra):
    return [sys.executable, "-m", "tfcompress.cli", *_argv(root, *extra)]


def _figures(root):
    report = json.loads((root / "r" / "report.json").read_text())
    return {s["name"]: (s["auc"], s["logloss"], s["params"]) for s in report["stages"]}


def _finished(root):
    try:
        return json.loads((root / "r" / "run.json").read_text())["stages_finished"]
    except (OSError, ValueError, KeyError):
        return []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("straight")
    proc = subprocess.run(_command(root), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def test_a_killed_run_resumes_to_what_an_uninterrupted_one_computes(reference, tmp_path):
    proc = subprocess.Popen(_command(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 400
    while len(_finished(tmp_path)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = read_manifest(tmp_path / "r")
    assert killed["finished"] is False and killed["stages_finished"][:2] == ["teacher", "baseline"]
    assert not (tmp_path / "r" / "report.json").exists()
    with pytest.raises(Exception, match="unfinished run"):
        check_run_folder(tmp_path / "r")  # `tfcompress report` refuses it too

    again = subprocess.run(_command(tmp_path), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = [line for line in again.stderr.splitlines() if line.startswith("[  resume]")]
    print("\n".join(resumed))
    skipped = ", ".join(killed["stages_finished"])
    assert len(resumed) == 1 and f"run {killed['run_id']}: skipped {skipped} (finished before)" in resumed[0]
    manifest = read_manifest(tmp_path / "r")
    assert manifest["finished"] and manifest["run_id"] == killed["run_id"]
    assert manifest["stages_finished"] == STAGES.split(",")
    check_run_folder(tmp_path / "r")  # every artifact matches the manifest, report.json is this run's
    for side in ("ctr_teacher_float32.json", "ctr_student_int8.json"):
        assert json.loads((tmp_path / "t" / side).read_text())["run_id"] == killed["run_id"]
    assert _figures(tmp_path) == _figures(reference)
    assert not list(tmp_path.rglob(".tfcompress.lock"))


def test_a_second_run_on_locked_folders_is_refused(tmp_path, capsys):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "s").mkdir()
        (tmp_path / "s" / ".tfcompress.lock").write_text(json.dumps(
            {"pid": sleeper.pid, "host": socket.gethostname(), "started": "2026-12-01T22:00:00+00:00"}))
        assert main(_argv(tmp_path)) == 2
        line = capsys.readouterr().err.strip().splitlines()[-1]
        print(line)
        assert line.startswith("tfcompress: error: another tfcompress run (pid ")
        assert f"pid {sleeper.pid} on {socket.gethostname()}" in line and "is writing" in line
        assert not (tmp_path / "r" / ".tfcompress.lock").exists()  # the locks it took are given back
    finally:
        sleeper.kill()
        sleeper.wait()


def test_another_run_is_refused_then_moved_aside_with_overwrite(tmp_path, capsys):
    argv = ["run", "--quick", "--stages", "baseline", "--out", str(tmp_path / "r"), "--savedmodels",
            str(tmp_path / "s"), "--tflite-dir", str(tmp_path / "t")]
    assert main(argv) == 0
    first = read_manifest(tmp_path / "r")["run_id"]
    capsys.readouterr()
    assert main(argv + ["--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"holds the finished run {first}: pass --overwrite" in err[0]

    manifest_path = tmp_path / "r" / "run.json"  # the same folder, as if that run had been killed
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "finished": False}))
    assert main(argv + ["--seed", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "of another config (seed 0 there, 1 here)" in err[0]

    assert main(argv + ["--seed", "1", "--overwrite"]) == 0
    second = read_manifest(tmp_path / "r")
    assert second["run_id"] != first and second["config"]["seed"] == 1 and second["finished"]
    for folder in ("r", "s"):
        assert (tmp_path / folder / f".previous-{first}").is_dir()
    assert (tmp_path / "s" / f".previous-{first}" / "ctr_student_alone" / "saved_model.pb").exists()
    assert (tmp_path / "r" / f".previous-{first}" / "run.json").exists()

    with open(tmp_path / "s" / "ctr_student_alone" / "saved_model.pb", "ab") as f:
        f.write(b"\0")  # another process changed an artifact
    capsys.readouterr()
    assert main(["report", str(tmp_path / "r")]) == 2
    line = capsys.readouterr().err.strip()
    assert "does not match its run.json" in line and "ctr_student_alone has changed" in line


def test_nothing_to_resume_is_one_line(tmp_path, capsys):
    assert main(_argv(tmp_path, "--resume")) == 2
    assert "nothing to resume in" in capsys.readouterr().err
    assert os.listdir(tmp_path / "r") == []


def _clean_env():
    return {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFCOMPRESS_VERBOSE")}


def test_a_run_s_first_line_is_ours():
    proc = subprocess.run([sys.executable, "-m", "tfcompress.cli", "run", "--stages", "nonsense"],
                          capture_output=True, text=True, timeout=300, env=_clean_env())
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["tfcompress: error: unknown stage(s) ['nonsense']; ctr stages are "
                                        "['teacher', 'baseline', 'distill', 'prune', 'qat', 'export']"]


def test_help_and_argument_errors_do_not_import_tensorflow():
    code = ("import sys, tfcompress.cli as c\n"
            "codes = [c.main(a) for a in (['--help'], ['run', '--help'], ['run', '--seed', 'x'])]\n"
            "print(codes, 'tensorflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_clean_env())
    assert proc.stdout.strip().splitlines()[-1] == "[0, 0, 2] False", proc.stderr


def test_argument_errors_are_one_line(capsys):
    assert main(["run", "--seed", "x"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "tfcompress run: error: argument --seed: 'x' is not a whole number (see `tfcompress run --help`)"]


def test_a_full_disk_keeps_the_report_of_the_finished_stages_and_resumes(tmp_path, capsys, monkeypatch):
    import errno

    import tfcompress._io as io

    def full_for_tflite(path, *args, **kwargs):  # the disk fills up while the first .tflite is written
        if ".tflite." in os.path.basename(str(path)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(path, *args, **kwargs)

    argv = ["run", "--quick", "--stages", "teacher,export", "--out", str(tmp_path / "r"), "--savedmodels",
            str(tmp_path / "s"), "--tflite-dir", str(tmp_path / "t")]
    monkeypatch.setattr(io, "open", full_for_tflite, raising=False)
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress lines
    print(line)
    assert line.startswith("tfcompress: error: cannot write ") and "ctr_teacher_float32.tflite" in line
    assert "GB free on" in line and "the report of the finished results (teacher) is in" in line
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [s["name"] for s in report["stages"]] == ["teacher"]
    assert read_manifest(tmp_path / "r")["stages_finished"] == ["teacher"]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]

    monkeypatch.undo()
    (tmp_path / "t" / ".ctr_student_int8.tflite.left-by-a-kill.tmp").write_bytes(b"partial")
    assert main(argv) == 0  # the same command resumes after the export's failure
    assert "skipped teacher (finished before)" in capsys.readouterr().err
    assert read_manifest(tmp_path / "r")["finished"] and not list((tmp_path / "t").glob(".*.tmp"))
    check_run_folder(tmp_path / "r")


def test_bench_refuses_a_model_its_run_folder_disowns(tmp_path, capsys):
    (tmp_path / "t").mkdir()
    (tmp_path / "r").mkdir()
    model = tmp_path / "t" / "m.tflite"
    model.write_bytes(b"not really a model")
    (tmp_path / "t" / "m.json").write_text(json.dumps({"run_id": "run-a", "run_dir": str(tmp_path / "r")}))
    manifest = {"run_id": "run-b", "folders": {"out": str(tmp_path / "r"), "tflite_dir": str(tmp_path / "t")},
                "artifacts": []}
    (tmp_path / "r" / "run.json").write_text(json.dumps(manifest))
    assert main(["bench", str(model), "--out", str(tmp_path / "b")]) == 2
    assert "is from run run-a, but its run folder" in capsys.readouterr().err
    manifest.update(run_id="run-a", artifacts=[{"stage": "export", "folder": "tflite_dir", "name": "m.tflite",
                                                 "sha256": "0" * 64}])
    (tmp_path / "r" / "run.json").write_text(json.dumps(manifest))
    assert main(["bench", str(model), "--out", str(tmp_path / "b")]) == 2
    assert "has changed since run run-a wrote it" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
