"""Resuming a run: the results of the stages an unfinished run finished, restored from its ``run.json``
and its saved files, each checked to reload faithfully.

A stage is restored only when it says it can be (``Stage.resumable``), its files still match their
checksums, and each Keras result, rebuilt by the stage (``Stage.rebuild``) with the SavedModel's weights
loaded into it, scores on the test split exactly as recorded. The first stage that fails any of these is
rerun, with every stage after it: a resumed run never mixes two runs.

Example:
    >>> from tfcompress.stages import RunContext, Stage
    >>> restore_stages(RunContext(None, None, None), [Stage()], {"stages": []})
    ([], None)
"""
import math

from .._keras import tf
from ..stages import StageResult
from .run_manifest import load_arrays, mismatched_artifacts


def restore_stages(context, stages, manifest):
    """Record in ``context`` the results of the leading ``stages`` that ``manifest`` finished and that
    reload faithfully; return ``(names restored, why the next one was not, or None)``."""
    done = {s["name"]: s for s in manifest.get("stages", [])}
    kept = []
    for stage in stages:
        entry = done.get(stage.name)
        if entry is None:
            return kept, None
        before = len(context.results)
        why = _restore(context, stage, entry, manifest)
        if why:
            del context.results[before:]
            return kept, f"{stage.name} {why}, so it runs again"
        kept.append(stage.name)
    return kept, None


def _restore(context, stage, entry, manifest):
    """Record the results of one finished stage; return why it cannot be restored (or None)."""
    if not getattr(stage, "resumable", False):
        return "cannot be reloaded faithfully (e.g. a QAT model)"
    bad = mismatched_artifacts(manifest, {stage.name})
    if bad:
        return f"has changed on disk ({bad[0]})"
    for row in entry.get("results", []):
        if not row.get("complete"):
            return "recorded figures that run.json cannot hold"
        model = row["path"]
        if row["format"] == "keras":
            model = _reload_keras(context, stage, row)
            if isinstance(model, str):
                return model
        context.record(StageResult(name=row["name"], format=row["format"], model=model, path=row["path"],
                                   params=row["params"], sparsity=row["sparsity"], quality=dict(row["quality"]),
                                   extra={**row["extra"], **load_arrays(manifest, row)}))
    return None


def _reload_keras(context, stage, row):
    """The Keras model of a result, rebuilt with its SavedModel's weights, or why it cannot be."""
    model = stage.rebuild(context, row["name"])
    if model is None:
        return "cannot be rebuilt"
    try:
        weights = list(tf.saved_model.load(row["path"]).model_variables)
    except (OSError, ValueError, AttributeError, tf.errors.OpError) as e:
        return f"cannot be reloaded ({type(e).__name__})"
    if [tuple(w.shape) for w in weights] != [tuple(v.shape) for v in model.variables]:
        return "does not match the model the stage builds"
    for variable, value in zip(model.variables, weights):
        variable.assign(value)
    data = context.data
    figures = context.task.evaluate(model.predict(data.test_inputs, batch_size=8192, verbose=0), data.test_labels)
    for key, value in row["quality"].items():
        if isinstance(value, float) and not math.isclose(figures.get(key, math.nan), value, rel_tol=1e-6,
                                                         abs_tol=1e-9):
            return f"scores {key} {figures.get(key)} once reloaded, not {value}"
    return model
