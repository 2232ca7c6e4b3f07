"""Structured pruning that physically shrinks a model: whole Dense units / Conv2D filters are removed.

Magnitude pruning (:mod:`tfcompress.prune.unstructured`) only zeroes weights; the model keeps its size and
speed until a runtime exploits the zeros. :func:`prune_units` instead ranks the units of each Dense (and
filters of each Conv2D) layer by importance (L1 / L2 norm of their weights, or a first-order Taylor score
``|mean(activation · gradient)|`` on a few batches), drops the weakest, and rebuilds a smaller functional
model with the surviving weights copied and the consumers' input rows/channels cut to match.

A layer can shrink only if its output reaches nothing but Dense/Conv2D layers, through layers that act
per feature (Dropout, activations, BatchNormalization, pooling, Flatten, Concatenate on the last axis). Layers
feeding a model output or another layer (e.g. :class:`~tfcompress.models.Cross`, whose kernel is
``dim × dim`` over its ``x0`` input) are skipped, with the reason in the report. The output layer is never
touched. Fine-tune afterwards with :func:`fine_tune`, optionally distilling from the unpruned model.

Example:
    >>> from tfcompress import keras
    >>> x = keras.Input((8,), name="x")
    >>> h = keras.layers.Dense(32, activation="relu", name="h")(x)
    >>> model = keras.Model(x, keras.layers.Dense(1, name="out")(h))
    >>> small, report = prune_units(model, fraction=0.5)
    >>> small.get_layer("h").units, small.get_layer("out").kernel.shape.as_list()
    (16, [16, 1])
"""
import numpy as np
import pandas as pd

from .._keras import keras, tf
from ..errors import TFCompressError, check, check_fraction
from .graph import Graph, resolve_layers

__all__ = ["prune_units", "prune_to_share", "unit_importance", "shrinkable_layers", "fine_tune"]

IMPORTANCE = ("l1", "l2", "taylor")

# Layers that act on each feature of the last axis separately (the kept features pass straight through).
_PASS = (keras.layers.Dropout, keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
         keras.layers.ELU, keras.layers.BatchNormalization, keras.layers.MaxPooling2D,
         keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
         keras.layers.Flatten, keras.layers.Concatenate)


# ---------------------------------------------------------------------------------------------------
# Which layers can shrink


def _is_unit_layer(layer):
    return type(layer) is keras.layers.Dense or (type(layer) is keras.layers.Conv2D and layer.groups == 1)


def _why_not_shrinkable(graph, name):
    """None if layer ``name`` can lose units, else the reason."""
    layer = graph.layer(name)
    if not _is_unit_layer(layer):
        return f"{type(layer).__name__} is not a Dense or Conv2D layer"
    if name in graph.outputs:
        return "it is a model output"
    if len(graph.inbound[name]) != 1:
        return "it is shared (called more than once)"
    stack, seen = list(graph.consumers[name]), set()
    if not stack:
        return "nothing consumes its output"
    while stack:
        c = stack.pop()
        if c in seen:
            continue
        seen.add(c)
        cl = graph.layer(c)
        if len(graph.inbound[c]) != 1:
            return f"it feeds the shared layer {c!r}"
        if _is_unit_layer(cl):
            continue
        if isinstance(cl, _PASS) and _passes_last_axis(cl):
            if c in graph.outputs:
                return f"it reaches the model output through {c!r}"
            stack.extend(graph.consumers[c])
            continue
        return f"it feeds {type(cl).__name__} {c!r}, whose inputs cannot be cut"
    return None


def _passes_last_axis(layer):
    if isinstance(layer, keras.layers.Concatenate):
        rank = len(layer.output_shape)
        return layer.axis in (-1, rank - 1)
    if isinstance(layer, keras.layers.BatchNormalization):
        axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        rank = len(layer.input_shape)
        return [a % rank for a in axis] == [rank - 1]
    if hasattr(layer, "data_format"):
        return layer.data_format in (None, "channels_last")
    return True


def shrinkable_layers(model):
    """``{layer name: None or reason}`` for every Dense/Conv2D layer: None if :func:`prune_units` can
    remove its units, else why not.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="h"), keras.layers.Dense(1, name="o")])
        >>> shrinkable_layers(m)
        {'h': None, 'o': 'it is a model output'}
    """
    graph = Graph(model, what="structured pruning")
    return {n: _why_not_shrinkable(graph, n) for n in graph.order() if _is_unit_layer(graph.layer(n))}


