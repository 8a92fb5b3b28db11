"""Passage vectors on a Milvus server: the same id-keyed engine as the local ones (engines.py),
for a library whose vectors outgrow one machine or are shared by several app processes.

A library keeps its vectors in one collection: the passage key as primary key, the unit vector
(an HNSW index, COSINE), and the passage's article id and span as scalar fields. The collection's
properties say which model and library wrote it, so opening it with another model fails with the
fix, as the local manifest does. A search waits for every write before it (strong consistency,
~200 ms on the server, which waits for its next time tick) only while the snapshot that asks is
younger than the server's bounded staleness; otherwise bounded consistency already covers every
write the snapshot names (~5 ms). Removed passages need neither: a snapshot drops whatever it
does not hold live (index.py). Everything else about the
library (text, sentence and token vectors, BM25 postings, the manifest) stays in the index folder,
shared by the processes (docs/scale.md).

`milvus://HOST:PORT[/COLLECTION]` names a server; `milvus:///PATH.db` a milvus-lite file (one
machine; used by the fast tests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from articleqa.errors import ArticleQAError, IndexMismatch, rebuild_command
from articleqa.index.vectors.base import Store, StoreUnavailable

SCHEMA = "1"
BATCH = 2_000  # rows per insert: ~3 MB of 384-d vectors, far below the server's message limit
PREFIX = "articleqa.schema"


class MilvusEngine:
    """Unit vectors keyed by int64 id in a Milvus collection, searched by cosine."""

    name = "milvus"

    def __init__(self, store: Store, collection: str, dim: int, *, model: str = "", client=None) -> None:
        self.store = store
        self.collection = collection
        self.dim = dim
        self.model = model
        self._client = client or connect(store)
        if not self._client.has_collection(collection):
            self._create()
        else:
            self._check()
        self._client.load_collection(collection)

    # -- the collection --------------------------------------------------------------------

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False, description="articleqa passages")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("article", DataType.VARCHAR, max_length=1024)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        index = self._client.prepare_index_params()
        index.add_index(field_name="vector", index_type="HNSW", metric_type="COSINE", params=HNSW_BUILD)
        self._client.create_collection(
            self.collection,
            schema=schema,
            index_params=index,
            consistency_level="Strong",
            properties={PREFIX: SCHEMA, "articleqa.model": self.model, "articleqa.dim": str(self.dim)},
        )

    def _check(self) -> None:
        """Refuse a collection written by another model, another schema, or not by articleqa."""
        info = self._client.describe_collection(self.collection)
        props = info.get("properties") or {}
        where = f"collection {self.collection!r} on {self.store}"
        fix = f"name another collection (milvus://HOST:PORT/NAME) or {rebuild_command()}"
        if props.get(PREFIX) is None:
            raise IndexMismatch(f"{where} was not written by articleqa: {fix}")
        if props.get(PREFIX) != SCHEMA:
            raise IndexMismatch(f"{where} uses articleqa schema {props.get(PREFIX)}, this version {SCHEMA}: {fix}")
        if int(props.get("articleqa.dim", -1)) != self.dim or (
            self.model and props.get("articleqa.model") != self.model
        ):
            raise IndexMismatch(
                f"{where} holds vectors of model {props.get('articleqa.model')!r} "
                f"({props.get('articleqa.dim')} dimensions), not {self.model!r} ({self.dim}): {fix}"
            )

    def drop(self) -> None:
        self._client.drop_collection(self.collection)

    # -- the engine contract ---------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray, fields: dict[str, np.ndarray] | None = None) -> None:
        """Store vectors under new ids (ValueError for an id already stored)."""
        ids, vectors = self._checked(ids, vectors)
        present = self._present(ids)
        if len(present):
            raise ValueError(f"id {int(present[0])} is already stored")
        self._write(self._client.insert, ids, vectors, fields)

    def put(self, ids: np.ndarray, vectors: np.ndarray, fields: dict[str, np.ndarray] | None = None) -> None:
        """Store vectors, replacing any stored under the same ids (what a writer that resumes after a
        crash needs: the keys it is given again may hold the crashed write's vectors)."""
        ids, vectors = self._checked(ids, vectors)
        self._write(self._client.upsert, ids, vectors, fields)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, np.int64).reshape(-1)
        for start in range(0, len(ids), BATCH):
            self._client.delete(self.collection, ids=ids[start : start + BATCH].tolist())

    def search(self, queries: np.ndarray, k: int, *, fresh: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """`fresh`: writes made in the last FRESH_SECONDS must be seen (strong consistency)."""
        queries = np.ascontiguousarray(np.asarray(queries, np.float32).reshape(-1, self.dim))
        scores = np.zeros((len(queries), k), np.float32)
        found = np.full((len(queries), k), -1, np.int64)
        if k <= 0 or not len(queries):
            return scores, found
        results = self._client.search(
            self.collection,
            data=queries.tolist(),
            limit=k,
            output_fields=["id"],  # without it, milvus-lite returns every field, vectors included
            search_params={"metric_type": "COSINE", "params": {"ef": max(2 * k, HNSW_EF)}},
            consistency_level="Strong" if fresh else "Bounded",
        )
        for q, hits in enumerate(results):
            for i, hit in enumerate(hits[:k]):
                found[q, i] = int(hit["id"])
                scores[q, i] = float(hit["distance"])
        return scores, found

    def get(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64).reshape(-1)
        out = np.zeros((len(ids), self.dim), np.float32)
        found: dict[int, np.ndarray] = {}
        for start in range(0, len(ids), BATCH):
            rows = self._client.query(
                self.collection,
                ids=ids[start : start + BATCH].tolist(),
                output_fields=["id", "vector"],
                consistency_level="Strong",
            )
            found.update({int(r["id"]): np.asarray(r["vector"], np.float32) for r in rows})
        for i, key in enumerate(ids.tolist()):
            if key not in found:
                raise KeyError(f"no vector for id {key}")
            out[i] = found[key]
        return out

    def count(self) -> int:
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        return int(rows[0]["count(*)"]) if rows else 0

    def view(self) -> MilvusEngine:
        return self  # removal is the server's; snapshots filter by their own live passages

    def save(self, folder: Path | None = None) -> dict:
        """The manifest entry: the data itself is on the server already."""
        return {
            "engine": self.name,
            "uri": self.store.uri,
            "collection": self.collection,
            "schema": SCHEMA,
            "count": self.count(),
        }

    @classmethod
    def load(cls, folder: Path | None, entry: dict, dim: int, *, model: str = "") -> MilvusEngine:
        return cls(Store.of(entry), entry["collection"], dim, model=model)

    # -- helpers ---------------------------------------------------------------------------

    def _checked(self, ids, vectors) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, np.int64).reshape(-1)
        vectors = np.asarray(vectors, np.float32).reshape(-1, self.dim)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("the same id was given twice")
        return ids, vectors

    def _present(self, ids: np.ndarray) -> np.ndarray:
        present = []
        for start in range(0, len(ids), BATCH):
            rows = self._client.query(
                self.collection,
                ids=ids[start : start + BATCH].tolist(),
                output_fields=["id"],
                consistency_level="Strong",
            )
            present.extend(int(r["id"]) for r in rows)
        return np.asarray(sorted(present), np.int64)

    def _write(self, call, ids: np.ndarray, vectors: np.ndarray, fields: dict[str, np.ndarray] | None) -> None:
        fields = fields or {}
        article = fields.get("article")
        start_, end_ = fields.get("start"), fields.get("end")
        for a in range(0, len(ids), BATCH):
            b = min(a + BATCH, len(ids))
            rows = [
                {
                    "id": int(ids[i]),
                    "vector": vectors[i].tolist(),
                    "article": "" if article is None else str(article[i])[:1024],
                    "start": 0 if start_ is None else int(start_[i]),
                    "end": 0 if end_ is None else int(end_[i]),
                }
                for i in range(a, b)
            ]
            call(self.collection, rows)


HNSW_BUILD = {"M": 16, "efConstruction": 200}
HNSW_EF = 256


def connect(store: Store):
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise ArticleQAError("a Milvus store needs the pymilvus client: pip install 'articleqa[milvus]'") from exc
    try:
        return MilvusClient(store.uri, timeout=10)
    except Exception as exc:  # pymilvus raises its own MilvusException, or grpc errors
        raise StoreUnavailable(
            f"cannot reach Milvus at {store} ({type(exc).__name__}: {exc}): start the server, "
            "or check the address (milvus://HOST:PORT)"
        ) from exc
