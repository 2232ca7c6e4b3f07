"""The text task with a pretrained checkpoint folder as teacher (a tiny random keras-hub BERT written to a
temporary folder): transfer set, offline distillation from the cached logits, int8 export, the teacher
cache reused by a second run, the students' vocabulary and embedding options, and the one-line errors."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from tfcompress.errors import TFCompressError
from tfcompress.pipeline import RunConfig, run

WORDS = ["dress", "shirt", "fits", "fabric", "colour", "size", "the", "is", "very", "and", "a", "this", "top",
         "skirt", "soft", "wash", "order", "store", "price", "length", "waist"]
GOOD, BAD = ["great", "lovely", "perfect"], ["awful", "poor", "broken"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + GOOD + BAD + ["##s", "##ly", "caf", "##e"]
STAGES = ("teacher", "baseline", "distill", "export")


def tiny_bert(folder, seq=64):
    """A random 1-layer BERT preset (hidden 16) with a WordPiece vocabulary of ~40 tokens."""
    import keras_hub

    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=seq)
    backbone.save_to_preset(str(folder))
    keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True).save_to_preset(str(folder))
    return str(folder)


def reviews(n=360, seed=0):
    """Texts whose label is told by their words of praise (great/lovely/perfect) or blame (awful/poor/broken)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    texts = [" ".join(list(rng.choice(WORDS, 4)) + list(rng.choice(GOOD if y else BAD, 3)) + list(rng.choice(WORDS, 2)))
             for y in labels]
    return pd.DataFrame({"review": texts, "liked": np.where(labels == 1, "yes", "no")})


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory):
    pytest.importorskip("keras_hub")
    return tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def config(tmp_path, folder, **kw):
    values = dict(quick=True, task="text", data=reviews(), teacher_model=folder, labelled=40, stages=STAGES,
                  out=str(tmp_path / "run"), savedmodels_dir=str(tmp_path / "sm"), tflite_dir=str(tmp_path / "tfl"),
                  teacher_cache=str(tmp_path / "cache"), latency_runs=5,
                  student_epochs=3, overwrite=True)
    return RunConfig(**{**values, **kw}).validate()


def test_transfer_set_distillation_export_and_the_cache(tmp_path, teacher_folder, monkeypatch):
    from tfcompress.export import TFLiteModel
    from tfcompress.pretrained.encoder import PretrainedEncoder

    calls = []
    embed_ids = PretrainedEncoder.embed_ids
    monkeypatch.setattr(PretrainedEncoder, "embed_ids", lambda self, ids, *a, **k: calls.append(len(ids))
                        or embed_ids(self, ids, *a, **k))
    out = run(config(tmp_path, teacher_folder))
    report = json.load(open(os.path.join(str(tmp_path / "run"), "report.json")))
    rows = {(r["name"], r["format"]): r for r in report["stages"]}
    teacher = rows[("teacher", "keras3")]
    assert teacher["size_bytes"] == teacher["weight_bytes"] > 0 and teacher["keras3_p50_b32_ms"] > 0
    assert teacher["latency_p50_us"] > 0 and teacher["accuracy"] > 0.6
    assert ("teacher_float32", "tflite") not in rows and ("student_int8", "tflite") in rows
    assert "no teacher_float32 file" in teacher["export"]
    assert "40 labelled + 248 transfer" in report["meta"]["data"]
    assert "Keras 3 pretrained" in report["summary"]["baseline_format"]
    assert out.summary["size_ratio"] > 1
    assert sum(calls) >= 288 + 36  # the teacher embedded the train (labelled + transfer) and validation rows
    int8 = rows[("student_int8", "tflite")]["path"]
    assert "corpus_texts" not in open(int8.replace(".tflite", ".json")).read()  # the app's sidecar: no texts
    ids = np.zeros((4, 64), np.int32)
    ids[:, :3] = [[5, 6, 7]] * 4
    assert TFLiteModel(int8).predict({"token_ids": ids}).shape == (4, 2)
    assert report["parity"]["max_abs_prob_diff"] < 0.1
    calls.clear()
    run(config(tmp_path, teacher_folder, stages=("teacher",)))
    assert sum(calls) == 0  # the second run read the teacher's outputs from the cache


