"""A synthetic library for storage and index benchmarks: articles, questions and a fast embedder.

`synthetic_articles` mixes real sentences (SciFact abstracts) into as many articles as it takes
to give about n passages; `FastEmbedder` stands in for the real model at thousands of texts per
second. Its vectors are hashed bags of words, smoothed by word co-occurrence in the source corpus
so that, like a real model's, they have topics and a low intrinsic dimension: nearest-neighbour
recall on them is within reach of recall on real vectors (pure random word vectors are far harder).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import sparse

from articleqa.embed.base import WithoutWordPieces
from articleqa.schema import Article

# The sentences come from a BEIR corpus: SciFact beside the checkout by default.
SCIFACT = Path(
    os.environ.get("ARTICLEQA_SYNTHETIC_SOURCE") or Path(__file__).resolve().parents[2] / "shared/benchmarks/scifact"
)

_WORD = re.compile(r"\w+")
_PIECE = re.compile(r"\w+|[^\w\s]")
_LONG = re.compile(r"\w{9,}")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
# How much of its passage's vector a token vector carries: contextual, but still its word.
_CONTEXT = 0.3
# Weight of a word's topic (the mean of its abstracts' vectors); 1.0 gives all-MiniLM's intrinsic
# dimension on SciFact (participation ratio ~76 vs 77).
_TOPIC = 1.0
# Rows in the word-vector table before it starts over (~400 MB); vectors never change, so it is only a cache.
_TABLE_LIMIT = 1 << 18
# Texts vectorized together, whatever batch_size says (it only matters to a real model).
_CHUNK = 2048
_TARGET_TOKENS = 120


def _pieces(word: str) -> int:
    """Word pieces for a word, as all-MiniLM's tokenizer splits SciFact text (within ~2%)."""
    return 1 + max(0, len(word) - 6) // 3


def count_pieces(text: str) -> int:
    """Word pieces of a text: words, punctuation marks, and the extra pieces of long words."""
    return len(_PIECE.findall(text)) + sum((len(w) - 6) // 3 for w in _LONG.findall(text))


def _random_unit(key: str, dim: int) -> np.ndarray:
    """A fixed pseudo-random direction for `key`, the same in every process and numpy version."""
    raw = np.frombuffer(hashlib.shake_256(key.encode("utf-8")).digest(dim * 4), dtype="<u4").astype(np.float64)
    u1, u2 = (raw[0::2] + 1.0) / 2.0**32, raw[1::2] / 2.0**32
    radius, angle = np.sqrt(-2.0 * np.log(u1)), 2.0 * np.pi * u2
    v = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])
    return (v / np.linalg.norm(v)).astype(np.float32)


class _Vocab(dict):
    """word -> first row in the table; a new word's rows are filled on first sight."""

    def __init__(self, owner: FastEmbedder) -> None:
        super().__init__()
        self.owner = owner

    def __missing__(self, word: str) -> int:
        row = self.owner._add(word)
        self[word] = row
        return row


