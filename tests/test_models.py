"""CTR teacher and student: named inputs, sizes, the Cross layer's math, tfmot pruning and QAT of it."""
import numpy as np
import pytest

from tfcompress._keras import keras
from tfcompress.models import Cross, ctr_student, ctr_teacher
from tfcompress.errors import TFCompressError


def test_teacher_is_large_student_small_both_named_by_feature(shop):
    from tfcompress.data.synthetic import ctr_spec, sizes_for

    default_spec = ctr_spec(*sizes_for(200_000))  # the spec of `tfcompress run`'s default data
    assert ctr_teacher(default_spec).count_params() > 1_000_000
    teacher, student = ctr_teacher(shop.spec), ctr_student(shop.spec)
    assert teacher.count_params() > 20 * student.count_params()
    for m in (teacher, student):
        assert sorted(m.input_names) == sorted(shop.spec.names)
        assert m.output_shape == (None, 1)
        assert m.layers[-1].name == "logit"


def test_cross_layer_matches_numpy():
    rng = np.random.default_rng(0)
    x0, x = rng.normal(size=(5, 6)).astype("float32"), rng.normal(size=(5, 6)).astype("float32")
    layer = Cross()
    out = layer([x0, x]).numpy()
    w, b = layer.kernel.numpy(), layer.bias.numpy()
    np.testing.assert_allclose(out, x0 * (x @ w + b) + x, rtol=1e-5, atol=1e-5)
    clone = Cross.from_config(layer.get_config())
    assert clone.use_bias == layer.use_bias


def test_cross_layer_prunes_and_quantizes(shop):
    from tfcompress import prune, quantize

    student = ctr_student(shop.spec, embedding_dim=4, hidden=(8,))
    pruned = prune.prune_low_magnitude(student, 0.5, total_steps=10)
    assert type(pruned.get_layer("prune_low_magnitude_cross_0")).__name__ == "PruneLowMagnitude"
    qat = quantize.quantize_aware(student)
    assert type(qat.get_layer("quant_cross_0")).__name__.startswith("QuantizeWrapper")
    assert "emb_user_id" in quantize.float_layers(student)  # and the reason is reported


def test_bad_model_sizes_are_clear_errors(shop):
    with pytest.raises(TFCompressError, match="bad model size"):
        ctr_student(shop.spec, hidden=(0,))


def test_cross_computes_what_tfrs_cross_computes():
    import tensorflow_recommenders as tfrs

    rng = np.random.default_rng(1)
    x0, x = rng.normal(size=(4, 5)).astype("float32"), rng.normal(size=(4, 5)).astype("float32")
    ours, theirs = Cross(), tfrs.layers.dcn.Cross()
    ours([x0, x])
    theirs(x0, x)
    theirs.set_weights(ours.get_weights())  # the same kernel (5x5) and bias
    np.testing.assert_allclose(ours([x0, x]).numpy(), theirs(x0, x).numpy(), rtol=1e-5, atol=1e-6)
