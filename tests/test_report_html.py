"""report.html says what report.md says: the same sections in the same order, ratio-to-teacher columns,
Pareto labels that do not overlap, and (when Chromium is installed) a real browser screenshot."""
import itertools
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from tfcompress.bench import Report
from tfcompress.bench.plots import pareto_figure, pareto_plot
from tfcompress.bench.report import markdown_to_html
from tfcompress.pipeline import add_report_sections

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ROWS = [
    {"name": "teacher", "format": "keras", "size_bytes": 231_000, "auc": 0.7430, "latency_p50_us": 757.0},
    {"name": "student_pruned", "format": "keras", "size_bytes": 101_100, "auc": 0.7426, "latency_p50_us": 785.0},
    {"name": "student_qat", "format": "keras", "size_bytes": 101_200, "auc": 0.7425, "latency_p50_us": 1055.0},
    {"name": "teacher_float32", "format": "tflite", "size_bytes": 231_000, "auc": 0.7430, "latency_p50_us": 7.1},
    {"name": "student_int8", "format": "tflite", "size_bytes": 15_850, "auc": 0.7396, "latency_p50_us": 6.1},
]

FIGURES = {
    "config": {"task": "ctr"},
    "summary": {"baseline": "teacher_float32", "baseline_format": "float32 TFLite", "final": "student_int8",
                "metric": "auc", "higher_is_better": True, "size_ratio": 14.6, "gzip_ratio": 20.2,
                "auc_teacher": 0.7430, "auc_final": 0.7396, "auc_relative_change": -0.0046,
                "latency_p50_speedup": 1.2,
                "distillation": {"metric": "auc", "teacher": 0.743, "alone": 0.716, "distilled": 0.741,
                                 "teacher_gain": 0.027, "teacher_gain_ci": [0.01, 0.04], "gain": 0.025,
                                 "gain_ci": [-0.008, 0.062], "little_to_transfer": False}},
    "parity": {"keras_stage": "student_qat", "tflite_stage": "student_int8", "max_abs_prob_diff": 0.036,
               "mean_abs_prob_diff": 0.0129, "metric": "auc", "auc_keras": 0.7416, "auc_tflite": 0.7396,
               "auc_diff": -0.002, "n": 2000},
}


def _report():
    report = Report(ROWS, title="tfcompress run: ctr").add_ratios("teacher", ("size_bytes", "auc"))
    return add_report_sections(report, FIGURES)


def _section_headings_md(md):
    return [line[4:] for line in md.splitlines() if line.startswith("### ")]


def _section_headings_html(page):
    return [h for h in re.findall(r"<h3>(.*?)</h3>", page)]


def test_html_has_the_markdown_sections_in_the_same_order():
    report = _report()
    md, page = report.to_markdown(), report.to_html()
    headings = _section_headings_md(md)
    assert [h.split(":")[0].split(" (")[0] for h in headings] == ["Teacher", "Distillation", "Parity"]
    assert [h.replace("&#x27;", "'") for h in _section_headings_html(page)] == headings
    for bullet in ("size: 14.6x smaller (20.2x gzipped)", "batch-1 p50 latency: 1.2x lower",
                   "distillation gained +0.0250 auc", "max |Δ probability| 0.0360"):
        assert bullet in md
        assert bullet in page  # the same Markdown lines, rendered
    assert page.index("Teacher (float32 TFLite)") < page.index("data:image/png")  # sections before the plot


def test_sections_stay_out_of_report_json_and_csv(tmp_path):
    paths = _report().save(tmp_path)
    data = json.loads(open(paths["json"]).read())
    assert "sections" not in data and "### Parity" not in open(paths["csv"]).read()
    assert "Parity: student_qat" in open(paths["html"]).read()


def test_ratio_to_teacher_columns_in_every_table_format(tmp_path):
    report = _report()
    frame = report.frame
    assert list(frame.columns[:6]) == ["name", "format", "size_bytes", "size_vs_teacher", "auc", "auc_vs_teacher"]
    assert frame["size_vs_teacher"].tolist() == pytest.approx([r["size_bytes"] / 231_000 for r in ROWS])
    assert frame["auc_vs_teacher"].iloc[-1] == pytest.approx(0.7396 / 0.7430)
    md = report.to_markdown()
    assert "| size_bytes | size_vs_teacher | auc | auc_vs_teacher |" in md
    assert "0.0686x" in md and "0.0686x" in report.to_html() and "| 1.0000x |" in md
    paths = report.save(tmp_path)
    assert "size_vs_teacher" in pd.read_csv(paths["csv"]).columns
    stages = json.loads(open(paths["json"]).read())["stages"]
    assert {"size_bytes", "auc", "size_vs_teacher", "auc_vs_teacher"} <= set(stages[0])  # added, none renamed


def test_ratio_needs_an_existing_baseline_row():
    from tfcompress.errors import TFCompressError

    with pytest.raises(TFCompressError, match="no row named 'nobody'"):
        Report(ROWS).add_ratios("nobody")


def test_markdown_subset_is_escaped():
    out = markdown_to_html(["## <script>alert(1)</script>", "", "- a & b", "- `x<y`", "plain **bold**"])
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert out.splitlines() == ["<h2>&lt;script&gt;alert(1)&lt;/script&gt;</h2>",
                                "<ul><li>a &amp; b</li><li><code>x&lt;y</code></li></ul>",
                                "<p>plain <b>bold</b></p>"]


def test_unrenderable_figures_still_show_as_plain_lists():
    report = add_report_sections(Report([{"name": "a"}]), {"config": {"task": "ctr"}, "parity": {"odd": 0.5}})
    assert "<h3>parity</h3>" in report.to_html() and "- odd: 0.5" in report.to_markdown()


def _label_boxes(fig):
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in fig.axes[0].texts]


def test_pareto_labels_of_coinciding_points_do_not_overlap():
    boxes = _label_boxes(pareto_figure(pd.DataFrame(ROWS)))
    texts = [t for t, _ in boxes]
    assert "teacher, teacher_float32" in texts  # the same point: one label naming both
    assert sorted(n for t in texts for n in t.split(", ")) == sorted(r["name"] for r in ROWS)
    overlapping = [(a, b) for (a, x), (b, y) in itertools.combinations(boxes, 2) if x.overlaps(y)]
    assert overlapping == []


def test_pareto_labels_of_a_crowded_corner_do_not_overlap():
    names = [f"stage_{i}_with_a_long_name" for i in range(8)]
    frame = pd.DataFrame({"name": names, "size_bytes": [100_000 + 800 * i for i in range(8)],
                          "auc": [0.74 + 0.0002 * i for i in range(8)]})
    boxes = _label_boxes(pareto_figure(frame))
    assert len(boxes) == 8
    assert [(a, b) for (a, x), (b, y) in itertools.combinations(boxes, 2) if x.overlaps(y)] == []
    assert pareto_plot(frame).startswith(b"\x89PNG")


def _browser():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        from report_screenshot import find_browser
    finally:
        sys.path.pop(0)
    return find_browser()


@pytest.mark.skipif(_browser() is None, reason="no Chromium/Chrome on PATH: the screenshot check needs a "
                                               "headless browser (not a tfcompress dependency)")
def test_a_headless_browser_renders_the_report(tmp_path):
    _report().save(tmp_path)
    out = tmp_path / "report.png"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "report_screenshot.py"), str(tmp_path),
                           str(out), "--height", "1200"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a page with text and a plot, not a blank


def test_screenshot_script_says_so_in_one_line_without_a_report(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "report_screenshot.py"),
                           str(tmp_path), str(tmp_path / "x.png")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
