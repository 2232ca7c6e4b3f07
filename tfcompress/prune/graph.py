"""A functional model's graph, read from its config: who feeds whom, by layer name, and a rebuild from an
edited config. Structured pruning (:mod:`~tfcompress.prune.structured`) and low-rank factorization
(:mod:`~tfcompress.prune.lowrank`) rewrite models through it.

Example:
    >>> from tfcompress import keras
    >>> m = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(8, name="h"),
    ...                       keras.layers.Dense(1, name="o")])
    >>> g = Graph(m)
    >>> g.order(), g.consumers["h"], sorted(g.outputs)
    (['x', 'h', 'o'], ['o'], ['o'])
"""
import re

from .._keras import keras
from ..errors import TFCompressError, check
from ..models.registry import custom_objects
from ..models.utils import check_functional

__all__ = ["Graph", "resolve_layers"]


class Graph:
    """The functional config of ``model`` plus who feeds whom, by layer name (first inbound node only).

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(2, name="h")])
        >>> Graph(m).inbound["h"]
        [['x']]
    """

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
    predicate), and whether they were listed by name. A listed name that is not in the model raises an error
    listing the candidates.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="h1"),
        ...                       keras.layers.Dense(1, name="h2")])
        >>> resolve_layers(m, "1$", ["h1", "h2"], "Dense")
        (['h1'], False)
    """
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