def test_the_distilled_student_trains_on_the_transfer_rows(tmp_path, teacher_folder):
    from tfcompress.pipeline import Pipeline
    from tfcompress.stages.pretrained_teacher import offline_datasets

    pipe = Pipeline(config(tmp_path, teacher_folder, stages=("teacher",)))
    pipe.teacher()
    train, val = offline_datasets(pipe.context)
    labels = np.concatenate([y.numpy() for (_, _), y in train])
    logits = np.concatenate([t.numpy() for (_, t), _ in train])
    assert len(labels) == 288 and (labels == -1).sum() == 248 and logits.shape == (288, 2)
    assert sum(len(y) for _, y in pipe.data.train_ds) == 40  # the student alone: the labelled rows only
    pool = np.concatenate([pipe.data.split_labels["train"], labels[labels >= 0]])
    share = np.bincount(labels[labels >= 0]) / (labels >= 0).sum()  # stratified: the classes' shares kept
    assert np.abs(np.bincount(pipe.data.split_labels["train"]) - 40 * share).max() <= 1 and len(pool) == 80
    # the distiller's label loss skips the transfer rows (label -1), its soft loss does not
    from tfcompress import keras
    from tfcompress.distill import OfflineDistiller
    from tfcompress.stages import build_student

    distiller = OfflineDistiller(build_student(pipe.context), alpha=1.0, objective="multiclass")
    distiller.compile(optimizer=keras.optimizers.SGD(0.0), metrics=pipe.task.keras_metrics())
    only_transfer = train.unbatch().filter(lambda xt, y: y < 0).batch(64)
    logs = distiller.evaluate(only_transfer, return_dict=True, verbose=0)
    assert logs["student_loss"] == 0.0 and logs["distillation_loss"] > 0


def test_teacher_vocabulary_and_embeddings(tmp_path, teacher_folder):
    from tfcompress.pipeline import Pipeline
    from tfcompress.stages import build_student

    for vocab in ("teacher", "own"):
        pipe = Pipeline(config(tmp_path, teacher_folder, stages=("teacher",), student_vocab=vocab,
                               student_embeddings="teacher"))
        data = pipe.context.data
        student = build_student(pipe.context)
        table = student.get_layer("token_embedding").get_weights()[0]
        assert table.shape[0] == data.vocab_size and abs(float(table.std()) - 0.05) < 1e-3
        if vocab == "teacher":
            assert data.tokenizer.get_vocabulary() == VOCAB and data.vocab_size == len(VOCAB)


def test_blank_labels_become_transfer_rows_or_are_dropped(tmp_path, teacher_folder):
    from tfcompress.pipeline import Pipeline

    df = reviews()
    df.loc[:99, "liked"] = None
    pipe = Pipeline(config(tmp_path, teacher_folder, data=df, labelled=None, stages=("teacher",)))
    assert len(pipe.context.data.split_rows["transfer"]) == 100
    assert "100 rows without a label: transfer rows" in pipe.context.data.description
    plain = RunConfig(quick=True, task="text", data=df, stages=("baseline",), out=str(tmp_path / "p"),
                      savedmodels_dir=str(tmp_path / "sm"), tflite_dir=str(tmp_path / "tfl")).validate()
    assert "100 rows without a label dropped" in Pipeline(plain).context.data.description


def test_a_checkpoint_folder_for_another_task_is_one_line(tmp_path, teacher_folder):
    cfg = RunConfig(quick=True, task="ctr", events=2000, teacher_model=teacher_folder, stages=("teacher",),
                    out=str(tmp_path / "run"), savedmodels_dir=str(tmp_path / "sm"), tflite_dir=str(tmp_path / "tfl"))
    with pytest.raises(TFCompressError, match="for --task text only, not --task ctr") as e:
        run(cfg)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kw, words", [
    (dict(labelled=10_000), "more than the 288 labelled training rows"),
    (dict(teacher_model=None), "--labelled 40 needs --teacher FOLDER"),
    (dict(teacher_model=None, labelled=None, student_embeddings="teacher"), "--student-embeddings teacher needs"),
])
def test_options_that_cannot_apply_are_one_line(tmp_path, teacher_folder, kw, words):
    with pytest.raises(TFCompressError, match=words.replace("(", r"\(")) as e:
        config(tmp_path, teacher_folder, **kw)
    assert "\n" not in str(e.value) and not os.path.exists(tmp_path / "run")


def test_cli_bad_teacher_folder_exits_2(tmp_path, capsys):
    from tfcompress.cli import main

    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    csv = tmp_path / "t.csv"
    reviews(60).to_csv(csv, index=False)
    code = main(["run", "--task", "text", "--data", str(csv), "--teacher", str(folder), "--quick",
                 "--out", str(tmp_path / "run"), "--savedmodels", str(tmp_path / "sm"), "--tflite-dir",
                 str(tmp_path / "tfl")])
    err = capsys.readouterr().err
    assert code == 2 and "has no model.safetensors" in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "run")
