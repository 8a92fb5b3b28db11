"""`python -m benchmarks peers --python PYTHON`: articleqa against LangChain's FAISS store and txtai, one run.

Every system gets the same articles (as articleqa reads them: cleaned text, title first), the same
bundled model and the same questions, in a fresh process of its own, in turns (the order rotates
each round, so a busy minute on the machine does not land on one system). The peers run under
another Python (a virtualenv with langchain-community, langchain-huggingface, faiss-cpu and txtai:
they are never articleqa's dependencies), from this very file run as a script; this file imports
nothing of articleqa at the top for that reason.

Each worker loads the model first (not timed), then builds (timed), then answers every question
once as a warm-up and once timed. Quality is scored here, the same way for all: a passage is right
when it contains an expected answer phrase (or, for questions without one, comes from an expected
article).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# articleqa-ask answers with the reader; articleqa-ask-no-reader without it (what the reader costs).
SYSTEMS = ("articleqa", "articleqa-ask", "articleqa-ask-no-reader", "langchain-faiss", "txtai-dense", "txtai-hybrid")
K = 5


# -- workers: run in a fresh process, the peers under their own Python ---------------------------


def _work(system: str, config: dict) -> dict:
    articles, questions, model = config["articles"], config["questions"], config["model"]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if system.startswith("articleqa"):
        build, search = _articleqa(articles, model, ask="-ask" in system, reader=not system.endswith("no-reader"))
    elif system == "langchain-faiss":
        build, search = _langchain(articles, model)
    elif system.startswith("txtai"):
        build, search = _txtai(articles, model, hybrid=system == "txtai-hybrid")
    else:
        raise SystemExit(f"unknown system {system!r}")
    start = time.perf_counter()
    passages = build()
    build_s = time.perf_counter() - start
    for q in questions:  # warm-up: caches, lazy imports, first-call costs
        search(q)
    times, found, answers = [], [], []
    for q in questions:
        start = time.perf_counter()
        hits = search(q)
        times.append((time.perf_counter() - start) * 1000)
        if isinstance(hits, dict):  # an answer, with the passages it cites
            hits, answer = hits["hits"], hits["answer"]
            answers.append(answer)
        found.append(hits)
    out = {"system": system, "passages": passages, "build_s": build_s, "latency_ms": times, "hits": found}
    return {**out, "answers": answers} if answers else out


def _articleqa(articles: list[dict], model: str, *, ask: bool, reader: bool = True):
    from dataclasses import replace

    from articleqa.embed.model import SentenceEmbedder
    from articleqa.library import Library
    from articleqa.schema import Article
    from articleqa.settings import Settings

    embedder = SentenceEmbedder(model)
    embedder.count_tokens(["load the tokenizer"])
    embedder.encode(["load the model"])
    embedder.encode_query("load the question encoder")
    settings = Settings()
    settings = replace(settings, answer=replace(settings.answer, reader=reader))
    lib = Library.at(Path(tempfile.mkdtemp(prefix="peers-articleqa-")) / "index", settings, embedder=embedder)
    docs = [Article(id=a["id"], title=a["title"], text=a["text"], source=a["id"]) for a in articles]

    def build() -> int:
        return lib.sync_articles(docs).embedded

    def search(q: str):
        if not ask:
            return [[h.article.id, h.text] for h in lib.search(q, k=K)]
        answer = lib.ask(q, k=K)
        return {"hits": [[h.article.id, h.text] for h in answer.hits], "answer": answer.text if answer.found else ""}

    return build, search


def _langchain(articles: list[dict], model: str):
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = HuggingFaceEmbeddings(model_name=model, encode_kwargs={"normalize_embeddings": True})
    embeddings.embed_query("load the model")
    store = {}

    def build() -> int:
        docs = [Document(page_content=f"{a['title']}\n\n{a['text']}", metadata={"id": a["id"]}) for a in articles]
        splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
        store["faiss"] = FAISS.from_documents(splits, embeddings)
        return len(splits)

    def search(q: str) -> list[list[str]]:
        return [[d.metadata["id"], d.page_content] for d in store["faiss"].similarity_search(q, k=K)]

    return build, search


def _txtai(articles: list[dict], model: str, *, hybrid: bool):
    from txtai import Embeddings

    index = Embeddings(path=model, method="sentence-transformers", content=True, hybrid=hybrid)
    index.batchtransform(["load the model"]) if hasattr(index, "batchtransform") else None

    def build() -> int:
        # Paragraphs, as txtai's own examples index documents; the title goes with each.
        rows = []
        for a in articles:
            for n, para in enumerate(p.strip() for p in a["text"].split("\n\n")):
                if para:
                    rows.append({"id": f"{a['id']}/{n}", "text": f"{a['title']}\n{para}", "article": a["id"]})
        index.index(rows)
        return len(rows)

    def search(q: str) -> list[list[str]]:
        return [[r["id"].rsplit("/", 1)[0], r["text"]] for r in index.search(q, K)]

    return build, search


# -- the driver: articleqa's own Python ------------------------------------------------------------


def run(articles, questions, *, peers_python: str | None, rounds: int = 2, systems=SYSTEMS, log=print) -> dict:
    """Build and query with each system `rounds` times in rotating order; times and quality."""
    from articleqa.embed.model import bundled_model_path

    model = str(bundled_model_path())
    config = {
        "articles": [{"id": a.id, "title": a.title, "text": a.text} for a in articles],
        "questions": [q.question for q in questions],
        "model": model,
    }
    # The systems run in a temporary folder: a relative path to the peers' Python (`make
    # bench-peers` passes .venv-peers/bin/python) is made absolute first, without following the
    # link, which would leave the virtualenv.
    peers_python = os.path.abspath(peers_python) if peers_python else None
    with tempfile.TemporaryDirectory(prefix="articleqa-peers-") as tmp:
        runs = _rounds(Path(tmp), config, peers_python, rounds, systems, log)
    chosen = list(runs)
    results = {s: summarize(runs[s], questions) for s in chosen}
    base = results["articleqa"]
    for entry in results.values():
        entry["ratios_to_articleqa"] = {
            "build_s": round(entry["build_s"] / base["build_s"], 3),
            "p50_ms": round(entry["p50_ms"] / base["p50_ms"], 3),
            "hit@1": round(entry["hit@1"] / base["hit@1"], 3) if base["hit@1"] else None,
        }
    return {"articles": len(articles), "questions": len(questions), "rounds": rounds, "systems": results}


def _rounds(folder: Path, config: dict, peers_python: str | None, rounds: int, systems, log) -> dict[str, list[dict]]:
    """Each chosen system's run records, `rounds` of them, in rotating order, each in a fresh process."""
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    chosen = [s for s in systems if s.startswith("articleqa") or peers_python]
    runs: dict[str, list[dict]] = {s: [] for s in chosen}
    for r in range(rounds):
        order = chosen[r % len(chosen) :] + chosen[: r % len(chosen)]
        for system in order:
            python = sys.executable if system.startswith("articleqa") else peers_python
            out = folder / f"{system}-{r}.json"
            # Run this file as a script without putting its folder on sys.path (its module names,
            # such as milvus.py, would shadow the packages of the same name).
            boot = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
            cmd = [python, "-c", boot, __file__, system, str(folder / "config.json"), str(out)]
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, cwd=folder)
            if proc.returncode != 0:
                raise RuntimeError(f"{system} failed:\n{proc.stderr[-3000:]}")
            runs[system].append(json.loads(out.read_text(encoding="utf-8")))
            last = runs[system][-1]
            log(f"round {r + 1} {system}: build {last['build_s']:.2f} s, p50 {_pct(last['latency_ms'], 50):.2f} ms")
    return runs


