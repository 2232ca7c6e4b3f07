"""Pruning really prunes on short runs (measured on stripped weights), and PQAT keeps the zeros."""
import numpy as np
import pytest

from tfcompress import prune, quantize
from tfcompress import keras
from tfcompress.bench.size import keras_layer_sparsity
from tfcompress.data import to_dataset
from tfcompress.errors import TFCompressError


@pytest.fixture(scope="module")
def pruned_student(trained_student, shop, shop_splits):
    ds = to_dataset(shop_splits[0], shop.spec, batch_size=512)
    steps = int(np.ceil(len(shop_splits[0]) / 512))  # 32 steps: fewer than tfmot's default frequency of 100
    pruned = prune.prune_low_magnitude(trained_student, 0.6, total_steps=steps)
    pruned.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    pruned.fit(ds, epochs=1, verbose=0, callbacks=prune.pruning_callbacks())
    return prune.strip(pruned), ds


def test_short_run_reaches_the_target_sparsity(pruned_student):
    model, _ = pruned_student
    frame = keras_layer_sparsity(model).set_index("layer")
    for name in ("dense_0", "cross_0"):
        assert frame.loc[name, "sparsity"] == pytest.approx(0.6, abs=0.01)
    assert frame.loc["logit", "sparsity"] == 0.0  # the output layer is skipped


def test_sparsity_preserving_qat_keeps_the_zeros(pruned_student):
    model, ds = pruned_student
    qat = quantize.quantize_aware(model, preserve="sparsity")
    qat.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    qat.fit(ds.take(10), epochs=1, verbose=0)
    frame = keras_layer_sparsity(qat).set_index("layer")
    for name in ("dense_0", "cross_0"):
        assert frame.loc[name, "sparsity"] == pytest.approx(0.6, abs=0.01)


def test_pruning_frequency_is_derived_from_the_step_count():
    assert prune.derived_frequency(20) == 1
    assert prune.derived_frequency(10_000) == 100
    cfg = prune.polynomial_schedule(0.5, total_steps=50).get_config()["config"]
    assert cfg["frequency"] < 50 and cfg["end_step"] < 50


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5])
def test_out_of_range_sparsity_is_a_clear_error(trained_student, bad):
    with pytest.raises(TFCompressError, match="target_sparsity"):
        prune.prune_low_magnitude(trained_student, bad, total_steps=10)


def test_unknown_layer_name_lists_the_layers(trained_student):
    with pytest.raises(TFCompressError, match="no layer named"):
        prune.prune_low_magnitude(trained_student, 0.5, total_steps=10, layers=["nope"])
