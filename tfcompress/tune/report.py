"""What a search leaves in its folder: the chosen ``.tflite`` with its sidecar, ``recipe.yaml`` (what
``tfcompress run --config`` reproduces), ``tune.json`` (every trial) and the tuning report
(``tune_report.md/.html/.csv/.json`` and ``tune_pareto.png``: the front, every trial's recipe and figures,
the chosen one marked); :func:`render_tune_report` re-renders the report from ``tune.json``.

Example:
    >>> import os, tempfile
    >>> out = tempfile.mkdtemp()
    >>> data = {"task": "ctr", "metric": "auc", "objective": "size", "tolerance": "1%", "teacher_val": 0.8,
    ...         "note": "trial 0 chosen", "chosen": 0, "front": [0], "test": {"auc": 0.79}, "trials": [
    ...         {"number": 0, "state": "COMPLETE", "recipe": {"export_mode": "int8"}, "val_metric": 0.795,
    ...          "size_bytes": 4000, "p50_us": 9.0}]}
    >>> _ = write_json(os.path.join(out, TUNE_JSON), data)
    >>> sorted(os.path.basename(p) for p in render_tune_report(out).values())[:2]
    ['tune_pareto.png', 'tune_report.csv']
"""
import json
import os
import shutil

import yaml

from .._io import atomic_path, write_json, write_text
from ..errors import TFCompressError
from .space import recipe_fields

#: the file holding a search's trials (what :func:`render_tune_report` reads)
TUNE_JSON = "tune.json"
#: the config fields of the search copied into the recipe (when set), besides the recipe's own
_RUN_FIELDS = ("task", "data", "seed", "quick", "events", "teacher", "teacher_model", "teacher_output", "label",
               "user", "item", "time", "text", "features", "drop", "sep", "header", "split", "label_threshold",
               "tolerance", "batch_size", "teacher_epochs", "student_epochs", "prune_epochs", "qat_epochs",
               "learning_rate", "student_learning_rate", "alpha", "temperature", "calibration_samples",
               "latency_runs")


def recipe_dict(cfg, recipe):
    """The YAML mapping of ``recipe`` on the search's config ``cfg``: a :class:`~tfcompress.pipeline.RunConfig`
    that ``tfcompress run --config`` runs (plain values: lists for tuples, the task by name)."""
    plain = cfg.to_dict()
    out = {k: plain[k] for k in _RUN_FIELDS if plain.get(k) not in (None, {}, [])}
    if not isinstance(cfg.data, (str, os.PathLike)):
        out.pop("data", None)  # a DataFrame: the recipe names no data (pass --data)
    if cfg.data is not None:
        out.pop("events", None)
    fields = recipe_fields(recipe, cfg.task)
    fields["student"] = {**cfg.student, **fields["student"]}
    out.update(json.loads(json.dumps({k: v for k, v in fields.items() if v is not None})))
    return out


def write_outputs(result, cfg):
    """Write the chosen file, the recipe, ``tune.json`` and the report of ``result`` (a TuneResult) into its
    ``out``; return ``result`` with their paths."""
    out = result.out
    if result.chosen is not None:
        result.tflite_path = _copy_chosen(result.chosen["path"], os.path.join(out, f"{result.task}_tuned.tflite"))
        result.recipe_path = write_text(os.path.join(out, "recipe.yaml"),
                                        _recipe_text(result, recipe_dict(cfg, result.chosen["recipe"])))
    data = {"task": result.task, "metric": result.metric, "objective": result.objective,
            "tolerance": result.tolerance, "teacher_val": result.teacher_val, "note": result.note,
            "chosen": None if result.chosen is None else result.chosen["number"],
            "front": [r["number"] for r in result.front], "test": result.chosen_test,
            "recipe_path": result.recipe_path, "tflite_path": result.tflite_path, "trials": result.trials}
    write_json(os.path.join(out, TUNE_JSON), data)
    result.report_path = render_tune_report(out)["md"]
    return result


def _recipe_text(result, mapping):
    head = (f"# tfcompress tune: trial {result.chosen['number']} of {len(result.trials)}, chosen for "
            f"{result.objective} within {result.tolerance} of the teacher's validation {result.metric}\n"
            "# reproduce: tfcompress run --config recipe.yaml --out FOLDER\n")
    return head + yaml.safe_dump(mapping, sort_keys=False)


