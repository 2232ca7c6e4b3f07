"""Pretrained teachers (tfcompress.pretrained): a tiny random BERT saved as a keras-hub preset, and one check
of the shared all-MiniLM-L6-v2 checkpoint (skipped with the reason when that folder or safetensors is absent)."""
import json
import os
import shutil

import numpy as np
import pytest

from tfcompress.data.paths import shared_data_dir
from tfcompress.errors import TFCompressError
from tfcompress.pretrained import (PretrainedTeacher, TeacherOutputCache, is_model_folder, load_encoder)
from tfcompress.pretrained.checkpoint import text_options

WORDS = "good great love nice happy bad awful hate poor sad phone movie cafe the it is this was".split()
POSITIVE, NEGATIVE, NEUTRAL = WORDS[:5], WORDS[5:10], WORDS[10:]


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    """A random 1-layer BERT (hidden 16) and its WordPiece tokenizer, saved with save_to_preset."""
    import keras as keras3
    import keras_hub

    keras3.utils.set_random_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    folder = str(tmp_path_factory.mktemp("tiny") / "tiny-bert")
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(vocab), num_layers=1, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=32)
    backbone.save_to_preset(folder)
    keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True).save_to_preset(folder)
    return folder


@pytest.fixture(scope="module")
def encoder(tiny_preset):
    return load_encoder(tiny_preset, sequence_length=16)


