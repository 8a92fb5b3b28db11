"""Query -> ranked Hits: dense and BM25 candidates, scored also by best sentence and token MaxSim,
fused, then duplicate suppression and a per-article cap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ArticleQAError
from .index import Index
from .lexical import top
from .schema import Hit
from .settings import MODES, Settings
from .timing import stage

RRF_K = 60


def weights_for(settings: Settings) -> dict[str, float]:
    """The weight of each signal in the hybrid fusion (docs/retrieval.md)."""
    return {
        "dense": settings.dense_weight,
        "lexical": settings.lexical_weight,
        "sentence": settings.sentence_weight,
        "token": settings.token_weight,
    }


@dataclass(frozen=True)
class Candidate:
    """One passage row with the evidence from each signal."""

    row: int
    score: float
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    sentence_score: float | None = None
    token_score: float | None = None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ArticleQAError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


def fuse(
    signals: dict[str, dict[int, float]],
    weights: dict[str, float] | None = None,
    *,
    method: str = "zscore",
) -> list[Candidate]:
    """Merge the scores several signals give the same candidate rows into one ranking, best first.

    Signals: "dense" and "lexical" (the two retrievers: their rows are the candidates),
    "sentence" (best sentence's similarity) and "token" (late-interaction MaxSim).
    `zscore` (default, chosen by measurement, docs/retrieval.md): standardize each signal over the
    candidates, then a weighted sum. `minmax`: scale each to [0, 1], then a weighted sum. `rrf`:
    weighted reciprocal rank fusion, w / (60 + rank) summed. A row the dense side did not return
    gets its lowest score; a row with no keyword match scores 0 on the keyword side. With one
    signal alone, its own scores are kept.
    """
    weights = weights or {}
    present = {name: scores for name, scores in signals.items() if scores}
    rows = list(dict.fromkeys([*signals.get("dense", {}), *signals.get("lexical", {})]))
    ranks = {name: _ranks(scores) for name, scores in present.items()}
    filled = {
        name: _filled(scores, rows, 0.0 if name == "lexical" else min(scores.values()))
        for name, scores in present.items()
    }
    if len(present) <= 1:
        fused = next(iter(filled.values()), np.zeros(len(rows)))
    elif method == "rrf":
        big = len(rows) + 1
        fused = np.zeros(len(rows))
        for name in present:
            fused += weights.get(name, 1.0) * np.array([1.0 / (RRF_K + ranks[name].get(r, big)) for r in rows])
    elif method in ("zscore", "minmax"):
        norm = _zscore if method == "zscore" else _minmax
        fused = sum((weights.get(name, 1.0) * norm(filled[name]) for name in present), np.zeros(len(rows)))
    else:
        raise ArticleQAError(f"unknown fusion {method!r}: use 'zscore', 'minmax' or 'rrf'")
    dense, lexical = signals.get("dense", {}), signals.get("lexical", {})
    sentence, token = signals.get("sentence", {}), signals.get("token", {})
    out = [
        Candidate(
            r,
            float(f),
            ranks.get("dense", {}).get(r),
            dense.get(r),
            ranks.get("lexical", {}).get(r),
            lexical.get(r),
            sentence.get(r),
            token.get(r),
        )
        for r, f in zip(rows, fused)
    ]
    out.sort(key=lambda c: (-c.score, c.row))
    return out


def _ranks(scores: dict[int, float]) -> dict[int, int]:
    order = sorted(scores, key=lambda r: (-scores[r], r))
    return {r: i + 1 for i, r in enumerate(order)}


def _filled(scores: dict[int, float], rows: list[int], floor: float) -> np.ndarray:
    return np.array([scores.get(r, floor) for r in rows], dtype=np.float64)


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 1e-9 else np.zeros_like(x)


def _minmax(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min() if len(x) else 0.0
    return (x - x.min()) / span if span > 1e-9 else np.ones_like(x)


def best_sentence(index: Index, rows: Sequence[int], query_vector: np.ndarray) -> dict[int, float]:
    """Each row's best single sentence similarity: a passage vector blurs several sentences
    together, while the question is usually answered by one of them."""
    out = {}
    for r in rows:
        _, vectors = index.sentences_of(index.chunks[r])
        out[r] = float((vectors @ query_vector).max()) if len(vectors) else -1.0
    return out


def search_index(
    index: Index,
    query: str,
    query_vector: np.ndarray | None,
    *,
    k: int,
    mode: str,
    settings: Settings,
    per_article: int | None = None,
    query_tokens: np.ndarray | None = None,
) -> list[Hit]:
    """Rank passages for a query. `query_vector` may be None only in lexical mode;
    `query_tokens` (the question's content token vectors) feed the late-interaction signal."""
    check_mode(mode)
    n = max(settings.candidates, 3 * k)
    if mode == "lexical":
        with stage("lexical"):
            candidates = fuse({"lexical": _as_dict(*index.lexical.search(query, n))})
    else:
        with stage("dense"):
            d_scores, d_rows = index.store.search(query_vector.reshape(1, -1), n)
            dense = _as_dict(d_scores[0], d_rows[0])
        if mode == "dense":
            candidates = fuse({"dense": dense})
        else:
            with stage("lexical"):
                all_lexical = index.lexical.scores(query)
                _, lexical_rows = top(all_lexical, n)
            # Score every candidate on every signal, so fusion compares like with like.
            with stage("dense"):
                extra = [r for r in lexical_rows if int(r) not in dense]
                dense.update(_as_dict(index.store.score(query_vector, extra), extra))
            rows = list(dense)
            # Only rows that match a query term have a keyword score (and rank).
            signals = {"dense": dense, "lexical": {r: float(all_lexical[r]) for r in rows if all_lexical[r] > 0}}
            with stage("rerank"):
                if settings.sentence_weight > 0:
                    signals["sentence"] = best_sentence(index, rows, query_vector)
                if settings.token_weight > 0 and query_tokens is not None and len(query_tokens):
                    signals["token"] = dict(zip(rows, map(float, index.tokens.maxsim(query_tokens, rows))))
            with stage("fusion"):
                candidates = fuse(signals, weights_for(settings), method=settings.fusion)
    cap = settings.per_article if per_article is None else per_article
    with stage("fusion"):
        picked = diversify(index, candidates, k=k, per_article=cap)
        return [_hit(index, c, rank) for rank, c in enumerate(picked, start=1)]


def _as_dict(scores, rows) -> dict[int, float]:
    return {int(r): float(s) for s, r in zip(scores, rows) if r >= 0}


def diversify(index: Index, candidates: list[Candidate], *, k: int, per_article: int) -> list[Candidate]:
    """Drop passages that mostly repeat a better one; past `per_article` passages from one
    article, further ones wait until every other article's candidates have been offered."""
    kept: list[Candidate] = []
    waiting: list[Candidate] = []
    per: dict[str, int] = {}
    for cand in candidates:
        chunk = index.chunks[cand.row]
        if any(_overlap(chunk, index.chunks[o.row]) > 0.5 for o in kept + waiting):
            continue
        if per.get(chunk.article_id, 0) >= per_article > 0:
            waiting.append(cand)
            continue
        per[chunk.article_id] = per.get(chunk.article_id, 0) + 1
        kept.append(cand)
        if len(kept) >= k:
            break
    return (kept + waiting)[:k]


def _overlap(a, b) -> float:
    """Shared characters as a fraction of the shorter passage (same article only)."""
    if a.article_id != b.article_id:
        return 0.0
    shared = min(a.end, b.end) - max(a.start, b.start)
    return max(0, shared) / max(1, min(a.end - a.start, b.end - b.start))


def _hit(index: Index, c: Candidate, rank: int) -> Hit:
    chunk = index.chunks[c.row]
    return Hit(
        chunk=chunk,
        article=index.articles[chunk.article_id],
        score=round(float(c.score), 6),
        rank=rank,
        dense_rank=c.dense_rank,
        dense_score=None if c.dense_score is None else round(c.dense_score, 6),
        lexical_rank=c.lexical_rank,
        lexical_score=None if c.lexical_score is None else round(c.lexical_score, 6),
        sentence_score=None if c.sentence_score is None else round(c.sentence_score, 6),
        token_score=None if c.token_score is None else round(c.token_score, 6),
    )
