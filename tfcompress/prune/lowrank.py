"""Low-rank factorization (低秩逼近): truncated SVD of Dense kernels and Embedding tables.

A Dense kernel ``W (in, out) ≈ U_r S_r V_rᵀ`` becomes two layers: ``Dense(r, use_bias=False)`` named
``<name>_u`` with kernel ``U_r √S_r`` followed by the original ``Dense`` (same name, bias and activation)
with kernel ``√S_r V_rᵀ``. An Embedding table ``E (vocab, dim)`` becomes ``Embedding(vocab, r)`` (same name)
followed by ``Dense(dim, use_bias=False)`` named ``<name>_v``. The product of the two new matrices equals
the rank-``r`` truncation exactly; the rank comes from a target energy fraction (sum of squared singular
values kept), an explicit rank, or a parameter budget. Layers where the factorization would not save
parameters are left alone (and say so in the report). Fine-tune afterwards
(:func:`tfcompress.prune.structured.fine_tune`).

Example:
    >>> from tfcompress import keras
    >>> x = keras.Input((64,), name="x")
    >>> h = keras.layers.Dense(64, activation="relu", name="h")(x)
    >>> model = keras.Model(x, keras.layers.Dense(1, name="out")(h))
    >>> small, report = factorize(model, rank=8)
    >>> small.get_layer("h_u").units, int(report.set_index("layer").loc["h", "params_after"])
    (8, 1088)
"""
import numpy as np
import pandas as pd

from .._keras import keras
from ..errors import check, check_fraction
from ..models.utils import copy_model
from .graph import Graph, resolve_layers

__all__ = ["factorize", "choose_rank", "truncated_svd"]

_COLUMNS = ["layer", "kind", "shape", "rank", "params_before", "params_after", "energy", "rel_error", "status"]


def truncated_svd(matrix, rank):
    """``(A, B)`` with ``A = U_r √S_r`` and ``B = √S_r V_rᵀ``, so ``A @ B`` is the best rank-``rank``
    approximation of ``matrix``.

    Example:
        >>> a, b = truncated_svd(np.eye(3), 2)
        >>> a.shape, b.shape
        ((3, 2), (2, 3))
    """
    m = np.asarray(matrix, dtype=np.float64)
    check(m.ndim == 2, f"truncated_svd needs a matrix, got shape {m.shape}")
    _check_rank(rank, m.shape, "matrix")
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    root = np.sqrt(s[:rank])
    return (u[:, :rank] * root).astype(np.float32), (root[:, None] * vt[:rank]).astype(np.float32)


def _check_rank(rank, shape, name):
    limit = int(min(shape))
    ok = isinstance(rank, (int, np.integer)) and not isinstance(rank, bool)
    check(ok and 1 <= rank <= limit,
          f"rank {rank!r} for {name} of shape {tuple(shape)} must be an integer in [1, {limit}] "
          f"(at most the smaller side of the matrix)")
    return int(rank)


def choose_rank(singular_values, shape, *, energy=None, rank=None, param_budget=None, name="matrix"):
    """The rank to keep for a matrix with these singular values: the smallest rank keeping ``energy`` of
    ``sum(s²)``, or ``rank``, or the largest rank with ``rank·(in+out) <= param_budget·in·out``.

    Example:
        >>> choose_rank(np.array([3.0, 1.0, 0.1]), (3, 3), energy=0.8)
        1
    """
    given = [v is not None for v in (energy, rank, param_budget)]
    check(sum(given) == 1, "pass exactly one of energy=, rank= or param_budget=")
    rows, cols = shape
    if rank is not None:
        return _check_rank(rank, shape, name)
    if energy is not None:
        e = check_fraction("energy", energy, low=0.0, high=1.0, include_high=True)
        check(e > 0, "energy must be above 0, e.g. 0.9")
        s2 = np.square(np.asarray(singular_values, dtype=np.float64))
        total = s2.sum()
        if total == 0:
            return 1
        kept = np.cumsum(s2) / total
        return int(min(len(s2), np.searchsorted(kept, e - 1e-12) + 1))
    b = check_fraction("param_budget", param_budget)
    check(b > 0, "param_budget must be above 0: a fraction of each layer's parameters, e.g. 0.25")
    return int(max(1, min(min(shape), np.floor(b * rows * cols / (rows + cols)))))