def _toy(n, seed):
    """Texts of 2-4 sentiment words among neutral ones; label 1 for positive words."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    texts = [" ".join(rng.choice(POSITIVE if y else NEGATIVE, rng.integers(2, 5)).tolist()
                      + rng.choice(NEUTRAL, 2).tolist()) for y in labels]
    return texts, labels


def _hf_folder(tmp_path, **files):
    folder = tmp_path / "hf"
    folder.mkdir()
    for name, text in {"config.json": json.dumps({"model_type": "bert"}), "model.safetensors": "",
                       "vocab.txt": "[PAD]\n", "tokenizer_config.json": '{"do_lower_case": true}', **files}.items():
        if text is not None:
            (folder / name).write_text(text)
    return str(folder)


def test_is_model_folder(tiny_preset, tmp_path):
    assert is_model_folder(tiny_preset)
    assert is_model_folder(_hf_folder(tmp_path))
    assert not is_model_folder(str(tmp_path))  # no config.json
    assert not is_model_folder(os.path.join(tiny_preset, "config.json"))  # a file


def test_missing_files_are_named(tiny_preset, tmp_path):
    with pytest.raises(TFCompressError, match=r"has no vocab\.txt"):
        load_encoder(_hf_folder(tmp_path, **{"vocab.txt": None}))
    shutil.rmtree(tmp_path / "hf")
    with pytest.raises(TFCompressError, match=r"has no model\.safetensors: it has pytorch_model\.bin"):
        load_encoder(_hf_folder(tmp_path, **{"model.safetensors": None, "pytorch_model.bin": "x"}))
    shutil.rmtree(tmp_path / "hf")
    with pytest.raises(TFCompressError, match=r"'gpt_neo' checkpoint"):
        load_encoder(_hf_folder(tmp_path, **{"config.json": json.dumps({"model_type": "gpt_neo"})}))
    broken = str(tmp_path / "preset")
    shutil.copytree(tiny_preset, broken)
    os.remove(os.path.join(broken, "tokenizer.json"))
    with pytest.raises(TFCompressError, match=r"has no tokenizer\.json") as e:
        load_encoder(broken)
    assert "\n" not in str(e.value)


def test_uncased_checkpoints_strip_accents(tmp_path):
    assert text_options(_hf_folder(tmp_path)) == {"lowercase": True, "strip_accents": True}
    (tmp_path / "cased").mkdir()
    cased = _hf_folder(tmp_path / "cased", **{"tokenizer_config.json": '{"do_lower_case": false}'})
    assert text_options(cased) == {"lowercase": False, "strip_accents": False}


def test_tokenize_and_mean_pooling_match_a_numpy_reference(encoder):
    texts = ["good phone", "this movie was awful and sad", "", "the cafe is nice nice nice great"]
    ids = encoder.tokenize(texts)
    assert ids.dtype == np.int32 and ids.shape == (4, 16)
    emb = encoder.embed(texts, batch_size=3)
    assert emb.dtype == np.float32 and emb.shape == (4, encoder.hidden_size) == (4, 16)
    mask = ids != encoder.pad_id
    out = encoder.backbone({"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask})
    hidden = np.asarray(out["sequence_output"])
    reference = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(emb, reference, atol=1e-5)
    assert mask.sum(axis=1).tolist()[:3] == [4, 8, 2]  # [CLS] ... [SEP]; "and" is [UNK]
    assert encoder.embed([]).shape == (0, 16)


def test_a_distilbert_preset_loads_through_the_same_path(tmp_path):
    """keras-hub picks the classes: a backbone without segment ids works the same way."""
    import keras_hub

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    keras_hub.models.DistilBertBackbone(vocabulary_size=len(vocab), num_layers=1, num_heads=2, hidden_dim=8,
                                        intermediate_dim=16, max_sequence_length=16).save_to_preset(str(tmp_path))
    keras_hub.models.DistilBertTokenizer(vocabulary=vocab, lowercase=True).save_to_preset(str(tmp_path))
    encoder = load_encoder(str(tmp_path), sequence_length=8)
    ids = encoder.tokenize(["good phone", "bad"])
    mask = ids != encoder.pad_id
    hidden = np.asarray(encoder.backbone({"token_ids": ids, "padding_mask": mask}))
    reference = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(encoder.embed(["good phone", "bad"]), reference, atol=1e-5)
    assert type(encoder.backbone).__name__ == "DistilBertBackbone" and encoder.hidden_size == 8


def test_encoder_facts(encoder, tiny_preset):
    assert encoder.vocabulary[:3] == ["[PAD]", "[UNK]", "[CLS]"]
    assert encoder.token_embeddings.shape == (len(encoder.vocabulary), 16)
    assert encoder.num_layers == 1 and encoder.params == encoder.backbone.count_params()
    assert encoder.weight_bytes == 4 * encoder.params
    assert len(encoder.fingerprint) == 64 and encoder.fingerprint == load_encoder(tiny_preset, 16).fingerprint
    latency = encoder.latency_ms(2, runs=2)
    assert latency["p90"] >= latency["p50"] > 0


def test_probe_separates_a_toy_set_and_the_cache_skips_the_encoder(encoder, tmp_path, monkeypatch):
    texts, labels = _toy(64, 0)
    test_texts, test_labels = _toy(32, 1)
    calls = []
    embed = encoder.embed
    monkeypatch.setattr(encoder, "embed", lambda *a, **k: calls.append(1) or embed(*a, **k))
    cache = TeacherOutputCache(tmp_path / "cache")
    teacher = PretrainedTeacher.fit(encoder, texts, labels, 2, val=(test_texts, test_labels), cache=cache)
    assert (teacher.predict_classes(texts) == labels).mean() >= 0.95
    assert (teacher.predict_classes(test_texts) == test_labels).mean() >= 0.9  # a random 1-layer encoder
    first = len(calls)
    again = PretrainedTeacher.fit(encoder, texts, labels, 2, val=(test_texts, test_labels), cache=cache)
    np.testing.assert_allclose(again.logits(test_texts), teacher.logits(test_texts), atol=1e-6)
    assert first == 2 and len(calls) == first  # train + val embedded once; the refit read the cache
    assert len([f for f in os.listdir(cache.folder) if f.endswith(".json")]) == 2
    assert teacher.params == encoder.params + 16 * 2 + 2 and "head probe" in teacher.describe()


def test_fine_tuning_the_top_layer_keeps_the_loaded_encoder(encoder, tmp_path):
    texts, labels = _toy(16, 2)
    before = [np.array(w) for w in encoder.backbone.get_weights()]
    steps = []
    cache = TeacherOutputCache(tmp_path / "cache")
    teacher = PretrainedTeacher.fit(encoder, texts, labels, 2, head="top:1", epochs=1, batch_size=8, cache=cache,
                                    progress=lambda done, total: steps.append((done, total)))
    assert steps[-1] == (2, 2) and teacher.logits(texts).shape == (16, 2)
    assert teacher.embeddings(texts).shape == (16, 16)
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(before, encoder.backbone.get_weights()))
    assert teacher.encoder.fingerprint != encoder.fingerprint
    steps.clear()
    again = PretrainedTeacher.fit(encoder, texts, labels, 2, head="top:1", epochs=1, batch_size=8, cache=cache,
                                  progress=lambda done, total: steps.append((done, total)))
    assert steps == []  # weights from the cache: no embedding, no training
    np.testing.assert_allclose(again.logits(texts), teacher.logits(texts), atol=1e-5)
    with pytest.raises(TFCompressError, match="top:2"):
        PretrainedTeacher.fit(encoder, texts, labels, 2, head="top:2")


MINILM = os.path.join(shared_data_dir() or "", "minilm-l6")


def test_minilm_cosines_match_its_source_note():
    if not os.path.isdir(MINILM):
        pytest.skip(f"minilm-l6 not found at {MINILM!r} (shared_data_dir()={shared_data_dir()!r})")
    pytest.importorskip("safetensors", reason="reading a Hugging Face checkpoint needs the safetensors package")
    encoder = load_encoder(MINILM, sequence_length=32)
    e = encoder.embed(["This phone is great", "I love this phone", "The weather is cold today"])
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    assert abs(float(e[0] @ e[1]) - 0.845) <= 0.01
    assert abs(float(e[0] @ e[2]) - 0.012) <= 0.03
    ids = encoder.tokenize(["Café CRÈME", "cafe creme"])
    assert (ids[0] == ids[1]).all()  # uncased: lowercased, accents stripped
