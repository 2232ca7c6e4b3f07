"""Image family: residual-CNN teacher, MobileNet-style student, [0, 1] scaling in tf.data, pruning, QAT and
int8 TFLite parity — on the small synthetic image set (no data folder)."""
import numpy as np
import pytest

from tfcompress import keras, tf
from tfcompress.data.images import synthetic_images
from tfcompress.errors import TFCompressError
from tfcompress.models.image import image_dataset, image_student, image_teacher, scale_images

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def images():
    return synthetic_images(480, seed=0), synthetic_images(200, seed=1)


def _fit(model, ds, epochs, lr=3e-3, callbacks=None, steps=None):
    model.compile(keras.optimizers.Adam(lr), LOSS, metrics=["accuracy"])
    model.fit(ds if steps is None else ds.repeat(), epochs=epochs, steps_per_epoch=steps, verbose=0,
              callbacks=callbacks)
    return model


def _accuracy(predict, x, y):
    return float(np.mean(np.asarray(predict(x)).argmax(1) == y))


def _float_ops(tfl):
    interp = tfl.interpreter
    return [d["op_name"] for d in interp._get_ops_details()
            if any(interp._get_tensor_details(i, 0)["dtype"] == np.float32 for i in d["outputs"])]


def test_builders_and_shapes():
    t = image_teacher((28, 28, 1), 10, widths=(8, 16), blocks_per_stage=2)
    s = image_student((28, 28, 1), 10)
    assert t.input.name == s.input.name == "image" and t.output_shape == s.output_shape == (None, 10)
    assert t.get_layer("stage1_block1_out").output.shape.as_list() == [None, 14, 14, 16]
    assert any(isinstance(l, keras.layers.DepthwiseConv2D) for l in s.layers)
    assert s.count_params() < image_teacher().count_params() / 10
    rgb = image_student((32, 32, 3), 5)
    assert rgb.output_shape == (None, 5)


@pytest.mark.parametrize("build, kwargs, match", [
    (image_student, {"input_shape": (28, 28)}, "height, width, channels"),
    (image_student, {"input_shape": (4, 4, 1)}, "too small"),
    (image_teacher, {"num_classes": 1}, "num_classes"),
    (image_student, {"widths": (8, 16), "strides": (2,)}, "same length"),
])
def test_bad_builder_arguments(build, kwargs, match):
    with pytest.raises(TFCompressError, match=match):
        build(**kwargs)


def test_scaling_in_tf_data():
    x, y = synthetic_images(10, seed=2)
    feats, labels = next(iter(image_dataset(x, y, batch_size=10)))
    np.testing.assert_allclose(feats["image"].numpy()[..., 0], x / 255.0, atol=1e-7)
    assert feats["image"].dtype == tf.float32 and labels.dtype == tf.int32
    np.testing.assert_allclose(scale_images(x), feats["image"].numpy())
    assert list(next(iter(image_dataset(x, batch_size=4)))) == ["image"]


@pytest.mark.parametrize("x, y, match", [
    (np.zeros((3, 32, 32), np.uint8), [0, 1, 2], r"images have shape \(3, 32, 32\)"),
    (np.zeros((3, 28, 28, 3), np.uint8), [0, 1, 2], "expects"),
    (np.zeros((0, 28, 28), np.uint8), [], "empty"),
    (np.full((2, 28, 28), np.nan), [0, 1], "NaN"),
    (np.full((2, 28, 28), 300.0), [0, 1], "outside"),
    (np.zeros((2, 28, 28), np.uint8), [0, 10], "outside the declared 10 classes"),
    (np.zeros((2, 28, 28), np.uint8), [0], "one label each"),
])
def test_bad_image_input(x, y, match):
    with pytest.raises(TFCompressError, match=match):
        image_dataset(x, y, num_classes=10)


def test_student_prune_qat_int8_parity(tmp_path, images):
    from tfcompress.export import TFLiteModel, to_tflite
    from tfcompress.prune.unstructured import layer_sparsity, prune_low_magnitude, pruning_callbacks, strip
    from tfcompress.quantize import quantize_aware

    keras.utils.set_random_seed(0)
    (x, y), (xt, yt) = images
    train = image_dataset(x, y, batch_size=16, num_classes=10, shuffle=True)
    student = _fit(image_student(), train, epochs=3)
    test_x = scale_images(xt)
    assert _accuracy(lambda a: student.predict(a, verbose=0), test_x, yt) > 0.8

    pruned = prune_low_magnitude(student, 0.5, total_steps=30)
    _fit(pruned, train, epochs=1, lr=1e-3, callbacks=pruning_callbacks())
    pruned = strip(pruned)
    sparsity = layer_sparsity(pruned)
    assert all(abs(sparsity[n] - 0.5) < 0.02 for n in ("sep1_pw_conv", "sep2_pw_conv")), sparsity

    qat = _fit(quantize_aware(pruned, preserve="sparsity"), train, epochs=1, lr=5e-4, steps=6)
    keras_acc = _accuracy(lambda a: qat.predict(a, verbose=0), test_x, yt)
    assert keras_acc > 0.8
    path = to_tflite(qat, tmp_path / "image_student.tflite", mode="int8", representative={"image": test_x[:64]})
    tfl = TFLiteModel(path)
    assert tfl.signature()["inputs"]["image"]["dtype"] == "int8" and _float_ops(tfl) == []
    int8_acc = _accuracy(lambda a: tfl.predict({"image": a}), test_x, yt)
    assert abs(int8_acc - keras_acc) <= 0.02, (int8_acc, keras_acc)


def test_teacher_trains_prunes_quantizes_and_converts(tmp_path, images):
    from tfcompress.export import TFLiteModel, to_tflite
    from tfcompress.prune.unstructured import prune_low_magnitude
    from tfcompress.quantize import quantize_aware

    keras.utils.set_random_seed(1)
    (x, y), (xt, yt) = images
    teacher = _fit(image_teacher(widths=(8, 16)), image_dataset(x, y, batch_size=16, shuffle=True), epochs=3,
                   lr=5e-3)
    test_x = scale_images(xt)
    keras_acc = _accuracy(lambda a: teacher.predict(a, verbose=0), test_x, yt)
    assert keras_acc > 0.8
    # prunable and QAT-able (wrapping only here; the student test trains both)
    assert prune_low_magnitude(teacher, 0.5, total_steps=10)(test_x[:2]).shape == (2, 10)
    assert quantize_aware(teacher)(test_x[:2]).shape == (2, 10)
    # post-training full int8
    tfl = TFLiteModel(to_tflite(teacher, tmp_path / "teacher.tflite", mode="int8",
                                representative={"image": test_x[:64]}))
    assert _float_ops(tfl) == []
    int8_acc = _accuracy(lambda a: tfl.predict({"image": a}), test_x, yt)
    assert abs(int8_acc - keras_acc) <= 0.02, (int8_acc, keras_acc)
