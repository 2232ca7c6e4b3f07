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
    >>> from tfcompress._keras import keras
    >>> x = keras.Input((8,), name="x")
    >>> h = keras.layers.Dense(32, activation="relu", name="h")(x)
    >>> model = keras.Model(x, keras.layers.Dense(1, name="out")(h))
    >>> small, report = prune_units(model, fraction=0.5)
    >>> small.get_layer("h").units, small.get_layer("out").kernel.shape.as_list()
    (16, [16, 1])
"""
import re

import numpy as np
import pandas as pd

from .._keras import keras, tf
from ..errors import TFCompressError, check, check_fraction
from ..models.layers import custom_objects
from ..models.utils import check_functional

__all__ = ["prune_units", "unit_importance", "shrinkable_layers", "fine_tune"]

IMPORTANCE = ("l1", "l2", "taylor")

# Layers that act on each feature of the last axis separately (the kept features pass straight through).
_PASS = (keras.layers.Dropout, keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
         keras.layers.ELU, keras.layers.BatchNormalization, keras.layers.MaxPooling2D,
         keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
         keras.layers.Flatten, keras.layers.Concatenate)


# ---------------------------------------------------------------------------------------------------
# The model graph, read from the functional config (shared by structured pruning and low-rank rewrites)


class Graph:
    """The functional config of ``model`` plus who feeds whom, by layer name (first inbound node only)."""

    def __init__(self, model, what="tfcompress"):
        check_functional(model, what=what)
        check(model.built and model.inputs is not None,
              f"model {model.name!r} is not built: give it a keras.Input or call it on data first")
        if isinstance(model, keras.Sequential):
            model = keras.Model(model.inputs, model.outputs, name=model.name)
        self.model = model
        self.config = model.get_config()
        self.entries = {e["name"]: e for e in self.config["layers"]}
        self.inbound = {name: [[ref[0] for ref in node if isinstance(ref, (list, tuple)) and ref
                                and isinstance(ref[0], str)] for node in e["inbound_nodes"]]
                        for name, e in self.entries.items()}
        self.consumers = {name: [] for name in self.entries}
        for name, nodes in self.inbound.items():
            for node in nodes:
                for src in node:
                    if name not in self.consumers[src]:
                        self.consumers[src].append(name)
        self.outputs = {ref[0] for ref in _flat_refs(self.config["output_layers"])}

    def layer(self, name):
        return self.model.get_layer(name)

    def order(self):
        """Layer names in topological order."""
        done, order, pending = set(), [], list(self.entries)
        while pending:
            progressed = False
            for name in list(pending):
                if all(src in done for node in self.inbound[name] for src in node):
                    done.add(name)
                    order.append(name)
                    pending.remove(name)
                    progressed = True
            check(progressed, f"cannot order the layers of model {self.model.name!r} (a cycle?)")
        return order

    def rebuild(self, config, weights):
        """A new functional model from ``config`` with ``weights`` (name -> list of arrays) set."""
        config = dict(config)
        for e in config["layers"]:
            e.pop("build_config", None)
        try:
            with keras.utils.custom_object_scope(custom_objects()):
                new = keras.Model.from_config(config)
        except (ValueError, TypeError) as e:
            raise TFCompressError(f"could not rebuild model {self.model.name!r} after the rewrite: "
                                  f"{str(e).strip().splitlines()[0]}") from e
        for name, values in weights.items():
            new.get_layer(name).set_weights(values)
        return new


def _flat_refs(refs):
    if isinstance(refs, dict):
        refs = list(refs.values())
    if refs and isinstance(refs[0], str):
        return [refs]
    return [r for r in refs if isinstance(r, (list, tuple)) and r and isinstance(r[0], str)]


def resolve_layers(model, layers, candidates, what):
    """Names among ``candidates`` selected by ``layers`` (None = all, a regex, a list of names, or a
    predicate). A listed name that is not in the model raises an error listing the candidates."""
    names = [l.name for l in model.layers]
    if layers is None:
        return list(candidates), False
    if isinstance(layers, str):
        return [n for n in candidates if re.search(layers, n)], False
    if callable(layers):
        return [n for n in candidates if layers(model.get_layer(n))], False
    layers = list(layers)
    unknown = [n for n in layers if n not in names]
    check(not unknown, f"no layer named {unknown} in model {model.name!r}; {what} candidates are {list(candidates)}")
    return [n for n in layers], True


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
        >>> from tfcompress._keras import keras
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
        >>> from tfcompress._keras import keras
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
        >>> from tfcompress._keras import keras
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
    keep = {}
    for n, f in chosen.items():
        units = scores[n].shape[0]
        n_keep = max(1, units - int(round(units * f)))
        order = np.argsort(-np.asarray(scores[n]), kind="stable")
        keep[n] = np.sort(order[:n_keep])

    config = graph.config
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
    new = graph.rebuild(config, weights)

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
    return new, pd.DataFrame(rows, columns=["layer", "units_before", "units_after", "params_before",
                                            "params_after", "status"])


def fine_tune(model, data, *, teacher=None, epochs=1, optimizer="adam", loss=None, alpha=0.5,
              temperature=2.0, task="binary", metrics=None, **fit_kwargs):
    """Fine-tune a pruned or factorized ``model`` on ``data`` in place; with ``teacher`` (e.g. the
    unpruned model) through :class:`tfcompress.distill.Distiller`. Returns the ``fit`` history.

    Without a teacher, ``loss`` defaults to binary cross-entropy on logits.

    Example:
        >>> # fine_tune(small, train_ds, teacher=original, epochs=2)
    """
    if teacher is not None:
        from ..distill import Distiller

        was_trainable = teacher.trainable  # the Distiller freezes its teacher; give it back as it was
        try:
            distiller = Distiller(model, teacher, alpha=alpha, temperature=temperature, task=task)
            distiller.compile(optimizer=optimizer, metrics=metrics or [])
            return distiller.fit(data, epochs=epochs, verbose=fit_kwargs.pop("verbose", 0), **fit_kwargs)
        finally:
            teacher.trainable = was_trainable
    model.compile(optimizer=optimizer, loss=loss or keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=metrics or [])
    return model.fit(data, epochs=epochs, verbose=fit_kwargs.pop("verbose", 0), **fit_kwargs)