# ---------------------------------------------------------------------------------------------------
# Importance


def _norm_scores(kernel, kind):
    axes = tuple(range(kernel.ndim - 1))
    if kind == "l1":
        return np.sum(np.abs(kernel), axis=axes)
    return np.sqrt(np.sum(np.square(kernel), axis=axes))


def _taylor_scores(model, names, data, loss, batches):
    check(data is not None, "importance='taylor' needs data: pass data=(x, y) batches (a tf.data.Dataset "
                            "or a list of (inputs, labels)) to score units on")
    if loss is None:
        loss = getattr(model, "loss", None)
    check(loss is not None, "importance='taylor' needs a loss: pass loss=... (e.g. "
                            "keras.losses.BinaryCrossentropy(from_logits=True)) or compile the model")
    loss_fn = keras.losses.get(loss) if isinstance(loss, str) else loss
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names] + list(model.outputs))
    totals, count = {n: 0.0 for n in names}, 0
    for i, batch in enumerate(data):
        if i >= batches:
            break
        check(isinstance(batch, (tuple, list)) and len(batch) >= 2,
              "Taylor importance needs labelled batches (inputs, labels)")
        x, y = batch[0], batch[1]
        with tf.GradientTape() as tape:
            outs = probe(x, training=False)
            acts, preds = outs[:len(names)], outs[len(names):]
            value = loss_fn(y, preds[0] if len(preds) == 1 else preds)
        grads = tape.gradient(value, acts)
        for n, a, g in zip(names, acts, grads):
            g = tf.zeros_like(a) if g is None else g
            axes = list(range(len(a.shape) - 1))
            totals[n] = totals[n] + np.abs(tf.reduce_mean(a * g, axis=axes).numpy())
        count += 1
    check(count > 0, "data gave no batches to score Taylor importance on")
    return {n: totals[n] / count for n in names}


def unit_importance(model, layers=None, *, importance="l1", data=None, loss=None, batches=4):
    """Importance of each unit/filter of the given Dense/Conv2D layers: ``{name: array (units,)}``.

    ``"l1"`` / ``"l2"``: norm of the unit's incoming weights. ``"taylor"``: ``|mean(a · dL/da)|`` over
    ``batches`` labelled batches of ``data`` (first-order estimate of the loss change if the unit is removed).

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="h", kernel_initializer="ones")])
        >>> unit_importance(m, ["h"])["h"].tolist()
        [2.0, 2.0, 2.0]
    """
    check(importance in IMPORTANCE, f"importance={importance!r} is not one of {IMPORTANCE}")
    graph = Graph(model, what="structured pruning")
    candidates = [n for n in graph.order() if _is_unit_layer(graph.layer(n))]
    names, _ = resolve_layers(graph.model, layers, candidates, "Dense/Conv2D")
    bad = [n for n in names if n not in candidates]
    check(not bad, f"layers {bad} are not Dense/Conv2D layers; candidates are {candidates}")
    if importance == "taylor":
        return _taylor_scores(graph.model, names, data, loss, int(batches))
    return {n: _norm_scores(graph.layer(n).get_weights()[0], importance) for n in names}


# ---------------------------------------------------------------------------------------------------
# Pruning


def _fractions(graph, fraction, layers):
    """``{name: fraction}`` for the layers to shrink, and ``{name: reason}`` for the ones skipped."""
    candidates = [n for n in graph.order() if _is_unit_layer(graph.layer(n))]
    if isinstance(fraction, dict):
        check(layers is None, "pass either a per-layer fraction dict or layers=..., not both")
        names, explicit = resolve_layers(graph.model, list(fraction), candidates, "Dense/Conv2D")
        wanted = {n: check_fraction(f"fraction[{n!r}]", fraction[n]) for n in names}
    else:
        f = check_fraction("fraction", fraction)
        names, explicit = resolve_layers(graph.model, layers, candidates, "Dense/Conv2D")
        wanted = {n: f for n in names}
    chosen, skipped = {}, {}
    for n, f in wanted.items():
        reason = _why_not_shrinkable(graph, n)
        if reason is not None and explicit:
            shrinkable = [c for c in candidates if _why_not_shrinkable(graph, c) is None]
            raise TFCompressError(f"layer {n!r} cannot lose units: {reason}; shrinkable layers are {shrinkable}")
        if reason is None:
            chosen[n] = f
        else:
            skipped[n] = reason
    for n in candidates:
        if n not in wanted:
            skipped.setdefault(n, "not selected")
    check(chosen, f"no layer of model {graph.model.name!r} can lose units ({skipped}): structured pruning "
                  "needs a Dense/Conv2D layer whose output feeds only Dense/Conv2D layers")
    return chosen, skipped


