"""`tfcompress run --task retrieval`: artifacts, the report's embedding share, TFLite top-K = Keras top-K,
the MovieLens / interactions-CSV data paths, and one-line errors for bad --data."""
import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from tfcompress.cli import main
from tfcompress.data.paths import find_dataset
from tfcompress.pipeline import RunConfig

TINY = "teacher_epochs: 1\nstudent_epochs: 1\nlatency_runs: 5\ncalibration_samples: 30\nevents: 12000\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrieval")
    (root / "tiny.yaml").write_text(TINY)
    argv = ["run", "--task", "retrieval", "--quick", "--config", str(root / "tiny.yaml"), "--out",
            str(root / "run"), "--savedmodels", str(root / "sm"), "--tflite-dir", str(root / "tfl"), "--seed", "1",
            "--stages", "teacher,distill,compress,export"]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(argv) == 0
    (root / "stdout.txt").write_text(out.getvalue())
    return root, json.loads((root / "run" / "report.json").read_text())


def test_artifacts_and_report_columns(quick_run, capsys):
    root, report = quick_run
    for name in ("teacher_float32", "student_int8", "ranking_teacher_float32", "ranking_student_int8"):
        assert (root / "tfl" / f"retrieval_{name}.tflite").stat().st_size > 0
        assert (root / "tfl" / f"retrieval_{name}.json").exists()
    for name in ("teacher", "student_distilled", "student_compressed"):
        for tower in ("query", "candidate"):
            assert (root / "sm" / f"retrieval_{name}" / tower / "saved_model.pb").exists()
    md = (root / "run" / "report.md").read_text()
    assert "ndcg@10" in md and "embedding_share" in md and "embedding_bytes" in md
    assert "% of the teacher's" in md and "Parity" in md
    rows = {(r["name"], r["format"]): r for r in report["stages"]}
    for r in rows.values():
        assert 0 < r["embedding_share"] <= 1 and r["embedding_bytes"] <= r["size_bytes"] or r["format"] == "keras"
    assert rows[("student_int8", "tflite")]["ndcg@10"] is not None
    assert rows[("ranking_student_int8", "tflite")]["sampled_ndcg@10"] is not None
    s = report["summary"]
    pair = rows[("student_int8", "tflite")]["size_bytes"] + rows[("ranking_student_int8", "tflite")]["size_bytes"]
    assert s["final_bytes"] == pair and s["size_ratio"] > 2
    assert s["embedding_share_teacher"] == rows[("teacher_float32", "tflite")]["embedding_share"]
    assert report["parity"]["topk_overlap"] >= 0.7
    assert "lines" not in s and "lines" not in report["parity"]  # figures; the sections render them
    assert "int8 on-device pair" in (root / "stdout.txt").read_text()  # the headline of the summary section
    sections = md[md.index("### Float32 teachers"):]
    assert main(["report", str(root / "run")]) == 0
    assert (root / "run" / "report.md").read_text().endswith(sections)


