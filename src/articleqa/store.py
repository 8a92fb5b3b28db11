"""The vector store behind a small interface, so another engine can stand in for FAISS."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class VectorStore(Protocol):
    """Rows of unit vectors, searched by inner product. Row i is chunk i of the index."""

    name: str
    dim: int

    def __len__(self) -> int: ...

    def vectors(self) -> np.ndarray: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each of shape (len(queries), k); missing results have row -1."""
        ...

    def score(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Inner product of the query with the given rows."""
        ...

    def with_rows(self, keep: np.ndarray, new: np.ndarray) -> VectorStore:
        """A new store holding rows `keep` of this one, in that order, then `new`."""
        ...

    def save(self, folder: Path) -> list[str]:
        """Write into `folder`; returns the file names written."""
        ...


class FaissStore:
    """Exact inner-product search (faiss.IndexFlatIP): on unit vectors, cosine similarity."""

    name = "faiss-flat-ip"
    filename = "vectors.faiss"

    def __init__(self, dim: int, index=None) -> None:
        import faiss

        self.dim = dim
        self._index = index if index is not None else faiss.IndexFlatIP(dim)

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, dim: int) -> FaissStore:
        store = cls(dim)
        if len(vectors):
            store._index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return store

    @classmethod
    def load(cls, folder: Path) -> FaissStore:
        import faiss

        index = faiss.read_index(str(Path(folder) / cls.filename))
        return cls(index.d, index)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def vectors(self) -> np.ndarray:
        if not len(self):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._index.reconstruct_n(0, len(self))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self))
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        return self._index.search(queries, k)

    def score(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros(0, dtype=np.float32)
        vectors = np.vstack([self._index.reconstruct(int(r)) for r in rows])
        return vectors @ np.asarray(query, dtype=np.float32).reshape(-1)

    def with_rows(self, keep: np.ndarray, new: np.ndarray) -> FaissStore:
        kept = self.vectors()[np.asarray(keep, dtype=np.int64)] if len(keep) else np.zeros((0, self.dim))
        return FaissStore.from_vectors(np.vstack([kept, new]).astype(np.float32), self.dim)

    def save(self, folder: Path) -> list[str]:
        import faiss

        faiss.write_index(self._index, str(Path(folder) / self.filename))
        return [self.filename]
