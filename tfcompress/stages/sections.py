"""Report sections: what a task declares (``Task.report_sections``) to fill and render the report's
``summary`` and ``parity`` parts. Each section computes its figures from the run (:meth:`ReportSection.figures`)
and renders them as Markdown (:meth:`ReportSection.markdown`) from those figures alone, so
``tfcompress report`` re-renders a run folder from its ``report.json``.

Example:
    >>> s = TeacherVsFinal()
    >>> figures = {"metric": "auc", "size_ratio": 8.0, "gzip_ratio": 6.0, "auc_teacher": 0.75, "auc_final": 0.74,
    ...            "auc_relative_change": -0.0133, "latency_p50_speedup": None}
    >>> s.markdown(figures)[2]
    '- size: 8.0x smaller (6.0x gzipped)'
    >>> s.markdown({})
    []
"""
from ..errors import TFCompressError
from .compression import latest_student
from .export import ExportStage

#: the report.json keys a section fills
SUMMARY, PARITY = "summary", "parity"


class ReportSection:
    """One part of the report: ``key`` (``"summary"`` or ``"parity"``), its figures, Markdown and headline.

    Example:
        >>> ReportSection().markdown({"x": 1})
        []
    """

    key = SUMMARY

    def figures(self, context, rows):
        """The section's figures (a JSON-able dict; empty when the run lacks what it compares)."""
        return {}

    def markdown(self, figures):
        """Markdown lines for ``figures`` (ending with an empty line), or ``[]`` when there are none."""
        return []

    def headline(self, figures):
        """One line for the terminal, or None."""
        return None


class TeacherVsFinal(ReportSection):
    """Summary: the float32 teacher file vs the int8 student file (size, gzip, quality, latency ratios)."""

    key = SUMMARY
    baseline = ExportStage.teacher_result
    final = ExportStage.student_result

    def figures(self, context, rows):
        by = {(r["name"], r["format"]): r for r in rows or ()}
        teacher, final = by.get((self.baseline, "tflite")), by.get((self.final, "tflite"))
        baseline, fmt = self.baseline, "float32 TFLite"
        if not teacher and by.get(("teacher", "savedmodel")):  # your teacher, which tf_keras cannot convert
            baseline, fmt, teacher = "teacher", "SavedModel: no float32 file of a teacher tf_keras cannot convert", \
                by[("teacher", "savedmodel")]
        if not teacher or not final:
            return {}
        m = context.task.metric
        return {
            "baseline": baseline, "baseline_format": fmt, "final": self.final, "metric": m,
            "higher_is_better": getattr(context.task, "higher_is_better", True),
            "size_ratio": teacher["size_bytes"] / final["size_bytes"],
            "gzip_ratio": teacher["gzip_bytes"] / final["gzip_bytes"],
            f"{m}_teacher": teacher[m], f"{m}_final": final[m],
            f"{m}_relative_change": (final[m] - teacher[m]) / teacher[m],
            "latency_p50_speedup": (teacher["latency_p50_us"] / final["latency_p50_us"]
                                    if final["latency_p50_us"] else None),
        }

    def markdown(self, s):
        if "size_ratio" not in s:
            return []
        m = s["metric"]
        lines = [f"### Teacher ({s.get('baseline_format', 'float32 TFLite')}) vs final student (int8 TFLite)", "",
                 f"- size: {s['size_ratio']:.1f}x smaller ({s['gzip_ratio']:.1f}x gzipped)",
                 f"- {m}: {s[m + '_teacher']:.4f} → {s[m + '_final']:.4f} ({s[m + '_relative_change']:+.2%} relative"
                 f"{'' if s.get('higher_is_better', True) else '; lower is better'})"]
        if s.get("latency_p50_speedup"):
            lines.append(f"- batch-1 p50 latency: {s['latency_p50_speedup']:.1f}x lower")
        return lines + [""]

    def headline(self, s):
        if "size_ratio" not in s:
            return None
        speed = f", {s['latency_p50_speedup']:.1f}x lower batch-1 p50 latency" if s.get("latency_p50_speedup") else ""
        m = s["metric"]
        return (f"int8 student vs float32 teacher: {s['size_ratio']:.1f}x smaller, {m} {s[m + '_final']:.4f} vs "
                f"{s[m + '_teacher']:.4f} ({s[m + '_relative_change']:+.2%}){speed}")


