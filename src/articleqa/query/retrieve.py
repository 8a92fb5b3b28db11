"""Query -> ranked Hits: dense and BM25 candidates, scored also by best sentence and token MaxSim,
fused, then duplicate suppression and a per-article cap."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from articleqa.errors import ArticleQAError
from articleqa.index.snapshot import Index
from articleqa.runtime.threads import single_threaded
from articleqa.runtime.timing import stage
from articleqa.schema import Hit
from articleqa.settings import MODES, Settings

Span = tuple[str, int, int]  # a passage's article id, start and end
# The keyword side of a hybrid search runs beside the vector search: FAISS lets go of the GIL, so
# on two cores a question waits for the slower of the two, not for both (docs/benchmarks.md).
# Two workers, so one slow question does not queue the next.
_KEYWORDS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="articleqa-keywords")


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
    """One passage (by key) with the evidence from each signal."""

    key: int
    score: float
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    sentence_score: float | None = None
    token_score: float | None = None


# Old names of modes, accepted everywhere a mode is named.
_ALIASES = {"lexical": "keyword"}


def check_mode(mode: str) -> str:
    mode = _ALIASES.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in MODES:
        raise ArticleQAError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


def fuse(
    signals: dict[str, dict[int, float]],
    weights: dict[str, float] | None = None,
    *,
    method: str = "zscore",
    rrf_k: int = Settings.rrf_k,
) -> list[Candidate]:
    """Merge the scores several signals give the same candidate passages into one ranking, best first.

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
            fused += weights.get(name, 1.0) * np.array([1.0 / (rrf_k + ranks[name].get(r, big)) for r in rows])
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
    out.sort(key=lambda c: (-c.score, c.key))
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
    with single_threaded():
        return _search(index, query, query_vector, k, mode, settings, per_article, query_tokens)


def _search(index, query, query_vector, k, mode, settings, per_article, query_tokens) -> list[Hit]:
    n = max(settings.candidates, 3 * k)
    if mode == "keyword":
        with stage("lexical"):
            candidates = fuse({"lexical": _as_dict(*index.lexical_scores(query).top(n))})
    else:
        keywords = None
        if mode == "hybrid":  # the timings' context goes along, so a benchmark still sees the stage
            keywords = _KEYWORDS.submit(contextvars.copy_context().run, _keyword_candidates, index, query, n)
        with stage("dense"):
            dense = _as_dict(*index.dense_search(query_vector, n))
        if keywords is None:
            candidates = fuse({"dense": dense})
        else:
            lexical, lexical_keys = keywords.result()
            # Score every candidate on every signal, so fusion compares like with like.
            with stage("dense"):
                extra = [int(key) for key in lexical_keys if int(key) not in dense]
                dense.update(_as_dict(index.dense_scores(query_vector, extra), extra))
            keys = list(dense)
            # Only passages that match a query term have a keyword score (and rank).
            signals = {"dense": dense, "lexical": {k_: float(s) for k_, s in zip(keys, lexical.of(keys)) if s > 0}}
            with stage("rerank"):
                if settings.sentence_weight > 0:
                    signals["sentence"] = _as_dict(index.best_sentence(query_vector, keys), keys)
                if settings.token_weight > 0 and query_tokens is not None and len(query_tokens):
                    signals["token"] = _as_dict(index.maxsim(query_tokens, keys), keys)
            with stage("fusion"):
                candidates = fuse(signals, weights_for(settings), method=settings.fusion, rrf_k=settings.rrf_k)
    cap = settings.per_article if per_article is None else per_article
    with stage("fusion"):
        spans = index.spans([c.key for c in candidates])
        if per_article is None and len({spans[c.key][0] for c in candidates[: 2 * k]}) < settings.competing_articles:
            cap = 0  # one or two articles hold the best candidates: let the best one go deep
        picked = diversify(spans, candidates, k=k, per_article=cap)
        chunks = index.chunks_at([c.key for c in picked])
        return [_hit(index, c, chunk, rank) for rank, (c, chunk) in enumerate(zip(picked, chunks), start=1)]


def _keyword_candidates(index: Index, query: str, n: int):
    with stage("lexical"):
        lexical = index.lexical_scores(query)
        return lexical, lexical.top(n)[1]


def _as_dict(scores, keys) -> dict[int, float]:
    return {int(r): float(s) for s, r in zip(scores, keys) if r >= 0}


def diversify(spans: Mapping[int, Span], candidates: list[Candidate], *, k: int, per_article: int) -> list[Candidate]:
    """Drop passages that mostly repeat a better one; past `per_article` passages from one
    article, further ones wait until every other article's candidates have been offered.
    `spans` gives each candidate's (article id, start, end)."""
    kept: list[Candidate] = []
    waiting: list[Candidate] = []
    per: dict[str, int] = {}
    for cand in candidates:
        span = spans[cand.key]
        if any(_overlap(span, spans[o.key]) > 0.5 for o in kept + waiting):
            continue
        if per.get(span[0], 0) >= per_article > 0:
            waiting.append(cand)
            continue
        per[span[0]] = per.get(span[0], 0) + 1
        kept.append(cand)
        if len(kept) >= k:
            break
    return (kept + waiting)[:k]


def _overlap(a: Span, b: Span) -> float:
    """Shared characters as a fraction of the shorter passage (same article only)."""
    if a[0] != b[0]:
        return 0.0
    shared = min(a[2], b[2]) - max(a[1], b[1])
    return max(0, shared) / max(1, min(a[2] - a[1], b[2] - b[1]))


def _hit(index: Index, c: Candidate, chunk, rank: int) -> Hit:
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
