"""`python -m benchmarks latency`: latency per mode and stage, cold start, build throughput, memory, baselines.

Everything is measured in one run on this machine, so the numbers compare like with like.
"""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from articleqa.settings import MODES
from benchmarks.common import machine, percentile

STAGES = ("encode", "dense", "lexical", "fusion", "rerank", "highlight")


def latency(library, questions: list[str], *, modes=MODES, repeat: int = 1, call: str = "ask") -> dict:
    """Per-query latency (ms) of each mode, with the mean time spent in each stage."""
    from articleqa.runtime.timing import recording

    out = {}
    for mode in modes:
        library.search(questions[0], mode=mode)  # warm-up: model loaded, first allocations done
        totals, stages = [], {s: [] for s in STAGES}
        for _ in range(repeat):
            for q in questions:
                with recording() as rec:
                    start = time.perf_counter()
                    getattr(library, call)(q, mode=mode)
                    totals.append((time.perf_counter() - start) * 1000)
                for s in STAGES:
                    stages[s].append(rec.get(s, 0.0) * 1000)
        out[mode] = {
            "queries": len(totals),
            "p50_ms": round(percentile(totals, 50), 2),
            "p99_ms": round(percentile(totals, 99), 2),
            "mean_ms": round(statistics.fmean(totals), 2),
            "stages_mean_ms": {s: round(statistics.fmean(v), 3) for s, v in stages.items()},
        }
    return out


def cold_start() -> dict:
    """A fresh process: import, open the built-in library, answer one question."""
    code = (
        "import time; t=time.perf_counter(); import articleqa; qa=articleqa.open(); "
        "a=qa.ask('What are exosomes?'); t1=time.perf_counter(); "
        "import resource, json; print(json.dumps({'seconds': t1-t, "
        "'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024, 'found': a.found}))"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    inner = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "process_wall_s": round(wall, 2),
        "import_to_answer_s": round(inner["seconds"], 2),
        "peak_rss_mib": round(inner["peak_rss_mib"], 1),
        "found": inner["found"],
    }


def build_throughput(articles, embedder, settings) -> dict:
    """Our full build (chunk, embed, BM25, FAISS, atomic save) against bare model.encode of the
    same passages; then a re-sync of the unchanged corpus."""
    from articleqa.library import Library
    from articleqa.text.chunking import chunk_article, embed_text

    folder = Path(tempfile.mkdtemp(prefix="articleqa-bench-"))
    try:
        lib = Library.at(folder / "index", settings, embedder=embedder)
        start = time.perf_counter()
        change = lib.sync_articles(articles, progress=None)
        ours = time.perf_counter() - start
        texts = [
            embed_text(a, c)
            for a in articles
            for c in chunk_article(a, embedder.count_tokens, settings.chunker, model_limit=embedder.max_tokens)
        ]
        start = time.perf_counter()
        embedder._model.encode(texts, batch_size=settings.batch_size, normalize_embeddings=True)
        bare = time.perf_counter() - start
        start = time.perf_counter()
        again = lib.sync_articles(articles, progress=None)
        rebuild = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (folder / "index").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "articles": len(articles),
        "passages": change.embedded,
        "ours_s": round(ours, 2),
        "bare_encode_s": round(bare, 2),
        "overhead_ratio": round(ours / bare, 3),
        "passages_per_s": round(change.embedded / ours, 1),
        "unchanged_resync_s": round(rebuild, 3),
        "unchanged_resync_embedded": again.embedded,
        "index_bytes": size,
    }


def baselines(articles, queries, qrels, embedder, cache: Path) -> dict:
    """What a user would otherwise pick: plain BM25 (bm25s) and plain dense top-k (FAISS) over
    whole documents, no chunking, no fusion."""
    import bm25s
    import faiss

    from articleqa.evaluate import beir_metrics
    from articleqa.text.lexical import tokenize

    texts = [(a.title + "\n" + a.text).strip() for a in articles]
    ids = [a.id for a in articles]
    out = {}
    start = time.perf_counter()
    bm25 = bm25s.BM25()  # the same tokenizer as ours: English stop words, Snowball stemmer
    bm25.index(tokenize(texts), show_progress=False)
    bm25_build = time.perf_counter() - start
    run, times = {}, []
    for qid, q in queries.items():
        t = time.perf_counter()
        terms = [w for w in tokenize([q])[0] if w in bm25.vocab_dict]
        scores = bm25.get_scores(terms) if terms else np.zeros(len(texts))
        rows = np.argsort(-scores, kind="stable")[:100]
        times.append((time.perf_counter() - t) * 1000)
        run[qid] = {ids[r]: float(scores[r]) for r in rows if scores[r] > 0}
    out["bm25"] = {
        **beir_metrics(run, qrels),
        "p50_ms": round(percentile(times, 50), 3),
        "p99_ms": round(percentile(times, 99), 3),
        "build_s": round(bm25_build, 2),
    }
    vectors = cached_vectors(texts, embedder, cache)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    run, times = {}, []
    for qid, q in queries.items():
        t = time.perf_counter()
        v = embedder.encode([q], progress=False)
        scores, rows = index.search(v, 100)
        times.append((time.perf_counter() - t) * 1000)
        run[qid] = {ids[r]: float(s) for s, r in zip(scores[0], rows[0]) if r >= 0}
    out["dense"] = {
        **beir_metrics(run, qrels),
        "p50_ms": round(percentile(times, 50), 3),
        "p99_ms": round(percentile(times, 99), 3),
    }
    return out


