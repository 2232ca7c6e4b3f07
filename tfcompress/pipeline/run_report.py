"""The report of a run: the table (``report.md/.csv/.json/.html``, with ratio-to-teacher columns),
``pareto.png``, and the task's report sections (summary, distillation verdict, parity) rendered as Markdown
lines from the figures in ``report.json`` and shown in both ``report.md`` and ``report.html`` — so
``tfcompress report`` re-renders a run folder the same way (:func:`add_report_sections`).

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "report.md")
    >>> _ = open(path, "w").write("# a run\\n")
    >>> append_report_sections(path, {"config": {"task": "ctr"}, "summary": {}, "parity": {}})
    >>> open(path).read()
    '# a run\\n\\n'
"""
import os
import platform

from .. import __version__
from .._io import write_json, write_text
from .._keras import tf
from ..errors import TFCompressError
from ..stages import is_jsonable
from ..tasks import get_task

#: the row the ratio columns (``size_vs_teacher``, ``<metric>_vs_teacher``) divide by
TEACHER = "teacher"

LATENCY_NOTE = ("batch 1, CPU; Keras via a compiled tf.function, TFLite via the LiteRT interpreter with 1 thread; "
                "interleaved runs")


def write_run_report(context, rows, figures, elapsed, distribution=None):
    """Write the run folder's report from ``rows`` (the task's table) and ``figures`` (``{section key:
    figures}``); return the headline of the task's sections (or None). ``distribution`` (a
    :class:`~tfcompress.pipeline.distribute.Distribution`, when the run had one) adds where it trained:
    ``meta["distribute"]``, ``report.json["distribute"]`` and a ``training`` section."""
    from ..bench import Report, pareto_plot

    config, task = context.config, context.task
    meta = {"tfcompress": __version__, "tensorflow": tf.__version__, "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cpu", "events": config.events,
            "seed": config.seed, "stages": list(config.stages), "elapsed_s": round(elapsed, 1),
            "latency": LATENCY_NOTE, "gpu": _gpu_note(), "run_id": context.run_id,
            "data": context.data.description}
    spread = None if getattr(distribution, "strategy", None) is None else distribution.figures(config.batch_size)
    if spread:
        meta["distribute"] = distribution.describe(config.batch_size)
    report = Report(rows, title=f"tfcompress run: {task.name}", meta=meta)
    if TEACHER in list(report.frame.get("name", [])):
        report.add_ratios(TEACHER, ("size_bytes", task.metric))
    for lines in _section_lines(task, figures) + [distribute_lines(spread)]:
        if lines:
            report.add_section(lines)
    plot_path = os.path.join(config.out, "pareto.png")
    pareto_plot(report.frame, x="size_bytes", y=task.metric, label="name", path=plot_path)
    report.add_plot(plot_path, f"{task.metric} vs size (log scale); the Pareto front joins the best trade-offs")
    paths = report.save(config.out)
    full = report.to_dict()
    for row, r in zip(full["stages"], context.results):
        row["path"] = os.path.abspath(r.path)
        row.update({k: v for k, v in r.extra.items() if k != "latency" and is_jsonable(v)})
    full.update({**figures, "config": config.to_dict(), "run_id": context.run_id})
    if spread:
        full["distribute"] = spread
    write_json(paths["json"], full)
    return next((h for s in task.report_sections if (h := s.headline(figures.get(s.key) or {}))), None)


def append_report_sections(path, report):
    """Append the task's report sections, rendered from ``report`` (a ``report.json`` dict), to the
    Markdown file at ``path``. Raises ``KeyError``/``TypeError``/``ValueError`` for a report.json whose
    figures this version cannot render, and the task error for an unknown task."""
    _append(path, get_task(report.get("config", {}).get("task", "ctr")), report)


def add_report_sections(report, data):
    """Add the task's report sections, rendered from ``data`` (a ``report.json`` dict), to ``report`` (a
    :class:`tfcompress.bench.Report`), so its Markdown and HTML both show them; figures this version
    cannot render (another tfcompress version, an unknown task) are shown as plain bullet lists.
    Returns ``report``.

    Example:
        >>> from tfcompress.bench import Report
        >>> r = add_report_sections(Report([{"name": "a"}]), {"config": {"task": "ctr"}, "parity": {"x": 1}})
        >>> r.sections
        [['### parity', '', '- x: 1']]
    """
    try:
        sections = _section_lines(get_task((data.get("config") or {}).get("task", "ctr")), data)
    except (KeyError, TypeError, ValueError, AttributeError, TFCompressError):
        sections = [_plain_lines(title, values) for title in ("summary", "parity")
                    if isinstance(values := data.get(title), dict) and values]
    for lines in sections + [distribute_lines(data.get("distribute"))]:
        if lines:
            report.add_section(lines)
    return report


def distribute_lines(figures):
    """The ``training`` section (Markdown lines) from a report's ``distribute`` figures; [] for none.

    Example:
        >>> distribute_lines({"mode": "mirrored", "strategy": "MirroredStrategy", "replicas": 2, "workers": 1,
        ...                   "global_batch": 512, "per_replica_batch": 256, "learning_rate": "unchanged"})[2]
        '- mirrored (MirroredStrategy): 2 replicas on 1 worker(s)'
    """
    if not isinstance(figures, dict) or not figures.get("mode"):
        return []
    lines = ["### training", "",
             f"- {figures['mode']} ({figures.get('strategy')}): {figures.get('replicas')} replicas on "
             f"{figures.get('workers')} worker(s)",
             f"- global batch {figures.get('global_batch')} (the config's batch_size), "
             f"{figures.get('per_replica_batch')} per replica",
             f"- learning rate: {figures.get('learning_rate')}"]
    return lines + ([f"- {figures['note']}"] if figures.get("note") else []) + [""]


def _section_lines(task, figures):
    """The Markdown lines of each of the task's sections that has figures (``{section key: figures}``)."""
    rendered = (section.markdown(figures.get(section.key) or {}) for section in task.report_sections)
    return [lines for lines in rendered if lines]


def _plain_lines(title, values):
    """``{key: value}`` as a heading and a bullet list."""
    return [f"### {title}", ""] + [f"- {k}: {v:.4g}" if isinstance(v, float) else f"- {k}: {v}"
                                   for k, v in values.items()] + [""]


def _append(path, task, report):
    with open(path) as f:
        lines = [f.read().rstrip(), ""]
    for section in _section_lines(task, report):
        lines += section
    write_text(path, "\n".join(lines) + "\n")


def _gpu_note():
    from ..bench import gpu_devices

    gpus = gpu_devices()
    return ", ".join(gpus) if gpus else "no GPU visible: Keras latency measured on CPU only"
