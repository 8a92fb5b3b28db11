"""Dense vector search behind one id-keyed interface, and the local backends that implement it.

Every backend stores unit vectors under int64 ids (the passages' keys) and answers inner-product
(cosine) searches. `flat` searches exactly; `ivf` (an inverted file) and `hnsw` (a graph) search
8-bit scalar-quantized vectors approximately, then re-score their candidates exactly. A backend
is chosen from the manifest entry it saved (`load`), so a server engine can stand behind the
same calls.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from articleqa.index.storage import RowFile
from articleqa.index.vectors.base import VectorEngine
from articleqa.runtime.threads import single_threaded

VECTORS = "dense.npy"
IDS = "dense_ids.npy"
GRAPH = "dense.hnsw"
IVF = "dense.ivf"


class _Stored:
    """What both local backends keep: exact vectors and their ids (read by row once saved),
    and which rows are removed. Rows are in insertion order; ids are looked up by binary search."""

    name = "?"

    def __init__(self, dim: int, ids: np.ndarray | None = None, vectors: np.ndarray | None = None) -> None:
        self.dim = dim
        self._ids = np.zeros(0, np.int64) if ids is None else ids
        self._vectors = np.zeros((0, dim), np.float32) if vectors is None else vectors
        self._order = np.argsort(self._ids, kind="stable")
        self._dead = np.zeros(len(self._ids), bool)
        self._n_dead = 0

    def view(self):
        """A copy sharing the stored data, with its own set of removed ids (for one snapshot)."""
        other = copy.copy(self)
        other._dead = self._dead.copy()
        return other

    def count(self) -> int:
        return len(self._ids) - self._n_dead

    def _rows_of(self, ids: np.ndarray, *, strict: bool) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if not len(self._ids):
            found = np.zeros(len(ids), bool)
            rows = np.zeros(len(ids), np.int64)
        else:
            pos = np.searchsorted(self._ids, ids, sorter=self._order)
            pos = np.minimum(pos, len(self._ids) - 1)
            rows = self._order[pos]
            found = self._ids[rows] == ids
            found &= ~self._dead[rows]
        if strict and not found.all():
            raise KeyError(f"no vector for id {int(ids[~found][0])}")
        return rows[found] if not strict else rows

    def _append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("the same id was given twice")
        if len(self._ids) and np.isin(ids, self._ids).any():
            raise ValueError(f"id {int(ids[np.isin(ids, self._ids)][0])} is already stored")
        self._ids = np.concatenate([self._ids, ids])
        self._vectors = np.concatenate([np.asarray(self._vectors), vectors])
        self._order = np.argsort(self._ids, kind="stable")
        self._dead = np.concatenate([self._dead, np.zeros(len(ids), bool)])

    def remove(self, ids: np.ndarray) -> None:
        rows = self._rows_of(ids, strict=False)
        self._dead[rows] = True
        self._n_dead = int(self._dead.sum())
        self._removed()

    def _removed(self) -> None:
        pass

    def get(self, ids: np.ndarray) -> np.ndarray:
        rows = self._rows_of(ids, strict=True)
        return np.asarray(self._vectors[rows], dtype=np.float32)

    def _exact(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return queries @ np.asarray(self._vectors[rows], dtype=np.float32).T

    def _save_rows(self, folder: Path) -> None:
        live = ~self._dead
        np.save(folder / VECTORS, np.asarray(self._vectors)[live].astype(np.float32), allow_pickle=False)
        np.save(folder / IDS, self._ids[live], allow_pickle=False)

    @staticmethod
    def _load_rows(folder: Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = RowFile(folder / VECTORS)
        ids = np.load(folder / IDS, allow_pickle=False)
        if vectors.ndim != 2 or vectors.shape[1] != dim or len(vectors) != len(ids):
            raise ValueError(f"dense vectors of shape {vectors.shape} for {len(ids)} ids, expected width {dim}")
        return ids, vectors


def _empty(queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((len(queries), k), np.float32), np.full((len(queries), k), -1, np.int64)


def _as_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(queries, dtype=np.float32).reshape(-1, dim))


class _Indexed(_Stored):
    """Search through a FAISS index whose labels are row numbers, skipping removed rows with a
    bitmap of the live ones; approximate backends fetch extra candidates and re-score them exactly,
    so every returned score is the true cosine."""

    exact = False

    def __init__(self, dim: int, ids=None, vectors=None, *, index=None) -> None:
        import threading

        super().__init__(dim, ids, vectors)
        # Shared by every view of this engine: built once, searched by all.
        self._shared = {"index": index, "lock": threading.Lock()}
        self._selector = None

    def _index(self):
        shared = self._shared
        if shared["index"] is None:
            with shared["lock"]:
                if shared["index"] is None:
                    shared["index"] = self._build(np.ascontiguousarray(self._vectors, dtype=np.float32))
        return shared["index"]

    def _build(self, vectors: np.ndarray):
        raise NotImplementedError

    def _params(self, k: int):
        raise NotImplementedError

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        start = len(self._ids)
        self._append(ids, vectors)
        if self._shared["index"] is None:
            self._index()
        else:
            self._shared["index"].add(np.ascontiguousarray(self._vectors[start:], dtype=np.float32))

    def _removed(self) -> None:
        import faiss

        if not self._n_dead:
            self._selector = None
            return
        live = np.packbits(~self._dead, bitorder="little")
        self._selector = (faiss.IDSelectorBitmap(len(self._dead), faiss.swig_ptr(live)), live)

    def _save_index(self, folder: Path, filename: str) -> None:
        import faiss

        if self._n_dead:
            raise ValueError(f"a {self.name} index with removed vectors is rebuilt, not saved")
        self._save_rows(folder)
        faiss.write_index(self._index(), str(folder / filename))

    @classmethod
    def _load_index(cls, folder: Path, filename: str, dim: int):
        """The stored rows and the FAISS index over them, checked against each other."""
        import faiss

        ids, vectors = cls._load_rows(folder, dim)
        index = faiss.read_index(str(folder / filename))
        if index.ntotal != len(ids) or index.d != dim:
            raise ValueError(f"{filename} holds {index.ntotal} vectors of {index.d} for {len(ids)} ids")
        return ids, vectors, index

    def search(self, queries: np.ndarray, k: int, *, fresh: bool = True) -> tuple[np.ndarray, np.ndarray]:
        # `fresh` is for servers: a local engine always sees every write.
        queries = _as_queries(queries, self.dim)
        scores, ids = _empty(queries, k)
        if not self.count() or k <= 0:
            return scores, ids
        fetch = min(self.count(), k if self.exact else max(2 * k, 40))
        params = self._params(fetch)
        if self._selector is not None:
            params.sel = self._selector[0]
        with single_threaded():
            found_scores, rows = self._index().search(queries, fetch, params=params)
        for q in range(len(queries)):
            keep = rows[q] >= 0
            found = rows[q][keep]
            exact = found_scores[q][keep] if self.exact else self._exact(queries[q : q + 1], found)[0]
            order = np.argsort(-exact, kind="stable")[:k]
            scores[q, : len(order)] = exact[order]
            ids[q, : len(order)] = self._ids[found[order]]
        return scores, ids


class FlatEngine(_Indexed):
    """Exact search: every stored vector scored against the question (faiss.IndexFlatIP in memory;
    fast up to ~50k vectors, docs/benchmarks.md)."""

    name = "flat"
    exact = True

    def _build(self, vectors: np.ndarray):
        import faiss

        index = faiss.IndexFlatIP(self.dim)
        if len(vectors):
            index.add(vectors)
        return index

    def _params(self, k: int):
        import faiss

        return faiss.SearchParameters()

    def save(self, folder: Path) -> dict:
        self._save_rows(Path(folder))
        return {"engine": self.name, "count": self.count()}

    @classmethod
    def load(cls, folder: Path, entry: dict, dim: int) -> FlatEngine:
        return cls(dim, *cls._load_rows(Path(folder), dim))


class IVFEngine(_Indexed):
    """Approximate search: an inverted file of 4·√n lists over 8-bit scalar-quantized vectors
    (faiss.IndexIVFScalarQuantizer); a search visits `probe`·√lists of them (at least 8). Cheap
    to build and compact, chosen by measurement over HNSW for large segments (docs/benchmarks.md).
    How many lists to visit is a search setting, not data: an old entry's share is not read."""

    name = "ivf"

    def __init__(self, dim: int, ids=None, vectors=None, *, probe: float = 4.0, index=None) -> None:
        super().__init__(dim, ids, vectors, index=index)
        self.probe = probe

    def _build(self, vectors: np.ndarray):
        import faiss

        lists = max(1, min(len(vectors), int(4 * np.sqrt(max(len(vectors), 1)))))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.seed = 1234
        # k-means needs some 40 points per list; more only costs time.
        sample = vectors[:: max(1, len(vectors) // (64 * lists))] if len(vectors) else vectors
        index.train(np.ascontiguousarray(sample if len(sample) >= lists else vectors))
        if len(vectors):
            index.add(vectors)
        return index

    def _params(self, k: int):
        import faiss

        return faiss.SearchParametersIVF(nprobe=self.nprobe)

    @property
    def nprobe(self) -> int:
        lists = int(self._index().nlist)
        return min(lists, max(8, int(np.ceil(self.probe * np.sqrt(lists)))))

    def save(self, folder: Path) -> dict:
        self._save_index(Path(folder), IVF)
        return {
            "engine": self.name,
            "count": self.count(),
            "lists": int(self._index().nlist),
            "probe_sqrt": self.probe,
            "nprobe": self.nprobe,
        }

    @classmethod
    def load(cls, folder: Path, entry: dict, dim: int) -> IVFEngine:
        ids, vectors, index = cls._load_index(Path(folder), IVF, dim)
        return cls(dim, ids, vectors, probe=entry.get("probe_sqrt", 4.0), index=index)


class HNSWEngine(_Indexed):
    """Approximate search: a FAISS HNSW graph over 8-bit scalar-quantized vectors."""

    name = "hnsw"

    def __init__(
        self, dim: int, ids=None, vectors=None, *, m: int = 32, ef_construction: int = 160, ef_search: int = 256,
        index=None,
    ) -> None:  # fmt: skip
        super().__init__(dim, ids, vectors, index=index)
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search

    def _build(self, vectors: np.ndarray):
        import faiss

        index = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_8bit, self.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        if len(vectors):
            index.train(vectors[:100_000])
            index.add(vectors)
        return index

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._shared["index"] is not None and not self._shared["index"].is_trained:
            self._shared["index"] = None  # an empty graph: build it from the first vectors
        super().add(ids, vectors)

    def _params(self, k: int):
        import faiss

        return faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))

    def save(self, folder: Path) -> dict:
        self._save_index(Path(folder), GRAPH)
        return {
            "engine": self.name,
            "count": self.count(),
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
        }

    @classmethod
    def load(cls, folder: Path, entry: dict, dim: int) -> HNSWEngine:
        ids, vectors, index = cls._load_index(Path(folder), GRAPH, dim)
        return cls(dim, ids, vectors, m=entry.get("m", 32), ef_construction=entry.get("ef_construction", 160),
                   ef_search=entry.get("ef_search", 256), index=index)  # fmt: skip


