"""The custom objects of tfcompress, read from the Keras registry: one place, never a hand-kept list.

Every tfcompress layer (and every ``QuantizeConfig`` of :mod:`tfcompress.quantize`) is registered with
``keras.utils.register_keras_serializable(package="tfcompress")``, which files it in the Keras registry
as ``"tfcompress>ClassName"``. :func:`custom_objects` returns those entries by class name, so a saved
model holding any tfcompress layer reloads with ``keras.models.load_model(path,
custom_objects=custom_objects())``.

A class is in the registry once its module is imported: importing :mod:`tfcompress.models` imports every
layer module, and importing :mod:`tfcompress.quantize` every ``QuantizeConfig``
(``tfcompress.quantize.custom_objects`` is this same function, so it always includes them).

Example:
    >>> import tfcompress
    >>> objects = tfcompress.models.custom_objects()
    >>> objects["Cross"] is tfcompress.models.Cross
    True
"""
from .._keras import keras

PACKAGE = "tfcompress"
"""The package name tfcompress registers its Keras objects under."""


def custom_objects():
    """``{class name: class}`` of every Keras object registered under the ``tfcompress`` package, for
    ``keras.models.load_model(..., custom_objects=...)``, ``custom_object_scope`` and tfmot's scopes.

    Example:
        >>> import tfcompress
        >>> objects = tfcompress.quantize.custom_objects()
        >>> sorted(n for n in ("Cross", "SafeEmbedding", "BruteForceTopK", "CrossQuantizeConfig") if n in objects)
        ['BruteForceTopK', 'Cross', 'CrossQuantizeConfig', 'SafeEmbedding']
    """
    prefix = PACKAGE + ">"
    return {name[len(prefix):]: obj for name, obj in keras.saving.get_custom_objects().items()
            if name.startswith(prefix)}
