"""Text family: WordPiece tokenization (keras-nlp, outside the model), the Transformer teacher, the int8 CNN
student, distillation and int8 TFLite parity — on the built-in synthetic product titles (no data folder)."""
import json
import os

import numpy as np
import pytest

from tfcompress import keras, tf
from tfcompress.data.reviews import titles_task
from tfcompress.data.text import (check_labels, learn_vocabulary, load_tokenizer, make_tokenizer, save_vocabulary,
                                  text_dataset, tokenize)
from tfcompress.errors import TFCompressError
from tfcompress.models.text import hidden_states, text_custom_objects, text_student, text_teacher

SEQ_LEN = 8


@pytest.fixture(scope="module")
def titles():
    data = titles_task(seed=0)  # ~2,000 titles, 20 categories
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.texts))
    texts = [data.texts[i] for i in order]
    labels = data.labels[order]
    cut = int(0.75 * len(texts))
    return (texts[:cut], labels[:cut]), (texts[cut:], labels[cut:]), data.num_classes


@pytest.fixture(scope="module")
def tokenizer(titles):
    (texts, _), _, _ = titles
    return make_tokenizer(learn_vocabulary(texts, vocab_size=600), SEQ_LEN)


def test_keras_nlp_and_tf_keras_coexist(tokenizer):
    import keras as keras3
    import keras_nlp  # noqa: F401  (imported after tfcompress by the fixture)

    assert keras.__name__.startswith("tf_keras") and tf.keras.__name__.startswith("tf_keras")
    assert keras3.__version__.startswith("3.")
    x = keras.Input((2,))
    m = keras.Model(x, keras.layers.Dense(1)(x))
    assert isinstance(m, keras.Model) and not isinstance(m, keras3.Model)


def test_vocabulary_and_tokenizer(titles, tokenizer):
    (texts, _), _, _ = titles
    vocab = tokenizer.get_vocabulary()
    assert vocab[:2] == ["[PAD]", "[UNK]"] and 100 < len(vocab) <= 600
    ids = tokenize(texts[:5], tokenizer)
    assert ids.shape == (5, SEQ_LEN) and ids.dtype == np.int32
    assert (ids >= 0).all() and (ids < len(vocab)).all()
    # a title's words map back to its lower-cased words (no [UNK] for words seen in training)
    words = [vocab[i] for i in ids[0] if i > 0]
    assert "".join(w.replace("##", "") for w in words) == texts[0].lower().replace(" ", "")
    # padding is 0, unknown is 1, truncation at SEQ_LEN
    odd = tokenize(["€", " ".join(["dress"] * 40)], tokenizer)
    assert odd[0].tolist() == [1] + [0] * (SEQ_LEN - 1) and (odd[1] == vocab.index("dress")).all()


def test_save_and_load_tokenizer(tmp_path, titles, tokenizer):
    (texts, _), _, _ = titles
    path = save_vocabulary(tokenizer, tmp_path / "model" / "tokenizer")
    assert sorted(os.listdir(path)) == ["tokenizer.json", "vocab.txt"]
    assert not [n for n in os.listdir(tmp_path / "model") if n.endswith(".tmp")]
    config = json.load(open(os.path.join(path, "tokenizer.json")))
    assert config["sequence_length"] == SEQ_LEN and config["lowercase"] is True
    again = load_tokenizer(path)
    np.testing.assert_array_equal(tokenize(texts[:50], again), tokenize(texts[:50], tokenizer))
    assert load_tokenizer(os.path.join(path, "vocab.txt"), sequence_length=4)(["x"]).shape[-1] == 4
    with pytest.raises(TFCompressError, match="no tokenizer vocabulary"):
        load_tokenizer(tmp_path / "nowhere")
    with open(os.path.join(path, "vocab.txt"), "a") as f:
        f.write("extra\n")
    with pytest.raises(TFCompressError, match="do not belong together"):
        load_tokenizer(path)


def test_text_dataset(titles, tokenizer):
    (texts, labels), _, n = titles
    x, y = next(iter(text_dataset(texts[:10], labels[:10], tokenizer, batch_size=4, num_classes=n)))
    assert list(x) == ["token_ids"] and x["token_ids"].dtype == tf.int32
    assert x["token_ids"].shape.as_list() == [4, SEQ_LEN] and y.dtype == tf.int32
    np.testing.assert_array_equal(x["token_ids"].numpy(), tokenize(texts[:4], tokenizer))
    only = next(iter(text_dataset(texts[:3], None, tokenizer, batch_size=8)))
    assert only["token_ids"].shape.as_list() == [3, SEQ_LEN]


@pytest.mark.parametrize("texts, labels, match", [
    ([], [], "texts is empty"),
    (["good", "   "], [0, 1], r"texts\[1\] is empty or blank"),
    (["good", None], [0, 1], r"texts\[1\] is NoneType"),
    ("good dress", [0], "one string"),
    (["good", "bad"], [0, 25], "outside the declared 20 classes"),
    (["good", "bad"], [0, -1], "< 0"),
    (["good", "bad"], [0], "one label each"),
    (["good", "bad"], [0.5, 1.0], "integer class ids"),
])
def test_bad_text_input(tokenizer, texts, labels, match):
    with pytest.raises(TFCompressError, match=match):
        text_dataset(texts, labels, tokenizer, num_classes=20)


