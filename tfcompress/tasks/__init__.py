"""Tasks the pipeline can run: each declares its data, teacher/student builders, loss, metric, stage list,
latency, table, report sections and data check (:class:`Task`).

Example:
    >>> from tfcompress.tasks import get_task, task_names
    >>> task_names()
    ('ctr', 'retrieval', 'text', 'image', 'table')
    >>> get_task("video")
    Traceback (most recent call last):
    ...
    tfcompress.errors.TFCompressError: task 'video' is not one of ['ctr', 'retrieval', 'text', 'image', 'table']
"""
from .base import Task, TaskData, check_builder_kwargs
from .ctr import CTRData, CTRTask, check_interactions_data, load_interactions
from .image import ImageData, ImageTask
from .inference import infer_task
from .recommendation import RetrievalTask
from .recommendation_data import RecommendationData, list_inputs, seen_items, with_sampled_negatives
from .recommendation_metrics import catalog_metrics, keras_embedding_bytes, tflite_catalog_bytes
from .table import TableData, TableTask
from .text import TextData, TextTask

_TASKS = {"ctr": CTRTask, "retrieval": RetrievalTask, "text": TextTask, "image": ImageTask, "table": TableTask}


def register_task(cls):
    """Make a :class:`Task` subclass available to ``tfcompress run --task NAME``."""
    _TASKS[cls.name] = cls
    return cls


def task_names():
    """The names ``tfcompress run --task`` accepts."""
    return tuple(_TASKS)


def get_task(name):
    """A new instance of the task called ``name`` (a clear error listing the known tasks otherwise)."""
    from ..errors import TFCompressError

    if name not in _TASKS:
        raise TFCompressError(f"task {name!r} is not one of {list(_TASKS)}")
    return _TASKS[name]()


__all__ = ["Task", "TaskData", "CTRTask", "CTRData", "TextTask", "TextData", "ImageTask", "ImageData",
           "RetrievalTask", "RecommendationData", "TableTask", "TableData", "infer_task", "get_task", "register_task", "task_names", "check_builder_kwargs",
           "check_interactions_data", "load_interactions", "catalog_metrics", "seen_items", "with_sampled_negatives",
           "list_inputs", "keras_embedding_bytes", "tflite_catalog_bytes"]