def _copy_chosen(src, dst):
    from ..export import sidecar_path

    for a, b in ((src, dst), (sidecar_path(src), sidecar_path(dst))):
        if os.path.exists(a):
            with atomic_path(b) as tmp:
                shutil.copyfile(a, tmp)
    return dst


def _rows(data):
    """The report table: one row per trial, the chosen one named so, the front marked."""
    metric, front = data["metric"], set(data["front"])
    rows = []
    for t in data["trials"]:
        chosen = t["number"] == data["chosen"]
        rows.append({"name": f"#{t['number']}" + (" CHOSEN" if chosen else ""), "state": t["state"],
                     "front": "yes" if t["number"] in front else "", f"val_{metric}": t.get("val_metric"),
                     f"keras_val_{metric}": t.get("keras_val_metric"), "size_bytes": t.get("size_bytes"),
                     "p50_us": t.get("p50_us"), "recipe": _recipe_words(t.get("recipe", {})),
                     "why": t.get("why") or ""})
    return rows


def _recipe_words(recipe):
    """``recipe`` in one short line: ``hidden=[16] sparsity=0.5 int8 per-tensor qat``."""
    words = [f"{k}={v}" for k, v in recipe.get("student", {}).items()]
    if recipe.get("student_init"):
        words.append(recipe["student_init"])
    for key, short in (("target_sparsity", "sparsity"), ("structured_share", "structured"),
                       ("lowrank_energy", "lowrank")):
        if recipe.get(key):
            words.append(f"{short}={recipe[key]}")
    if recipe.get("alpha") is not None:
        words.append(f"alpha={recipe['alpha']:g} T={recipe.get('temperature', 1.0):g}")
    words.append(recipe.get("export_mode", "int8"))
    if recipe.get("per_channel") is False:
        words.append("per-tensor")
    if recipe.get("qat"):
        words.append("qat")
    return " ".join(words)


def _section(data):
    metric = data["metric"]
    lines = ["### The choice (on the validation split)", "",
             f"- teacher's validation {metric}: {data['teacher_val']:.4f}; tolerance {data['tolerance']}; "
             f"objective: {data['objective']}", f"- {data['note']}"]
    if data.get("test"):
        shown = ", ".join(f"{k} {v:.4f}" for k, v in data["test"].items() if isinstance(v, (int, float)))
        lines.append(f"- the chosen model on the test split (not used to choose): {shown}")
    if data.get("recipe_path"):
        lines.append(f"- recipe: {data['recipe_path']} (`tfcompress run --config` reproduces it); "
                     f"file: {data['tflite_path']}")
    states = [t["state"] for t in data["trials"]]
    lines.append(f"- trials: {states.count('COMPLETE')} finished, {states.count('PRUNED')} given up before "
                 f"export (Keras student too far from the teacher), {states.count('FAIL')} failed")
    return lines


def render_tune_report(out):
    """Write ``tune_report.md/.html/.csv/.json`` and ``tune_pareto.png`` in ``out`` from its ``tune.json``;
    return ``{kind: path}``. A folder without ``tune.json`` is a one-line error."""
    from ..bench import Report, pareto_plot
    from ..tasks.base import LOWER_IS_BETTER

    path = os.path.join(out, TUNE_JSON)
    if not os.path.isfile(path):
        raise TFCompressError(f"{out!r} holds no {TUNE_JSON}: it is not a `tfcompress tune` folder")
    with open(path) as f:
        data = json.load(f)
    rows = _rows(data)
    report = Report(rows, title=f"tfcompress tune: {data['task']}, {data['objective']} within {data['tolerance']}",
                    meta={k: data[k] for k in ("task", "objective", "tolerance", "teacher_val")})
    report.add_section(_section(data))
    done = [r for r in rows if r["state"] == "COMPLETE"]
    paths = report.save(out, basename="tune_report")
    if done:
        x = "p50_us" if data["objective"] == "latency" else "size_bytes"
        png = os.path.join(out, "tune_pareto.png")
        pareto_plot(done, x=x, y=f"val_{data['metric']}", path=png, title="validation quality vs " + x,
                    higher_is_better=data["metric"] not in LOWER_IS_BETTER)
        report.add_plot(png, "validation quality of every finished trial, the front in red")
        paths["html"] = report.to_html(paths["html"])
        paths["png"] = png
    return paths
