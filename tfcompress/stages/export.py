"""The ``export`` stage of the standard recipe: float32 TFLite of the teacher and full-int8 TFLite (int8
weights and activations, float I/O) of the final student, each evaluated on the test split.

Example:
    >>> ExportStage().results
    ('teacher_float32', 'student_int8')
"""
import os
import time

from .base import Stage, StageResult
from .compression import latest_student
from .teacher_source import record_given_tflite
from .training import BaselineStage, DistillStage, TeacherStage, teacher_model


class ExportStage(Stage):
    """``export``: the teacher as float32 and the latest student as int8 ``.tflite`` files (with sidecars
    holding the data's facts and the task's assets), each scored on the test split."""

    name = "export"
    teacher_result = "teacher_float32"
    student_result = "student_int8"
    results = (teacher_result, student_result)
    resumable = True  # its results are files
    requires = ((TeacherStage.name, DistillStage.name, BaselineStage.name),)
    needs = "a trained model (a teacher or a student)"

    def run(self, context):
        started = time.perf_counter()
        cfg, data, task = context.config, context.data, context.task
        exported = []
        teacher = teacher_model(context)
        if teacher is not None:
            exported.append((self.teacher_result, teacher, "float32"))
        elif context.find("teacher", "tflite") is not None:  # your .tflite teacher: its file, as given
            record_given_tflite(context, self.teacher_result, context.find("teacher", "tflite"))
        student = latest_student(context)
        if student is not None:
            exported.append((self.student_result, student.model, "int8"))
        meta = data.sidecar()
        assets = task.write_assets(data, cfg.tflite_dir)
        meta["assets"] = {k: os.path.abspath(v) for k, v in assets.items()}
        result = None
        for name, model, mode in exported:
            result = self._export(context, name, model, mode, meta)
        context.progress(self.name, ", ".join(f"{n} ({m})" for n, _, m in exported) or "nothing to export",
                         started)
        return result

    @staticmethod
    def _export(context, name, model, mode, meta):
        from ..bench import size
        from ..export import TFLiteModel, to_tflite

        cfg, data, task = context.config, context.data, context.task
        path = to_tflite(model, context.path(cfg.tflite_dir, name) + ".tflite", mode=mode,
                         representative=data.calibration_inputs, num_calibration=cfg.calibration_samples,
                         validation=data.val_ds,
                         name=f"{task.name}_{name}", objective=task.objective, metadata=meta,
                         int8_io=getattr(task, "int8_io", True))
        figures = task.evaluate(TFLiteModel(path).predict(data.test_inputs, batch_size=4096), data.test_labels)
        return context.record(StageResult(name=name, format="tflite", model=path, path=path,
                                          params=size.tflite_params(path), sparsity=size.tflite_sparsity(path),
                                          quality=figures))
