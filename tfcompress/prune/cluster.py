"""Weight clustering (weight sharing) on tfmot: each selected kernel keeps only ``n_clusters`` distinct values.

:func:`cluster_weights` wraps the selected layers (Dense, Conv, Embedding; the output layer and embeddings
only if asked) with tfmot's clustering wrapper; fine-tune, then :func:`strip_clustering` before export. The
clustered model is no smaller in float, but compresses well (gzip) and, with cluster-preserving QAT
(``tfcompress.quantize.quantize_aware(preserve="clusters"|"both")``), stays clustered in the int8 file.
Check with :func:`tfcompress.prune.unique_values` / :func:`~tfcompress.prune.tflite_unique_values`.

Example:
    >>> import numpy as np
    >>> from tfcompress import keras
    >>> from tfcompress.prune import unique_values
    >>> m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="h"), keras.layers.Dense(1, name="o")])
    >>> c = cluster_weights(m, n_clusters=4)
    >>> unique_values(strip_clustering(c))["h"] <= 4
    True
"""
from .._keras import keras, tfmot
from ..errors import TFCompressError, check
from ..models.utils import check_functional, copy_model
from .unstructured import select_layers

__all__ = ["cluster_weights", "strip_clustering", "INITS"]

_c = tfmot.clustering.keras
INITS = {"kmeans_plus_plus": _c.CentroidInitialization.KMEANS_PLUS_PLUS,
         "linear": _c.CentroidInitialization.LINEAR,
         "density_based": _c.CentroidInitialization.DENSITY_BASED,
         "random": _c.CentroidInitialization.RANDOM}

_CLUSTERABLE = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                keras.layers.Embedding)


def _clusterable(layer):
    return isinstance(layer, _CLUSTERABLE + (_c.ClusterableLayer,))


def cluster_weights(model, n_clusters=16, *, layers=None, init="kmeans_plus_plus", skip_output=False,
                    include_embeddings=False, preserve_sparsity=False):
    """A copy of ``model`` with the selected layers' weights clustered to ``n_clusters`` centroids.

    ``layers``: a regex, list of names or predicate (default: every clusterable layer); ``n_clusters``: an int
    or a dict ``{layer name: clusters}``; ``init``: one of ``kmeans_plus_plus``, ``linear``,
    ``density_based``, ``random``; ``preserve_sparsity=True`` keeps pruned zeros at zero (for pruned models).
    Compile and fine-tune the result, then :func:`strip_clustering`.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="h"), keras.layers.Dense(1, name="o")])
        >>> [l.name for l in cluster_weights(m, 4).layers]
        ['cluster_h', 'cluster_o']
    """
    check_functional(model, what="tfmot clustering")
    check(init in INITS, f"init={init!r} is not one of {sorted(INITS)}")
    per_layer = dict(n_clusters) if isinstance(n_clusters, dict) else None
    if per_layer is not None:
        check(layers is None, "pass either a per-layer n_clusters dict or layers=..., not both")
        layers = list(per_layer)
    _check_listed(model, layers)
    chosen = [n for n in select_layers(model, layers, skip_output=skip_output,
                                       include_embeddings=include_embeddings or per_layer is not None)
              if _clusterable(model.get_layer(n))]
    check(chosen, f"no clusterable layer of model {model.name!r} matches {layers!r}")
    counts = _cluster_counts(model, chosen, per_layer, n_clusters)

    def wrap(layer):
        if layer.name not in counts:
            return layer
        kwargs = {"number_of_clusters": counts[layer.name], "cluster_centroids_init": INITS[init]}
        if preserve_sparsity:
            return _experimental().cluster_weights(layer, preserve_sparsity=True, **kwargs)
        return _c.cluster_weights(layer, **kwargs)

    try:
        with _c.cluster_scope():
            return keras.models.clone_model(copy_model(model), clone_function=wrap)
    except (ValueError, TypeError) as e:
        raise TFCompressError(f"tfmot could not cluster model {model.name!r}: "
                              f"{str(e).strip().splitlines()[0]}") from e


def _check_listed(model, layers):
    """Layers listed by name must exist and be clusterable."""
    if not isinstance(layers, (list, tuple, set)):
        return
    names = [l.name for l in model.layers]
    unknown = [n for n in layers if n not in names]
    check(not unknown, f"no layer named {unknown} in model {model.name!r}; clusterable layers are "
                       f"{[l.name for l in model.layers if _clusterable(l)]}")
    bad = [n for n in layers if not _clusterable(model.get_layer(n))]
    check(not bad, f"layers {bad} cannot be clustered by tfmot (clusterable: Dense, Conv, Embedding or a "
                   "tfmot ClusterableLayer): leave them out of layers=")


def _cluster_counts(model, chosen, per_layer, n_clusters):
    """``{layer name: clusters}`` for the chosen layers, each trainable and with enough weights."""
    frozen = [n for n in chosen if not model.get_layer(n).trainable]
    check(not frozen, f"layers {frozen} of model {model.name!r} are frozen (trainable=False, e.g. the teacher of "
                      "a Distiller), so clustering could not train their centroids: set model.trainable = True")
    counts = {}
    for n in chosen:
        k = per_layer[n] if per_layer is not None else n_clusters
        ok = isinstance(k, int) and not isinstance(k, bool) and k >= 2
        check(ok, f"n_clusters for layer {n!r} must be an integer >= 2, got {k!r}")
        size = int(model.get_layer(n).get_weights()[0].size)
        check(k <= size, f"n_clusters={k} for layer {n!r} exceeds its {size} weights: use fewer clusters")
        counts[n] = k
    return counts


def _experimental():
    # tfmot 0.8.1 does not export experimental.cluster_weights (sparsity-preserving clustering) publicly
    from tensorflow_model_optimization.python.core.clustering.keras.experimental import cluster

    return cluster


def strip_clustering(model):
    """Remove the clustering wrappers, keeping the clustered weights: do this before export (or QAT).

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="h"), keras.layers.Dense(1, name="o")])
        >>> [l.name for l in strip_clustering(cluster_weights(m, 4)).layers]
        ['h', 'o']
    """
    check_functional(model, what="tfmot clustering")
    return _c.strip_clustering(model)
