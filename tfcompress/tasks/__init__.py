"""Tasks the pipeline can run: each supplies data, teacher/student builders, loss and metric."""
from .base import Task, TaskData, check_builder_kwargs
from .ctr import CTRTask
from .image import ImageTask
from .retrieval import RetrievalPipeline, RetrievalTask
from .text import TextTask

_TASKS = {"ctr": CTRTask, "retrieval": RetrievalTask, "text": TextTask, "image": ImageTask}


def register_task(cls):
    """Make a :class:`Task` subclass available to ``tfcompress run --task NAME``."""
    _TASKS[cls.name] = cls
    return cls


def task_names():
    return tuple(_TASKS)


def get_task(name):
    """The task called ``name`` (a clear error listing the known tasks otherwise)."""
    from ..errors import TFCompressError

    if name not in _TASKS:
        raise TFCompressError(f"task {name!r} is not one of {list(_TASKS)}")
    return _TASKS[name]()


__all__ = ["Task", "TaskData", "CTRTask", "TextTask", "ImageTask", "RetrievalTask", "RetrievalPipeline", "get_task", "register_task", "task_names", "check_builder_kwargs"]