BACKENDS = {FlatEngine.name: FlatEngine, IVFEngine.name: IVFEngine, HNSWEngine.name: HNSWEngine}


def create(name: str, dim: int, **params) -> VectorEngine:
    """An empty engine of the named backend."""
    if name not in BACKENDS:
        raise ValueError(f"unknown vector engine {name!r}: use one of {', '.join(BACKENDS)}")
    return BACKENDS[name](dim, **params)


def load(folder: Path, entry: dict, dim: int) -> VectorEngine:
    """The engine a segment (or a library, for a server) saved, by the backend its entry names."""
    name = entry.get("engine")
    if name == "milvus":  # a server: imported only by libraries that use one
        from articleqa.index.vectors.milvus import MilvusEngine

        return MilvusEngine.load(folder, entry, dim)
    if name not in BACKENDS:
        raise ValueError(f"unknown vector engine {name!r} (this version knows {', '.join(BACKENDS)})")
    return BACKENDS[name].load(Path(folder), entry, dim)


def for_size(rows: int, dim: int, storage) -> VectorEngine:
    """Exact search below `storage.ann_threshold` passages; from there on the `storage.ann` backend."""
    if rows < storage.ann_threshold:
        return FlatEngine(dim)
    if storage.ann == "hnsw":
        return HNSWEngine(
            dim, m=storage.hnsw_m, ef_construction=storage.hnsw_ef_construction, ef_search=storage.hnsw_ef_search
        )
    if storage.ann == "ivf":
        return IVFEngine(dim, probe=storage.ivf_probe)
    raise ValueError(f"unknown approximate search {storage.ann!r}: use 'ivf' or 'hnsw'")
