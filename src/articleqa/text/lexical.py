"""The BM25 side of hybrid search: per-segment postings, scored with statistics of the whole library.

Each segment keeps an inverted index of its own passages (term -> rows and term frequencies, and
each row's length), written once with the segment: adding an article tokenizes that article
only. A question is scored as bm25s's Lucene variant would score it over a fresh index of every
live passage (same tokenizer: English stop words, Snowball stemming; k1 1.5, b 0.75), with the
document frequencies, passage count and mean length taken over all segments, deletions excluded.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from articleqa.settings import Settings

TERMS = "terms.json"
INDPTR = "postings_indptr.npy"
ROWS = "postings_rows.npy"
FREQS = "postings_tf.npy"
LENGTHS = "lengths.npy"
K1, B = Settings.bm25_k1, Settings.bm25_b


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


# bm25s's tokenization, done here: its tokenize() builds several tqdm bars per call (about 0.2 ms
# each, and a question's answer tokenizes dozens of sentences). Same pattern, lower-casing, stop
# words (removed before stemming) and Snowball stemmer, so the terms are identical (tested).
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@lru_cache(maxsize=2)
def _stop_words(name: str) -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS if name == "en_plus" else STOPWORDS_EN)


def _terms(texts: Sequence[str], stop: frozenset[str]) -> list[list[str]]:
    stem = _stemmer().stemWords
    return [stem([w for w in _TOKEN.findall(text.lower()) if w not in stop]) for text in texts]


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop words out, stemmed: the terms BM25 matches on."""
    return _terms(texts, _stop_words("en"))


def content_terms(text: str) -> set[str]:
    """The stemmed terms that carry a question's topic: a long stop list, question words out."""
    return set(_terms([text], _stop_words("en_plus"))[0])


