"""`tfcompress run --quick` end to end: every artifact, a report whose numbers match the files, clean errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfcompress.cli import main

STAGE_KEYS = {"name", "format", "params", "size_bytes", "gzip_bytes", "sparsity", "auc", "logloss",
              "latency_p50_us", "latency_p90_us"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("quick")
    cmd = [sys.executable, "-m", "tfcompress.cli", "run", "--quick", "--out", "run", "--savedmodels", "sm",
           "--tflite-dir", "tfl", "--seed", "3"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(root / "run" / "report.json") as f:
        return root, json.load(f), proc


def test_every_artifact_is_written(quick_run):
    root, report, proc = quick_run
    for name in ("report.md", "report.csv", "report.json", "report.html", "pareto.png"):
        assert (root / "run" / name).stat().st_size > 0, name
    for stage in ("teacher", "student_alone", "student_distilled", "student_pruned", "student_qat"):
        assert (root / "sm" / f"ctr_{stage}" / "saved_model.pb").exists()
    for name in ("ctr_teacher_float32", "ctr_student_int8"):
        assert (root / "tfl" / f"{name}.tflite").exists() and (root / "tfl" / f"{name}.json").exists()
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers
    # one progress line per stage, with elapsed time
    for stage in ("teacher", "student_alone", "student_distilled", "student_pruned", "student_qat", "export"):
        assert any(line.startswith(f"[") and stage in line and " s; total " in line
                   for line in proc.stderr.splitlines()), stage
    assert "smaller" in proc.stdout


def test_report_json_has_every_stage_and_the_parity(quick_run):
    _, report, _ = quick_run
    names = [(s["name"], s["format"]) for s in report["stages"]]
    assert ("teacher_float32", "tflite") in names and ("student_int8", "tflite") in names
    for s in report["stages"]:
        assert STAGE_KEYS <= set(s), s
        assert s["latency_p50_us"] <= s["latency_p90_us"]
    assert {"max_abs_prob_diff", "auc_diff", "auc_keras", "auc_tflite"} <= set(report["parity"])
    assert abs(report["parity"]["auc_diff"]) <= 0.02
    assert report["summary"]["size_ratio"] > 1


def test_report_numbers_agree_with_the_files_on_disk(quick_run):
    from tfcompress.bench import metrics, size
    from tfcompress.data import frame_to_inputs, make_ecommerce
    from tfcompress.export import TFLiteModel

    root, report, _ = quick_run
    stages = {(s["name"], s["format"]): s for s in report["stages"]}
    int8 = stages[("student_int8", "tflite")]
    path = root / "tfl" / "ctr_student_int8.tflite"
    assert int8["size_bytes"] == os.path.getsize(path)
    assert int8["gzip_bytes"] == size.gzip_bytes(path)
    assert int8["params"] == size.tflite_params(path)
    assert int8["sparsity"] == pytest.approx(size.tflite_sparsity(path), abs=1e-4)
    # the AUC is reproducible from the file and the same held-out split
    data = make_ecommerce(report["config"]["events"], seed=3)
    test = data.split()[2]
    logits = TFLiteModel(path).predict(frame_to_inputs(test, data.spec))[:, 0]
    assert metrics.auc(test["click"].to_numpy(), 1 / (1 + np.exp(-logits))) == pytest.approx(int8["auc"], abs=1e-4)
    sparsity_pruned = stages[("student_pruned", "keras")]["sparsity"]
    assert sparsity_pruned > 0.4  # pruning happened (quick run: far fewer than 100 steps)


def test_report_markdown_shows_the_table_and_ratios(quick_run):
    root, _, _ = quick_run
    md = (root / "run" / "report.md").read_text()
    assert "| name |" in md and "student_int8" in md and "Parity" in md and "smaller" in md


def test_report_command_re_renders_the_sections_from_report_json(quick_run, capsys):
    root, report, _ = quick_run
    assert "lines" not in report["summary"] and "lines" not in report["parity"]  # figures, not renderings
    first = (root / "run" / "report.md").read_text()
    sections = first[first.index("### Teacher (float32 TFLite)"):]
    (root / "run" / "report.md").unlink()
    assert main(["report", str(root / "run")]) == 0
    again = (root / "run" / "report.md").read_text()
    assert again.endswith(sections) and "### Parity: student_qat (Keras) vs student_int8 (TFLite)" in again


@pytest.mark.parametrize("argv,needle", [
    (["run", "--stages", "teacher,bogus"], "unknown stage(s) ['bogus']"),
    (["run", "--stages", "distill"], "needs stage 'teacher'"),
    (["run", "--events", "50"], "too few to split"),
])
def test_cli_errors_are_one_line_and_exit_2(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and err[0].startswith("tfcompress: error:")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_config_file_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("events: 5000\nlearning_rat: 0.1\n")
    assert main(["run", "--config", "c.yaml"]) == 2
    assert "unknown config key(s) ['learning_rat']" in capsys.readouterr().err
    (tmp_path / "d.yaml").write_text("target_sparsity: 1.2\n")
    assert main(["run", "--config", "d.yaml"]) == 2
    assert "target_sparsity" in capsys.readouterr().err
    (tmp_path / "e.yaml").write_text("temperature: 0\n")
    assert main(["run", "--config", "e.yaml"]) == 2
    assert "temperature" in capsys.readouterr().err
    (tmp_path / "f.yaml").write_text("teacher: {embedding_dims: 8}\n")
    assert main(["run", "--config", "f.yaml"]) == 2
    assert "unknown ctr teacher option(s) ['embedding_dims']" in capsys.readouterr().err


def test_output_path_that_is_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("x")
    assert main(["run", "--quick", "--out", "taken"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_console_script_is_installed():
    proc = subprocess.run(["tfcompress", "run", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--stages" in proc.stdout
