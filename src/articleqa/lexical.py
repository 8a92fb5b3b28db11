"""The BM25 side of hybrid search (bm25s, English stop words, Snowball stemming)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

FOLDER = "bm25"


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop words out, stemmed: the terms BM25 matches on."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)


def content_terms(text: str) -> set[str]:
    """The stemmed terms that carry a question's topic: a long stop list, question words out."""
    import bm25s

    terms = bm25s.tokenize([text], stopwords="en_plus", stemmer=_stemmer(), return_ids=False, show_progress=False)
    return set(terms[0])


class LexicalIndex:
    """BM25 over the embedded text of each chunk; row i is chunk i of the index."""

    name = "bm25s"

    def __init__(self, retriever, size: int) -> None:
        self._retriever = retriever
        self._size = size
        self._vocab = retriever.vocab_dict if retriever is not None else {}

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        import logging

        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)

        if not texts:
            return cls(None, 0)
        retriever = bm25s.BM25()
        retriever.index(tokenize(texts), show_progress=False)
        return cls(retriever, len(texts))

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        import bm25s

        path = Path(folder) / FOLDER
        if size == 0 or not path.exists():
            return cls(None, 0)
        return cls(bm25s.BM25.load(str(path), show_progress=False, verbosity=0), size)

    def __len__(self) -> int:
        return self._size

    def known(self, terms: set[str]) -> set[str]:
        """The terms that occur somewhere in the indexed text."""
        return {t for t in terms if t in self._vocab}

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for the query (zeros when no query term is indexed)."""
        terms = [t for t in tokenize([query])[0] if t in self._vocab]
        if not terms:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(terms), dtype=np.float32)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the best k rows with a positive score, best first."""
        return top(self.scores(query), k)

    def save(self, folder: Path) -> list[str]:
        if self._retriever is None:
            return []
        self._retriever.save(str(Path(folder) / FOLDER))
        return [FOLDER]


def top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the best k rows with a positive score, best first."""
    k = min(k, int((scores > 0).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    rows = np.argpartition(-scores, k - 1)[:k]
    rows = rows[np.argsort(-scores[rows], kind="stable")]
    return scores[rows], rows.astype(np.int64)
