"""CTR teacher and student: named inputs, sizes, the Cross layer's math, tfmot pruning and QAT of it."""
import numpy as np
import pytest

from tfcompress import keras
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


def test_the_students_large_id_tables_keep_compressed_rows_and_stay_phone_sized():
    from tfcompress.data import Feature, FeatureSpec
    from tfcompress.models.ctr import compressed_buckets

    spec = FeatureSpec([Feature("user_id", "categorical", 250_001), Feature("item_id", "categorical", 66_667),
                        Feature("brand", "categorical", 2_001)])
    tables = {l.name: l for l in ctr_student(spec).layers if l.name.startswith("emb_")}
    assert tables["emb_user_id"].num_buckets == 16_384 and tables["emb_item_id"].num_buckets == 16_384
    assert tables["emb_user_id"].quotient.shape[0] == 16 and tables["emb_item_id"].quotient.shape[0] == 5
    assert tables["emb_brand"].input_dim == 2_001                     # under compress_min_vocab: whole
    small = {l.name: l for l in ctr_student(spec, compressed_rows=None).layers if l.name.startswith("emb_")}
    assert small["emb_user_id"].num_buckets == 501                    # None: the sqrt(ids) default
    assert ctr_student(spec).count_params() < 300_000                 # about 300 KB as int8
    assert [compressed_buckets(v) for v in (1_000, 40_000, 10**7)] == [250, 10_000, 16_384]


def test_a_bad_compressed_rows_is_a_clear_error():
    from tfcompress.data import Feature, FeatureSpec

    spec = FeatureSpec([Feature("user_id", "categorical", 60_000)])
    for bad in (0, -3, "many", 2.5):
        with pytest.raises(TFCompressError, match="compressed_rows="):
            ctr_student(spec, compressed_rows=bad)


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


def _every_layer_kind():
    """A model with one of every tfcompress layer kind (the registry says which kinds there are)."""
    from tfcompress import models
    from tfcompress.models.ranking import BroadcastToList, FlattenList, ToList
    from tfcompress.models.topk import BruteForceTopK, _Named

    rng = np.random.RandomState(0)
    keras.utils.set_random_seed(0)
    ids = keras.Input((4,), dtype="int32", name="ids")
    x = x_in = keras.Input((4,), name="x")
    user = keras.Input((), name="user")
    tables = [models.QREmbedding(100, 8, num_buckets=10, name="qr"),
              models.HashedEmbedding(100, 8, num_buckets=16, name="hashed"),
              models.MixedDimEmbedding(100, 8, block_sizes=[50, 50], dims=[8, 4], name="mixed"),
              models.LowRankEmbedding(100, 8, rank=2, name="lowrank"), models.SafeEmbedding(100, 8, name="safe"),
              models.RowInt8Embedding.from_embedding(rng.randn(100, 8), name="int8row"),
              models.RowInt4Embedding.from_embedding(rng.randn(100, 8), name="int4row")]
    h = keras.layers.Add()([t(ids) for t in tables])
    h = models.PositionEmbedding(4, name="pos")(h)
    h = keras.layers.MultiHeadAttention(2, 4, name="mha")(h, h, attention_mask=models.PaddingMask(name="mask")(ids))
    v = models.MaskedMean(name="mean")([h, ids])
    c = Cross(name="cross")([v, v])
    scores, item_ids = BruteForceTopK(rng.randn(20, 8).astype("float32"), np.arange(20) + 3, k=3, name="topk")(c)
    x = models.NumericNormalization(mean=0.5, std=2.0, low=-3.0, high=3.0, name="normalize")(x)
    listed = keras.layers.Add()([FlattenList(name="flat")(x), BroadcastToList(4, name="broadcast")(user)])
    listed = ToList(4, name="to_list")(keras.layers.Reshape((1,))(listed))
    outputs = {"logit": keras.layers.Dense(1, name="logit")(c), "scores": _Named(name="scores")(scores),
               "item_ids": _Named(name="item_ids")(item_ids), "list": listed}
    inputs = {"ids": rng.randint(0, 100, (5, 4)).astype("int32"), "x": rng.randn(5, 4).astype("float32"),
              "user": rng.randn(5).astype("float32")}
    return keras.Model({"ids": ids, "x": x_in, "user": user}, outputs, name="every_kind"), inputs


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_a_model_with_every_tfcompress_layer_reloads_with_custom_objects(ext, tmp_path):
    from tfcompress.models import custom_objects

    model, inputs = _every_layer_kind()
    objects = custom_objects()
    layer_kinds = {n for n, c in objects.items() if issubclass(c, keras.layers.Layer)}
    assert {type(l).__name__ for l in model.layers} >= layer_kinds   # the model covers every registered kind
    path = str(tmp_path / f"every.{ext}")
    model.save(path)
    back = keras.models.load_model(path, custom_objects=objects, compile=False)
    want, got = model.predict(inputs, verbose=0), back.predict(inputs, verbose=0)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6, err_msg=name)


def test_a_fresh_process_reloads_any_tfcompress_layer_with_models_custom_objects(tmp_path):
    """In a new interpreter nothing is registered until tfcompress.models is imported: custom_objects()
    (reached through the package) is all a user needs."""
    import subprocess
    import sys

    model, _ = _every_layer_kind()
    path = str(tmp_path / "every.keras")
    model.save(path)
    code = ("import tfcompress; from tfcompress import keras; "
            f"m = keras.models.load_model({path!r}, custom_objects=tfcompress.models.custom_objects(), compile=False); "
            "print(sorted(type(l).__name__ for l in m.layers))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BruteForceTopK" in out.stdout and "RowInt4Embedding" in out.stdout and "NumericNormalization" in out.stdout


def test_a_qat_model_reloads_with_the_quantize_custom_objects(tmp_path):
    from tfcompress import quantize, tfmot

    keras.utils.set_random_seed(0)
    x0 = keras.Input((4,), name="x")
    h = keras.layers.LayerNormalization(name="ln")(Cross(name="cross")([x0, x0]))
    model = keras.Model(x0, keras.layers.Dense(1, name="logit")(keras.layers.Dense(8, name="h")(h)))
    qat = quantize.quantize_aware(model, preserve="sparsity")
    objects = quantize.custom_objects()
    assert {"CrossQuantizeConfig", "LayerNormQuantizeConfig", "DensePrunePreserveQuantizeConfig",
            "ClusterPreserveQuantizeConfig"} <= set(objects)
    path = str(tmp_path / "qat.h5")
    qat.save(path)
    with tfmot.quantization.keras.quantize_scope(objects):
        back = keras.models.load_model(path, compile=False)
    data = np.random.RandomState(0).randn(8, 4).astype("float32")
    np.testing.assert_allclose(back.predict(data, verbose=0), qat.predict(data, verbose=0), rtol=1e-5, atol=1e-5)


def test_moved_quantize_configs_still_import_from_models_with_a_warning():
    import tfcompress
    from tfcompress.quantize import CrossQuantizeConfig

    with pytest.warns(DeprecationWarning, match="moved to tfcompress.quantize"):
        assert tfcompress.models.CrossQuantizeConfig is CrossQuantizeConfig
