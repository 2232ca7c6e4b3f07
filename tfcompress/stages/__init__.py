"""Stages: the steps of a recipe as small objects (a name, what they need, ``run(context)``), the standard
ones (teacher → baseline → distill → prune → QAT → export), and what a task declares about measuring and
reporting their results (:class:`Latency`, :class:`Table`, report sections).

Example:
    >>> from tfcompress.stages import STANDARD_STAGES
    >>> [s.name for s in STANDARD_STAGES]
    ['teacher', 'baseline', 'distill', 'prune', 'qat', 'export']
"""
from .base import Progress, RunContext, Stage, StageResult, is_jsonable, stage_names
from .compression import STUDENT_RESULTS, PruneStage, QATStage, latest_student
from .export import ExportStage
from .measures import Latency, Table, sparsity_column
from .sections import PARITY, SUMMARY, DistillationVerdict, KerasVsTFLite, ReportSection, TeacherVsFinal
from .teacher_source import OwnTeacher, load_teacher
from .training import (BaselineStage, DistillStage, TeacherStage, build_student, fit_student, own_teacher,
                       record_keras, teacher_model)

#: the standard recipe, in order
STANDARD_STAGES = (TeacherStage(), BaselineStage(), DistillStage(), PruneStage(), QATStage(), ExportStage())

__all__ = ["Stage", "StageResult", "RunContext", "Progress", "STANDARD_STAGES", "TeacherStage", "BaselineStage",
           "DistillStage", "PruneStage", "QATStage", "ExportStage", "Latency", "Table", "ReportSection",
           "TeacherVsFinal", "KerasVsTFLite", "DistillationVerdict", "SUMMARY", "PARITY", "STUDENT_RESULTS",
           "latest_student",
           "teacher_model", "fit_student", "record_keras", "sparsity_column", "stage_names", "is_jsonable",
           "OwnTeacher", "load_teacher", "own_teacher", "build_student"]