def cached_vectors(texts: list[str], embedder, cache: Path) -> np.ndarray:
    """Whole-document vectors, cached on disk by model and text (embedding SciFact takes minutes)."""
    import hashlib

    digest = hashlib.sha256(embedder.name.encode())
    for t in texts:
        digest.update(t.encode() + b"\x00")
    path = cache / f"docvectors-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        return np.load(path)
    vectors = embedder.encode(texts, batch_size=32, progress=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def main(args) -> int:
    from articleqa.evaluate import (
        beir_library,
        beir_metrics,
        evaluate_offtopic,
        evaluate_questions,
        load_beir,
        load_questions,
        run_beir,
    )
    from articleqa.library import builtin_articles
    from articleqa.library import open as open_library
    from articleqa.settings import Settings, data_home

    cache = Path(args.cache_dir) if args.cache_dir else data_home() / "cache" / "beir"
    results: dict = {"machine": machine()}
    print(f"machine: {json.dumps(results['machine'])}", file=sys.stderr)

    results["cold_start"] = cold_start()
    print(f"cold start: {results['cold_start']}", file=sys.stderr)

    lib = open_library()
    questions = [q for path in args.questions or () for q in load_questions(path)]
    texts = [q.question for q in questions] or [a.title for a in lib.articles()]
    texts = (texts * (args.queries // max(1, len(texts)) + 1))[: args.queries]
    results["builtin"] = {
        "latency_ask": latency(lib, texts, call="ask"),
        "latency_search": latency(lib, texts, call="search"),
    }
    if questions:
        results["builtin"]["quality"] = {m: evaluate_questions(lib, questions, mode=m).metrics for m in MODES}
        if args.offtopic:
            off = evaluate_offtopic(lib, load_questions(args.offtopic), mode="hybrid")
            results["builtin"]["offtopic"] = off.metrics
    results["builtin"]["build"] = build_throughput(builtin_articles(), lib.embedder, Settings())
    print(f"built-in: {json.dumps(results['builtin'])}", file=sys.stderr)

    if args.beir:
        beir, queries, qrels = beir_library(args.beir, cache_dir=cache)
        results["beir"] = {"name": Path(args.beir).resolve().name, "passages": len(beir.index)}
        results["beir"]["quality"] = {m: beir_metrics(run_beir(beir, queries, mode=m), qrels) for m in MODES}
        qtexts = list(queries.values())[: args.queries]
        results["beir"]["latency_search"] = latency(beir, qtexts, call="search")
        results["beir"]["latency_ask"] = latency(beir, qtexts, call="ask")
        articles, _, _ = load_beir(args.beir)
        results["beir"]["baselines"] = baselines(articles, queries, qrels, beir.embedder, cache)
        results["beir"]["build_subset"] = build_throughput(articles[:500], beir.embedder, Settings())
        print(f"beir: {json.dumps(results['beir'])}", file=sys.stderr)

    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        plot(results, Path(args.out).parent)
    print(json.dumps(results))
    return 0


def plot(results: dict, folder: Path) -> list[Path]:
    """Quality per mode and latency per stage, as PNGs next to the JSON."""
    from benchmarks.common import pyplot

    plt = pyplot()

    written = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    quality = results["builtin"].get("quality", {})
    if quality:
        ax = axes[0]
        modes = list(quality)
        x = np.arange(len(modes))
        for i, key in enumerate(("hit@1", "hit@5", "mrr@10")):
            ax.bar(x + (i - 1) * 0.27, [quality[m][key] for m in modes], 0.27, label=key)
        ax.set_xticks(x, modes)
        ax.set_ylim(0, 1)
        ax.set_title("Built-in questions (72)")
        ax.legend(loc="lower right")
    beir = results.get("beir")
    if beir:
        ax = axes[1]
        names = [*beir["quality"], "plain BM25", "plain dense"]
        values = [beir["quality"][m]["ndcg@10"] for m in beir["quality"]]
        values += [beir["baselines"]["bm25"]["ndcg@10"], beir["baselines"]["dense"]["ndcg@10"]]
        ax.bar(names, values, color=["C0", "C1", "C2", "grey", "grey"])
        for i, v in enumerate(values):
            ax.text(i, v + 0.01, f"{v:.3f}", ha="center")
        ax.set_ylim(0, 0.9)
        ax.set_title(f"{beir['name']} nDCG@10")
    fig.tight_layout()
    path = folder / "bench-quality.png"
    fig.savefig(path, dpi=110)
    written.append(path)
    plt.close(fig)

    groups = [("built-in", results["builtin"]["latency_ask"])]
    if beir:
        groups.append((beir["name"], beir["latency_ask"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False)
    for ax, (name, lat) in zip(axes[0], groups):
        modes = list(lat)
        bottom = np.zeros(len(modes))
        for stage in STAGES:
            vals = np.array([lat[m]["stages_mean_ms"][stage] for m in modes])
            ax.bar(modes, vals, bottom=bottom, label=stage)
            bottom += vals
        ax.set_ylabel("mean ms per ask()")
        ax.set_title(f"{name}: time per stage")
        ax.legend()
    fig.tight_layout()
    path = folder / "bench-latency.png"
    fig.savefig(path, dpi=110)
    written.append(path)
    plt.close(fig)
    return written
