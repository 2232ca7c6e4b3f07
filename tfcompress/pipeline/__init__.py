"""The end-to-end recipe: :class:`RunConfig` → ``validate()`` → :class:`ResolvedConfig` → :class:`Pipeline`
(the task's stages) → :func:`run` (and the report).

``tfcompress run`` is a thin shell over :func:`run`. Each stage takes a Keras model and returns one (or an
exported file); every model is evaluated on the same held-out, time-ordered test split; the report
(``report.md/.csv/.json/.html`` and ``pareto.png`` in the run folder) is built from what the stages
recorded, never re-derived. The run's folders are one unit (:mod:`~tfcompress.pipeline.run_folder`): a run
id, a ``run.json`` manifest of its artifacts and checksums written after each stage, a lock; a killed run
resumes from its last finished stage (:mod:`~tfcompress.pipeline.resume`).

Example:
    >>> from tfcompress.pipeline import STAGES, RunConfig
    >>> STAGES
    ('teacher', 'baseline', 'distill', 'prune', 'qat', 'export')
    >>> RunConfig(task="text", quick=True).validate().task
    TextTask(name='text')
"""
import json
import os

from ..errors import TFCompressError
from ..stages import STANDARD_STAGES, StageResult, stage_names
from .config import ResolvedConfig, RunConfig
from .pipeline import Pipeline, RetrievalPipeline, RunResult, run
from .run_folder import RunFolder
from .run_manifest import check_artifact, check_run_folder, config_hash, read_manifest
from .run_report import add_report_sections, append_report_sections, write_run_report

#: the names of the standard recipe's stages, in order
STAGES = stage_names(STANDARD_STAGES)


def task_stages(task):
    """The stage names ``task`` (a :class:`~tfcompress.tasks.Task`) runs, in order.

    Example:
        >>> from tfcompress.tasks import get_task
        >>> task_stages(get_task("retrieval"))
        ('teacher', 'baseline', 'distill', 'compress', 'export')
    """
    return stage_names(task.stages)


def load_report(run_dir):
    """The ``report.json`` of a run folder, as a dict.

    Example:
        >>> load_report("no/such/run")
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: 'no/such/run' has no report.json: is it a tfcompress run folder?
    """
    path = os.path.join(run_dir, "report.json")
    if not os.path.isfile(path):
        raise TFCompressError(f"{run_dir!r} has no report.json: is it a tfcompress run folder?")
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        where = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        raise TFCompressError(f"{path!r} is not valid JSON{where}: it is damaged; rerun the command that "
                              "wrote it") from None
    if not isinstance(data, dict):
        raise TFCompressError(f"{path!r} holds a {type(data).__name__}, not a report (a JSON object): it is "
                              "damaged; rerun the command that wrote it")
    return data


__all__ = ["RunConfig", "ResolvedConfig", "Pipeline", "run", "StageResult", "RunResult", "load_report", "STAGES",
           "add_report_sections", "append_report_sections", "write_run_report", "task_stages", "RetrievalPipeline", "RunFolder",
           "check_run_folder", "check_artifact", "config_hash", "read_manifest"]
