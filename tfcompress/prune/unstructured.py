"""Unstructured magnitude pruning on tfmot, with schedules that really prune on short runs.

tfmot's ``PolynomialDecay`` prunes every ``frequency`` steps (default 100), so a run of fewer than 100
steps is never pruned. :func:`polynomial_schedule` derives the frequency from the step count.
:func:`prune_low_magnitude` wraps the prunable layers (``Dense``, convolutions and any tfmot
``PrunableLayer`` such as :class:`~tfcompress.models.Cross`), skipping the output layer and embeddings
unless asked; train with :func:`pruning_callbacks`, then :func:`strip_pruning` before export.

Example:
    >>> from tfcompress import keras
    >>> import numpy as np
    >>> m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="h"), keras.layers.Dense(1)])
    >>> p = prune_low_magnitude(m, target_sparsity=0.5, total_steps=10)
    >>> p.compile("adam", "mse")
    >>> _ = p.fit(np.ones((40, 8)), np.ones((40, 1)), batch_size=4, epochs=1, verbose=0,
    ...           callbacks=pruning_callbacks())
    >>> round(layer_sparsity(strip_pruning(p))["h"], 2)
    0.5
"""
import re

import numpy as np

from .._keras import keras, tfmot
from ..errors import TFCompressError, check, check_fraction
from ..models.utils import check_functional, copy_model
from .sparsity import layer_sparsity  # noqa: F401  (its old home here)

_sparsity = tfmot.sparsity.keras


