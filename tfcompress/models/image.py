"""Product-image classifiers: a residual-CNN teacher and a MobileNet-style student, plus their input pipeline.

Both models take one float32 input ``image`` ``[batch, height, width, channels]`` with pixels **scaled to
[0, 1]** and return class **logits**. The scaling (``uint8 / 255``) is done in ``tf.data`` by
:func:`image_dataset` (and :func:`scale_images` for NumPy), not inside the model, so the TFLite model's
float input is exactly what the app feeds after dividing by 255 (its int8 input quantization then maps
[0, 1] onto the int8 range).

* :func:`image_teacher` — a small ResNet: a stem conv, ``len(widths)`` stages of ``blocks_per_stage``
  residual blocks (Conv-BN-ReLU-Conv-BN + shortcut, ReLU), global average pooling, a Dense to logits.
* :func:`image_student` — MobileNet-v1 style: a stem conv, then depthwise-separable blocks
  (DepthwiseConv2D-BN-ReLU, 1x1 Conv2D-BN-ReLU), global average pooling, a Dense to logits.

Both are plain tf_keras layers, so tfmot pruning (:func:`tfcompress.prune.prune_low_magnitude`) and QAT
(:func:`tfcompress.quantize.quantize_aware`, which folds Conv+BN+ReLU) apply, and both convert to full
int8 TFLite with only ``TFLITE_BUILTINS_INT8`` ops.

Example:
    >>> s = image_student(num_classes=10)
    >>> s.input.name, s.input_shape, s.output_shape
    ('image', (None, 28, 28, 1), (None, 10))
"""
import numpy as np

from .._keras import keras, tf
from ..errors import TFCompressError

INPUT_NAME = "image"
#: BatchNormalization momentum: 0.9 (not 0.99) so the moving statistics settle within short training runs.
BN_MOMENTUM = 0.9