def _candidates(graph, include_embeddings):
    kinds = (keras.layers.Dense, keras.layers.Embedding) if include_embeddings else (keras.layers.Dense,)
    return [n for n in graph.order() if type(graph.layer(n)) in kinds]


def factorize(model, *, energy=None, rank=None, param_budget=None, layers=None, include_embeddings=True,
              min_saving=0.0):
    """Replace Dense kernels (and Embedding tables) by rank-``r`` factor pairs from a truncated SVD.

    Give exactly one of ``energy`` (fraction of squared singular values kept, e.g. 0.9), ``rank`` (an int, or
    a dict ``{layer: rank}``) or ``param_budget`` (fraction of each matrix's parameters to keep).
    ``layers`` selects layers (regex, list of names, predicate; default every Dense and, with
    ``include_embeddings``, Embedding layer). A layer is rewritten only if it saves more than
    ``min_saving`` of its parameters. A rank larger than a matrix named in ``layers`` (or in a rank dict) is
    an error; with the default selection such layers are skipped.

    Returns ``(new_model, report)``: report has one row per candidate layer with layer, kind, shape, rank,
    params_before, params_after, energy (kept), rel_error (``‖W − W_r‖_F / ‖W‖_F``) and status.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((32,)), keras.layers.Dense(32, name="h"), keras.layers.Dense(1)])
        >>> small, rep = factorize(m, energy=0.5)
        >>> rep.set_index("layer").loc["h", "status"]
        'factorized'
    """
    given = sum(v is not None for v in (energy, rank, param_budget))
    check(given == 1, "pass exactly one of energy=, rank= or param_budget= to factorize")
    graph = Graph(model, what="low-rank factorization")
    names, explicit = _selected(graph, layers, rank, include_embeddings)
    rows, weights, new_entries, renames = [], {}, [], {}
    for name in names:
        row = _plan(graph, name, rank=rank, explicit=explicit, energy=energy, param_budget=param_budget,
                    min_saving=min_saving)
        if row["status"] == "factorized":
            _rewrite(graph, name, row["rank"], weights, new_entries, renames)
        rows.append(row)
    report = pd.DataFrame(rows, columns=_COLUMNS)
    if not weights:
        return copy_model(graph.model), report
    _splice(graph.config["layers"], new_entries, renames)
    _rename_refs(graph.config, "output_layers", renames)
    for layer in graph.model.layers:
        if layer.weights and layer.name not in weights:
            weights[layer.name] = layer.get_weights()
    return graph.rebuild(graph.config, weights), report


def _selected(graph, layers, rank, include_embeddings):
    """The candidate layers ``layers`` (or the keys of a rank dict) select, and whether they were listed."""
    candidates = _candidates(graph, include_embeddings)
    if isinstance(rank, dict):
        check(layers is None, "pass either a per-layer rank dict or layers=..., not both")
        names, explicit = resolve_layers(graph.model, list(rank), candidates, "Dense/Embedding")
    else:
        names, explicit = resolve_layers(graph.model, layers, candidates, "Dense/Embedding")
    bad = [n for n in names if n not in candidates]
    check(not bad, f"layers {bad} are not Dense/Embedding layers: factorize supports {candidates}")
    check(names, f"no Dense/Embedding layer of model {graph.model.name!r} matches {layers!r}; "
                 f"candidates are {candidates}")
    return names, explicit


