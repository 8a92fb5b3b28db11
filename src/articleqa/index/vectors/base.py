"""The seam of dense search: what every vector engine offers (local FAISS ones in local.py, a
Milvus server in milvus.py), and the address of a server store. Nothing here talks to a server."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from articleqa.errors import ArticleQAError, IndexMismatch, rebuild_command

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
# Milvus's bounded consistency sees every write older than its graceful time (5 s by default),
# plus a margin for clocks that disagree between the writer's machine and the server's.
FRESH_SECONDS = 8.0


@runtime_checkable
class VectorEngine(Protocol):
    """Unit vectors keyed by int64 id, searched by inner product."""

    name: str
    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store vectors under new ids (ValueError for an id already stored)."""
        ...

    def remove(self, ids: np.ndarray) -> None:
        """Forget these ids (unknown ones are ignored)."""
        ...

    def search(self, queries: np.ndarray, k: int, *, fresh: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (len(queries), k), best first; missing results have id -1. `fresh`:
        see every write made so far (a server may answer faster from a slightly older state)."""
        ...

    def get(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids, row for row (KeyError for an unknown id)."""
        ...

    def count(self) -> int:
        """How many ids are stored."""
        ...

    def view(self) -> VectorEngine:
        """A copy sharing the stored vectors whose removals are its own (one per snapshot)."""
        ...

    def save(self, folder: Path) -> dict:
        """Write into `folder`; returns the manifest entry that `load` takes back."""
        ...


class StoreUnavailable(ArticleQAError):
    """The Milvus server named by a store cannot be reached."""


@dataclass(frozen=True)
class Store:
    """Where a library's vectors live: a Milvus server or milvus-lite file, and a collection."""

    uri: str  # what MilvusClient takes: http://HOST:PORT or a .db path
    collection: str | None = None  # None: named after the library when it is created

    @classmethod
    def parse(cls, text: str) -> Store:
        text = str(text).strip()
        if not text.startswith("milvus://"):
            raise ArticleQAError(f"unknown store {text!r}: use milvus://HOST:PORT[/COLLECTION] or milvus:///PATH.db")
        rest = text[len("milvus://") :]
        if rest.startswith("/"):
            if not rest.endswith(".db"):
                raise ArticleQAError(f"a milvus-lite store is a file ending in .db, not {rest!r}")
            return cls(str(Path(rest)))
        address, _, name = rest.partition("/")
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ArticleQAError(
                f"{text!r} names no server: use milvus://HOST:PORT (for example milvus://127.0.0.1:19530)"
            )
        if name and not _NAME.match(name):
            raise ArticleQAError(f"{name!r} is not a Milvus collection name: use letters, digits and _")
        return cls(f"http://{host}:{port}", name or None)

    def __str__(self) -> str:
        if not self.uri.startswith("http://"):
            return f"milvus://{self.uri}"
        return f"milvus://{self.uri[len('http://') :]}" + (f"/{self.collection}" if self.collection else "")

    @classmethod
    def of(cls, entry: dict) -> Store:
        """The store a manifest's vectors entry names."""
        return cls(entry["uri"], entry["collection"])

    def same_place(self, entry: dict) -> bool:
        """Whether a manifest's vectors entry points here."""
        return entry.get("uri") == self.uri and (self.collection is None or entry.get("collection") == self.collection)


def check_store(wanted: str, entry: dict, folder) -> None:
    """Refuse to open or write a library on a store other than the one its manifest names."""
    if not Store.parse(wanted).same_place(entry):
        raise IndexMismatch(
            f"{folder} keeps its vectors in {Store.of(entry)}, not {wanted}: open it without a store "
            f"(or with that one), or {rebuild_command()}"
        )


def collection_for_new_library() -> str:
    return f"articleqa_{uuid.uuid4().hex[:16]}"