def _check_shape(input_shape, num_classes):
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise TFCompressError(f"input_shape must be (height, width, channels), got {input_shape!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise TFCompressError(f"input_shape {input_shape!r} must be (height, width, channels), e.g. (28, 28, 1)")
    if shape[0] < 8 or shape[1] < 8:
        raise TFCompressError(f"input_shape {shape} is too small: images need at least 8x8 pixels")
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or int(num_classes) < 2:
        raise TFCompressError(f"num_classes = {num_classes!r} must be an integer >= 2 (one logit per class)")
    return shape, int(num_classes)


def _conv_bn_relu(x, filters, kernel, strides, name):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _residual_block(x, filters, strides, name):
    shortcut = x
    h = _conv_bn_relu(x, filters, 3, strides, f"{name}_a")
    h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(h)
    h = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_b_bn")(h)
    if strides != 1 or int(x.shape[-1]) != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj_conv")(x)
        shortcut = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, h])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def image_teacher(input_shape=(28, 28, 1), num_classes=10, *, widths=(32, 64, 128), blocks_per_stage=1,
                  dropout=0.2, name="image_teacher"):
    """A residual CNN: ``image`` float32 in [0, 1] ``[None, *input_shape]`` -> logits ``[None, num_classes]``.

    Stage ``i`` has ``widths[i]`` filters and halves the resolution (except the first); each residual
    block's output is the layer ``stage{i}_block{j}_out``.

    Example:
        >>> t = image_teacher((28, 28, 1), 10, widths=(8, 16))
        >>> t.output_shape, t.get_layer("stage1_block0_out").output.shape.as_list()
        ((None, 10), [None, 14, 14, 16])
    """
    shape, num_classes = _check_shape(input_shape, num_classes)
    inputs = keras.Input(shape, name=INPUT_NAME)
    x = _conv_bn_relu(inputs, int(widths[0]), 3, 1, "stem")
    for i, width in enumerate(widths):
        for j in range(int(blocks_per_stage)):
            x = _residual_block(x, int(width), 2 if (i > 0 and j == 0) else 1, f"stage{i}_block{j}")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def image_student(input_shape=(28, 28, 1), num_classes=10, *, stem=16, widths=(32, 64, 64), strides=(2, 2, 1),
                  dropout=0.1, name="image_student"):
    """A MobileNet-style CNN of depthwise-separable blocks: ``image`` float32 in [0, 1] -> logits.

    Block ``i`` is DepthwiseConv2D(3x3, ``strides[i]``)-BN-ReLU then Conv2D(1x1, ``widths[i]``)-BN-ReLU,
    its output the layer ``sep{i}_pw_relu``.

    Example:
        >>> s = image_student((28, 28, 1), 10)
        >>> s.count_params() < 10_000, s.output_shape
        (True, (None, 10))
    """
    shape, num_classes = _check_shape(input_shape, num_classes)
    if len(widths) != len(strides):
        raise TFCompressError(f"widths {widths} and strides {strides} must have the same length (one per block)")
    inputs = keras.Input(shape, name=INPUT_NAME)
    x = _conv_bn_relu(inputs, int(stem), 3, 2 if min(shape[:2]) >= 64 else 1, "stem")
    for i, (width, stride) in enumerate(zip(widths, strides)):
        x = keras.layers.DepthwiseConv2D(3, strides=int(stride), padding="same", use_bias=False,
                                         name=f"sep{i}_dw")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"sep{i}_dw_bn")(x)
        x = keras.layers.ReLU(name=f"sep{i}_dw_relu")(x)
        x = _conv_bn_relu(x, int(width), 1, 1, f"sep{i}_pw")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def check_image_batch(x, input_shape=(28, 28, 1)):
    """Check NumPy images for a model of ``input_shape``; return them as ``[N, H, W, C]`` (a grey ``[N, H, W]``
    batch gets the channel axis). A clear error for the wrong shape, an empty batch, a non-numeric dtype,
    NaN/inf or pixels outside [0, 255].

    Example:
        >>> check_image_batch(np.zeros((2, 28, 28), np.uint8)).shape
        (2, 28, 28, 1)
    """
    shape = tuple(int(d) for d in input_shape)
    arr = np.asarray(x)
    if arr.ndim == 3 and shape[-1] == 1:
        arr = arr[..., np.newaxis]
    if arr.ndim != 4 or arr.shape[1:] != shape:
        hint = f" (or [N, {shape[0]}, {shape[1]}])" if shape[-1] == 1 else ""
        raise TFCompressError(f"images have shape {np.asarray(x).shape}: the model expects "
                              f"[N, {shape[0]}, {shape[1]}, {shape[2]}]{hint}: resize or reshape them first")
    if arr.shape[0] == 0:
        raise TFCompressError("images batch is empty: pass at least one image")
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TFCompressError(f"images have dtype {arr.dtype}: expected uint8 pixels 0..255")
    if arr.dtype != np.uint8:
        if not np.isfinite(arr).all():
            raise TFCompressError("images contain NaN or infinite pixels: clean them first")
        if arr.min() < 0 or arr.max() > 255:
            raise TFCompressError(f"image pixels range over [{arr.min():g}, {arr.max():g}], outside [0, 255]: "
                                  "pass uint8 pixels 0..255")
    return arr


def scale_images(x, input_shape=(28, 28, 1)):
    """NumPy images (uint8 0..255, ``[N, H, W]`` or ``[N, H, W, C]``) -> float32 ``[N, H, W, C]`` in [0, 1],
    checked by :func:`check_image_batch`.

    Example:
        >>> float(scale_images(np.full((2, 28, 28), 255, np.uint8)).max()), scale_images(np.zeros((1, 28, 28))).shape
        (1.0, (1, 28, 28, 1))
    """
    return (check_image_batch(x, input_shape).astype(np.float32) / 255.0).astype(np.float32)


def image_dataset(x, y=None, batch_size=64, *, input_shape=(28, 28, 1), num_classes=None, shuffle=False, seed=0):
    """A ``tf.data.Dataset`` of ``({"image": float32 [b, H, W, C] in [0, 1]}, int32 labels)`` from uint8
    images; the ``/ 255`` scaling happens in the pipeline. ``y=None`` gives features only.

    Example:
        >>> x = np.zeros((4, 28, 28), np.uint8)
        >>> f, lab = next(iter(image_dataset(x, [0, 1, 2, 3], batch_size=4)))
        >>> f["image"].shape.as_list(), f["image"].dtype.name, lab.numpy().tolist()
        ([4, 28, 28, 1], 'float32', [0, 1, 2, 3])
    """
    from ..data.datasets import array_dataset
    from ..data.text import check_labels

    arr = check_image_batch(x, input_shape)
    labels = None if y is None else check_labels(y, len(arr), num_classes)

    def scale(images):
        return {INPUT_NAME: tf.cast(images, tf.float32) / 255.0}

    return array_dataset(arr, labels, batch_size=batch_size, transform=scale, shuffle=shuffle, seed=seed,
                         buffer=20_000)
