"""The one place tfcompress chooses its Keras.

tfmot (the TensorFlow Model Optimization Toolkit) works only with Keras 2, shipped as ``tf_keras``.
This module sets ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported, so that ``tf.keras`` (used by
tfmot and TensorFlow Recommenders) is ``tf_keras`` too. Every other tfcompress module takes ``keras``,
``tf`` and ``tfmot`` from here and never does ``import keras``.

If TensorFlow was imported first and ``tf.keras`` has already resolved to Keras 3, importing tfcompress
raises one :class:`ImportError` that says what to do.

Example:
    >>> from tfcompress._keras import keras, tf
    >>> keras.__name__.startswith("tf_keras")
    True
"""
import os
import sys

_MESSAGE = (
    "tfcompress needs Keras 2 (the tf_keras package), because the TensorFlow Model Optimization "
    "Toolkit works only with it, but TensorFlow was imported before tfcompress and tf.keras is "
    "already Keras 3. Import tfcompress before tensorflow, or set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before TensorFlow is imported (in a notebook: restart the kernel, then "
    "run `import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'` first)."
)


def _select_legacy_keras():
    tf_mod = sys.modules.get("tensorflow")
    loader = getattr(tf_mod, "keras", None) if tf_mod is not None else None
    # tf.keras is a lazy loader: it reads TF_USE_LEGACY_KERAS the first time it is touched.
    initialized = bool(getattr(loader, "_tfll_initialized", False)) if loader is not None else False
    if initialized:
        version = getattr(loader, "_tfll_keras_version", None)
        if version not in ("tf_keras", "keras_2"):
            raise ImportError(_MESSAGE)
    os.environ["TF_USE_LEGACY_KERAS"] = "1"


_select_legacy_keras()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402

if not tf.keras.__name__.startswith("tf_keras"):  # pragma: no cover - guarded above
    raise ImportError(_MESSAGE)

__all__ = ["keras", "tf", "tfmot"]
