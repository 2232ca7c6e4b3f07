"""On-device recommendation table: retrieval + ranking, teacher vs students vs embedding compression.

For MovieLens-small (if found) and the built-in shop: retrieval teacher, student alone, distilled
student, its tables made per-row int8 and int4 after training, the student with each compressed embedding
kind (qr, hash, mixed, lowrank) trained alone and distilled, and the
on-device retrieval student (distilled, 8-d towers), each exported to TFLite (float32 and int8 top-100
signatures; int8 stores the candidate matrix with one scale); the CTR ranking teacher, student alone and
distilled student (trained, as in the pipeline, on every interaction but the test ones plus 2 sampled
catalogue negatives per positive) and the distilled one with per-row int4 tables, exported as list
signatures (one user, N candidates). Columns: params, TFLite bytes,
embedding share of the bytes (GATHER tables + the stored candidate matrix), sampled NDCG@10 / HR@10 (99
negatives, leave-last-out; Keras for retrieval), full-catalogue NDCG@10 / HR@10 from the TFLite top-100
itself after removing the user's past items when users never repeat items (MovieLens), as the pipeline
does (for the ranking rows: sampled NDCG@10 from the TFLite scores), batch-1 p50 latency in the LiteRT
interpreter. Then the pair summary: float teachers (retrieval + ranking) vs the int8 on-device pair
(``ON_DEVICE`` + ``ON_DEVICE_RANKER``): bytes, ratio, embedding share, NDCG@10 as % of the teachers'.
Also the brute-force top-K scale rows (10k and 100k random items).

The data is the retrieval task's (``tfcompress.tasks``, the loader of ``tfcompress run --task retrieval``):
its leave-last-out split, sampled candidate lists (N = 100: the held-out item and 99 sampled ones), ranking
rows, seen items and batch size.

    python benchmarks/recsys_table.py --quick          # 1 seed, 2 epochs, 600 test users (~10 min)
    python benchmarks/recsys_table.py --seeds 3        # mean ± std over 3 seeds, 5 epochs
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tfcompress  # noqa: E402,F401
from tfcompress import keras  # noqa: E402
from tfcompress.bench.latency import tflite_latency  # noqa: E402
from tfcompress.data import find_dataset, to_dataset  # noqa: E402
from tfcompress.distill import Distiller  # noqa: E402
from tfcompress.export import TFLiteModel, to_tflite  # noqa: E402
from tfcompress.models import ctr_student, ctr_teacher  # noqa: E402
from tfcompress.pipeline import RunConfig  # noqa: E402
from tfcompress.tasks import catalog_metrics, tflite_catalog_bytes  # noqa: E402
from tfcompress.tasks.recommendation_data import load_recommendation  # noqa: E402
from tfcompress.models.embeddings import quantize_tables  # noqa: E402
from tfcompress.models.ranking import list_ranking_model  # noqa: E402
from tfcompress.export import export_retrieval_tflite, requantize_per_tensor  # noqa: E402
from tfcompress.models.retrieval import (BruteForceTopK, evaluate_sampled,  # noqa: E402
                                         fit_retrieval, item_catalog, keras_topk, popularity_scores,
                                         retrieval_student, retrieval_teacher,
                                         two_tower_scores)

K = 10
N = 100  # candidates the retrieval file returns and the ranking file re-scores
ON_DEVICE_DIM = 8
ON_DEVICE = f"distilled (full, d={ON_DEVICE_DIM})"  # the pair's retrieval model
ON_DEVICE_RANKER = "ctr_student distilled"  # the pair's ranking model


def load(name, quick, seed):
    """The retrieval task's data (``tfcompress.tasks``: the pipeline's leave-last-out split, sampled candidates,
    ranking rows, seen items), with lists of ``N`` candidates; ``None`` when MovieLens-small is missing."""
    if name == "movielens" and find_dataset("movielens-small") is None:
        return None
    config = RunConfig(task="retrieval", data="movielens" if name == "movielens" else None, events=100_000,
                       seed=seed, quick=quick, batch_size=512).validate()
    return load_recommendation(config, N)


def query_inputs(model, frame, spec):
    return {n: frame[n].to_numpy().astype(spec[n].dtype) for n in model.query_model.input_names}


def retrieval_row(name, model, spec, train, test, catalog, cands, tmp, quick, seen=None):
    row = {"model": name, "params": model.query_model.count_params() + model.candidate_model.count_params()}
    s = evaluate_sampled(two_tower_scores(model, test, cands, catalog, spec))
    row["ndcg@10"], row["hr@10"] = s["ndcg@10"], s["hr@10"]
    q = query_inputs(model, test, spec)
    _, keras_ids = keras_topk(model, test, catalog, spec, k=K)
    for mode in ("float32", "int8"):
        # top-N file as the pipeline's: N candidates for the ranker, past items removed before the top 10
        path = export_retrieval_tflite(model, catalog, spec, k=N, path=os.path.join(tmp, f"{name}_{mode}.tflite"),
                                       mode=mode, representative=q if mode == "int8" else None)
        out = TFLiteModel(path).predict(q)
        full = catalog_metrics(out["item_ids"], test["item_id"].to_numpy(), k=K, seen=seen)
        ndcg, hr = full[f"ndcg@{K}"], full[f"hr@{K}"]
        emb_bytes, total_bytes = tflite_catalog_bytes(path, len(catalog))
        one = {n: v[:1] for n, v in q.items()}
        lat = tflite_latency(path, one, runs=50 if quick else 200, warmup=5)
        row[f"{mode}_bytes"] = total_bytes
        row[f"{mode}_emb_share"] = emb_bytes / total_bytes
        row[f"{mode}_full_ndcg@10"], row[f"{mode}_full_hr@10"] = ndcg, hr
        # how much of the Keras model's full-catalogue top-10 the TFLite top-10 keeps
        row[f"{mode}_top10_overlap"] = float(np.mean([len(set(a) & set(b)) / K
                                                      for a, b in zip(out["item_ids"][:, :K], keras_ids)]))
        row[f"{mode}_p50_us"] = lat.p50_us
    return row


def ranking_rows(events, spec, ranking_train, test, cands, tmp, epochs, seed, min_vocab):
    items = [f.name for f in spec.features if f.group == "item"]
    catalog = item_catalog(events, spec)
    rows = []
    # candidate feature arrays [n_test, N] and user feature arrays [n_test]
    cat = catalog.set_index("item_id")
    cand_feats = {n: (cands if n == "item_id" else cat[n].reindex(cands.ravel()).to_numpy().reshape(cands.shape))
                  .astype(spec[n].dtype) for n in items}
    user_feats = {f.name: test[f.name].to_numpy().astype(f.dtype) if f.name in test.columns
                  else np.ones(len(test), f.dtype) for f in spec.features if f.name not in items}
    feed = {**user_feats, **cand_feats}
    # the pipeline's ranking rows: every interaction but the held-out ones, plus 2 sampled negatives per positive
    ds = to_dataset(ranking_train, spec, batch_size=1024, shuffle=True, seed=seed)
    models = {}
    for name, build in (("ctr_teacher", ctr_teacher), ("ctr_student", ctr_student),
                        ("ctr_student distilled", ctr_student)):
        keras.utils.set_random_seed(seed)
        m = models[name] = build(spec)
        if name == "ctr_student distilled":  # response distillation from the CTR teacher (logits)
            d = Distiller(m, models["ctr_teacher"], alpha=0.1, temperature=1.0)
            d.compile(keras.optimizers.Adam(1e-2))
            d.fit(ds, epochs=epochs, verbose=0)
        else:
            m.compile(keras.optimizers.Adam(1e-3 if name == "ctr_teacher" else 1e-2),
                      keras.losses.BinaryCrossentropy(from_logits=True))
            m.fit(ds, epochs=epochs, verbose=0)
    # the distilled student's big tables as per-row int4 after training (no retraining)
    models["ctr_student distilled + int4 rows"] = quantize_tables(models["ctr_student distilled"], 4,
                                                                   min_vocab=min_vocab)
    for name, m in models.items():
        lm = list_ranking_model(m, cands.shape[1], item_features=items)
        row = {"model": f"{name} (list of {cands.shape[1]})", "params": m.count_params()}
        path_name = name.replace(" ", "_").replace("+", "")
        s = evaluate_sampled(lm.predict(feed, batch_size=256, verbose=0))
        row["ndcg@10"], row["hr@10"] = s["ndcg@10"], s["hr@10"]
        for mode in ("float32", "int8"):
            path = to_tflite(lm, os.path.join(tmp, f"{path_name}_{mode}.tflite"), mode=mode,
                             representative=feed if mode == "int8" else None, num_calibration=100)
            emb_bytes, total_bytes = tflite_catalog_bytes(path, 0)  # ranking file: GATHER tables only
            row[f"{mode}_bytes"], row[f"{mode}_emb_share"] = total_bytes, emb_bytes / total_bytes
            sc = TFLiteModel(path).predict(feed)
            row[f"{mode}_full_ndcg@10"] = evaluate_sampled(sc)["ndcg@10"]  # sampled, from the TFLite scores
            row[f"{mode}_p50_us"] = tflite_latency(path, {n: v[:1] for n, v in feed.items()}, runs=50,
                                                   warmup=5).p50_us
        rows.append(row)
    return rows


def run_dataset(name, quick, seed):
    data = load(name, quick, seed)
    if data is None:
        print(f"SKIPPED {name}: MovieLens-small not found (put ml-latest-small.zip in ../shared/data/movielens-small)")
        return None
    events, spec, catalog, train, test = data.events, data.spec, data.catalog, data.train, data.test
    epochs = 2 if quick else 5
    cands = data.candidates
    rows = [{"model": "popularity", **{k: v for k, v in evaluate_sampled(popularity_scores(train, cands)).items()}}]
    tmp = tempfile.mkdtemp(prefix="recsys-")
    # the task's batch: ~50 steps per epoch at least (the shop has only ~5k positive events)
    fit = dict(epochs=epochs, batch_size=data.retrieval_batch_size, learning_rate=0.01, seed=seed)
    t0 = time.time()
    seen = data.seen

    def row(label, model):
        return retrieval_row(label, model, spec, train, test, catalog, cands, tmp, quick, seen)

    teacher = fit_retrieval(retrieval_teacher(spec, candidates=catalog), train, spec,
                            **{**fit, "learning_rate": 0.003})
    rows.append(row("retrieval_teacher", teacher))
    alone = fit_retrieval(retrieval_student(spec, candidates=catalog), train, spec, **fit)
    rows.append(row("student alone", alone))
    freqs = data.frequencies
    min_vocab = 1000 if name == "movielens" else 100  # the tables that get compressed
    for kind in ("full", "qr", "hash", "mixed", "lowrank"):
        # each compressed kind trained alone and distilled: what distillation recovers after compression
        for distilled in ((True,) if kind == "full" else (False, True)):
            st = retrieval_student(spec, teacher=teacher if distilled else None, candidates=catalog,
                                   embedding=kind, frequencies=freqs, compress_min_vocab=min_vocab)
            fit_retrieval(st, train, spec, **fit)
            label = f"distilled ({kind})" if distilled else f"{kind} alone"
            rows.append(row(label, st))
            print(f"  {name}: {rows[-1]['model']} done ({time.time() - t0:.0f}s)", flush=True)
        if kind == "full":  # post-training per-row int8 / int4 tables of the distilled student
            for bits in (8, 4):
                q = st.quantize_tables(bits, min_vocab=min_vocab)
                rows.append(row(f"distilled (full) + int{bits} rows", q))
    # the on-device retrieval student: 8-d towers (the stored candidate matrix is N x 8 int8 bytes)
    st = retrieval_student(spec, teacher=teacher, candidates=catalog, embedding_dim=ON_DEVICE_DIM,
                           output_dim=ON_DEVICE_DIM)
    fit_retrieval(st, train, spec, **fit)
    rows.append(row(ON_DEVICE, st))
    rows.extend(ranking_rows(events, spec, data.ranking_train, test, cands, tmp, max(1, epochs - 1), seed,
                             min_vocab))
    df = pd.DataFrame(rows)
    df.insert(0, "data", name)
    df.insert(1, "seed", seed)
    return df


def scale_rows(quick):
    """Brute-force top-K cost at 10k and 100k items (d=16, random vectors)."""
    out = []
    tmp = tempfile.mkdtemp(prefix="recsys-scale-")
    for n in (10_000, 100_000):
        rng = np.random.default_rng(0)
        q_in = keras.Input((16,), name="query")
        scores, ids = BruteForceTopK(rng.normal(size=(n, 16)).astype("float32"), np.arange(1, n + 1), k=K,
                                     name="topk")(q_in)
        m = keras.Model({"query": q_in}, [keras.layers.Activation("linear", name="scores")(scores),
                                          keras.layers.Lambda(lambda x: x, name="item_ids")(ids)])
        for mode in ("float32", "int8"):
            path = to_tflite(m, os.path.join(tmp, f"s{n}_{mode}.tflite"), mode=mode,
                             representative={"query": rng.normal(size=(50, 16)).astype("float32")})
            if mode == "int8":  # one scale for the matrix, as export_retrieval_tflite does
                requantize_per_tensor(path, m.get_layer("topk").candidates.numpy())
            lat = tflite_latency(path, {"query": rng.normal(size=(1, 16)).astype("float32")},
                                 runs=50 if quick else 200, warmup=5)
            out.append({"items": n, "mode": mode, "bytes": os.path.getsize(path), "p50_us": lat.p50_us})
    return pd.DataFrame(out)


def pair_summary(df):
    """One row per seed: the float teachers vs the int8 on-device pair (bytes, ratio, quality ratios)."""
    out = []
    for seed, d in df.groupby("seed"):
        by = d.set_index("model")
        t = by.loc["retrieval_teacher"]
        s = by.loc[ON_DEVICE]
        rt = d[d.model.str.startswith("ctr_teacher")].iloc[0]
        rs = d[d.model.str.startswith(ON_DEVICE_RANKER)].iloc[0]
        float_pair = t["float32_bytes"] + rt["float32_bytes"]
        int8_pair = s["int8_bytes"] + rs["int8_bytes"]
        emb = s["int8_emb_share"] * s["int8_bytes"] + rs["int8_emb_share"] * rs["int8_bytes"]
        out.append({"seed": seed, "float_pair_bytes": float_pair, "int8_pair_bytes": int8_pair,
                    "retrieval_int8_bytes": s["int8_bytes"], "ranking_int8_bytes": rs["int8_bytes"],
                    "pair_ratio": float_pair / int8_pair, "int8_pair_emb_share": emb / int8_pair,
                    "retrieval_ndcg@10": s["ndcg@10"], "teacher_ndcg@10": t["ndcg@10"],
                    "retrieval_ndcg_pct": 100 * s["ndcg@10"] / t["ndcg@10"],
                    "retrieval_hr_pct": 100 * s["hr@10"] / t["hr@10"],
                    "retrieval_int8_top10_overlap": s["int8_top10_overlap"],
                    "ranking_int8_ndcg@10": rs["int8_full_ndcg@10"], "ranking_teacher_ndcg@10": rt["ndcg@10"],
                    "ranking_ndcg_pct": 100 * rs["int8_full_ndcg@10"] / rt["ndcg@10"]})
    return pd.DataFrame(out)


MARKDOWN_COLUMNS = (  # (column, header, format): the readable subset of the wide table
    ("params", "params", "{:,.0f}"), ("float32_bytes", "float32 bytes", "{:,.0f}"),
    ("int8_bytes", "int8 bytes", "{:,.0f}"), ("int8_emb_share", "int8 emb. share", "{:.2f}"),
    ("ndcg@10", "sampled NDCG@10", "{:.4f}"), ("hr@10", "sampled HR@10", "{:.4f}"),
    ("int8_full_ndcg@10", "int8 file NDCG@10", "{:.4f}"), ("int8_full_hr@10", "int8 file HR@10", "{:.4f}"),
    ("float32_p50_us", "float32 p50 µs", "{:.1f}"), ("int8_p50_us", "int8 p50 µs", "{:.1f}"))


def markdown(agg):
    """A Markdown table of the aggregated frame (``mean ± std`` cells when it has both)."""
    two = isinstance(agg.columns, pd.MultiIndex)
    cols = [c for c in MARKDOWN_COLUMNS if (c[0], "mean") in agg.columns or c[0] in agg.columns]
    lines = ["| model | " + " | ".join(h for _, h, _ in cols) + " |", "| --- |" + " ---: |" * len(cols)]
    for (_, model), row in agg.iterrows():
        cells = []
        for col, _, fmt in cols:
            mean, std = (row[(col, "mean")], row[(col, "std")]) if two else (row[col], float("nan"))
            cell = "–" if pd.isna(mean) else fmt.format(mean)
            if not pd.isna(mean) and not pd.isna(std) and std > 0:
                cell += " ± " + fmt.format(std)
            cells.append(cell)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(values, fmt="{:.4f}"):
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return fmt.format(values.mean())
    return f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1))}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--data", nargs="+", default=["movielens", "shop"])
    ap.add_argument("--out", default=None, help="CSV path for the table")
    args = ap.parse_args(argv)
    tables = []
    pd.set_option("display.width", 250, "display.max_columns", 40)
    for name in args.data:
        runs = [run_dataset(name, args.quick, seed) for seed in range(args.seeds)]
        runs = [r for r in runs if r is not None]
        if not runs:
            continue
        df = pd.concat(runs)
        num = [c for c in df.select_dtypes("number").columns if c != "seed"]
        agg = df.groupby(["data", "model"], sort=False)[num].agg(["mean", "std"]) if args.seeds > 1 \
            else df.set_index(["data", "model"])[num]
        tables.append(agg)
        print(agg.round(4).to_string())
        print("\n" + markdown(agg))
        pair = pair_summary(df)
        n = f"{len(pair)} seed{'s' if len(pair) > 1 else ''}"
        print(f"\n{name} ({n}, mean ± std): float teachers {_ms(pair.float_pair_bytes, '{:,.0f}')} B vs int8 pair "
              f"({ON_DEVICE} {_ms(pair.retrieval_int8_bytes, '{:,.0f}')} B + {ON_DEVICE_RANKER} "
              f"{_ms(pair.ranking_int8_bytes, '{:,.0f}')} B) = {_ms(pair.int8_pair_bytes, '{:,.0f}')} B: "
              f"{_ms(pair.pair_ratio, '{:.1f}')}x smaller; embedding share of the int8 pair "
              f"{_ms(100 * pair.int8_pair_emb_share, '{:.0f}')}%")
        print(f"  retrieval sampled NDCG@10 {_ms(pair['retrieval_ndcg@10'])} vs teacher {_ms(pair['teacher_ndcg@10'])}"
              f" = {_ms(pair.retrieval_ndcg_pct, '{:.1f}')}% (HR@10 {_ms(pair.retrieval_hr_pct, '{:.1f}')}%; "
              "int8 TFLite "
              f"top-10 keeps {_ms(100 * pair.retrieval_int8_top10_overlap, '{:.0f}')}% of the Keras top-10); "
              f"ranking sampled NDCG@10 int8 student {_ms(pair['ranking_int8_ndcg@10'])} vs float teacher "
              f"{_ms(pair['ranking_teacher_ndcg@10'])} = {_ms(pair.ranking_ndcg_pct, '{:.1f}')}%\n")
    scale = scale_rows(args.quick)
    print("brute-force top-10 scale (d=16):")
    print(scale.to_string(index=False))
    if args.out and tables:
        pd.concat(tables).to_csv(args.out)


if __name__ == "__main__":
    main()
