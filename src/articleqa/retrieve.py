"""Query -> ranked Hits: dense and BM25 candidates, fusion, duplicate suppression, per-article cap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ArticleQAError
from .index import Index
from .schema import Hit
from .settings import MODES, Settings

RRF_K = 60


@dataclass(frozen=True)
class Candidate:
    """One passage row with the evidence from each retriever."""

    row: int
    score: float
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ArticleQAError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


def dense_candidates(index: Index, query_vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    scores, rows = index.store.search(query_vector.reshape(1, -1), n)
    keep = rows[0] >= 0
    return scores[0][keep], rows[0][keep]


def fuse(
    dense: tuple[np.ndarray, np.ndarray],
    lexical: tuple[np.ndarray, np.ndarray],
    *,
    method: str = "weighted",
    dense_weight: float = 0.5,
) -> list[Candidate]:
    """Merge two ranked lists (scores, rows), best first.

    `weighted`: min-max normalize each list's scores to [0, 1], then a weighted sum; a row
    missing from one list scores 0 on that side. `rrf`: reciprocal rank fusion, 1 / (60 + rank).
    """
    d_scores, d_rows = dense
    l_scores, l_rows = lexical
    d_rank = {int(r): i + 1 for i, r in enumerate(d_rows)}
    l_rank = {int(r): i + 1 for i, r in enumerate(l_rows)}
    d_val = {int(r): float(s) for r, s in zip(d_rows, d_scores)}
    l_val = {int(r): float(s) for r, s in zip(l_rows, l_scores)}
    d_norm = _minmax(d_val)
    l_norm = _minmax(l_val)
    fused: list[Candidate] = []
    for row in dict.fromkeys([*d_rank, *l_rank]):
        if method == "rrf":
            score = sum(1.0 / (RRF_K + r[row]) for r in (d_rank, l_rank) if row in r)
        elif method == "weighted":
            score = dense_weight * d_norm.get(row, 0.0) + (1 - dense_weight) * l_norm.get(row, 0.0)
        else:
            raise ArticleQAError(f"unknown fusion {method!r}: use 'weighted' or 'rrf'")
        fused.append(Candidate(row, score, d_rank.get(row), d_val.get(row), l_rank.get(row), l_val.get(row)))
    fused.sort(key=lambda c: (-c.score, c.row))
    return fused


def _minmax(values: dict[int, float]) -> dict[int, float]:
    if not values:
        return {}
    lo, hi = min(values.values()), max(values.values())
    if hi - lo < 1e-9:
        return {k: 1.0 for k in values}
    return {k: (v - lo) / (hi - lo) for k, v in values.items()}


def single(scores: np.ndarray, rows: np.ndarray, side: str) -> list[Candidate]:
    out = []
    for i, (s, r) in enumerate(zip(scores, rows)):
        kw = {f"{side}_rank": i + 1, f"{side}_score": float(s)}
        out.append(Candidate(int(r), float(s), **kw))
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
) -> list[Hit]:
    """Rank passages for a query. `query_vector` may be None only in lexical mode."""
    check_mode(mode)
    n = max(settings.candidates, 3 * k)
    if mode == "lexical":
        candidates = single(*index.lexical.search(query, n), "lexical")
    elif mode == "dense":
        candidates = single(*dense_candidates(index, query_vector, n), "dense")
    else:
        candidates = fuse(
            dense_candidates(index, query_vector, n),
            index.lexical.search(query, n),
            method=settings.fusion,
            dense_weight=settings.dense_weight,
        )
    cap = settings.per_article if per_article is None else per_article
    picked = diversify(index, candidates, k=k, per_article=cap)
    return [_hit(index, c, rank) for rank, c in enumerate(picked, start=1)]


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
    )
