"""How the recommendation task measures and reports its results: latency by role (retrieval: top-K over
the catalogue; ranking: N candidates), a table with the embedding share, the on-device pair summary and
the top-K parity.

Example:
    >>> TopKParity().markdown({"keras_stage": "s", "tflite_stage": "s_int8", "top1_agreement": 0.9, "n": 10,
    ...                        "k": 10, "topk_overlap": 0.95})[2]
    '- top-1 item identical for 90.0% of 10 test users; top-10 overlap 95.0%'
"""
import numpy as np

from ..stages import Latency, ReportSection, Table
from ..stages.sections import PARITY, SUMMARY
from .recommendation_data import K
from .recommendation_stages import RETRIEVAL, RecommendationExportStage, list_feed

_EXPORT = RecommendationExportStage


class RecommendationLatency(Latency):
    """Retrieval models are timed as top-K over the catalogue on one user; ranking models on one list."""

    def group(self, result, context):
        return result.extra["role"]

    def inputs(self, group, context):
        if group == RETRIEVAL:
            return context.data.latency_inputs
        return {k: v[:1] for k, v in list_feed(context).items()}

    def candidate(self, result, context):
        from ..models.retrieval import retrieval_topk_model

        if result.format == "tflite":
            return "tflite", result.path
        if result.extra["role"] == RETRIEVAL:
            d = context.data
            return "keras", retrieval_topk_model(result.model, d.catalog, d.spec, k=d.list_size)
        return "keras", result.model

    def note(self, context, count, runs):
        d = context.data
        return (f"{count} models x {runs} interleaved batch-1 runs (retrieval: top-{d.list_size} of "
                f"{len(d.catalog):,} items; ranking: {d.list_size} candidates)")


def embedding_columns(result):
    """``embedding_bytes`` and ``embedding_share`` (of all weight bytes) of a result.

    Example:
        >>> from tfcompress.stages import StageResult
        >>> embedding_columns(StageResult("s", "keras", extra={"embedding_bytes": 30, "weight_bytes": 40}))
        {'embedding_bytes': 30, 'embedding_share': 0.75}
    """
    emb, total = result.extra.get("embedding_bytes"), result.extra.get("weight_bytes")
    return {"embedding_bytes": emb, "embedding_share": round(emb / total, 4) if total else None}


def validation_columns(result):
    """``val_ndcg@10``: the result's whole-catalogue NDCG@10 on the validation users (what the export's choice
    reads; the other quality columns are on the test users), None where it was not measured.

    Example:
        >>> from tfcompress.stages import StageResult
        >>> validation_columns(StageResult("s", "keras", extra={"validation": {"ndcg@10": 0.31234567}}))
        {'val_ndcg@10': 0.31235}
    """
    value = (result.extra.get("validation") or {}).get(f"ndcg@{K}")
    return {f"val_ndcg@{K}": None if value is None else round(float(value), 5)}


RECOMMENDATION_TABLE = Table(columns=(embedding_columns, validation_columns),
                             quality=(f"ndcg@{K}", f"hr@{K}", f"sampled_ndcg@{K}", f"sampled_hr@{K}"))


def _pct(value):
    return "n/a" if value is None else f"{value:.0f}%"