def _plan(graph, name, *, rank, explicit, energy, param_budget, min_saving):
    """The report row of one candidate layer: its rank, parameters and errors, and a status that is
    ``factorized`` when the rank-``r`` pair saves enough parameters (else why it is skipped)."""
    layer = graph.layer(name)
    matrix = layer.get_weights()[0]
    bias = [] if isinstance(layer, keras.layers.Embedding) else layer.get_weights()[1:]
    shape = tuple(matrix.shape)
    row = {"layer": name, "kind": type(layer).__name__, "shape": shape}
    if len(graph.inbound[name]) != 1:
        return {**row, "status": "skipped: shared layer"}
    if (isinstance(rank, (int, np.integer)) and not isinstance(rank, bool) and not explicit
            and rank > min(shape)):
        return {**row, "status": f"skipped: rank {rank} exceeds the smaller side {min(shape)}"}
    s = np.linalg.svd(matrix.astype(np.float64), compute_uv=False)
    r = choose_rank(s, shape, energy=energy, rank=rank.get(name) if isinstance(rank, dict) else rank,
                    param_budget=param_budget, name=f"layer {name!r}")
    before = int(matrix.size + sum(b.size for b in bias))
    after = int(r * (shape[0] + shape[1]) + sum(b.size for b in bias))
    s2 = np.square(s)
    kept = float(s2[:r].sum() / s2.sum()) if s2.sum() else 1.0
    rel = float(np.sqrt(max(0.0, s2[r:].sum()) / s2.sum())) if s2.sum() else 0.0
    row.update(rank=r, params_before=before, energy=kept, rel_error=rel)
    if after >= before * (1.0 - float(min_saving)):
        return {**row, "params_after": before, "status": f"skipped: rank {r} saves no parameters"}
    return {**row, "params_after": after, "status": "factorized"}


def _rewrite(graph, name, r, weights, new_entries, renames):
    """Edit the config of layer ``name`` for its rank-``r`` pair and record the new layer, its anchor and
    the factor weights (an Embedding's consumers are renamed to read from its new ``_v`` Dense)."""
    layer = graph.layer(name)
    matrix = layer.get_weights()[0]
    a, b = truncated_svd(matrix, r)
    entry = graph.entries[name]
    if isinstance(layer, keras.layers.Embedding):
        extra = f"{name}_v"
        entry["config"]["output_dim"] = r
        for key in ("embeddings_regularizer", "embeddings_constraint", "activity_regularizer"):
            entry["config"][key] = None
        new_entries.append((name, _dense_entry(extra, matrix.shape[1], [[[name, 0, 0, {}]]], layer.dtype), "after"))
        renames[name] = extra
        weights[name], weights[extra] = [a], [b]
    else:
        extra = f"{name}_u"
        new_entries.append((name, _dense_entry(extra, r, entry["inbound_nodes"], layer.dtype), "before"))
        entry["inbound_nodes"] = [[[extra, 0, 0, {}]]]
        weights[extra], weights[name] = [a], [b] + layer.get_weights()[1:]
    check(extra not in graph.entries, f"model {graph.model.name!r} already has a layer named {extra!r}: "
                                      "rename it before factorizing")


def _splice(layer_list, new_entries, renames):
    """Insert the new factor layers beside their anchors; consumers of a factorized embedding read from its
    new Dense."""
    for anchor, new_entry, where in new_entries:
        i = next(k for k, e in enumerate(layer_list) if e["name"] == anchor)
        layer_list.insert(i if where == "before" else i + 1, new_entry)
    added = set(renames.values())
    for e in layer_list:
        if e["name"] in added:
            continue
        for node in e["inbound_nodes"]:
            for ref in node:
                if isinstance(ref, list) and ref and ref[0] in renames:
                    ref[0] = renames[ref[0]]


def _dense_entry(name, units, inbound_nodes, dtype):
    layer = keras.layers.Dense(int(units), use_bias=False, name=name, dtype=dtype)
    return {"class_name": "Dense", "config": layer.get_config(), "name": name, "inbound_nodes": inbound_nodes}


def _rename_refs(config, key, renames):
    refs = config[key]
    if isinstance(refs, dict):
        items = list(refs.values())
    elif refs and isinstance(refs[0], str):
        items = [refs]
    else:
        items = refs
    for ref in items:
        if isinstance(ref, list) and ref and ref[0] in renames:
            ref[0] = renames[ref[0]]