def test_bad_vocabulary_and_builders():
    with pytest.raises(TFCompressError, match="must start with"):
        make_tokenizer(["a", "b", "c"], 8)
    with pytest.raises(TFCompressError, match="vocab_size"):
        learn_vocabulary(["a b"], vocab_size=2)
    with pytest.raises(TFCompressError, match="sequence_length"):
        make_tokenizer(["[PAD]", "[UNK]", "a"], 0)
    with pytest.raises(TFCompressError, match="WordPieceTokenizer"):
        tokenize(["a"], tokenizer=str.split)
    with pytest.raises(TFCompressError, match="not divisible by heads"):
        text_teacher(100, 2, 8, d_model=30, heads=4)
    with pytest.raises(TFCompressError, match="num_classes"):
        text_student(100, 1, 8)
    with pytest.raises(TFCompressError, match="kind"):
        text_student(100, 2, 8, kind="lstm")
    assert check_labels(np.array([1.0, 0.0]), 2, 2).tolist() == [1, 0]


def test_teacher_hidden_states_and_save(tmp_path):
    t = text_teacher(vocab_size=50, num_classes=3, seq_len=SEQ_LEN, d_model=16, heads=2, blocks=3)
    assert [l.name for l in t.layers if l.name.startswith("block_")] == ["block_0", "block_1", "block_2"]
    ids = np.zeros((2, SEQ_LEN), np.int32)
    ids[:, :4] = [[5, 6, 7, 8], [9, 10, 0, 0]]
    outs = hidden_states(t)(ids)
    assert outs[0].shape == (2, 3) and all(h.shape == (2, SEQ_LEN, 16) for h in outs[1:])
    # padding is masked out of attention and pooling: changing the [PAD] embedding changes no logit
    before = t(ids).numpy()
    table = t.get_layer("token_embedding")
    weights = table.get_weights()[0].copy()
    weights[0] = 5.0
    table.set_weights([weights])
    np.testing.assert_allclose(t(ids).numpy(), before, atol=1e-5)
    path = str(tmp_path / "teacher.keras")
    t.save(path)
    back = keras.models.load_model(path, custom_objects=text_custom_objects())
    np.testing.assert_allclose(back(ids).numpy(), t(ids).numpy(), atol=1e-5)


def _train(model, ds, epochs, lr=3e-3, steps=None):
    model.compile(keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0)
    return model


def test_student_distills_from_teacher_and_converts_to_int8(tmp_path, titles, tokenizer):
    from tfcompress.distill import Distiller
    from tfcompress.export import TFLiteModel, to_tflite
    from tfcompress.quantize import float_layers, quantize_aware

    keras.utils.set_random_seed(0)
    (texts, labels), (test_texts, test_labels), n = titles
    vocab_size = len(tokenizer.get_vocabulary())
    train = text_dataset(texts, labels, tokenizer, batch_size=32, num_classes=n, shuffle=True)
    test = text_dataset(test_texts, test_labels, tokenizer, batch_size=256, num_classes=n)
    teacher = _train(text_teacher(vocab_size, n, SEQ_LEN, d_model=32, heads=2, blocks=1), train, epochs=2, lr=5e-3)
    teacher_acc = teacher.evaluate(test, verbose=0)[1]
    assert teacher_acc > 0.9  # the category is the title's last word

    student = text_student(vocab_size, n, SEQ_LEN, embed_dim=16, filters=16, hidden=16)
    distiller = Distiller(student, teacher, alpha=0.2, temperature=2.0, objective="multiclass")
    distiller.compile(keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    history = distiller.fit(train, epochs=3, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    student_acc = distiller.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    assert student_acc > 0.8  # chance is 0.05

    qat = quantize_aware(student)
    assert list(float_layers(student)) == ["token_embedding"]  # quantized by the converter at export
    _train(qat, train.repeat(), epochs=1, lr=1e-3, steps=15)
    ids = tokenize(test_texts, tokenizer)
    keras_acc = float(np.mean(qat.predict({"token_ids": ids}, verbose=0).argmax(1) == test_labels))
    path = to_tflite(qat, tmp_path / "text_student.tflite", mode="int8", representative={"token_ids": ids[:100]})
    tfl = TFLiteModel(path)
    assert tfl.signature()["inputs"]["token_ids"]["dtype"] == "int32"
    interp = tfl.interpreter
    ops = {d["op_name"] for d in interp._get_ops_details()}
    assert {"GATHER", "CONV_2D", "FULLY_CONNECTED"} <= ops
    float_ops = [d["op_name"] for d in interp._get_ops_details()
                 if any(interp._get_tensor_details(i, 0)["dtype"] == np.float32 for i in d["outputs"])]
    assert float_ops == [], float_ops  # full int8: int8 tensors (and int32 ids/shapes) only
    int8_acc = float(np.mean(tfl.predict({"token_ids": ids}).argmax(1) == test_labels))
    assert abs(int8_acc - keras_acc) <= 0.02, (int8_acc, keras_acc)


def test_students_are_prunable():
    from tfcompress.prune.unstructured import prune_low_magnitude, select_layers

    for kind, expected in (("cnn", ["conv", "hidden"]), ("bag", ["hidden"])):
        m = text_student(60, 2, SEQ_LEN, kind=kind)
        assert select_layers(m) == expected
        pruned = prune_low_magnitude(m, 0.5, total_steps=10)
        assert pruned(np.ones((1, SEQ_LEN), np.int32)).shape == (1, 2)