class FastEmbedder(WithoutWordPieces):
    """Deterministic stand-in for the embedder seam (articleqa.embed.base.Embedder), no model.

    A word's vector is a fixed random direction plus, for a word of the source corpus, its topic:
    the mean (centred) vector of the abstracts it occurs in. A text's vector is the normalized sum
    over its content words (English stop words left out). `encode_tokens` gives one vector per
    content word piece: a long word has several, each its word's vector blended with a direction
    of its own, then with the text's vector -- about as many rows per passage as the real model.
    """

    name = "synthetic-hash-384"
    dim = 384
    max_tokens = 256

    def __init__(self, source: str | Path | None = None, *, topic: float = _TOPIC) -> None:
        """`source`: a BEIR corpus.jsonl for the word topics (SciFact's by default; without one,
        or with topic=0, word vectors are purely random)."""
        from bm25s.stopwords import STOPWORDS_EN_PLUS

        self._stop = frozenset(STOPWORDS_EN_PLUS) | {"s", "t"}
        path = Path(source) if source else SCIFACT / "corpus.jsonl"
        self._topics, self._topic_rows = _word_topics(str(path), self._stop, self.dim) if topic else ({}, None)
        self._topic = topic
        self._reset()

    def _reset(self) -> None:
        self._vocab = _Vocab(self)
        self._table = np.zeros((4096, self.dim), dtype=np.float32)
        self._content = np.zeros(4096, dtype=bool)
        self._npieces = np.zeros(4096, dtype=np.int64)
        self._size = 0

    def _add(self, word: str) -> int:
        """Rows for a new word: its vector, then for a content word one per extra piece."""
        content = word not in self._stop
        n = _pieces(word) if content else 1
        while self._size + n > len(self._table):
            grow = len(self._table)
            self._table = np.concatenate([self._table, np.zeros_like(self._table)])
            self._content = np.concatenate([self._content, np.zeros(grow, dtype=bool)])
            self._npieces = np.concatenate([self._npieces, np.zeros(grow, dtype=np.int64)])
        row = self._size
        vector = _random_unit(word, self.dim)
        if word in self._topics:
            vector = vector + self._topic * self._topic_rows[self._topics[word]]
            vector /= np.linalg.norm(vector)
        self._table[row] = vector
        for k in range(1, n):
            piece = vector + _random_unit(f"{word}##{k}", self.dim)
            self._table[row + k] = piece / np.linalg.norm(piece)
        self._content[row] = content
        self._npieces[row] = n
        self._size += n
        return row

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [count_pieces(text) for text in texts]

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), _CHUNK):
            out[start : start + _CHUNK] = self._encode(texts[start : start + _CHUNK], tokens=False)[0]
        return out

    def encode_tokens(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Unit text vectors, plus for each text unit vectors of its content word pieces."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        tokens: list[np.ndarray] = []
        for start in range(0, len(texts), _CHUNK):
            vectors[start : start + _CHUNK], part = self._encode(texts[start : start + _CHUNK], tokens=True)
            tokens.extend(part)
        return vectors, tokens

    def encode_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        vectors, tokens = self.encode_tokens([text])
        return vectors[0], tokens[0]

    def _encode(self, texts: Sequence[str], *, tokens: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        if self._size > _TABLE_LIMIT:
            self._reset()
        n = len(texts)
        per_text = [_WORD.findall(text.lower()) for text in texts]
        lengths = np.fromiter(map(len, per_text), dtype=np.int64, count=n)
        total = int(lengths.sum())
        words = [w for ws in per_text for w in ws]
        rows = np.fromiter(map(self._vocab.__getitem__, words), dtype=np.int64, count=total)
        owner = np.repeat(np.arange(n), lengths)
        use = self._content[rows]
        # A text of stop words only keeps them all; an empty text gets a fixed vector below.
        has_content = np.bincount(owner[use], minlength=n) > 0
        use |= ~has_content[owner]
        rows, owner = rows[use], owner[use]
        counts = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (owner, rows)), shape=(n, self._size))
        vectors = np.asarray(counts @ self._table[: self._size], dtype=np.float32)
        empty = lengths == 0
        if empty.any():
            vectors[empty] = _random_unit("", self.dim)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        if not tokens:
            return vectors, []
        # Every piece row of each content word, in text order.
        npieces = self._npieces[rows]
        starts = np.cumsum(npieces) - npieces
        piece_rows = np.repeat(rows - starts, npieces) + np.arange(int(npieces.sum()))
        piece_owner = np.repeat(owner, npieces)
        matrix = self._table[piece_rows]
        ends = np.cumsum(np.bincount(piece_owner, minlength=n))
        context = _CONTEXT * vectors
        # In place, a text at a time: large temporaries cost more in page faults than the loop.
        for i, (a, b) in enumerate(zip(ends - np.diff(ends, prepend=0), ends)):
            matrix[a:b] += context[i]
        matrix /= np.sqrt(np.einsum("ij,ij->i", matrix, matrix))[:, None]
        out = np.split(matrix, ends[:-1])
        for i in np.flatnonzero(empty):
            out[i] = vectors[i : i + 1].copy()
        return vectors, out


@lru_cache(maxsize=2)
def _word_topics(source: str, stop: frozenset[str], dim: int) -> tuple[dict[str, int], np.ndarray | None]:
    """word -> row of its topic: one step of smoothing over the corpus's word-abstract matrix."""
    if not Path(source).is_file():
        return {}, None
    vocab: dict[str, int] = {}
    docs, cols = [], []
    with open(source, encoding="utf-8") as f:
        for i, line in enumerate(f):
            doc = json.loads(line)
            for w in set(_WORD.findall(f"{doc.get('title', '')} {doc.get('text', '')}".lower())) - stop:
                docs.append(i)
                cols.append(vocab.setdefault(w, len(vocab)))
    if not vocab:
        return {}, None
    a = sparse.csr_matrix((np.ones(len(cols)), (docs, cols)), shape=(max(docs) + 1, len(vocab)))
    words = np.stack([_random_unit(w, dim) for w in vocab]).astype(np.float64)
    abstracts = _unit(a @ words)
    # Centred: words common to every topic should not all point one way.
    abstracts = _unit(abstracts - abstracts.mean(axis=0))
    topics = (a.T @ abstracts) / np.asarray(a.sum(axis=0)).reshape(-1, 1)
    return vocab, topics.astype(np.float32)


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


class _Source(NamedTuple):
    titles: list[str]
    sentences: list[list[str]]  # per abstract
    pieces: list[list[int]]  # word pieces per sentence
    words: list[str]  # content words, and their cumulative counts, to draw swaps from
    cumulative: list[int]
    stop: frozenset[str]


