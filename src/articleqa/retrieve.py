"""Query -> ranked Hits: dense and BM25 candidates, fusion, duplicate suppression, per-article cap."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .errors import ArticleQAError
from .index import Index
from .lexical import content_terms, top
from .schema import Hit
from .settings import MODES, Settings
from .timing import stage

RRF_K = 60


def dense_weight_for(query: str, settings: Settings) -> float:
    """Keyword queries ("Khalifian", "Sophia Moradi") lean on BM25: the model knows little about a
    bare name, while an exact match is decisive. Questions use the measured default."""
    keyword_query = len(content_terms(query)) <= 2
    return settings.keyword_dense_weight if keyword_query else settings.dense_weight


@dataclass(frozen=True)
class Candidate:
    """One passage row with the evidence from each retriever."""

    row: int
    score: float
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None


# Rows -> for each row, its sentence spans and their unit vectors (computed once, cached).
SentenceVectors = Callable[[Sequence[int]], list[tuple[list[tuple[int, int]], np.ndarray]]]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ArticleQAError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


def fuse(
    dense: dict[int, float],
    lexical: dict[int, float],
    *,
    method: str = "zscore",
    dense_weight: float = 0.5,
) -> list[Candidate]:
    """Merge dense and lexical scores of the same candidate rows into one ranking, best first.

    `zscore` (default, chosen by measurement, docs/retrieval.md): standardize each side over the
    candidates, then a weighted sum. `minmax`: scale each side to [0, 1], then a weighted sum.
    `rrf`: reciprocal rank fusion, 1 / (60 + rank) summed. A row the dense side did not return gets
    the lowest dense score; a row with no keyword match scores 0 on the keyword side.
    """
    rows = list(dict.fromkeys([*dense, *lexical]))
    d_rank = _ranks(dense)
    l_rank = _ranks(lexical)
    d = _filled(dense, rows, min(dense.values(), default=0.0))
    lx = _filled(lexical, rows, 0.0)
    if not lexical or not dense:  # one retriever alone: keep its own scores
        fused = list(d if dense else lx)
    elif method == "rrf":
        big = len(rows) + 1
        fused = [1.0 / (RRF_K + d_rank.get(r, big)) + 1.0 / (RRF_K + l_rank.get(r, big)) for r in rows]
    elif method in ("zscore", "minmax"):
        norm = _zscore if method == "zscore" else _minmax
        fused = list(dense_weight * norm(d) + (1 - dense_weight) * norm(lx))
    else:
        raise ArticleQAError(f"unknown fusion {method!r}: use 'zscore', 'minmax' or 'rrf'")
    out = [
        Candidate(r, float(f), d_rank.get(r), dense.get(r), l_rank.get(r), lexical.get(r)) for r, f in zip(rows, fused)
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


def rerank_by_sentence(
    candidates: list[Candidate],
    query_vector: np.ndarray,
    sentences: SentenceVectors,
    *,
    depth: int,
    weight: float,
) -> list[Candidate]:
    """Re-score the top `depth` candidates with their best single sentence's similarity.

    A passage's vector blurs several sentences together; the question is usually answered by
    one of them, so a passage holding one very close sentence moves up.
    """
    head, tail = candidates[:depth], candidates[depth:]
    if len(head) < 2 or weight <= 0:
        return candidates
    best = np.array(
        [float((vecs @ query_vector).max()) if len(vecs) else -1.0 for _, vecs in sentences([c.row for c in head])]
    )
    bonus = weight * _zscore(best)
    head = [replace(c, score=c.score + float(b)) for c, b in zip(head, bonus)]
    head.sort(key=lambda c: (-c.score, c.row))
    return head + tail


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
        with stage("lexical"):
            candidates = fuse({}, _as_dict(*index.lexical.search(query, n)))
    else:
        with stage("dense"):
            d_scores, d_rows = index.store.search(query_vector.reshape(1, -1), n)
            dense = _as_dict(d_scores[0], d_rows[0])
        if mode == "dense":
            candidates = fuse(dense, {})
        else:
            with stage("lexical"):
                all_lexical = index.lexical.scores(query)
                _, lexical_rows = top(all_lexical, n)
            # Score every candidate on both sides, so fusion compares like with like.
            with stage("dense"):
                extra = [r for r in lexical_rows if int(r) not in dense]
                dense.update(_as_dict(index.store.score(query_vector, extra), extra))
            # Only rows that match a query term have a keyword score (and rank).
            lex = {r: float(all_lexical[r]) for r in dense if all_lexical[r] > 0}
            with stage("fusion"):
                weight = dense_weight_for(query, settings)
                candidates = fuse(dense, lex, method=settings.fusion, dense_weight=weight)
            if settings.sentence_weight > 0:
                with stage("rerank"):
                    candidates = rerank_by_sentence(
                        candidates,
                        query_vector,
                        lambda rows: [index.sentences_of(index.chunks[r]) for r in rows],
                        depth=settings.rerank_depth,
                        weight=settings.sentence_weight,
                    )
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
    )
