"""The ``export`` stage of the standard recipe: float32 TFLite of the teacher and the final student's file
in the run's ``export_mode`` (default full int8: int8 weights and activations; see
:data:`tfcompress.choices.EXPORT_MODES`), each evaluated on the test split.

Example:
    >>> ExportStage().results
    ('teacher_float32', 'student_int8')
"""
import os
import time

from ..errors import check
from .base import Stage, StageResult
from .compression import latest_student
from .teacher_source import record_given_tflite
from .training import BaselineStage, DistillStage, TeacherStage, teacher_model


class ExportStage(Stage):
    """``export``: the teacher as float32 and the latest student in ``export_mode`` (int8 unless the config
    says otherwise; ``per_channel``/``recovery`` passed on when not the defaults) as ``.tflite`` files (with
    sidecars holding the data's facts and the task's assets), each scored on the test split. The student's
    result is called ``student_int8`` whatever the mode (its ``extra["export_mode"]`` says which)."""

    name = "export"
    teacher_result = "teacher_float32"
    student_result = "student_int8"
    results = (teacher_result, student_result)
    resumable = True  # its results are files
    requires = ((TeacherStage.name, DistillStage.name, BaselineStage.name),)
    needs = "a trained model (a teacher or a student)"

    def run(self, context):
        started = time.perf_counter()
        cfg = context.config
        exported = []
        teacher = teacher_model(context)
        if teacher is not None:
            exported.append((self.teacher_result, teacher, "float32"))
        elif context.find("teacher", "tflite") is not None:  # your .tflite teacher: its file, as given
            record_given_tflite(context, self.teacher_result, context.find("teacher", "tflite"))
        student = latest_student(context)
        if student is not None:
            exported.append((self.student_result, student.model, cfg.export_mode))
        meta = export_meta(context)
        result = None
        for name, model, mode in exported:
            result = export_result(context, name, model, mode, meta)
        context.progress(self.name, ", ".join(f"{n} ({m})" for n, _, m in exported) or "nothing to export",
                         started)
        return result



def export_meta(context):
    """What every exported file's sidecar holds: the data's facts and the task's assets (written into the
    run's ``tflite_dir``, their absolute paths under ``assets``)."""
    cfg, data, task = context.config, context.data, context.task
    meta = data.sidecar()
    assets = task.write_assets(data, cfg.tflite_dir)
    meta["assets"] = {k: os.path.abspath(v) for k, v in assets.items()}
    return meta


#: the parity limit of ``export_mode: int8-fallback`` (max |Δ| of the output on the validation split)
FALLBACK_MAX_ABS = 0.05


def export_result(context, name, model, mode, meta):
    """Write ``model`` as ``.tflite`` in ``mode`` (``float32`` or one of the export modes), score it on the
    test split, record and return its :class:`StageResult` (``extra["export_mode"]``: the mode)."""
    from ..bench import size
    from ..export import TFLiteModel

    cfg, data, task = context.config, context.data, context.task
    stem = name if mode in ("float32", "int8") else f"{name.replace('_int8', '')}_{mode.replace('-', '_')}"
    path = write_tflite(context, model, context.path(cfg.tflite_dir, stem) + ".tflite", mode, meta)
    figures = task.evaluate(TFLiteModel(path).predict(data.test_inputs, batch_size=4096), data.test_labels)
    return context.record(StageResult(name=name, format="tflite", model=path, path=path,
                                      params=size.tflite_params(path), sparsity=size.tflite_sparsity(path),
                                      quality=figures, extra={"export_mode": mode}))


def write_tflite(context, model, path, mode, meta):
    """Convert ``model`` to ``path`` in ``mode``: the TFLite converter's modes through
    :func:`~tfcompress.export.to_tflite`, ``int8-fallback`` through
    :func:`~tfcompress.export.export_with_fallback` (greedy float fallback until the validation parity is
    within :data:`FALLBACK_MAX_ABS`), ``int4-weights`` through the LiteRT Quantizer on a float32 file."""
    from ..export import export_with_fallback, quantize_with_litert, sidecar_path, to_tflite

    cfg, data, task = context.config, context.data, context.task
    common = dict(name=os.path.splitext(os.path.basename(path))[0], objective=task.objective)
    if mode == "int8-fallback":
        validation = data.validation_arrays()
        check(validation is not None, f"export_mode int8-fallback needs a validation split, which the "
                                      f"{task.name} task does not have: choose another export mode")
        path, _ = export_with_fallback(model, path, representative=data.calibration_inputs,
                                       parity_data=validation[0], tolerance={"max_abs": FALLBACK_MAX_ABS},
                                       num_calibration=cfg.calibration_samples, **common)
        return _with_meta(path, meta)
    if mode == "int4-weights":
        float_path = path[:-len(".tflite")] + "_float32_source.tflite"
        to_tflite(model, float_path, mode="float32", buffer_offset=False, **common)  # the quantizer reads it
        try:
            return _with_meta(quantize_with_litert(float_path, "int4_weights", out_path=path), meta)
        finally:
            for leftover in (float_path, sidecar_path(float_path)):
                if os.path.exists(leftover):
                    os.remove(leftover)
    extra = {}
    if not cfg.per_channel:
        extra["per_channel"] = False
    if cfg.recovery:
        extra["recovery"] = tuple(cfg.recovery)
    return to_tflite(model, path, mode=mode, representative=data.calibration_inputs,
                     num_calibration=cfg.calibration_samples, validation=data.val_ds, metadata=meta,
                     int8_io=getattr(task, "int8_io", True) and mode == "int8", **common, **extra)


def _with_meta(path, meta):
    """Add ``meta`` (the data's facts, the assets) to the sidecar of ``path``; return ``path``."""
    from .._io import write_json
    from ..export import read_sidecar, sidecar_path

    write_json(sidecar_path(path), {**read_sidecar(path), **meta})
    return path
