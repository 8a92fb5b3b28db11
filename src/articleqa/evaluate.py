"""Retrieval quality: question files with expected answers, and BEIR-format data sets."""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from articleqa.errors import ArticleQAError, IndexMismatch
from articleqa.schema import Article, Hit
from articleqa.settings import MODES, Settings
from articleqa.text.sentences import normalize


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...] = ()
    articles: tuple[str, ...] = ()
    history: tuple[str, ...] = ()


@dataclass
class Report:
    """Metrics for one mode on one question set, and the questions it missed."""

    name: str
    mode: str
    metrics: dict[str, float] = field(default_factory=dict)
    missed: list[dict] = field(default_factory=list)


# -- question files ----------------------------------------------------------------------------


def load_questions(path: str | Path) -> list[Question]:
    """JSONL: {"question": ..., "answers": [phrases], "articles": [ids], "history": [...]}."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(
                Question(
                    id=str(row.get("id", n)),
                    question=row["question"],
                    answers=tuple(row.get("answers", ())),
                    articles=tuple(row.get("articles", ())),
                    history=tuple(row.get("history", ())),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ArticleQAError(f"{path}:{n}: not a question line ({exc}); see docs/evaluation.md") from exc
    if not out:
        raise ArticleQAError(f"{path} holds no questions")
    return out


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.translate(str.maketrans("‘’‚‛“”„‟–—", "''''\"\"\"\"--"))
    return re.sub(r"\s+", " ", text).strip()


def is_relevant(hit: Hit, q: Question) -> bool:
    """A passage answers when it contains an expected phrase (or, without phrases, is from an
    expected article)."""
    if q.answers:
        text = _fold(hit.text)
        return any(_fold(a) in text for a in q.answers)
    return hit.article.id in q.articles


def first_relevant(hits: Sequence[Hit], q: Question) -> int | None:
    return next((h.rank for h in hits if is_relevant(h, q)), None)


def evaluate_questions(library, questions: Sequence[Question], *, mode: str, k: int = 10, name: str = "") -> Report:
    """hit@1/3/5, MRR@10 and abstentions, asking each question as a user would."""
    ranks: list[int | None] = []
    abstained: list[str] = []
    shown: list[bool] = []  # the answer shown holds an expected phrase
    report = Report(name=name, mode=mode)
    for q in questions:
        answer = library.ask(q.question, k=k, mode=mode, history=q.history)
        rank = first_relevant(answer.hits, q)
        ranks.append(rank)
        shown.append(bool(q.answers) and answer.found and any(_fold(a) in _fold(answer.text) for a in q.answers))
        if not answer.found:
            abstained.append(q.id)
        if rank != 1:
            top = answer.hits[0].text[:100] if answer.hits else ""
            report.missed.append({"id": q.id, "question": q.question, "rank": rank, "top": top})
    n = len(questions)
    report.metrics = {
        "questions": n,
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@3": sum(r is not None and r <= 3 for r in ranks) / n,
        "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "mrr@10": sum(1 / r for r in ranks if r is not None and r <= 10) / n,
        "abstained": len(abstained),
    }
    if any(q.answers for q in questions):
        top = [i for i, r in enumerate(ranks) if r == 1]
        report.metrics["answer"] = sum(shown) / n
        report.metrics["answer_when_top"] = sum(shown[i] for i in top) / len(top) if top else 0.0
    return report


def evaluate_offtopic(library, questions: Sequence[Question], *, mode: str, name: str = "") -> Report:
    """Every question here should abstain; reports how many did."""
    report = Report(name=name, mode=mode)
    answered = 0
    for q in questions:
        answer = library.ask(q.question, mode=mode)
        if answer.found:
            answered += 1
            report.missed.append({"id": q.id, "question": q.question, "confidence": answer.confidence})
    report.metrics = {"questions": len(questions), "abstained": len(questions) - answered, "answered": answered}
    return report


# -- BEIR --------------------------------------------------------------------------------------


def load_beir(
    folder: str | Path, split: str = "test"
) -> tuple[list[Article], dict[str, str], dict[str, dict[str, int]]]:
    folder = Path(folder)
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / name).exists():
            raise ArticleQAError(f"{folder} is not a BEIR folder: {name} is missing")
    articles = []
    with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            text = normalize(row.get("text") or "")
            if text:
                articles.append(
                    Article(
                        id=str(row["_id"]),
                        title=(row.get("title") or "").strip(),
                        text=text,
                        source=f"beir:{row['_id']}",
                    )
                )
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate((folder / f"qrels/{split}.tsv").read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if n == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        qid, did, score = parts[0], parts[1], int(parts[2])
        qrels.setdefault(qid, {})[did] = score
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if str(row["_id"]) in qrels:
                queries[str(row["_id"])] = row["text"]
    return articles, queries, qrels


def beir_library(
    folder: str | Path, *, cache_dir: str | Path | None = None, settings: Settings | None = None, progress=True
):
    """A Library over a BEIR corpus, cached by model, chunker and corpus content."""
    from articleqa.embed.model import canonical_name
    from articleqa.library import Library
    from articleqa.settings import data_home

    settings = settings or Settings()
    articles, queries, qrels = load_beir(folder)
    digest = hashlib.sha256()
    for a in articles:
        digest.update(a.id.encode() + b"\x00" + a.content_hash.encode())
    key = json.dumps([canonical_name(settings.model), settings.chunker.as_dict(), digest.hexdigest()])
    name = f"{Path(folder).resolve().name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    cache = Path(cache_dir) if cache_dir else data_home() / "cache" / "beir"
    try:
        lib = Library.at(cache / name, settings)
    except IndexMismatch:  # a cache from another version: start it again
        lib = Library.at(cache / name, settings, rebuild=True)
    if len(lib.index.articles) != len(articles) or lib.index.removed:
        lib.sync_articles(articles, progress=_stderr_progress if progress else None)
    return lib, queries, qrels


def _stderr_progress(fraction: float, message: str) -> None:
    print(f"\r[{fraction:5.0%}] {message}", end="", file=sys.stderr, flush=True)
    if fraction >= 1:
        print(file=sys.stderr)


def run_beir(library, queries: dict[str, str], *, mode: str, k: int = 100) -> dict[str, dict[str, float]]:
    """Document rankings: each article scored by its best passage."""
    run: dict[str, dict[str, float]] = {}
    for qid, text in queries.items():
        hits = library.search(text, k=k, mode=mode, per_article=1)
        n = len(hits)
        # Rank-derived scores keep ties out of the metric code's hands.
        run[qid] = {h.article.id: float(n - i) for i, h in enumerate(hits)}
    return run


def ndcg_at(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], k: int) -> float:
    """Mean nDCG@k (graded gains, log2 discount), as trec_eval computes it."""
    total = 0.0
    for qid, rels in qrels.items():
        ranked = sorted(run.get(qid, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        dcg = sum(rels.get(doc, 0) / math.log2(i + 2) for i, (doc, _) in enumerate(ranked))
        ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        total += dcg / idcg if idcg else 0.0
    return total / len(qrels)


def recall_at(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], k: int) -> float:
    total = 0.0
    for qid, rels in qrels.items():
        relevant = {d for d, g in rels.items() if g > 0}
        ranked = [d for d, _ in sorted(run.get(qid, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
        total += len(relevant & set(ranked)) / len(relevant) if relevant else 0.0
    return total / len(qrels)


def mrr_at(run, qrels, k: int) -> float:
    total = 0.0
    for qid, rels in qrels.items():
        ranked = [d for d, _ in sorted(run.get(qid, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
        total += next((1 / (i + 1) for i, d in enumerate(ranked) if rels.get(d, 0) > 0), 0.0)
    return total / len(qrels)


def beir_metrics(run, qrels) -> dict[str, float]:
    return {
        "queries": len(qrels),
        "ndcg@10": ndcg_at(run, qrels, 10),
        "mrr@10": mrr_at(run, qrels, 10),
        "recall@100": recall_at(run, qrels, 100),
    }


# -- command line ------------------------------------------------------------------------------


def run_cli(args) -> int:
    from articleqa.library import existing

    path = Path(args.path)
    modes = list(MODES) if args.all_modes else [args.mode or Settings().mode]
    reports: list[Report] = []
    if path.is_dir():
        settings = Settings().on_store(getattr(args, "store", None))
        lib, queries, qrels = beir_library(path, cache_dir=args.cache_dir, settings=settings)
        if args.limit:
            queries = dict(list(queries.items())[: args.limit])
            qrels = {q: qrels[q] for q in queries}
        for mode in modes:
            run = run_beir(lib, queries, mode=mode)
            report = Report(name=path.name, mode=mode, metrics=beir_metrics(run, qrels))
            for qid in qrels:
                ranked = sorted(run.get(qid, {}), key=lambda d: -run[qid][d])[:10]
                if not any(qrels[qid].get(d, 0) > 0 for d in ranked):
                    report.missed.append({"id": qid, "question": queries[qid]})
            reports.append(report)
    elif path.is_file():
        lib = existing(args.index_dir, store=getattr(args, "store", None))
        questions = load_questions(path)[: args.limit]
        for mode in modes:
            reports.append(evaluate_questions(lib, questions, mode=mode, name=path.stem))
            if args.offtopic:
                reports.append(evaluate_offtopic(lib, load_questions(args.offtopic), mode=mode, name="offtopic"))
    else:
        raise ArticleQAError(f"{path} is neither a question file nor a BEIR folder")
    summary: dict[str, dict] = {}
    for r in reports:
        print(f"== {r.name} [{r.mode}]")
        for key, value in r.metrics.items():
            print(f"  {key:<11} {value:.4f}" if isinstance(value, float) else f"  {key:<11} {value}")
        if r.missed:
            print(f"  missed ({len(r.missed)}):")
            for m in r.missed[:25]:
                print("   - " + " | ".join(f"{k}={v}" for k, v in m.items()))
        summary[f"{r.name}:{r.mode}" if len(reports) > 1 else "_"] = r.metrics
    if args.json:
        print(json.dumps(summary["_"] if "_" in summary else summary))
    return 0