def _slice_weights(layer, weights, in_map, keep):
    if _is_unit_layer(layer):
        kernel = weights[0]
        in_axis = kernel.ndim - 2
        if in_map is not None:
            kernel = np.take(kernel, in_map, axis=in_axis)
        rest = list(weights[1:])
        if keep is not None:
            kernel = np.take(kernel, keep, axis=-1)
            rest = [b[keep] for b in rest]
        return [kernel] + rest
    if isinstance(layer, keras.layers.BatchNormalization) and in_map is not None:
        return [w[in_map] for w in weights]
    return weights


def _out_map(graph, name, in_maps, keep):
    layer = graph.layer(name)
    if _is_unit_layer(layer):
        return keep
    if isinstance(layer, keras.layers.Concatenate):
        if all(m is None for m in in_maps):
            return None
        shapes = layer.input_shape
        parts, offset = [], 0
        for m, shape in zip(in_maps, shapes):
            dim = int(shape[-1])
            parts.append((np.arange(dim) if m is None else np.asarray(m)) + offset)
            offset += dim
        return np.concatenate(parts)
    if isinstance(layer, keras.layers.Flatten):
        if in_maps[0] is None:
            return None
        shape = layer.input_shape
        channels, spatial = int(shape[-1]), int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
        return (np.arange(spatial)[:, None] * channels + np.asarray(in_maps[0])[None, :]).ravel()
    if isinstance(layer, _PASS):
        return in_maps[0] if in_maps else None
    return None


def prune_units(model, fraction=0.5, *, layers=None, importance="l1", data=None, loss=None, batches=4):
    """Remove the least important ``fraction`` of units (Dense) / filters (Conv2D) from each selected layer.

    ``fraction`` is one number, or a dict ``{layer name: fraction}``; ``layers`` selects layers (regex,
    list of names or predicate; default all that can shrink). ``importance`` is ``"l1"``, ``"l2"`` or
    ``"taylor"`` (which needs ``data``: labelled batches, and a ``loss`` unless the model is compiled).

    Returns ``(smaller_model, report)``: a new functional model (weights copied, consumers' input rows cut)
    and a DataFrame with one row per Dense/Conv2D layer (layer, units_before, units_after,
    params_before, params_after, status).

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10, name="h"), keras.layers.Dense(1)])
        >>> small, report = prune_units(m, {"h": 0.3})
        >>> int(report.set_index("layer").loc["h", "units_after"])
        7
    """
    check(importance in IMPORTANCE, f"importance={importance!r} is not one of {IMPORTANCE}")
    graph = Graph(model, what="structured pruning")
    chosen, skipped = _fractions(graph, fraction, layers)
    scores = unit_importance(graph.model, list(chosen), importance=importance, data=data, loss=loss,
                             batches=batches)
    keep = _kept_units(scores, chosen)
    new = _shrink(graph, keep)
    return new, _units_report(graph, new, keep, skipped)


def prune_to_share(model, share, *, importance="l1", steps=12):
    """Width-prune ``model`` (:func:`prune_units`, every shrinkable layer by the same fraction) to at most
    ``share`` of its parameters: the smallest fraction that gets there, found by bisection. Returns
    ``(smaller_model, report)``; a clear error when even one unit per layer keeps too many parameters.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64), keras.layers.Dense(1)])
        >>> small, _ = prune_to_share(m, 0.25)
        >>> small.count_params() <= 0.25 * m.count_params()
        True
    """
    check(isinstance(share, (int, float)) and 0 < share < 1, f"share = {share!r} must be in (0, 1)")
    target = share * model.count_params()
    lo, hi = 0.0, 0.999
    best = prune_units(model, hi, importance=importance)
    if best[0].count_params() > target:
        raise TFCompressError(f"width pruning cannot bring model {model.name!r} to {share:.0%} of its "
                              f"{model.count_params():,} parameters (one unit per layer keeps "
                              f"{best[0].count_params():,}): most of them are in layers it cannot shrink "
                              "(embeddings, outputs); use a larger share or the default student")
    for _ in range(int(steps)):
        mid = (lo + hi) / 2
        candidate = prune_units(model, mid, importance=importance)
        if candidate[0].count_params() <= target:
            hi, best = mid, candidate
        else:
            lo = mid
    return best