@lru_cache(maxsize=2)
def _load_source(source: str) -> _Source:
    """Every abstract with two sentences or more, and its content-word frequencies."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    from articleqa.errors import ArticleQAError

    if not Path(source).is_file():
        raise ArticleQAError(
            f"synthetic libraries are made of the sentences of a BEIR corpus, and {source} is missing: "
            "set ARTICLEQA_SYNTHETIC_SOURCE to a BEIR folder (e.g. scifact)"
        )

    titles, sentences, pieces = [], [], []
    counts: Counter[str] = Counter()
    with open(source, encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            parts = [s.strip() for s in _SENTENCE.split(doc.get("text", "")) if len(s.split()) >= 3]
            if len(parts) >= 2:
                titles.append(doc.get("title") or parts[0])
                sentences.append(parts)
                pieces.append([count_pieces(s) for s in parts])
                counts.update(w for s in parts for w in s.split(" ") if w.isalpha() and w.islower())
    stop = frozenset(STOPWORDS_EN_PLUS)
    words = sorted(w for w in counts if w not in stop)
    return _Source(titles, sentences, pieces, words, list(accumulate(counts[w] for w in words)), stop)


def synthetic_articles(
    n_passages: int, *, seed: int = 0, source: str | Path | None = None, swap: float = 0.15
) -> Iterator[Article]:
    """Articles whose chunking gives about `n_passages` passages (~120 word pieces each), streamed.

    Each article mixes runs of sentences from 2-4 random abstracts (one paragraph each), for
    4-6 passages' worth of text, so 1M passages is ~200k articles. A fraction `swap` of the words
    is replaced by corpus words drawn by frequency: without it, 1M passages cut from SciFact's
    ~45k sentences are 20% exact duplicates. Same seed, same articles.
    """
    src = _load_source(str(source or SCIFACT / "corpus.jsonl"))
    rng = random.Random(seed)
    seen: set[int] = set()  # text digests, so no two articles are the same text
    made, index = 0, 0
    while made < n_passages:
        want = min(rng.randint(4, 6), n_passages - made)
        paragraphs, picked = _mix(rng, src, want * _TARGET_TOKENS, rng.randint(2, 4), swap)
        text = "\n\n".join(paragraphs)
        digest = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
        if digest in seen:
            continue
        seen.add(digest)
        made += want
        article_id = f"syn-{index:07d}"
        index += 1
        yield Article(id=article_id, title=src.titles[picked[0]], text=text, source=f"synthetic:{article_id}")


def _mix(rng: random.Random, src: _Source, budget: int, k: int, swap: float) -> tuple[list[str], list[int]]:
    """Paragraphs of consecutive sentences (wrapping round) from random abstracts, ~budget pieces."""
    paragraphs, picked, size = [], [], 0
    while size < budget * 0.95:
        doc = rng.randrange(len(src.sentences))
        sents, counts = src.sentences[doc], src.pieces[doc]
        quota = (budget - size) / max(1, k - len(picked))
        i, run, got = rng.randrange(len(sents)), [], 0
        while got < quota and len(run) < len(sents):
            run.append(_swap(rng, sents[i], src, swap) if swap else sents[i])
            got += counts[i]
            i = (i + 1) % len(sents)
        paragraphs.append(" ".join(run))
        picked.append(doc)
        size += got
    return paragraphs, picked


def _swap(rng: random.Random, sentence: str, src: _Source, rate: float) -> str:
    """The sentence with about `rate` of its words replaced (plain lower-case content words only)."""
    words = sentence.split(" ")
    k = int(len(words) * rate + rng.random())
    if not k:
        return sentence
    new = rng.choices(src.words, cum_weights=src.cumulative, k=k)
    for i, word in zip(rng.sample(range(len(words)), k), new):
        if words[i].isalpha() and words[i].islower() and words[i] not in src.stop:
            words[i] = word
    return " ".join(words)


def synthetic_questions(n: int, *, seed: int = 1, source: str | Path | None = None) -> list[str]:
    """Question-like strings: SciFact's queries (cycling), alternating with corpus sentences that
    lost a third of their words (close to passages that hold the sentence)."""
    folder = Path(source).parent if source else SCIFACT
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in f]
    sentences = _load_source(str(source or SCIFACT / "corpus.jsonl")).sentences
    rng = random.Random(seed)
    order = rng.sample(queries, len(queries))
    out: list[str] = []
    for i in range(n):
        if i % 2 == 0:
            out.append(order[(i // 2) % len(order)])
            continue
        words = rng.choice(rng.choice(sentences)).split()
        keep = [w for w in words if rng.random() > 1 / 3] or words
        out.append(" ".join(keep))
    return out
