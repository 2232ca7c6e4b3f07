"""The one place tfcompress imports its Keras, TensorFlow and tfmot.

tfmot (the TensorFlow Model Optimization Toolkit) works only with Keras 2, shipped as ``tf_keras``.
``import tfcompress`` sets ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported, so that ``tf.keras``
(used by tfmot and TensorFlow Recommenders) is ``tf_keras`` too; this module imports them, the first time
a submodule needs them. Every other tfcompress module takes ``keras``, ``tf`` and ``tfmot`` from here and
never does ``import keras``.

TensorFlow's start-up noise (oneDNN, CUDA, absl lines written before its logging is set up) is silenced
while it is imported, and absl's Python log set to errors, unless ``TFCOMPRESS_VERBOSE=1``.

If TensorFlow was imported first and ``tf.keras`` has already resolved to Keras 3, importing tfcompress
raises one :class:`ImportError` that says what to do.

Example:
    >>> from tfcompress import keras, tf
    >>> keras.__name__.startswith("tf_keras")
    True
"""
import contextlib
import os
import sys

from . import _KERAS3_MESSAGE, _select_legacy_keras, verbose


@contextlib.contextmanager
def _stderr_silenced(enabled):
    """Send file descriptor 2 to /dev/null while the block runs (C++ writes there directly)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_select_legacy_keras()
_quiet = not verbose() and "tensorflow" not in sys.modules
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if _quiet else "2")

with _stderr_silenced(_quiet):
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402
    import tensorflow_model_optimization as tfmot  # noqa: E402

    if _quiet:  # the platforms' own start-up lines (e.g. a failed cuInit on a machine without a GPU)
        tf.config.list_physical_devices()

if not verbose():
    import absl.logging  # noqa: E402

    absl.logging.set_verbosity(absl.logging.ERROR)

if not tf.keras.__name__.startswith("tf_keras"):  # pragma: no cover - guarded above
    raise ImportError(_KERAS3_MESSAGE)

__all__ = ["keras", "tf", "tfmot"]
