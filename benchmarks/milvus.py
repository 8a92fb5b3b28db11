"""The Milvus server against the embedded index, on the same clustered vectors.

    python -m benchmarks milvus --store milvus://127.0.0.1:19530 --vectors 200000 --out FILE

Vectors: synthetic passages (benchmarks/synthetic.py, whose word vectors follow SciFact's topics, so
they cluster as real ones do; uniform random vectors make every ANN index look broken), embedded
by the fast deterministic embedder. Both sides are measured in this process on one thread for
the embedded index: build (insert and index) time, search p50/p95 for one question at a time,
recall@10 against exact search, and memory (the embedded index's own, the server's resident set).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from benchmarks.common import recall_at


def passages(n: int) -> list[str]:
    """About n passage-sized texts: synthetic articles cut every ~100 words."""
    from benchmarks.synthetic import synthetic_articles

    out: list[str] = []
    for article in synthetic_articles(int(n * 1.2) + 1000):  # articles end mid-passage: ask for more
        words = article.text.split()
        out.extend(" ".join(words[i : i + 100]) for i in range(0, len(words), 100))
        if len(out) >= n:
            break
    return out[:n]


def _percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2)}


def _server_rss_mib() -> float | None:
    """Resident memory of the local Milvus server process (same machine), if there is one."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"milvus run standalone" not in cmdline:
                continue
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            continue
    return None


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def run(store: str, n: int, queries: int = 300, k: int = 10, data: Path | None = None) -> dict:
    from articleqa.index.vectors import local
    from articleqa.index.vectors.milvus import MilvusEngine, Store
    from articleqa.runtime.threads import single_threaded
    from benchmarks.synthetic import FastEmbedder, synthetic_questions

    embedder = FastEmbedder()
    start = time.perf_counter()
    vectors = embedder.encode(passages(n))
    made_s = time.perf_counter() - start
    questions = embedder.encode(synthetic_questions(queries))
    ids = np.arange(len(vectors), dtype=np.int64)
    exact = np.argsort(-(questions @ vectors.T), axis=1)[:, :k]
    out: dict = {
        "vectors": len(vectors),
        "dim": int(vectors.shape[1]),
        "queries": queries,
        "generate_s": round(made_s, 1),
    }

    # The embedded index: IVF over 8-bit codes, as a large segment uses (local.IVFEngine), at
    # the default share of lists visited and at a few others.
    start = time.perf_counter()
    local = local.create("ivf", vectors.shape[1])
    local.add(ids, vectors)
    build_s = time.perf_counter() - start
    index = local._index()
    out["embedded"] = {
        "engine": "ivf (faiss IVF-SQ8, exact re-score)",
        "build_s": round(build_s, 1),
        "insert_rows_per_s": round(len(vectors) / build_s),
        "lists": int(index.nlist),
        "index_mib": round((index.sa_code_size() * index.ntotal + index.nlist * index.d * 4) / 2**20, 1),
        "vectors_mib": round(vectors.nbytes / 2**20, 1),
    }
    default = local.probe
    for probe in sorted({2.0, 3.0, 4.0, 6.0, default}):
        local.probe = probe
        timings, found = [], []
        with single_threaded():
            for q in questions:
                t = time.perf_counter()
                _, f = local.search(q[None], k)
                timings.append((time.perf_counter() - t) * 1000)
                found.append(f[0])
        entry = {
            "nprobe": local.nprobe,
            "search_ms": _percentiles(timings),
            "recall_at_10": round(recall_at(np.array(found), exact), 4),
        }
        out["embedded"][f"probe {probe:g}·√lists" + (" (default)" if probe == default else "")] = entry

    # The server: insert in batches, wait for the HNSW index, then search with both consistencies.
    parsed = Store.parse(store)
    remote = MilvusEngine(parsed, f"bench_{uuid.uuid4().hex[:12]}", vectors.shape[1], model=embedder.name)
    rss_before = _server_rss_mib()
    disk_before = _du(data) if data else None
    try:
        start = time.perf_counter()
        remote.put(ids, vectors)
        insert_s = time.perf_counter() - start
        client = remote._client
        start = time.perf_counter()
        client.flush(remote.collection)
        while True:
            info = client.describe_index(remote.collection, "vector")
            if int(info.get("pending_index_rows", 0)) == 0 and int(info.get("indexed_rows", 0)) >= len(vectors):
                break
            time.sleep(2)
        index_s = time.perf_counter() - start
        client.release_collection(remote.collection)
        client.load_collection(remote.collection)
        result = {
            "engine": f"milvus {client.get_server_version()} HNSW (M 16, efConstruction 200), COSINE",
            "insert_s": round(insert_s, 1),
            "insert_rows_per_s": round(len(vectors) / insert_s),
            "index_s": round(index_s, 1),
        }
        for fresh in (False, True):
            timings, found = [], []
            for q in questions[: queries if not fresh else min(queries, 50)]:
                t = time.perf_counter()
                _, f = remote.search(q[None], k, fresh=fresh)
                timings.append((time.perf_counter() - t) * 1000)
                found.append(f[0])
            name = "strong" if fresh else "bounded"
            result[f"search_ms_{name}"] = _percentiles(timings)
            result[f"recall_at_10_{name}"] = round(recall_at(np.array(found), exact[: len(found)]), 4)
        rss_after = _server_rss_mib()
        result["server_rss_mib"] = {"before": rss_before, "after": rss_after}
        if data:  # what the collection added to the server's storage (binlogs, index files, logs)
            added = _du(data) - disk_before
            result["server_disk_bytes_per_vector"] = round(added / len(vectors), 1)
        out["milvus"] = result
    finally:
        remote.drop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="milvus://HOST:PORT")
    parser.add_argument("--vectors", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--server-data", metavar="DIR", help="the server's data folder, to measure its growth")
    args = parser.parse_args(argv)
    results = run(args.store, args.vectors, args.queries, data=Path(args.server_data) if args.server_data else None)
    text = json.dumps(results, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
