"""tfcompress tune: a tiny search on the built-in CTR data (front, choice, recipe, resume, CLI) and the stages
honouring the recipe fields (structured share, low-rank energy, export mode)."""
import dataclasses
import os

import numpy as np
import pytest

from tfcompress import tflite_file
from tfcompress.cli import main
from tfcompress.pipeline import Pipeline, RunConfig
from tfcompress.tolerance import Tolerance
from tfcompress.tune import non_dominated, search
from tfcompress.tune.front import dominates

#: a small search table: every trial trains in a few seconds
SPACE = {"student.hidden": ((8,), (16,)), "student.embedding_dim": (2, 4), "target_sparsity": (0.0, 0.5),
         "structured_share": (None, 0.5), "lowrank_energy": (None, 0.9), "qat": (False,),
         "export_mode": ("int8", "dynamic")}
TOLERANCE = "5%"


def _tiny(out, **overrides):
    return RunConfig(quick=True, events=3000, out=str(out), teacher_epochs=2, student_epochs=1, prune_epochs=1,
                     latency_runs=5, calibration_samples=50, teacher={"hidden": (32,), "embedding_dim": 8},
                     **overrides)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """Two trials, then the same study again for three in all (one new trial)."""
    out = tmp_path_factory.mktemp("tune")
    config = _tiny(out, stages=("teacher", "distill", "prune", "export"))  # its own recipe: no QAT
    first = search(config, tolerance=TOLERANCE, trials=2, space=SPACE, progress=False)
    second = search(config, tolerance=TOLERANCE, trials=3, space=SPACE, progress=False)
    return first, second


def _finished(result):
    return [t for t in result.trials if t["state"] == "COMPLETE"]


def test_resume_adds_only_the_missing_trials(searched):
    first, second = searched
    assert [t["number"] for t in first.trials] == [0, 1]
    assert [t["number"] for t in second.trials] == [0, 1, 2]
    assert [t["recipe"] for t in second.trials[:2]] == [t["recipe"] for t in first.trials]
    own = first.trials[0]["recipe"]  # trial 0 is the config's own recipe
    assert (own["target_sparsity"], own["export_mode"], own["qat"], own["student"]["hidden"]) == (0.5, "int8", False, [16])
    assert second.teacher_val == first.teacher_val  # the teacher reloaded, not trained again


def test_front_is_the_brute_force_non_dominated_set(searched):
    result = searched[1]
    rows = _finished(result)
    assert rows, [t.get("why") for t in result.trials]
    distinct = [r for r in rows if r["same_as"] is None]  # a recipe sampled again is one point
    for r in rows:
        if r["same_as"] is not None:
            first = next(d for d in distinct if d["number"] == r["same_as"])
            assert r["recipe"] == first["recipe"] and r["val_metric"] == first["val_metric"]
            assert r["why"] == f"same recipe as #{first['number']}"
    costs = {r["number"]: (-r["val_metric"], r["size_bytes"]) for r in distinct}
    expected = {n for n, c in costs.items() if not any(dominates(o, c) for m, o in costs.items() if m != n)}
    assert {r["number"] for r in result.front} == expected
    assert [r["number"] for r in non_dominated(distinct, "size")] == sorted(expected)


def test_chosen_is_the_smallest_within_the_tolerance(searched):
    result = searched[1]
    tol = Tolerance.parse(TOLERANCE)
    within = [r for r in _finished(result) if tol.within(r["val_metric"], result.teacher_val)]
    if not within:
        assert result.chosen is None and "no trial is within" in result.note
        return
    assert result.chosen["size_bytes"] == min(r["size_bytes"] for r in within)
    assert tol.within(result.chosen["val_metric"], result.teacher_val)
    assert os.path.isfile(result.tflite_path) and os.path.isfile(result.tflite_path[:-len(".tflite")] + ".json")
    assert set(result.chosen_test) >= {"auc"}
    text = open(result.report_path).read()
    assert f"#{result.chosen['number']} CHOSEN" in text and "test split (not used to choose)" in text


def test_recipe_yaml_is_a_run_config_of_the_chosen_recipe(searched):
    result = searched[1]
    if result.chosen is None:
        pytest.skip("no trial within the tolerance in this tiny search: no recipe written")
    cfg = RunConfig.from_yaml(result.recipe_path).validate()
    recipe = result.chosen["recipe"]
    assert cfg.export_mode == recipe["export_mode"]
    assert cfg.target_sparsity == recipe["target_sparsity"]
    assert cfg.structured_share == recipe["structured_share"] and cfg.lowrank_energy == recipe["lowrank_energy"]
    student = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.student.items()}
    assert all(student[k] == v for k, v in recipe["student"].items())
    assert "baseline" not in cfg.stages and ("prune" in cfg.stages) == bool(
        recipe["target_sparsity"] or recipe["structured_share"] or recipe["lowrank_energy"])
    assert cfg.tolerance == TOLERANCE and cfg.events == 3000


def test_report_re_renders(searched):
    from tfcompress.tune import render_tune_report

    result = searched[1]
    os.remove(os.path.join(result.out, "tune_report.html"))
    paths = render_tune_report(result.out)
    assert os.path.isfile(paths["html"]) and "<img" in open(paths["html"]).read()


@pytest.mark.parametrize("argv, words", [(["tune", "--time-budget", "soon"], "time budget 'soon'"),
                                         (["tune", "--tolerance", "lots"], "tolerance 'lots'"),
                                         (["tune", "--trials", "0"], "--trials 0")])
def test_cli_bad_values_are_one_line(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def _weight_dtypes(path):
    return {t["values"].dtype.name for t in tflite_file.weights(path)}


def test_stages_honour_structured_share_lowrank_energy_and_export_mode(tmp_path):
    from tfcompress.stages.export import export_meta, export_result

    cfg = _tiny(tmp_path, stages=("baseline", "prune"), target_sparsity=0.0, structured_share=0.5,
                lowrank_energy=0.8, savedmodels_dir=str(tmp_path / "sm"), tflite_dir=str(tmp_path / "tfl"),
                student={"hidden": (32, 16), "embedding_dim": 4})
    pipe = Pipeline(cfg)
    alone = pipe.baseline()
    pruned = pipe.prune()
    assert pruned.params < alone.params
    layers = pruned.model.layers
    assert any(layer.name.endswith("_u") for layer in layers)  # a low-rank factor pair
    assert min(layer.units for layer in layers if type(layer).__name__ == "Dense" and layer.units > 8) <= 16
    meta, seen = export_meta(pipe.context), {}
    for mode in ("int8", "float16", "int4-weights"):
        result = export_result(pipe.context, "student_int8", pruned.model, mode, meta)
        seen[mode] = (_weight_dtypes(result.path), result.path)
        assert np.isfinite(result.quality["auc"]) and result.extra["export_mode"] == mode
    assert "int8" in seen["int8"][0] and "float32" not in seen["int8"][0]
    assert "float16" in seen["float16"][0]
    assert len({p for _, p in seen.values()}) == 3  # one file per mode
    assert os.path.getsize(seen["int4-weights"][1]) < os.path.getsize(seen["float16"][1])
    pipe.context.config = dataclasses.replace(pipe.context.config, per_channel=False)
    per_tensor = export_result(pipe.context, "student_int8", pruned.model, "int8", meta).path
    scales = [len(t["details"]["quantization_parameters"]["scales"]) for t in tflite_file.weights(per_tensor)]
    assert scales and max(scales) == 1