class KerasVsTFLite(ReportSection):
    """Parity: the latest Keras student vs its int8 file on the test split (probabilities and the metric)."""

    key = PARITY
    tflite = ExportStage.student_result

    def figures(self, context, rows):
        from ..export import TFLiteModel, compare_outputs

        source, int8 = latest_student(context), context.find(self.tflite, "tflite")
        if source is None or int8 is None:
            return {}
        data = context.data
        keras_out = source.model.predict(data.test_inputs, batch_size=8192, verbose=0)
        tfl_out = TFLiteModel(int8.path).predict(data.test_inputs, batch_size=4096)
        f = compare_outputs(keras_out, tfl_out, data.test_labels, objective=context.task.objective)
        m = f["metric"]
        return {"keras_stage": source.name, "tflite_stage": int8.name, "max_abs_prob_diff": f["max_abs"],
                "mean_abs_prob_diff": f["mean_abs"], "metric": m, f"{m}_keras": f["keras"],
                f"{m}_tflite": f["tflite"], f"{m}_diff": f["metric_diff"], "n": f["n"]}

    def markdown(self, p):
        if not p:
            return []
        m = p["metric"]
        return [f"### Parity: {p['keras_stage']} (Keras) vs {p['tflite_stage']} (TFLite)", "",
                f"- max |Δ probability| {p['max_abs_prob_diff']:.4f}, mean {p['mean_abs_prob_diff']:.5f}"
                f" over {p['n']:,} test rows",
                f"- {m} {p[m + '_keras']:.4f} vs {p[m + '_tflite']:.4f} (Δ {p[m + '_diff']:+.4f})", ""]


class DistillationVerdict(ReportSection):
    """Summary (``summary["distillation"]``): whether distillation had anything to transfer. When the teacher
    beats the student alone by less than ``margin`` (relative) or inside the 95% bootstrap interval, one line
    says so; otherwise how much the distilled student gained over the student alone, with its 95% bootstrap
    interval (:func:`tfcompress.metrics.bootstrap_diff` on the test predictions). Also says where the teacher
    and the student came from when the user gave them (``--teacher``, ``--student from-teacher:SHARE``).

    Example:
        >>> v = DistillationVerdict()
        >>> f = {"distillation": {"metric": "auc", "teacher": 0.70, "alone": 0.698, "distilled": 0.699,
        ...      "teacher_gain": 0.002, "teacher_gain_ci": [-0.001, 0.005], "gain": 0.001,
        ...      "gain_ci": [-0.002, 0.004], "little_to_transfer": True}}
        >>> v.markdown(f)[2]
        '- the teacher beats the student alone by only +0.0020 auc (+0.29%): distillation has little to transfer'
    """

    key = SUMMARY
    margin = 0.01
    teacher, alone, distilled = "teacher", "student_alone", "student_distilled"

    def figures(self, context, rows):
        from ..metrics import bootstrap_diff
        from .training import OWN_TEACHER_NOTE, TEST_LOGITS, own_teacher, student_init_note

        found = [context.find(n, None) for n in (self.teacher, self.alone, self.distilled)]
        if any(r is None or TEST_LOGITS not in r.extra for r in found):
            return {}
        task, y = context.task, context.data.test_labels
        m, sign = task.metric, (-1.0 if getattr(task, "metric_mode", "max") == "min" else 1.0)
        score = lambda labels, z: sign * task.evaluate(z, labels)[m]  # noqa: E731  (higher is better)
        teacher, alone, distilled = (r.extra[TEST_LOGITS] for r in found)
        try:
            _, t_lo, t_hi = bootstrap_diff(score, y, alone, teacher, n=200, seed=0)
            _, lo, hi = bootstrap_diff(score, y, alone, distilled, n=200, seed=1)
        except TFCompressError:  # the metric is undefined on too many resamples (a tiny test split)
            return {}
        values = [r.quality[m] for r in found]
        t_diff = sign * (values[0] - values[1])
        own = own_teacher(context)
        out = {"metric": m, "teacher": values[0], "alone": values[1], "distilled": values[2],
               "teacher_gain": t_diff, "teacher_gain_ci": [t_lo, t_hi], "gain": sign * (values[2] - values[1]),
               "gain_ci": [lo, hi], "margin": self.margin,
               "little_to_transfer": bool(t_diff < self.margin * abs(values[1]) or t_lo <= 0),
               "teacher_source": f"{OWN_TEACHER_NOTE}: {own.label} ({own.kind})" if own is not None else None,
               "student_init": student_init_note(context)}
        return {"distillation": out}

    def markdown(self, s):
        d = (s or {}).get("distillation")
        if not d:
            return []
        m = d["metric"]
        lines = ["### Distillation", ""]
        lines += [f"- teacher: {d['teacher_source']}"] if d.get("teacher_source") else []
        lines += [f"- {d['student_init']}"] if d.get("student_init") else []
        rel = d["teacher_gain"] / abs(d["alone"]) if d["alone"] else 0.0
        gained = (f"distillation gained {d['gain']:+.4f} {m} (95% CI [{d['gain_ci'][0]:+.4f}, "
                  f"{d['gain_ci'][1]:+.4f}]) over the student alone")
        if d["little_to_transfer"]:
            lines.append(f"- the teacher beats the student alone by only {d['teacher_gain']:+.4f} {m} ({rel:+.2%}): "
                         "distillation has little to transfer")
            lines.append(f"- {gained}")
        else:
            lines.append(f"- {gained}; the teacher beats the student alone by {d['teacher_gain']:+.4f} {m} "
                         f"({rel:+.2%})")
        return lines + [""]

    def headline(self, s):
        return None
