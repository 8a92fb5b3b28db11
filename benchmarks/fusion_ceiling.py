"""How high can passage hit@1 on the Rhine set go by weighting the signals this model gives?

Reproduces docs/evaluation.md, "How far the fusion goes". It builds two indexes (the Rhine
article with the built-in articles as distractors, and the built-in articles alone), asks every
question once through `Library.ask`, keeps the raw signals of every candidate passage (the four
the fusion uses, plus three more computed here), and re-fuses them offline:

- the default weights (these rows reproduce `articleqa eval`'s hit@1);
- how many questions no single signal ranks a right passage first for;
- the best weights fitted on the Rhine questions themselves (a ceiling, not a setting: it fits
  the test set), and what they cost the built-in and blind sets;
- the weights that lose no question on the built-in, blind and follow-up sets, best on the Rhine
  set first, each scored on SciFact too with `--scifact` (its index is cached where `articleqa
  eval` caches BEIR indexes; the first build takes about 10 minutes).

Run from the repository root: `.venv/bin/python docs/experiments/fusion_ceiling.py [--scifact]`
(about a minute on 2 cores without SciFact).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from articleqa import library
from articleqa.evaluate import beir_library, is_relevant, load_questions
from articleqa.query import retrieve
from articleqa.query.answer import highlight as answer
from articleqa.schema import Hit
from articleqa.settings import AnswerSettings, Settings
from articleqa.text.lexical import tokenize

RHINE = Path("../shared/benchmarks/squad-rhine")
SCIFACT = Path("../shared/benchmarks/scifact")
SIGNALS = ["dense", "lexical", "sentence", "token", "sentence_terms", "token_idf", "typed_sentence"]
BEFORE = np.array([0.4, 0.6, 0.4, 1.0, 0, 0, 0])  # the default weights before this measurement


class Signals:
    """Keeps the signals `retrieve.fuse` is given while a question is asked."""

    def __enter__(self):
        self.fuse, self.last = retrieve.fuse, None

        def keep(signals, weights=None, **kw):
            self.last = signals
            return self.fuse(signals, weights, **kw)

        retrieve.fuse = keep
        return self

    def __exit__(self, *exc):
        retrieve.fuse = self.fuse


def zscored(signals: dict, names=SIGNALS[:4]) -> tuple[list[int], list[np.ndarray]]:
    """The candidates (keys) and each named signal z-scored over them, as the fusion sees them."""
    rows = list(dict.fromkeys([*signals.get("dense", {}), *signals.get("lexical", {})]))
    columns = []
    for name in names:
        scores = signals.get(name) or {}
        floor = 0.0 if name == "lexical" else min(scores.values(), default=0.0)
        columns.append(retrieve._zscore(retrieve._filled(scores, rows, floor)))
    return rows, columns


def capture(lib: library.Library, questions) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per question: its candidates' signals (one row each, z-scored) and their relevance."""
    out = []
    with Signals() as seen:
        for q in questions:
            asked = lib.ask(q.question, k=10, history=q.history)
            out.append(_features(lib, q, asked.query, seen.last))
    return out


def _features(lib, q, query, signals):
    index = lib.index
    rows, columns = zscored(signals)
    chunks = index.chunks_at(rows)
    hits = [Hit(chunk=c, article=index.articles[c.article_id], score=0, rank=1) for c in chunks]
    relevant = np.array([is_relevant(h, q) for h in hits])
    # Three more: the best sentence's idf-weighted share of the question's terms; token MaxSim with
    # each question word piece weighted by its word's idf; the best sentence's cosine plus the
    # highlight's answer-type bonus (a date for "when", a number for "how many", ...).
    vector, tokens = lib._encode_query(query)
    terms = set(tokenize([query])[0])
    idf = {t: _idf(index, t) for t in terms}
    total = sum(idf.values()) or 1.0
    words = lib.embedder.content_words(query)
    piece_idf = np.array([max((_idf(index, t) for t in tokenize([w])[0]), default=0.0) for w in words])
    wanted = answer.answer_type(q.question)
    extra = []
    for chunk in chunks:
        spans, vectors = index.sentences_of(chunk)
        sentences = [chunk.text[a:b] for a, b in spans]
        share = max((sum(idf[t] for t in terms & set(s)) / total for s in tokenize(sentences)), default=0.0)
        pieces = index.token_vectors(chunk.key)
        pieces = pieces / np.maximum(np.linalg.norm(pieces, axis=1, keepdims=True), 1e-9)
        best = (tokens @ pieces.T).max(axis=1) if len(pieces) and len(tokens) else np.zeros(len(tokens))
        lined_up = len(best) == len(piece_idf) and piece_idf.sum() > 0
        weighted = float((best * piece_idf).sum() / piece_idf.sum()) if lined_up else 0.0
        bonus = [AnswerSettings().type_weight if wanted is not None and wanted.search(s) else 0.0 for s in sentences]
        typed = max((float(c) + b for c, b in zip(vectors @ vector, bonus)), default=0.0) if spans else 0.0
        extra.append((share, weighted, typed))
    columns.extend(retrieve._zscore(np.array(col, np.float64)) for col in zip(*extra))
    return np.array(columns).T, relevant


