"""`python -m benchmarks scale`: what storage costs as a library grows, on synthetic libraries.

A fast deterministic embedder stands in for the model (synthetic.py), so the figures are the
index's own: build, disk per passage, open, memory when serving, search latency (the question's
encoding excluded) and recall against exact search, and the cost of adding or removing one
article. Each size is built once (a rerun resumes or reuses it) and measured in fresh processes.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import folder_bytes, memory_mib, recall_at, rss_mib


class _Timed:
    """Wraps an embedder to count the seconds spent embedding (the model's share of a build)."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.seconds = 0.0
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens

    def __getattr__(self, name):  # the rest of the embedder seam, as the wrapped one has it
        return getattr(self._inner, name)

    def count_tokens(self, texts):
        return self._inner.count_tokens(texts)

    def encode(self, texts, **kwargs):
        start = time.perf_counter()
        try:
            return self._inner.encode(texts, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def encode_tokens(self, texts, **kwargs):
        start = time.perf_counter()
        try:
            return self._inner.encode_tokens(texts, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def _library(folder: Path, embedder):
    from articleqa.library import Library
    from articleqa.settings import Settings

    return Library.at(folder, Settings(model=embedder.name), embedder=embedder)


def build(folder: Path, passages: int) -> dict:
    """Build (or finish building) a synthetic library of about `passages` passages."""
    from benchmarks.synthetic import FastEmbedder, synthetic_articles

    embedder = _Timed(FastEmbedder())
    lib = _library(folder, embedder)
    start = time.perf_counter()
    articles = list(synthetic_articles(passages))
    generate = time.perf_counter() - start
    start = time.perf_counter()
    change = lib.sync_articles(articles)
    seconds = time.perf_counter() - start
    index = lib.index
    return {
        "passages": len(index),
        "articles": len(index.articles),
        "build_s": round(seconds, 1),
        "embed_s": round(embedder.seconds, 1),
        "index_s": round(seconds - embedder.seconds, 1),
        "embedded": change.embedded,
        "generate_s": round(generate, 1),
        "build_peak_rss_mib": rss_mib()[1],
        "disk_bytes": folder_bytes(folder),
        "disk_bytes_per_passage": round(folder_bytes(folder) / max(len(index), 1), 1),
        "segments": index.describe(),
    }


def serve(folder: Path, queries: int) -> dict:
    """Open the library in this (fresh) process, ask questions, then add and remove articles."""
    from articleqa.query.retrieve import search_index
    from articleqa.schema import Article
    from articleqa.settings import Settings
    from benchmarks.synthetic import FastEmbedder, synthetic_questions

    embedder = FastEmbedder()
    base_rss = rss_mib()[0]
    start = time.perf_counter()
    from articleqa.library import Library

    lib = Library.load(folder, embedder=embedder)
    index = lib.index
    open_s = time.perf_counter() - start
    after_open = rss_mib()[0]
    questions = synthetic_questions(queries)
    vectors, tokens = embedder.encode_tokens(questions)
    settings = Settings(model=embedder.name)
    # The first pass reads postings and vectors from disk into the page cache; the timed pass is
    # a server that has been answering for a while. Both are reported.
    first_pass = []
    for q, v, t in zip(questions, vectors, tokens):
        start = time.perf_counter()
        search_index(index, q, v, k=5, mode="hybrid", settings=settings, query_tokens=t)
        first_pass.append((time.perf_counter() - start) * 1000)
    timings: dict[str, list[float]] = {"hybrid": [], "dense": [], "ann": []}
    for q, v, t in zip(questions, vectors, tokens):
        for mode in ("hybrid", "dense"):
            start = time.perf_counter()
            search_index(index, q, v, k=5, mode=mode, settings=settings, query_tokens=t)
            timings[mode].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        index.dense_search(v, 10)
        timings["ann"].append((time.perf_counter() - start) * 1000)
    serving_rss = rss_mib()
    serving_memory = memory_mib()
    add_s, remove_s = [], []
    for i in range(5):
        article = Article(
            id=f"bench-added-{i}-{time.time_ns()}",
            title=f"An added article {i}",
            text=" ".join(questions[i : i + 8]) + f" Added for the benchmark, number {i}.",
            source="benchmark",
        )
        start = time.perf_counter()
        lib.add(article)
        add_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        lib.remove(article.id)
        remove_s.append(time.perf_counter() - start)
    peak_after_changes = rss_mib()[1]
    # Last: the exact search this compares with holds blocks of every vector (the benchmark's
    # memory, not the server's).
    recall = _recall(index, vectors[: min(queries, 100)])
    return {
        "open_s": round(open_s, 2),
        "rss_before_open_mib": base_rss,
        "rss_after_open_mib": after_open,
        "rss_serving_mib": serving_rss[0],
        "peak_rss_serving_mib": serving_rss[1],
        "memory_serving_mib": serving_memory,
        "peak_rss_after_add_remove_mib": peak_after_changes,
        "search_ms": {
            mode: {"p50": round(float(np.percentile(v, 50)), 2), "p95": round(float(np.percentile(v, 95)), 2)}
            for mode, v in timings.items()
        },
        "hybrid_first_pass_ms": {
            "p50": round(float(np.percentile(first_pass, 50)), 2),
            "p95": round(float(np.percentile(first_pass, 95)), 2),
        },
        "recall_at_10": round(recall, 4),
        "add_one_s": round(statistics.median(add_s), 3),
        "add_one_max_s": round(max(add_s), 3),
        "remove_one_s": round(statistics.median(remove_s), 3),
        "remove_one_max_s": round(max(remove_s), 3),
        "queries": len(questions),
    }


def _recall(index, queries: np.ndarray, k: int = 10) -> float:
    """Recall@k of the index's dense search against exact search over every live vector."""
    best = [np.full((len(queries), 0), -np.inf, np.float32)]
    keys = [np.zeros((len(queries), 0), np.int64)]
    for seg, live in zip(index.segments, index.live):
        vectors = np.load(seg.folder / "dense.npy", mmap_mode="r")
        for start in range(0, len(vectors), 100_000):
            block = np.asarray(vectors[start : start + 100_000], np.float32)
            sims = queries @ block.T
            if live is not None:
                sims[:, ~live[start : start + len(block)]] = -np.inf
            best.append(sims)
            keys.append(np.broadcast_to(seg.keys[start : start + len(block)], sims.shape))
            s, kk = np.concatenate(best, axis=1), np.concatenate(keys, axis=1)
            top = np.argsort(-s, axis=1)[:, :k]
            best, keys = [np.take_along_axis(s, top, 1)], [np.take_along_axis(kk, top, 1)]
    found = [index.dense_search(vector, k)[1] for vector in queries]
    return recall_at(found, keys[0])


def _child(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=Path(__file__).resolve().parents[1],
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmarks.scale {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(sizes: list[int], folder: Path, *, queries: int = 200) -> dict:
    """Each size: build in one process, then open, search, add and remove in a fresh one."""
    results = {}
    for n in sizes:
        where = Path(folder) / f"synthetic-{n}"
        print(f"[scale] {n} passages: building in {where}", file=sys.stderr, flush=True)
        built = _child("build", str(where), str(n))
        print(f"[scale] {n} passages: built {json.dumps(built)}", file=sys.stderr, flush=True)
        served = _child("serve", str(where), str(queries))
        print(f"[scale] {n} passages: served {json.dumps(served)}", file=sys.stderr, flush=True)
        results[str(n)] = {"build": built, "serve": served}
    return results


def plot(results: dict, path: Path) -> None:
    from benchmarks.common import pyplot

    plt = pyplot()

    sizes = sorted(int(n) for n in results)
    serve = [results[str(n)]["serve"] for n in sizes]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    ax = axes[0]
    ax.plot(sizes, [s["add_one_s"] for s in serve], "o-", label="add one article")
    ax.plot(sizes, [s["remove_one_s"] for s in serve], "s-", label="remove one article")
    ax.plot(sizes, [s["open_s"] for s in serve], "^-", label="open")
    ax.set(xscale="log", yscale="log", xlabel="passages", ylabel="seconds", title="Changes and opening")
    ax.legend()
    ax = axes[1]
    for mode, marker in (("hybrid", "o-"), ("dense", "s-"), ("ann", "^-")):
        label = {"ann": "dense retrieval alone"}.get(mode, f"{mode} search")
        ax.plot(sizes, [s["search_ms"][mode]["p50"] for s in serve], marker, label=label)
    ax.set(xscale="log", yscale="log", xlabel="passages", ylabel="p50 ms (question encoding excluded)")
    ax.set_title("Search")
    ax.legend()
    ax = axes[2]
    ax.plot(sizes, [s["rss_serving_mib"] for s in serve], "o-", label="RSS serving (MiB)")
    ax.plot(
        sizes,
        [results[str(n)]["build"]["disk_bytes_per_passage"] / 1024 for n in sizes],
        "s-",
        label="disk per passage (KiB)",
    )
    ax.set(xscale="log", yscale="log", xlabel="passages", title="Memory and disk")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def child(argv: list[str]) -> int:
    command, folder = argv[0], Path(argv[1])
    if command == "build":
        result = build(folder, int(argv[2]))
    elif command == "serve":
        result = serve(folder, int(argv[2]))
    else:
        raise SystemExit(f"unknown command {command}")
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))
    return 0


def main(args) -> int:
    """`python -m benchmarks scale --sizes 10000,100000`: storage costs on synthetic libraries."""
    from articleqa.errors import ArticleQAError
    from articleqa.settings import data_home
    from benchmarks.common import machine

    try:
        sizes = [int(n.replace("_", "")) for n in args.sizes.split(",")]
    except ValueError:
        raise ArticleQAError(f"--scale takes passage counts separated by commas, not {args.sizes!r}") from None
    folder = Path(args.cache_dir) if args.cache_dir else data_home() / "cache" / "scale"
    results = {"machine": machine(), "sizes": run(sizes, folder, queries=args.queries)}
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        plot(results["sizes"], Path(args.out).with_suffix(".png"))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