def summarize(runs: list[dict], questions) -> dict:
    from articleqa.evaluate import _fold

    latencies = [t for run in runs for t in run["latency_ms"]]
    ranks = []
    for q, hits in zip(questions, runs[0]["hits"], strict=True):
        rank = None
        for n, (article_id, text) in enumerate(hits, start=1):
            if q.answers:
                ok = any(_fold(a) in _fold(text) for a in q.answers)
            else:
                ok = article_id in q.articles
            if ok:
                rank = n
                break
        ranks.append(rank)
    n = len(questions)
    shown = {}
    if runs[0].get("answers"):  # the answer shown holds an expected phrase
        right = [any(_fold(a) in _fold(t) for a in q.answers) for q, t in zip(questions, runs[0]["answers"])]
        shown = {"answer": round(sum(right) / max(sum(bool(q.answers) for q in questions), 1), 4)}
    return {
        **shown,
        "passages": runs[0]["passages"],
        "build_s": round(statistics.median(r["build_s"] for r in runs), 2),
        "build_runs_s": [round(r["build_s"], 2) for r in runs],
        "p50_ms": round(_pct(latencies, 50), 2),
        "p95_ms": round(_pct(latencies, 95), 2),
        "hit@1": round(sum(r == 1 for r in ranks) / n, 4),
        "hit@5": round(sum(r is not None for r in ranks) / n, 4),
        "mrr@5": round(sum(1 / r for r in ranks if r) / n, 4),
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def plot(result: dict, path: Path) -> Path:
    from benchmarks.common import pyplot

    plt = pyplot()

    systems = list(result["systems"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, title in (
        (axes[0], "build_s", "build (s, lower is better)"),
        (axes[1], "p50_ms", "query p50 (ms, lower is better)"),
        (axes[2], "hit@1", "hit@1 (higher is better)"),
    ):
        values = [result["systems"][s][key] for s in systems]
        ax.bar(systems, values, color=["C0" if s.startswith("articleqa") else "grey" for s in systems])
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.3g}", ha="center", va="bottom")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{result['articles']} articles, {result['questions']} questions, same model, same machine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(args) -> int:
    """`python -m benchmarks peers --python PYTHON`: against LangChain FAISS and txtai."""
    from articleqa.errors import ArticleQAError
    from articleqa.evaluate import load_questions
    from articleqa.ingest.files import read_paths
    from articleqa.library import builtin_articles
    from benchmarks.common import machine

    if not args.questions:
        raise ArticleQAError("--peers needs --questions FILE (answers to score every system by)")
    check = subprocess.run([args.python, "-c", "import langchain_community, langchain_huggingface, txtai, faiss"])
    if check.returncode != 0:
        raise ArticleQAError(
            f"{args.python} cannot import the peers: pip install langchain-community langchain-huggingface "
            "langchain-text-splitters faiss-cpu txtai into that environment (never into articleqa's)"
        )
    articles = read_paths(args.articles).articles if args.articles else builtin_articles()
    questions = [q for path in args.questions for q in load_questions(path)]
    result = run(articles, questions, peers_python=args.python, rounds=args.rounds, log=_stderr)
    result["machine"] = machine()
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        plot(result, Path(args.out).with_suffix(".png"))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":  # a worker: SYSTEM CONFIG.json OUT.json
    _system, _config, _out = sys.argv[1:4]
    _result = _work(_system, json.loads(Path(_config).read_text(encoding="utf-8")))
    Path(_out).write_text(json.dumps(_result), encoding="utf-8")
