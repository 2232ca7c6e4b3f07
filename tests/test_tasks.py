"""The pipeline runs every task end to end (tiny settings): text and image report accuracy, ship assets."""
import json
import os

import pytest

from tfcompress.errors import TFCompressError
from tfcompress.pipeline import RunConfig, run


def _tiny(task, tmp_path, stages=("teacher", "distill", "qat", "export"), **kw):
    kw = {"teacher_epochs": 2, "student_epochs": 1, **kw}
    return RunConfig(task=task, quick=True, out=str(tmp_path / "run"), savedmodels_dir=str(tmp_path / "sm"),
                     tflite_dir=str(tmp_path / "tfl"), latency_runs=5, calibration_samples=30, stages=stages, **kw)


def test_text_task_on_product_titles(tmp_path):
    result = run(_tiny("text", tmp_path, events=60_000))
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    stages = {(s["name"], s["format"]): s for s in report["stages"]}
    assert "accuracy" in stages[("student_int8", "tflite")] and "auc" not in stages[("student_int8", "tflite")]
    assert report["summary"]["metric"] == "accuracy"
    assert abs(report["parity"]["accuracy_diff"]) <= 0.05
    tok = tmp_path / "tfl" / "text_tokenizer"
    assert (tok / "vocab.txt").exists() and (tok / "tokenizer.json").exists()
    side = json.loads((tmp_path / "tfl" / "text_student_int8.json").read_text())
    assert side["assets"]["tokenizer"].endswith("text_tokenizer")
    assert result.stage("teacher").accuracy > 0.15  # 20 categories: chance is 0.05


def test_image_task_on_synthetic_images(tmp_path):
    result = run(_tiny("image", tmp_path, events=2_000, stages=("teacher", "distill", "export")))
    assert os.path.exists(tmp_path / "tfl" / "image_student_int8.tflite")
    assert result.summary["metric"] == "accuracy"
    assert result.stage("teacher").accuracy > 0.2  # 10 classes: chance is 0.1


def test_unknown_task_and_model_options_are_clear_errors(tmp_path):
    with pytest.raises(TFCompressError, match="task 'video' is not one of"):
        RunConfig(task="video").validate()
    with pytest.raises(TFCompressError, match=r"unknown text teacher option\(s\) \['depth'\]"):
        RunConfig(task="text", teacher={"depth": 3}).validate()


def test_each_task_resolves_its_own_stages():
    from tfcompress.pipeline import STAGES

    assert RunConfig().validate().stages == STAGES
    assert RunConfig(task="retrieval").validate().stages == ("teacher", "baseline", "distill", "compress", "export")
    with pytest.raises(TFCompressError, match=r"unknown stage\(s\) \['compress'\]; ctr stages are"):
        RunConfig(stages=("teacher", "compress")).validate()
    with pytest.raises(TFCompressError, match=r"unknown retrieval student option\(s\) \['depth'\]"):
        RunConfig(task="retrieval", student={"depth": 2}).validate()
    with pytest.raises(TFCompressError, match=r"embedding='bogus' is not one of"):
        RunConfig(task="retrieval", student={"embedding": "bogus"}).validate()


def test_validate_resolves_once_into_one_task(monkeypatch):
    from tfcompress.pipeline import Pipeline, ResolvedConfig
    from tfcompress.tasks import CTRTask

    made = []
    monkeypatch.setattr(CTRTask, "__init__", lambda self: made.append(self))
    cfg = RunConfig(quick=True, stages=("baseline",)).validate()
    assert isinstance(cfg, ResolvedConfig) and cfg.validate() is cfg and made == [cfg.task]
    pipe = Pipeline(cfg)
    assert pipe.task is cfg.task and made == [cfg.task]  # the pipeline neither re-validates nor builds a task
    assert cfg.to_dict()["task"] == "ctr" and [s.name for s in cfg.selected_stages] == ["baseline"]
    with pytest.raises(AttributeError, match="no attribute 'compress'"):
        pipe.compress()


def test_stage_requirements_are_declared_by_the_stages():
    with pytest.raises(TFCompressError, match=r"stage 'prune' needs a student: add 'distill' \(or 'baseline'\)"):
        RunConfig(stages=("teacher", "prune")).validate()
    with pytest.raises(TFCompressError, match="stage 'distill' needs stage 'teacher'"):
        RunConfig(task="retrieval", stages=("distill",)).validate()


def test_a_task_written_for_the_old_output_attribute_still_works():
    from tfcompress.tasks import CTRTask

    with pytest.warns(DeprecationWarning, match="objective"):
        class Old(CTRTask):
            output = "multiclass"
    assert Old().objective == "multiclass" and Old().output == "multiclass"


def test_the_pipeline_runs_any_list_of_stages(tmp_path):
    """A task instance with its own stage list runs through run() like the built-in ones."""
    from tfcompress.stages import BaselineStage, Stage
    from tfcompress.tasks import CTRTask

    class Note(Stage):
        name, requires = "note", ("baseline",)

        def run(self, context):
            alone = context.find(BaselineStage.result)
            context.progress(self.name, f"{alone.name} has {alone.params} params", 0.0)
            return alone

    class Tiny(CTRTask):
        name = "tiny"
        stages = (BaselineStage(), Note())

    with pytest.raises(TFCompressError, match="stage 'note' needs stage 'baseline'"):
        RunConfig(task=Tiny(), stages=("note",)).validate()
    result = run(_tiny(Tiny(), tmp_path, stages=None, student_epochs=1))
    assert [r.name for r in result.stages] == ["student_alone"] and result.summary == {} and result.parity == {}
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["config"]["task"] == "tiny" and report["stages"][0]["latency_p50_us"] > 0
    assert (tmp_path / "sm" / "tiny_student_alone" / "saved_model.pb").exists()