def _topk_from_savedmodels(folder, events, catalog, spec, k):
    """Top-k item ids from the two tower SavedModels (query features of ``events`` vs the catalogue)."""
    import tensorflow as tf

    def embed(tower, frame):
        fn = tf.saved_model.load(str(folder / tower)).signatures["serving_default"]
        names = [n for n in fn.structured_input_signature[1]]
        out = fn(**{n: tf.constant(frame[n].to_numpy().astype(spec[n].dtype)) for n in names})
        return next(iter(out.values())).numpy()

    scores = embed("query", events) @ embed("candidate", catalog).T
    return catalog["item_id"].to_numpy()[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def test_tflite_topk_equals_keras_topk(quick_run):
    from tfcompress.data import make_ecommerce
    from tfcompress.export import TFLiteModel
    from tfcompress.models.retrieval import item_catalog

    root, report = quick_run
    shop = make_ecommerce(report["config"]["events"], seed=1)
    users = shop.events[shop.events.click > 0].head(6).reset_index(drop=True)
    shipped = next(r["exported_from"] for r in report["stages"] if r["name"] == "student_int8")
    assert shipped in ("student_compressed", "student_distilled")
    for keras_name, tfl_name, exact in (("teacher", "teacher_float32", True), (shipped, "student_int8", False)):
        model = TFLiteModel(str(root / "tfl" / f"retrieval_{tfl_name}.tflite"))
        got = model.predict({n: users[n].to_numpy() for n in model.input_names})["item_ids"][:, :10]
        ref = _topk_from_savedmodels(root / "sm" / f"retrieval_{keras_name}", users,
                                     item_catalog(shop.events, shop.spec), shop.spec, 10)
        if exact:
            np.testing.assert_array_equal(got, ref)
        else:  # int8: the same items, order may swap near-ties
            assert np.mean([len(set(a) & set(b)) for a, b in zip(got, ref)]) >= 7


def test_cli_help_lists_the_task(capsys):
    assert main(["run", "--help"]) == 0
    assert "retrieval" in capsys.readouterr().out


@pytest.mark.parametrize("task", ["retrieval", "ctr"])
def test_bad_data_is_one_line_and_writes_nothing(task, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--task", task, "--data", "no_such_ratings.csv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0] and "movielens" in err[0]
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    assert main(["run", "--task", task, "--data", "x.csv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # time is optional (issue 14): a log without user and item columns says how to name them
    assert len(err) == 1 and "has no user/item column" in err[0] and "--user COLUMN --item COLUMN" in err[0]
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_unknown_stage_names_the_retrieval_stages(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--task", "retrieval", "--stages", "teacher,prune"]) == 2
    assert "retrieval stages are ['teacher', 'baseline', 'distill', 'compress', 'export']" in capsys.readouterr().err


def test_int4_row_tables_of_the_trained_student_in_the_compress_stage(tmp_path, capsys):
    (tmp_path / "int4.yaml").write_text(TINY + "student:\n  embedding: int4row\n")
    common = ["run", "--task", "retrieval", "--quick", "--config", str(tmp_path / "int4.yaml"), "--out",
              str(tmp_path / "run"), "--savedmodels", str(tmp_path / "sm"), "--tflite-dir", str(tmp_path / "tfl")]
    assert main(common + ["--stages", "compress"]) == 2  # nothing trained to quantize: one clear line
    err = capsys.readouterr().err.strip().splitlines()  # progress lines, then one error line
    assert err[-1].startswith("tfcompress: error:") and "'int4row' quantizes a trained student's tables" in err[-1]
    assert "baseline" in err[-1] and not (tmp_path / "run" / "report.json").exists()
    assert main(common + ["--stages", "baseline,compress"]) == 0
    rows = {r["name"]: r for r in json.loads((tmp_path / "run" / "report.json").read_text())["stages"]}
    alone, comp = rows["student_alone"], rows["student_compressed"]
    # the same trained tables, stored as packed int4 + a float scale per row: far fewer bytes, same ranking
    assert comp["embedding_bytes"] < 0.6 * alone["embedding_bytes"]  # only tables of >= 100 ids (users)
    assert abs(comp["sampled_ndcg@10"] - alone["sampled_ndcg@10"]) < 0.05
    assert "per-row int4, no retraining" in capsys.readouterr().err  # the progress line


def test_interactions_csv_feeds_both_tasks(tmp_path):
    from tfcompress.tasks import get_task

    rng = np.random.default_rng(0)
    n = 4000
    df = pd.DataFrame({"user_id": rng.integers(0, 80, n), "item_id": rng.integers(0, 120, n),
                       "timestamp": np.arange(n) * 60, "click": rng.integers(0, 2, n)})
    df.to_csv(tmp_path / "log.csv", index=False)
    cfg = RunConfig(task="retrieval", data=str(tmp_path / "log.csv"), quick=True).validate()
    data = cfg.task.load(cfg)
    assert data.candidates.shape == (len(data.test), data.list_size)
    assert (data.candidates[:, 0] == data.test_labels).all()
    assert data.metadata["list_size"] == data.list_size  # the dict view older code reads
    assert set(data.test_inputs) == {"user_id", "hour"}
    ctr = get_task("ctr").load(RunConfig(task="ctr", data=str(tmp_path / "log.csv"), quick=True).validate())
    assert "interactions from" in ctr.description and set(ctr.test_inputs) == {"user_id", "item_id", "hour"}


def test_movielens_data_for_retrieval_and_ctr():
    if find_dataset("movielens-small") is None:
        pytest.skip("MovieLens-small not found: put ml-latest-small.zip in ../shared/data/movielens-small")
    from tfcompress.tasks import get_task

    cfg = RunConfig(task="retrieval", data="movielens", quick=True).validate()
    data = get_task("retrieval").load(cfg)
    assert "MovieLens" in data.description and len(data.catalog) > 9000
    assert len(data.test_labels) == 600 and data.candidates.shape[1] == 50
    ctr = get_task("ctr").load(RunConfig(task="ctr", data="movielens", quick=True).validate())
    assert 0.3 < ctr.test_labels.mean() < 0.7  # rating >= 4 is about half of MovieLens
    assert {"user_id", "item_id", "genre", "hour"} == set(ctr.test_inputs)
