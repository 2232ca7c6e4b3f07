"""The retrieval export ships the smallest int8 file whose validation NDCG@10 is within the run's tolerance of
the best candidate's, and the report says which and why (issue 16, item 6)."""
import json

import pytest

from tfcompress.data import make_ecommerce
from tfcompress.export import read_sidecar
from tfcompress.models.retrieval import item_catalog, retrieval_student
from tfcompress.pipeline import RunConfig, run
from tfcompress.stages import RunContext, StageResult
from tfcompress.tasks.recommendation_metrics import choose_within, validation_metrics
from tfcompress.tasks.recommendation_report import PairSummary
from tfcompress.tasks.recommendation_stages import RecommendationExportStage


class _Data:
    """The few fields the export's choice reads: a catalogue, query inputs and validation users."""

    def __init__(self, shop, catalog):
        users = shop.events[shop.events.click > 0].head(40).reset_index(drop=True)
        self.spec, self.catalog, self.list_size, self.feature_spec = shop.spec, catalog, 20, shop.spec.to_dict()
        names = [f.name for f in shop.spec.features if f.group in ("user", "context") and f.name != "position"]
        self.calibration_inputs = {n: users[n].to_numpy() for n in names}
        self.val_inputs = self.test_inputs = self.calibration_inputs
        self.val_labels = self.test_labels = users["item_id"].to_numpy()
        self.val_seen = self.seen = None


@pytest.fixture(scope="module")
def two_students():
    shop = make_ecommerce(events=2000, seed=0)
    catalog = item_catalog(shop.events, shop.spec)
    wide = retrieval_student(shop.spec, embedding_dim=16, output_dim=16, candidates=catalog)
    narrow = retrieval_student(shop.spec, embedding_dim=4, output_dim=4, candidates=catalog)
    return _Data(shop, catalog), wide, narrow


def _ship(monkeypatch, tmp_path, data, wide, narrow, scores, tolerance):
    """Export with the validation scores ``scores`` (file name → NDCG@10) standing in for the files'."""
    import tfcompress.tasks.recommendation_stages as stages

    class Config:
        tflite_dir, calibration_samples, savedmodels_dir = str(tmp_path), 20, str(tmp_path)

    Config.tolerance = tolerance
    context = RunContext(config=Config, task=type("T", (), {"name": "retrieval", "metric": "ndcg@10"}), data=data,
                         progress=lambda *a: None)
    context.record(StageResult("student_distilled", "keras", model=wide))
    context.record(StageResult("student_compressed", "keras", model=narrow))

    def fake(top_ids, d):
        assert d is data and len(top_ids) == len(data.val_labels)
        return {"ndcg@10": scores.pop(0), "hr@10": validation_metrics(top_ids, d)["hr@10"]}

    monkeypatch.setattr(stages, "validation_metrics", fake)
    shipped = RecommendationExportStage()._ship_student(context)
    summary = PairSummary()
    lines = summary.markdown({**_figures(shipped), "choice": shipped.extra["choice"]})
    return shipped, "\n".join(lines)


def _figures(result):
    m = "ndcg@10"
    return {"baseline": "t", "final": "s", "metric": m, "teacher_bytes": 2, "final_bytes": 1, "size_ratio": 2.0,
            "gzip_ratio": 2.0, f"{m}_teacher": 0.3, f"{m}_final": result.quality[m], f"{m}_percent_of_teacher": 50,
            "embedding_share_teacher": 0.5, "embedding_share_final": 0.5, "int8_retrieval_from": "x"}


def test_smaller_file_outside_the_tolerance_does_not_ship(monkeypatch, tmp_path, two_students):
    data, wide, narrow = two_students
    shipped, text = _ship(monkeypatch, tmp_path, data, wide, narrow, [0.301, 0.212], "1%")  # distilled, compressed
    assert shipped.extra["exported_from"] == "student_distilled"
    assert read_sidecar(tmp_path / "retrieval_student_int8.tflite")["source"] == "student_distilled"
    assert "student_compressed: NDCG@10 0.2120 vs 0.3010 of student_distilled, outside 1% — shipped " \
           "student_distilled" in text and "x larger" in text
    assert "student_compressed: 0.2120" in text and "(outside 1%)" in text
    # the other candidate's file is gone: only the shipped file and its sidecar are left
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["retrieval_student_int8.json", "retrieval_student_int8.tflite"]


def test_smaller_file_within_the_tolerance_ships(monkeypatch, tmp_path, two_students):
    data, wide, narrow = two_students
    shipped, text = _ship(monkeypatch, tmp_path, data, wide, narrow, [0.301, 0.299], "1%")
    assert shipped.extra["exported_from"] == "student_compressed"
    assert read_sidecar(tmp_path / "retrieval_student_int8.tflite")["source"] == "student_compressed"
    choice = shipped.extra["choice"]
    sizes = {c["name"]: c["bytes"] for c in choice["candidates"]}
    assert sizes["student_compressed"] < sizes["student_distilled"]
    assert "shipped student_compressed: NDCG@10 0.2990, within 1% of 0.3010 of student_distilled" in text
    # the same figures at an absolute tolerance of 0.001: now outside, the larger file ships
    shipped, text = _ship(monkeypatch, tmp_path, data, wide, narrow, [0.301, 0.299], "0.001")
    assert shipped.extra["exported_from"] == "student_distilled" and "outside 0.001" in text


def test_without_validation_figures_the_least_lossy_ships():
    choice = choose_within([dict(name="student_distilled", validation=None, bytes=300),
                            dict(name="student_compressed", validation=None, bytes=100)], "1%")
    assert choice["shipped"] == "student_distilled" and "no validation split" in choice["reason"]


def test_quick_run_reports_the_choice_on_validation(tmp_path):
    cfg = RunConfig(quick=True, task="retrieval", out=str(tmp_path / "run"), seed=2, teacher_epochs=1,
                    student_epochs=1, events=5000, latency_runs=2, calibration_samples=20,
                    savedmodels_dir=str(tmp_path / "sm"), tflite_dir=str(tmp_path / "tfl"),
                    stages=("teacher", "distill", "compress", "export")).validate()
    run(cfg)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    choice = report["summary"]["choice"]
    assert {c["name"] for c in choice["candidates"]} == {"student_distilled", "student_compressed"}
    assert all(0 <= c["validation"] <= 1 and c["bytes"] > 0 for c in choice["candidates"])
    shipped = next(r for r in report["stages"] if r["name"] == "student_int8")
    assert read_sidecar(tmp_path / "tfl" / "retrieval_student_int8.tflite")["source"] == choice["shipped"]
    assert shipped["val_ndcg@10"] == round(next(c["validation"] for c in choice["candidates"]
                                                if c["name"] == choice["shipped"]), 5)
    md = (tmp_path / "run" / "report.md").read_text()
    assert "choice of the int8 retrieval file on the validation users" in md and choice["reason"] in md
    assert not [p for p in (tmp_path / "tfl").iterdir() if p.name.startswith(".candidates")]
