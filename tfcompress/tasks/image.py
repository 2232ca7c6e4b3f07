"""Product-image classification: a residual-CNN teacher and a MobileNet-style student.

``--data`` selects the images: none → the package's synthetic image set (no files needed); ``fashion_mnist``
→ Fashion-MNIST from ``../shared/data``; a folder path → Fashion-MNIST IDX files in that folder. Pixels
are scaled to [0, 1] in ``tf.data``; the TFLite model takes float32 ``image`` [1, 28, 28, 1] (int8 when
exported with int8 I/O).

Example:
    >>> ImageTask().metric
    'accuracy'
"""
from dataclasses import dataclass

import numpy as np

from ..models.image import image_dataset, image_student, image_teacher, scale_images
from .base import Task, TaskData
from .splits import stratified_split


@dataclass
class ImageData(TaskData):
    """The image task's data: the splits, the number of classes and a note on the input."""

    num_classes: int = 10
    input: str = "image float32 [N, 28, 28, 1] in [0, 1]"


class ImageTask(Task):
    """Residual CNN teacher → depthwise-separable student; accuracy on the test split."""

    name = "image"
    objective = "multiclass"
    metric = "accuracy"
    teacher_builder = staticmethod(image_teacher)
    student_builder = staticmethod(image_student)
    data_args = ("input_shape", "num_classes")
    data_class = ImageData

    def defaults(self, quick):
        if quick:
            return dict(events=2_000, batch_size=64, teacher_epochs=2, student_epochs=2, prune_epochs=1,
                        qat_epochs=1, learning_rate=2e-3, student_learning_rate=5e-3, calibration_samples=100,
                        latency_runs=30)
        return dict(events=60_000, batch_size=128, teacher_epochs=3, student_epochs=5, prune_epochs=1,
                    qat_epochs=1, learning_rate=1e-3, student_learning_rate=3e-3, calibration_samples=300,
                    latency_runs=300)

    def teacher_kwargs(self, quick):
        return dict(widths=(16, 32)) if quick else {}

    def student_kwargs(self, quick):
        return dict(stem=8, widths=(16, 16), strides=(2, 2)) if quick else {}

    def model_args(self, data):
        return {"input_shape": (28, 28, 1), "num_classes": data.num_classes}

    def _images(self, config):
        from ..data import load_fashion_mnist, synthetic_images

        if config.data is None:
            x, y = synthetic_images(config.events, seed=config.seed)
            tr, va, te = stratified_split(y, seed=config.seed)
            return (x[tr], y[tr]), (x[va], y[va]), (x[te], y[te]), "synthetic product images"
        path = None if config.data == "fashion_mnist" else config.data
        (x, y), (x_test, y_test) = load_fashion_mnist(path)
        rng = np.random.default_rng(config.seed)
        order = rng.permutation(len(x))[: min(len(x), config.events)]
        x, y = x[order], y[order]
        n_val = max(1, len(x) // 10)
        if config.quick:
            keep = rng.permutation(len(x_test))[:2000]
            x_test, y_test = x_test[keep], y_test[keep]
        return (x[n_val:], y[n_val:]), (x[:n_val], y[:n_val]), (x_test, y_test), "Fashion-MNIST"

    def load(self, config):
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te), source = self._images(config)
        bs = config.batch_size
        rng = np.random.default_rng(config.seed)
        cal = x_tr[rng.choice(len(x_tr), min(len(x_tr), config.calibration_samples), replace=False)]
        return ImageData(
            train_ds=image_dataset(x_tr, y_tr, bs, shuffle=True, seed=config.seed),
            val_ds=image_dataset(x_va, y_va, 256),
            test_inputs={"image": scale_images(x_te)}, test_labels=np.asarray(y_te, np.int32),
            calibration_inputs={"image": scale_images(cal)}, latency_inputs={"image": scale_images(x_te[:1])},
            steps_per_epoch=int(np.ceil(len(x_tr) / bs)),
            description=(f"{source}: {len(x_tr):,} train / {len(x_va):,} validation / {len(x_te):,} test "
                         f"images, 28x28 grey, 10 classes"),
            num_classes=10, input="image float32 [N, 28, 28, 1] in [0, 1]",
        )