def _idf(index, term: str) -> float:
    df = sum(len(f[0]) for f in index.lexical._live_postings(term) if f is not None)
    n = index.lexical.size
    return float(np.log(1 + (n - df + 0.5) / (df + 0.5))) if df else float(np.log(1 + n))


def hit1(questions, weights) -> float:
    return sum(relevant[int(np.argmax(z @ weights))] for z, relevant in questions) / len(questions)


def scifact_ndcg():
    """nDCG@10 on SciFact for given weights of the four signals (documents ranked by their best
    passage, as `articleqa eval` ranks them)."""
    lib, queries, qrels = beir_library(SCIFACT, progress=False)
    captured = []
    with Signals() as seen:
        for qid, text in queries.items():
            lib.search(text, k=100, per_article=1)
            rows, columns = zscored(seen.last)
            articles = [lib.index.spans([key])[key][0] for key in rows]
            captured.append((qid, np.array(columns).T, articles, rows))

    def ndcg(weights) -> float:
        total = 0.0
        for qid, z, articles, rows in captured:
            fused = z @ weights[:4]
            ranked: list[str] = []
            for i in sorted(range(len(rows)), key=lambda i: (-fused[i], rows[i])):
                if articles[i] not in ranked:
                    ranked.append(articles[i])
            gains = qrels[qid]
            dcg = sum(gains.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:10]))
            ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:10]
            total += dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        return total / len(captured)

    return ndcg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scifact", action="store_true", help="score the no-loss weights on SciFact too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = str(library.CORPUS)
        rhine = library.open([corpus, str(RHINE / "articles")], index_dir=Path(tmp) / "rhine")
        builtin = library.open([corpus], index_dir=Path(tmp) / "builtin")
        sets = {
            "rhine": capture(rhine, load_questions(RHINE / "questions.jsonl")),
            "builtin": capture(builtin, load_questions("tests/data/questions.jsonl")),
            "blind": capture(builtin, load_questions("tests/data/blind-questions.jsonl")),
            "followups": capture(builtin, load_questions("tests/data/followups.jsonl")),
        }
    for label, weights in (("weights before", BEFORE), ("default weights", _default())):
        print(f"{label}:", " ".join(f"{n} {hit1(qs, weights):.3f}" for n, qs in sets.items()))
    for name, qs in sets.items():
        alone = Counter(tuple(bool(rel[int(np.argmax(z[:, i]))]) for i in range(len(SIGNALS))) for z, rel in qs)
        none = sum(n for pattern, n in alone.items() if not any(pattern))
        print(f"{name}: {none} of {len(qs)} questions have no signal that ranks a right passage first")

    rng = np.random.default_rng(0)
    grid = np.round(np.arange(0, 2.01, 0.1), 2)
    tried = [np.array([d, k, s, 1.0, 0, 0, 0]) for d in grid for k in grid for s in grid]
    tried += [rng.uniform(0, 1.5, len(SIGNALS)) * (rng.uniform(size=len(SIGNALS)) < 0.8) for _ in range(6000)]
    scored = sorted(((hit1(sets["rhine"], w), i) for i, w in enumerate(tried)), reverse=True)
    four = next(i for _, i in scored if not tried[i][4:].any())
    for label, i in (("four signals", four), ("seven signals", scored[0][1])):
        w = tried[i]
        others = f"builtin {hit1(sets['builtin'], w):.3f}, blind {hit1(sets['blind'], w):.3f}"
        print(f"fitted on the Rhine questions ({label}): rhine {hit1(sets['rhine'], w):.3f}, {others}, {_show(w)}")

    base = {name: hit1(qs, BEFORE) for name, qs in sets.items()}
    fine = np.round(np.arange(0, 1.01, 0.05), 2)
    kept = []
    for d in fine:
        for k in fine:
            for s in fine:
                w = np.array([d, k, s, 1.0, 0, 0, 0])
                if all(hit1(sets[n], w) >= base[n] for n in ("builtin", "blind", "followups")):
                    kept.append((hit1(sets["rhine"], w), w))
    kept.sort(key=lambda x: -x[0])
    print(f"{len(kept)} of {len(fine) ** 3} weightings (step 0.05) lose nothing on built-in, blind, follow-ups")
    ndcg = scifact_ndcg() if args.scifact else None
    if ndcg is not None:
        print(f"SciFact nDCG@10 with the weights before: {ndcg(BEFORE):.4f}")
    for rhine_hit1, w in kept[:12]:
        sci = f", SciFact nDCG@10 {ndcg(w):.4f}" if ndcg is not None else ""
        print(f"  rhine {rhine_hit1:.3f}{sci}: {_show(w)}")


def _default() -> np.ndarray:
    s = Settings()
    return np.array([s.dense_weight, s.lexical_weight, s.sentence_weight, s.token_weight, 0, 0, 0])


def _show(w) -> str:
    return ", ".join(f"{n} {v:.2f}" for n, v in zip(SIGNALS, w) if v)


if __name__ == "__main__":
    main()
