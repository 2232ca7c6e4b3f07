"""tfcompress: from a large e-commerce Keras model to a small, verified int8 TFLite model.

The public API is a handful of submodules that read like Keras::

    import tfcompress
    data = tfcompress.data.make_ecommerce(events=20_000, seed=0)
    spec = data.spec
    teacher = tfcompress.models.ctr_teacher(spec)
    student = tfcompress.models.ctr_student(spec)
    distiller = tfcompress.distill.Distiller(student=student, teacher=teacher)

Importing tfcompress selects Keras 2 (tf_keras) for the TensorFlow Model Optimization Toolkit, without
importing TensorFlow yet: the first submodule that needs it imports it (quietly: TensorFlow's start-up
log is silenced unless ``TFCOMPRESS_VERBOSE=1``). It also sets the allocators up to hand freed memory back
(``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`` and two glibc arenas, unless you set ``MALLOC_ARENA_MAX``; see
:mod:`tfcompress._allocators`). Take that Keras, and TensorFlow, from tfcompress (never ``import keras``)::

    from tfcompress import keras, tf
"""
import importlib
import os
import sys

from . import _allocators
from .errors import TFCompressError

_KERAS3_MESSAGE = (
    "tfcompress needs Keras 2 (the tf_keras package), because the TensorFlow Model Optimization "
    "Toolkit works only with it, but TensorFlow was imported before tfcompress and tf.keras is "
    "already Keras 3. Import tfcompress before tensorflow, or set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before TensorFlow is imported (in a notebook: restart the kernel, then "
    "run `import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'` first)."
)


def _select_legacy_keras():
    """Set ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported; an ImportError when ``tf.keras``
    already resolved to Keras 3."""
    tf_mod = sys.modules.get("tensorflow")
    loader = getattr(tf_mod, "keras", None) if tf_mod is not None else None
    # tf.keras is a lazy loader: it reads TF_USE_LEGACY_KERAS the first time it is touched.
    if loader is not None and getattr(loader, "_tfll_initialized", False):
        if getattr(loader, "_tfll_keras_version", None) not in ("tf_keras", "keras_2"):
            raise ImportError(_KERAS3_MESSAGE)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if tf_mod is not None and not getattr(tf_mod.keras, "__name__", "tf_keras").startswith("tf_keras"):
        raise ImportError(_KERAS3_MESSAGE)  # TensorFlow came first and its tf.keras is Keras 3


def verbose():
    """True when ``TFCOMPRESS_VERBOSE`` is set to 1 (or ``tfcompress run --verbose``): TensorFlow's log shown.

    Example:
        >>> import tfcompress
        >>> isinstance(tfcompress.verbose(), bool)
        True
    """
    return os.environ.get("TFCOMPRESS_VERBOSE", "").strip().lower() in ("1", "true", "yes", "on")


_select_legacy_keras()
_allocators.return_freed_tensors()
_allocators.limit_malloc_arenas()

__version__ = "0.1.0"

_SUBMODULES = ("data", "models", "distill", "prune", "quantize", "export", "bench", "callbacks",
               "pipeline", "cli", "metrics")
_FRAMEWORK = ("keras", "tf", "tfmot")  # tf_keras, TensorFlow and tfmot, as tfcompress uses them
__all__ = list(_SUBMODULES) + list(_FRAMEWORK) + ["TFCompressError", "__version__", "verbose"]


def __getattr__(name):
    if name in _FRAMEWORK:
        value = getattr(importlib.import_module("._keras", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'tfcompress' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES) | set(_FRAMEWORK))
