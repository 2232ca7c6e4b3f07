"""The CTR ranking task on the built-in synthetic shop.

Example:
    >>> task = CTRTask()
    >>> task.defaults(quick=True)["events"]
    20000
"""
import numpy as np

from ..data import frame_to_inputs, make_ecommerce, sample_inputs, to_dataset
from ..errors import TFCompressError
from ..models import ctr_student, ctr_teacher
from .base import Task, TaskData


class CTRTask(Task):
    """Click-through-rate ranking: DCN-v2 teacher and student, AUC on a time-ordered test split."""

    name = "ctr"
    output = "binary"
    metric = "auc"
    teacher_builder = staticmethod(ctr_teacher)
    student_builder = staticmethod(ctr_student)
    data_args = ("spec",)

    def defaults(self, quick):
        if quick:
            return dict(events=20_000, batch_size=512, teacher_epochs=2, student_epochs=2, prune_epochs=1,
                        qat_epochs=1, learning_rate=5e-3, student_learning_rate=1e-2, calibration_samples=100,
                        latency_runs=30)
        return dict(events=200_000, batch_size=1024, teacher_epochs=3, student_epochs=5, prune_epochs=2,
                    qat_epochs=2, learning_rate=1e-3, student_learning_rate=3e-3, calibration_samples=300,
                    latency_runs=300)

    def teacher_kwargs(self, quick):
        return dict(embedding_dim=16, cross_layers=1, hidden=(64, 32)) if quick else {}

    def student_kwargs(self, quick):
        return dict(embedding_dim=4, cross_layers=1, hidden=(16,)) if quick else {}

    def model_args(self, data):
        return {"spec": data.metadata["spec"]}

    def load(self, config):
        if config.data is not None:
            raise TFCompressError("the ctr task runs on the built-in data; --data is for the ranking task on "
                                  "interaction files (e.g. MovieLens)")
        shop = make_ecommerce(config.events, seed=config.seed)
        spec = shop.spec
        train, val, test = shop.split()
        bs = config.batch_size
        return TaskData(
            train_ds=to_dataset(train, spec, batch_size=bs, shuffle=True, seed=config.seed),
            val_ds=to_dataset(val, spec, batch_size=4096),
            test_inputs=frame_to_inputs(test, spec),
            test_labels=test[spec.label].to_numpy(),
            calibration_inputs=sample_inputs(train, spec, config.calibration_samples, seed=config.seed),
            latency_inputs=sample_inputs(test, spec, 1, seed=config.seed + 1),
            steps_per_epoch=int(np.ceil(len(train) / bs)),
            description=(f"{len(shop.events):,} synthetic impressions ({len(train):,} train / {len(val):,} "
                         f"validation / {len(test):,} test, by time), click rate {shop.events['click'].mean():.1%}"),
            metadata={"spec": spec, "feature_spec": spec.to_dict(), "shop": shop},
        )