def derived_frequency(pruning_steps):
    """How often to prune for a schedule of ``pruning_steps`` steps: about 20 pruning events, at most
    every 100 steps, at least every step."""
    return int(max(1, min(100, pruning_steps // 20)))


def polynomial_schedule(target_sparsity, total_steps, *, initial_sparsity=0.0, begin_step=0,
                        end_fraction=0.7, frequency=None):
    """A ``PolynomialDecay`` from ``initial_sparsity`` to ``target_sparsity`` that ends after about
    ``end_fraction`` of ``total_steps`` (leaving the rest to recover), with a derived frequency.

    Example:
        >>> s = polynomial_schedule(0.5, total_steps=40)
        >>> s.get_config()["config"]["frequency"], s.get_config()["config"]["end_step"]
        (1, 28)
    """
    target = check_fraction("target_sparsity", target_sparsity)
    initial = check_fraction("initial_sparsity", initial_sparsity)
    check(initial <= target, f"initial_sparsity {initial} is above target_sparsity {target}")
    total_steps, begin_step = int(total_steps), int(begin_step)
    check(total_steps > begin_step >= 0,
          f"total_steps ({total_steps}) must exceed begin_step ({begin_step}) >= 0")
    span = max(1, int((total_steps - begin_step) * float(end_fraction)))
    freq = int(frequency) if frequency else derived_frequency(span)
    span = max(freq, (span // freq) * freq)
    end_step = min(begin_step + span, total_steps - 1)
    return _sparsity.PolynomialDecay(initial_sparsity=initial, final_sparsity=target, begin_step=begin_step,
                                     end_step=end_step, frequency=freq)


def constant_schedule(target_sparsity, total_steps, *, begin_step=0, frequency=None):
    """A ``ConstantSparsity`` at ``target_sparsity`` from ``begin_step``, with a derived frequency."""
    target = check_fraction("target_sparsity", target_sparsity)
    freq = int(frequency) if frequency else derived_frequency(int(total_steps) - int(begin_step))
    return _sparsity.ConstantSparsity(target, begin_step=int(begin_step), frequency=freq)


def is_prunable(layer):
    """True for layers tfmot can prune: Dense, Conv, and ``PrunableLayer`` implementations."""
    return isinstance(layer, (_sparsity.PrunableLayer, keras.layers.Dense, keras.layers.Conv1D,
                              keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Embedding))


def select_layers(model, layers=None, *, skip_output=True, include_embeddings=False):
    """Names of the layers to prune: all prunable ones, or those matching ``layers`` (a regex, a list of
    names, or a predicate ``layer -> bool``)."""
    check_functional(model)
    output_layers = {t.node.layer.name for t in _keras_history(model.outputs)} if skip_output else set()
    names = [l.name for l in model.layers]
    if isinstance(layers, (list, tuple, set)):
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise TFCompressError(f"no layer named {unknown} in model {model.name!r}; layers are {names}")
    chosen = []
    for layer in model.layers:
        if not is_prunable(layer):
            continue
        if isinstance(layer, keras.layers.Embedding) and not include_embeddings:
            continue
        if layer.name in output_layers:
            continue
        if layers is None:
            ok = True
        elif isinstance(layers, str):
            ok = re.search(layers, layer.name) is not None
        elif callable(layers):
            ok = bool(layers(layer))
        else:
            ok = layer.name in layers
        if ok:
            chosen.append(layer.name)
    if not chosen:
        raise TFCompressError(f"no prunable layer of model {model.name!r} matches {layers!r}; "
                              f"prunable: {[l.name for l in model.layers if is_prunable(l)]}")
    return chosen


def prune_low_magnitude(model, target_sparsity=0.5, total_steps=None, *, schedule=None, layers=None,
                        skip_output=True, include_embeddings=False, sparsity_m_by_n=None, pruning_policy=None):
    """A copy of ``model`` with the selected layers wrapped for magnitude pruning to ``target_sparsity``
    over ``total_steps`` training steps (or under a given tfmot ``schedule``).

    ``sparsity_m_by_n=(2, 4)`` prunes m of every n consecutive input-axis weights instead (see
    :func:`prune_m_by_n`). ``pruning_policy="xnnpack"`` (or a tfmot ``PruningPolicy``) keeps only the layers
    the policy allows: tfmot's ``PruneForLatencyOnXNNPack`` prunes the 1x1 ``Conv2D`` layers of a
    MobileNet-like conv model (ZeroPadding2D + 3x3/stride-2 Conv2D stem ... GlobalAveragePooling2D
    with ``keepdims=True``), which XNNPACK can run as sparse kernels. Measured here
    (``benchmarks/compression_table.py``): converted with ``tf.lite.Optimize.EXPERIMENTAL_SPARSITY`` the file
    shrinks, but the LiteRT Python interpreter's default XNNPACK delegate does not enable sparse inference,
    so batch-1 latency does not change; structured pruning (:func:`tfcompress.prune.prune_units`) does.
    """
    check_functional(model)
    target_sparsity = check_fraction("target_sparsity", target_sparsity)
    if schedule is None:
        if total_steps is None:
            raise TFCompressError("pass total_steps (epochs x steps per epoch) or a pruning schedule")
        schedule = polynomial_schedule(target_sparsity, total_steps)
    policy = _pruning_policy(pruning_policy, model)
    chosen = set(select_layers(model, layers, skip_output=skip_output, include_embeddings=include_embeddings))
    if policy is not None:
        chosen = {n for n in chosen if policy.allow_pruning(model.get_layer(n))}
        check(bool(chosen), f"pruning policy {type(policy).__name__} allows none of the selected layers "
                            f"of model {model.name!r}")
    kwargs = {"pruning_schedule": schedule}
    if sparsity_m_by_n is not None:
        kwargs["sparsity_m_by_n"] = check_m_by_n(sparsity_m_by_n)
        ranks = {n: len(getattr(model.get_layer(n), "kernel", np.zeros((1, 1))).shape) for n in chosen}
        bad = sorted(n for n, r in ranks.items() if r not in (2, 4))
        check(not bad, f"m-by-n sparsity needs rank-2 (Dense) or rank-4 (Conv2D) kernels; layers {bad} "
                       "have other kernels: leave them out with layers=...")

    def wrap(layer):
        return _sparsity.prune_low_magnitude(layer, **kwargs) if layer.name in chosen else layer

    with _sparsity.prune_scope():
        return keras.models.clone_model(copy_model(model), clone_function=wrap)


def check_m_by_n(m_by_n):
    """Validate an ``(m, n)`` pair for m-by-n sparsity (m zeros in every n weights): integers 0 < m < n.

    Example:
        >>> check_m_by_n([2, 4])
        (2, 4)
    """
    ok = isinstance(m_by_n, (tuple, list)) and len(m_by_n) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in m_by_n)
    check(ok and 0 < m_by_n[0] < m_by_n[1],
          f"sparsity_m_by_n={m_by_n!r} must be two integers (m, n) with 0 < m < n, e.g. (2, 4)")
    return int(m_by_n[0]), int(m_by_n[1])


def prune_m_by_n(model, m=2, n=4, total_steps=None, *, layers=None, skip_output=True, begin_step=0,
                 frequency=None):
    """A copy of ``model`` pruned to m-by-n structured sparsity (2:4 by default): in every group of ``n``
    consecutive weights along the input axis of each output unit (TFLite's layout: Dense ``(out, in)``,
    Conv ``(out, h, w, in)``) at least ``m`` weights are zero. Train with :func:`pruning_callbacks`, then
    :func:`strip_pruning`; check with :func:`tfcompress.prune.is_m_by_n`.

    Example:
        >>> import numpy as np
        >>> from tfcompress import keras
        >>> from tfcompress.prune import is_m_by_n
        >>> mdl = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="h"), keras.layers.Dense(1)])
        >>> p = prune_m_by_n(mdl, total_steps=4)
        >>> p.compile("adam", "mse")
        >>> _ = p.fit(np.ones((16, 8)), np.ones((16, 1)), batch_size=4, verbose=0, callbacks=pruning_callbacks())
        >>> is_m_by_n(strip_pruning(p).get_layer("h").kernel.numpy(), 2, 4)
        True
    """
    m, n = check_m_by_n((m, n))
    if total_steps is None:
        raise TFCompressError("pass total_steps (epochs x steps per epoch) for prune_m_by_n")
    schedule = constant_schedule(m / n, total_steps, begin_step=begin_step, frequency=frequency)
    return prune_low_magnitude(model, m / n, total_steps, schedule=schedule, layers=layers,
                               skip_output=skip_output, sparsity_m_by_n=(m, n))


def _pruning_policy(policy, model):
    if policy is None:
        return None
    if isinstance(policy, str):
        if policy.lower() != "xnnpack":
            raise TFCompressError(f"pruning_policy={policy!r} is unknown: use 'xnnpack', a tfmot "
                                  "PruningPolicy or None")
        policy = _sparsity.PruneForLatencyOnXNNPack()
    if not isinstance(policy, _sparsity.PruningPolicy):
        raise TFCompressError(f"pruning_policy must be 'xnnpack', a tfmot PruningPolicy or None, "
                              f"got {type(policy).__name__}")
    try:
        policy.ensure_model_supports_pruning(model)
    except ValueError as e:
        raise TFCompressError(
            f"model {model.name!r} does not fit pruning policy {type(policy).__name__}: "
            f"{str(e).strip().splitlines()[0]} (XNNPACK sparse inference needs a MobileNet-like conv model; "
            "use pruning_policy=None for other models)") from None
    return policy


def pruning_callbacks(log_dir=None):
    """The callbacks a pruned model needs in ``fit``: the step update, and TensorBoard summaries if
    ``log_dir`` is given."""
    cbs = [_sparsity.UpdatePruningStep()]
    if log_dir:
        cbs.append(_sparsity.PruningSummaries(log_dir=str(log_dir)))
    return cbs


def strip_pruning(model):
    """Remove the pruning wrappers, keeping the pruned (zeroed) weights: do this before export (tfmot's
    name; :func:`strip` is an alias).

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="h"), keras.layers.Dense(1, name="o")])
        >>> [l.name for l in strip_pruning(prune_low_magnitude(m, 0.5, total_steps=10)).layers]
        ['h', 'o']
    """
    return _sparsity.strip_pruning(model)


def strip(model):
    """Alias of :func:`strip_pruning` (its name before tfcompress took tfmot's), kept for existing code.

    Example:
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="h"), keras.layers.Dense(1, name="o")])
        >>> [l.name for l in strip(prune_low_magnitude(m, 0.5, total_steps=10)).layers]
        ['h', 'o']
    """
    return strip_pruning(model)


def _keras_history(tensors):
    class _H:
        def __init__(self, layer):
            self.node = type("N", (), {"layer": layer})

    return [_H(t._keras_history.layer) for t in tensors]