@dataclass(frozen=True)
class Postings:
    """One segment's inverted index: for term t, rows[indptr[t]:indptr[t+1]] hold it tf times."""

    terms: dict[str, int]
    indptr: np.ndarray  # (terms + 1,) int64
    rows: np.ndarray  # (postings,) int32, ascending within a term
    tfs: np.ndarray  # (postings,) uint16
    lengths: np.ndarray  # (passages,) int32: terms per passage

    @classmethod
    def from_terms(cls, per_row: Sequence[Sequence[str]]) -> Postings:
        """Postings of passages given as their term lists (from `tokenize`)."""
        vocab: dict[str, int] = {}
        term_ids, row_ids, freqs = [], [], []
        for row, terms in enumerate(per_row):
            for term, tf in Counter(terms).items():
                term_ids.append(vocab.setdefault(term, len(vocab)))
                row_ids.append(row)
                freqs.append(tf)
        lengths = np.array([len(t) for t in per_row], dtype=np.int32)
        return cls._from_keys(vocab, _posting_keys(term_ids, row_ids, freqs, len(lengths)), lengths)

    @classmethod
    def _from_keys(cls, vocab: dict[str, int], keys: np.ndarray, lengths: np.ndarray) -> Postings:
        """Postings from one int64 per posting, (term · rows + row) · 2^16 + tf: sorting them in
        place orders postings by term, then row, holding nothing else as large (a merge of
        50 million postings would otherwise hold several index arrays)."""
        size = max(len(lengths), 1)
        keys.sort()
        tfs = (keys & 0xFFFF).astype(np.uint16)
        keys >>= 16
        rows = (keys % size).astype(np.int32)
        keys //= size
        counts = np.bincount(keys, minlength=len(vocab)) if len(keys) else np.zeros(len(vocab), np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(vocab, indptr, rows, tfs, np.asarray(lengths, dtype=np.int32))

    @classmethod
    def merge(cls, parts: Sequence[tuple[Postings, np.ndarray, np.ndarray]], size: int) -> Postings:
        """One index of `size` rows from existing ones, without re-tokenizing: from each part,
        row keep[i] becomes row new_rows[i]."""
        vocab: dict[str, int] = {}
        keys = []
        lengths = np.zeros(size, np.int32)
        for postings, keep, new_rows in parts:
            keep = np.asarray(keep, dtype=np.int64)
            mapping = np.full(len(postings.lengths), -1, np.int64)
            mapping[keep] = new_rows
            lengths[new_rows] = postings.lengths[keep]
            local = np.array([vocab.setdefault(t, len(vocab)) for t in postings.terms], dtype=np.int64)
            per_term = np.repeat(np.arange(len(postings.terms)), np.diff(postings.indptr))
            rows = mapping[np.asarray(postings.rows)]
            kept = rows >= 0
            if len(local):
                keys.append(_posting_keys(local[per_term[kept]], rows[kept], np.asarray(postings.tfs)[kept], size))
        return cls._from_keys(vocab, np.concatenate(keys) if keys else np.zeros(0, np.int64), lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        t = self.terms.get(term)
        if t is None:
            return None
        a, b = self.indptr[t], self.indptr[t + 1]
        return np.asarray(self.rows[a:b]), np.asarray(self.tfs[a:b])

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        ordered = sorted(self.terms, key=self.terms.__getitem__)
        (folder / TERMS).write_text(json.dumps(ordered, ensure_ascii=False), encoding="utf-8")
        np.save(folder / INDPTR, self.indptr, allow_pickle=False)
        np.save(folder / ROWS, self.rows, allow_pickle=False)
        np.save(folder / FREQS, self.tfs, allow_pickle=False)
        np.save(folder / LENGTHS, self.lengths, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, passages: int) -> Postings:
        folder = Path(folder)
        terms = json.loads((folder / TERMS).read_text(encoding="utf-8"))
        indptr = np.load(folder / INDPTR, allow_pickle=False)
        rows = np.load(folder / ROWS, mmap_mode="r", allow_pickle=False)
        tfs = np.load(folder / FREQS, mmap_mode="r", allow_pickle=False)
        lengths = np.load(folder / LENGTHS, allow_pickle=False)
        if len(indptr) != len(terms) + 1 or indptr[-1] != len(rows) or len(tfs) != len(rows):
            raise ValueError(f"postings of {len(terms)} terms do not add up")
        if len(lengths) != passages:
            raise ValueError(f"postings for {len(lengths)} passages, the segment has {passages}")
        return cls({t: i for i, t in enumerate(terms)}, indptr, rows, tfs, lengths)


class BM25:
    """BM25 over the live rows of several segments' postings, as one collection."""

    def __init__(self, parts: Sequence[tuple[Postings, np.ndarray | None]]) -> None:
        """`parts`: each segment's postings and its live-row mask (None: every row is live)."""
        self._parts = list(parts)
        self.size = sum(len(p) if live is None else int(live.sum()) for p, live in self._parts)
        total = sum(int(p.lengths.sum() if live is None else p.lengths[live].sum()) for p, live in self._parts)
        self.mean_length = total / self.size if self.size else 0.0
        self._norms: list[np.ndarray | None] = [None] * len(self._parts)

    def _norm(self, i: int) -> np.ndarray:
        """k1 · (1 - b + b · length / mean length) for each row of segment i, computed once."""
        if self._norms[i] is None:
            lengths = self._parts[i][0].lengths.astype(np.float32)
            self._norms[i] = (K1 * ((1 - B) + B * lengths / self.mean_length)).astype(np.float32)
        return self._norms[i]

    def __len__(self) -> int:
        return self.size

    def _live_postings(self, term: str) -> list[tuple[np.ndarray, np.ndarray] | None]:
        out = []
        for postings, live in self._parts:
            found = postings.postings(term)
            if found is not None and live is not None:
                keep = live[found[0]]
                found = (found[0][keep], found[1][keep]) if not keep.all() else found
            out.append(found if found is not None and len(found[0]) else None)
        return out

    def known(self, terms: set[str]) -> set[str]:
        """The terms that occur in some live passage."""
        return {t for t in terms if any(self._live_postings(t))}

    def near(self, term: str) -> bool:
        """Whether some term of the library is a typo away from `term`: one edit, swap included
        ("palce", "exosm"), two for long words. A word the articles lack may only be misspelt."""
        if len(term) < 4:
            return False
        most = 1 if len(term) < 8 else 2
        return any(
            process.extractOne(term, postings.terms.keys(), scorer=OSA.distance, score_cutoff=most) is not None
            for postings, _ in self._parts
        )

    def common(self, terms: set[str], share: float = 0.5) -> set[str]:
        """The terms at least `share` of the live passages hold: what the library is about."""
        return {
            t for t in terms if sum(len(f[0]) for f in self._live_postings(t) if f is not None) >= share * self.size
        }

    def query(self, query: str) -> Matches:
        """The question's terms with their postings in each segment, ready to score."""
        terms = []
        if self.size:
            counts = Counter(tokenize([query])[0])  # a repeated query term counts each time, as in bm25s
            for term, times in counts.items():
                found = self._live_postings(term)
                df = sum(len(f[0]) for f in found if f is not None)
                if df:
                    idf = np.log(1 + (self.size - df + 0.5) / (df + 0.5))
                    terms.append((df, term, np.float32(times * idf), found))
        # Rarest first: the same order on every path, so a passage's float32 sum is the same whether
        # it was scored in full or looked up (Matches.top and Matches.of agree to the bit).
        terms.sort(key=lambda t: (t[0], t[1]))
        return Matches(self, [(weight, found) for _, _, weight, found in terms])


class Matches:
    """One question's BM25 over the segments: a segment's best rows, or the scores of given rows.

    A term adds at most its weight (repeats · idf) to a passage's score, since tf / (norm + tf) < 1.
    `top` scores the rare terms first; once the weights of the terms left add up to less than
    the n-th best score so far, a passage none of the scored terms matched cannot reach the top
    n, and the common terms (most of the postings) are looked up only for the passages that
    still can (MaxScore, Turtle and Flood 1995). The result is exact.
    """

    def __init__(self, bm25: BM25, terms: list[tuple[np.float32, list]]) -> None:
        self._bm25 = bm25
        self._terms = terms

    def _segment(self, i: int) -> list[tuple[np.float32, np.ndarray, np.ndarray]]:
        return [(w, *found[i]) for w, found in self._terms if found[i] is not None]

    def _impact(self, i: int, weight: np.float32, rows: np.ndarray, tfs: np.ndarray) -> np.ndarray:
        tf = tfs.astype(np.float32)
        return weight * tf / (self._bm25._norm(i)[rows] + tf)

    def all(self, i: int) -> np.ndarray | None:
        """Segment i's score of every row (None: no row matches)."""
        terms = self._segment(i)
        if not terms:
            return None
        out = np.zeros(len(self._bm25._parts[i][0]), np.float32)
        for weight, rows, tfs in terms:
            # Rows are unique within one term's postings, so fancy-index addition is exact.
            out[rows] += self._impact(i, weight, rows, tfs)
        return out

    def of(self, i: int, rows: np.ndarray) -> np.ndarray:
        """Segment i's scores of the given rows."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), np.float32)
        for weight, found, tfs in self._segment(i):
            hit, at = _lookup(found, rows)
            out[hit] += self._impact(i, weight, rows[hit], tfs[at])
        return out

    def top(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of segment i's best n rows with a positive score, best first."""
        terms = self._segment(i)
        if not terms or n <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        size = len(self._bm25._parts[i][0])
        acc = np.zeros(size, np.float32)
        bounds = np.array([w for w, _, _ in terms], np.float64)
        left = bounds.sum() - np.cumsum(bounds)  # after term j, the most the other terms can add
        left = left * (1 + 1e-5) + 1e-6  # float32 sums: never prune on a rounding error
        floor = np.float32(0)  # at most the n-th best score: the n-th best of some matched rows
        scored = 0
        for j, (weight, rows, tfs) in enumerate(terms):
            acc[rows] += self._impact(i, weight, rows, tfs)
            scored += len(rows)
            if j + 1 == len(terms) or left[j] >= bounds[: j + 1].sum():
                continue  # nothing scored so far could outrun the terms left
            # One term's rows are distinct, so the n-th best among them is a safe floor.
            if len(rows) >= n:
                floor = max(floor, np.partition(acc[rows], len(rows) - n)[len(rows) - n])
            if left[j] < floor:
                if scored * 8 < size:
                    matched = np.sort(np.concatenate([t[1] for t in terms[: j + 1]]))
                    matched = matched[np.r_[True, matched[1:] != matched[:-1]]]  # distinct
                    matched = matched[acc[matched] + left[j] >= floor]
                else:
                    matched = np.flatnonzero(acc >= floor - left[j])
                return self._finish(i, n, acc, matched, floor, terms[j + 1 :], left[j + 1 :])
        return top(acc, n)

    def _finish(self, i, n, acc, rows, floor, terms, left) -> tuple[np.ndarray, np.ndarray]:
        """Only `rows` can reach the top n: add the other terms to them, dropping a row as soon as
        the terms still left could not lift it to the n-th best score so far."""
        for (weight, found, tfs), rest in zip(terms, left):
            hit, at = _lookup(found, rows)
            acc[rows[hit]] += self._impact(i, weight, rows[hit], tfs[at])
            if len(rows) > n:
                floor = max(floor, np.partition(acc[rows], len(rows) - n)[len(rows) - n])
            rows = rows[acc[rows] + rest >= floor]
        scores, best = top(acc[rows], n)
        return scores, rows[best]


def _lookup(found: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of `rows` (ascending or not) occur in the ascending `found`, and where."""
    at = np.minimum(np.searchsorted(found, rows), len(found) - 1)
    hit = found[at] == rows
    return hit, at[hit]


def _posting_keys(term_ids, row_ids, freqs, size: int) -> np.ndarray:
    tf = np.minimum(np.asarray(freqs, dtype=np.int64), 0xFFFF)
    return ((np.asarray(term_ids, dtype=np.int64) * max(size, 1) + np.asarray(row_ids, dtype=np.int64)) << 16) | tf


def top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the best k rows with a positive score, best first (ties: lower row first)."""
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    if n > 64 * k:
        # The k-th best of a sample is at most the k-th best of all, so every row of the true top k
        # scores at least that much: select among those few instead of all rows.
        sample = scores[:: n // (16 * k)]
        floor = np.partition(sample, len(sample) - k)[len(sample) - k]
        rows = np.flatnonzero(scores >= max(floor, np.float32(1e-30)))
    else:
        rows = np.flatnonzero(scores > 0)
    if len(rows) > k:
        # Every row tied with the k-th best stays in until the sort, which puts the lower rows first.
        kth = np.partition(scores[rows], len(rows) - k)[len(rows) - k]
        rows = rows[scores[rows] >= kth]
    rows = rows[np.lexsort((rows, -scores[rows]))][:k]
    return scores[rows], rows.astype(np.int64)