def _kept_units(scores, chosen):
    """``{layer name: sorted indices of the units kept}``: the most important ``1 - fraction`` (at least one)."""
    keep = {}
    for n, f in chosen.items():
        units = scores[n].shape[0]
        n_keep = max(1, units - int(round(units * f)))
        order = np.argsort(-np.asarray(scores[n]), kind="stable")
        keep[n] = np.sort(order[:n_keep])
    return keep


def _shrink(graph, keep):
    """The model rebuilt with only the ``keep`` units, every consumer's input rows/channels cut to match."""
    out_maps, weights = {}, {}
    for name in graph.order():
        layer = graph.layer(name)
        nodes = graph.inbound[name]
        in_maps = [out_maps.get(src) for src in nodes[0]] if nodes else []
        in_map = in_maps[0] if in_maps else None
        out_maps[name] = _out_map(graph, name, in_maps, keep.get(name))
        if layer.weights:
            weights[name] = _slice_weights(layer, layer.get_weights(), in_map, keep.get(name))
        if name in keep:
            key = "units" if isinstance(layer, keras.layers.Dense) else "filters"
            graph.entries[name]["config"][key] = int(len(keep[name]))
    return graph.rebuild(graph.config, weights)


def _units_report(graph, new, keep, skipped):
    """One row per Dense/Conv2D layer: units and parameters before and after, and what happened to it."""
    rows = []
    for name in graph.order():
        layer = graph.layer(name)
        if not _is_unit_layer(layer):
            continue
        new_layer = new.get_layer(name)
        before = layer.units if isinstance(layer, keras.layers.Dense) else layer.filters
        after = new_layer.units if isinstance(new_layer, keras.layers.Dense) else new_layer.filters
        status = "pruned" if name in keep else ("input cut" if layer.count_params() != new_layer.count_params()
                                               else f"skipped: {skipped.get(name, 'not selected')}")
        rows.append({"layer": name, "units_before": int(before), "units_after": int(after),
                     "params_before": int(layer.count_params()), "params_after": int(new_layer.count_params()),
                     "status": status})
    return pd.DataFrame(rows, columns=["layer", "units_before", "units_after", "params_before",
                                       "params_after", "status"])


def fine_tune(model, data, *, teacher=None, epochs=1, optimizer="adam", loss=None, alpha=0.5,
              temperature=2.0, objective=None, metrics=None, task=None, **fit_kwargs):
    """Fine-tune a pruned or factorized ``model`` on ``data`` in place; with ``teacher`` (e.g. the
    unpruned model) through :class:`tfcompress.distill.Distiller` for the model's ``objective`` (default
    ``binary``; ``task=`` is its deprecated alias). Returns the ``fit`` history.

    Without a teacher, ``loss`` defaults to binary cross-entropy on logits.

    Example:
        >>> # fine_tune(small, train_ds, teacher=original, epochs=2)
    """
    if teacher is not None:
        from ..distill import Distiller

        was_trainable = teacher.trainable  # the Distiller freezes its teacher; give it back as it was
        try:
            distiller = Distiller(model, teacher, alpha=alpha, temperature=temperature, objective=objective,
                                  task=task)
            distiller.compile(optimizer=optimizer, metrics=metrics or [])
            return distiller.fit(data, epochs=epochs, verbose=fit_kwargs.pop("verbose", 0), **fit_kwargs)
        finally:
            teacher.trainable = was_trainable
    model.compile(optimizer=optimizer, loss=loss or keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=metrics or [])
    return model.fit(data, epochs=epochs, verbose=fit_kwargs.pop("verbose", 0), **fit_kwargs)
