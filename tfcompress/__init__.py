"""tfcompress: from a large e-commerce Keras model to a small, verified int8 TFLite model.

The public API is a handful of submodules that read like Keras::

    import tfcompress
    data = tfcompress.data.make_ecommerce(events=20_000, seed=0)
    spec = data.spec
    teacher = tfcompress.models.ctr_teacher(spec)
    student = tfcompress.models.ctr_student(spec)
    distiller = tfcompress.distill.Distiller(student=student, teacher=teacher)

Importing tfcompress selects Keras 2 (tf_keras) for the TensorFlow Model Optimization Toolkit; see
``tfcompress._keras``.
"""
import importlib

from . import _keras  # noqa: F401  (selects tf_keras before anything else imports TensorFlow)
from .errors import TFCompressError

__version__ = "0.1.0"

_SUBMODULES = ("data", "models", "distill", "prune", "quantize", "export", "bench", "callbacks",
               "pipeline", "cli")
__all__ = list(_SUBMODULES) + ["TFCompressError", "__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'tfcompress' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