class PairSummary(ReportSection):
    """Summary: the float32 teachers vs the int8 on-device pair (retrieval + ranking files)."""

    key = SUMMARY

    def figures(self, context, rows):
        by = {(r["name"], r["format"]): r for r in rows}
        t_ret, s_ret = by.get((_EXPORT.teacher_result, "tflite")), by.get((_EXPORT.student_result, "tflite"))
        if not t_ret or not s_ret:
            return {}
        t_rank, s_rank = by.get((_EXPORT.ranking_teacher_result, "tflite")), by.get((_EXPORT.ranking_student_result,
                                                                                     "tflite"))
        pair = bool(t_rank and s_rank)
        t, s = [t_ret] + ([t_rank] if pair else []), [s_ret] + ([s_rank] if pair else [])
        m = f"ndcg@{K}"
        t_bytes, s_bytes = sum(r["size_bytes"] for r in t), sum(r["size_bytes"] for r in s)
        out = {
            "baseline": " + ".join(r["name"] for r in t), "final": " + ".join(r["name"] for r in s),
            "metric": m, "teacher_bytes": t_bytes, "final_bytes": s_bytes, "size_ratio": t_bytes / s_bytes,
            "gzip_ratio": sum(r["gzip_bytes"] for r in t) / sum(r["gzip_bytes"] for r in s),
            f"{m}_teacher": t_ret[m], f"{m}_final": s_ret[m],
            f"{m}_relative_change": (s_ret[m] - t_ret[m]) / t_ret[m] if t_ret[m] else None,
            f"{m}_percent_of_teacher": 100 * s_ret[m] / t_ret[m] if t_ret[m] else None,
            "embedding_share_teacher": t_ret["embedding_share"], "embedding_share_final": s_ret["embedding_share"],
            "latency_p50_speedup": (t_ret["latency_p50_us"] / s_ret["latency_p50_us"]
                                    if s_ret["latency_p50_us"] else None),
        }
        if pair:
            sm = f"sampled_ndcg@{K}"
            out.update({f"ranking_{sm}_teacher": t_rank[sm], f"ranking_{sm}_final": s_rank[sm],
                        "ranking_size_ratio": t_rank["size_bytes"] / s_rank["size_bytes"],
                        "ranking_embedding_share_teacher": t_rank["embedding_share"],
                        "ranking_embedding_share_final": s_rank["embedding_share"]})
        shipped = context.find(_EXPORT.student_result, "tflite")
        out["int8_retrieval_from"] = shipped.extra.get("exported_from") if shipped else None
        out["choice"] = shipped.extra.get("choice") if shipped else None
        return out

    def markdown(self, s):
        if not s:
            return []
        m = s["metric"]
        lines = [f"### Float32 teachers ({s['baseline']}) vs the int8 on-device pair ({s['final']})", "",
                 f"- the int8 retrieval file is made from {s.get('int8_retrieval_from')}",
                 *choice_lines(s.get("choice")),
                 f"- size: {s['size_ratio']:.1f}x smaller ({s['final_bytes']:,} vs {s['teacher_bytes']:,} bytes; "
                 f"{s['gzip_ratio']:.1f}x gzipped)",
                 f"- retrieval {m} (top 10 of the whole catalogue, from the files): {s[m + '_teacher']:.4f} → "
                 f"{s[m + '_final']:.4f} ({_pct(s[m + '_percent_of_teacher'])} of the teacher's)",
                 f"- embedding share of the retrieval file: {s['embedding_share_teacher']:.1%} (teacher) → "
                 f"{s['embedding_share_final']:.1%} (int8 student)"]
        if "ranking_size_ratio" in s:
            sm = f"sampled_ndcg@{K}"
            lines += [f"- ranking (list signature): {s['ranking_size_ratio']:.1f}x smaller, sampled NDCG@10 "
                      f"{s[f'ranking_{sm}_teacher']:.4f} → {s[f'ranking_{sm}_final']:.4f}; embedding share "
                      f"{s['ranking_embedding_share_teacher']:.1%} → {s['ranking_embedding_share_final']:.1%}"]
        if s.get("latency_p50_speedup"):
            lines.append(f"- retrieval batch-1 p50 latency: {s['latency_p50_speedup']:.1f}x lower")
        return lines + [""]

    def headline(self, s):
        if not s:
            return None
        m = s["metric"]
        return (f"int8 on-device pair ({s['final']}) vs float32 teachers: {s['size_ratio']:.1f}x smaller "
                f"({s['final_bytes']:,} vs {s['teacher_bytes']:,} bytes); retrieval NDCG@10 {s[m + '_final']:.4f} "
                f"vs {s[m + '_teacher']:.4f} ({_pct(s[m + '_percent_of_teacher'])} of the teacher's); retrieval file "
                f"from {s.get('int8_retrieval_from')}, chosen on validation {m}")


def choice_lines(choice):
    """Markdown lines: the int8 candidates with their validation figures and bytes, which shipped and why.

    Example:
        >>> choice_lines({"metric": "ndcg@10", "tolerance": "1%", "reference": "a", "shipped": "a",
        ...               "reason": "b: ... — shipped a", "candidates": [
        ...               {"name": "a", "validation": 0.3, "bytes": 300, "within": True},
        ...               {"name": "b", "validation": 0.2, "bytes": 100, "within": False}]})[1]
        '  - a: 0.3000, 300 bytes (within 1% of the best) — shipped'
    """
    if not choice:
        return []
    m = choice["metric"].upper()
    lines = [f"- choice of the int8 retrieval file on the validation users ({m}; the test figures below are the "
             f"shipped file's and took no part): the smallest file within {choice['tolerance']} of the best "
             "candidate's"]
    for c in choice["candidates"]:
        value = "no validation figure" if c["validation"] is None else f"{c['validation']:.4f}"
        within = {True: f" (within {choice['tolerance']} of the best)", False: f" (outside {choice['tolerance']})",
                  None: ""}[c.get("within")]
        shipped = " — shipped" if c["name"] == choice["shipped"] else ""
        lines.append(f"  - {c['name']}: {value}, {c['bytes']:,} bytes{within}{shipped}")
    return lines + [f"  - {choice['reason']}"]


class TopKParity(ReportSection):
    """Parity: top-K agreement of the int8 retrieval file with its Keras source on the test users."""

    key = PARITY

    def figures(self, context, rows):
        from ..export import TFLiteModel
        from ..models.retrieval import keras_topk

        int8 = context.find(_EXPORT.student_result, "tflite")
        if int8 is None:
            return {}
        d = context.data
        source = context.find(int8.extra["exported_from"])
        _, ref = keras_topk(source.model, d.test, d.catalog, d.spec, k=K)
        got = TFLiteModel(int8.path).predict(d.test_inputs, batch_size=1024)["item_ids"][:, :K]
        overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(ref, got)])
        return {"keras_stage": source.name, "tflite_stage": int8.name, "k": K,
                "top1_agreement": float(np.mean(ref[:, 0] == got[:, 0])), "topk_overlap": float(overlap),
                "n": int(len(ref))}

    def markdown(self, p):
        if not p:
            return []
        return [f"### Parity: {p['keras_stage']} (Keras) vs {p['tflite_stage']} (TFLite top-K)", "",
                f"- top-1 item identical for {p['top1_agreement']:.1%} of {p['n']:,} test users; "
                f"top-{p['k']} overlap {p['topk_overlap']:.1%}", ""]
