"""The index as one immutable snapshot: the segments a manifest names, minus deleted passages.

Readers hold a snapshot for as long as they like; a write publishes the next one (writer.py), which
shares every unchanged segment with this one. Passages are addressed by key everywhere: their
vectors, sentences, token vectors and BM25 postings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from articleqa.embed.codecs import Codec, Int8Codec, PQCodec
from articleqa.errors import IndexCorrupt, IndexMismatch, IndexMissing, rebuild_command
from articleqa.index import storage
from articleqa.index.segment import Segment
from articleqa.index.vectors import local
from articleqa.index.vectors.base import FRESH_SECONDS, VectorEngine
from articleqa.schema import Article, Chunk
from articleqa.settings import INDEX_FORMAT, ChunkerSettings
from articleqa.text.lexical import BM25, Matches

MANIFEST = storage.MANIFEST


@dataclass(frozen=True)
class Located:
    """Where passages live: segment number and row for each key (-1, -1 when not live)."""

    segments: np.ndarray
    rows: np.ndarray

    def groups(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(segment, positions in the key list, rows) for each segment holding some of the keys."""
        for s in np.unique(self.segments[self.segments >= 0]):
            where = np.nonzero(self.segments == s)[0]
            yield int(s), where, self.rows[where]


class Index:
    """A snapshot of an index folder (or an empty index that has no folder yet)."""

    def __init__(
        self,
        model: str,
        dim: int,
        chunker: ChunkerSettings,
        *,
        folder: Path | None = None,
        manifest: dict | None = None,
        segments: Sequence[Segment] = (),
        deleted: np.ndarray | None = None,
        codecs: dict[str, Codec] | None = None,
        remote: VectorEngine | None = None,
    ) -> None:
        self.model = model
        self.dim = dim
        self.chunker = chunker
        self.folder = Path(folder) if folder is not None else None
        self.manifest = manifest or {}
        self.generation = int(self.manifest.get("generation", 0))
        self.removed: dict[str, str] = dict(self.manifest.get("removed", {}))
        self.segments = list(segments)
        self.deleted = np.zeros(0, np.int64) if deleted is None else np.asarray(deleted, np.int64)
        self.codecs = dict(codecs or {})
        # A server holding every passage vector (milvus.py): searched instead of the segments'
        # engines, which then only read vectors back by key.
        self.remote = remote
        self.live: list[np.ndarray | None] = []
        self.engines: list[VectorEngine] = []
        for seg in self.segments:
            dead = np.isin(seg.keys, self.deleted) if len(self.deleted) else None
            self.live.append(None if dead is None or not dead.any() else ~dead)
            engine = seg.engine
            if self.live[-1] is not None:
                engine = engine.view()
                engine.remove(seg.keys[dead])
            self.engines.append(engine)
        # Live passages per segment, counted once: `len(index)` is asked on every question.
        self.live_counts = [len(s) if live is None else int(live.sum()) for s, live in zip(self.segments, self.live)]
        self.lexical = BM25([(seg.postings, live) for seg, live in zip(self.segments, self.live)])

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def empty(cls, model: str, dim: int, chunker: ChunkerSettings, folder: Path | None = None) -> Index:
        return cls(model, dim, chunker, folder=folder)

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        model: str | None = None,
        chunker: ChunkerSettings | None = None,
        previous: Index | None = None,
    ) -> Index:
        """Read the published state of an index folder, checking it was built the way the caller
        expects; segments already open in `previous` are reused. Nothing is written: a format-3
        folder fails with the rebuild command (opening.open_index migrates it first)."""
        folder = Path(folder)
        for _ in range(20):
            manifest = storage.read_manifest(folder)
            if manifest is None:
                if folder.exists() and not storage.only_leftovers(folder):
                    raise IndexCorrupt(f"{folder} has no {MANIFEST}: {rebuild_command()}")
                raise IndexMissing(
                    f"no index in {folder}: create one with `articleqa build PATHS --index-dir {folder}`"
                )
            check_manifest(manifest, folder, model=model, chunker=chunker)
            try:
                return cls._open(folder, manifest, previous)
            except FileNotFoundError:
                if storage.read_manifest(folder) != manifest:
                    continue  # a writer published meanwhile and cleared what we were about to read
                raise IndexCorrupt(f"{folder} is missing files its manifest names: {rebuild_command()}") from None
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
                if storage.read_manifest(folder) != manifest:
                    continue  # a merge published meanwhile and removed the segment we were reading
                raise IndexCorrupt(f"{folder} is damaged ({exc}): {rebuild_command()}") from exc
        raise IndexCorrupt(f"{folder} kept changing while it was being opened: try again")

    @classmethod
    def _open(cls, folder: Path, manifest: dict, previous: Index | None) -> Index:
        dim = int(manifest["model"]["dim"])
        reuse = {s.name: s for s in previous.segments} if previous is not None and previous.folder == folder else {}
        codecs = dict(previous.codecs) if previous is not None else {}
        segments = []
        for entry in manifest["segments"]:
            seg = reuse.get(entry["name"])
            if seg is None:
                codec = _codec(folder, entry.get("tokens") or {"codec": "int8"}, dim, codecs)
                seg = Segment(storage.segment_dir(folder, entry["name"]), dim, codec)
            segments.append(seg)
        deleted = storage.load_deleted(folder, manifest.get("deleted"))
        remote = None
        if manifest.get("vectors"):
            same = previous is not None and previous.remote is not None and previous.manifest.get("vectors")
            remote = previous.remote if same == manifest["vectors"] else local.load(folder, manifest["vectors"], dim)
        tokens = manifest.get("tokens")
        if tokens:
            _codec(folder, tokens, dim, codecs)
        return cls(
            manifest["model"]["name"],
            dim,
            ChunkerSettings(**manifest["chunker"]),
            folder=folder,
            manifest=manifest,
            segments=segments,
            deleted=deleted,
            codecs=codecs,
            remote=remote,
        )

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """Live passages."""
        return sum(self.live_counts)

    @cached_property
    def _article_index(self) -> dict[str, tuple[int, int]]:
        """Live article id -> (segment, article row)."""
        out: dict[str, tuple[int, int]] = {}
        for i, seg in enumerate(self.segments):
            for row in np.nonzero(self._live_articles(i))[0]:
                out[seg.article_ids[row]] = (i, int(row))
        return out

    def _live_articles(self, i: int) -> np.ndarray:
        """Which of segment i's articles are live (an article is live with its first passage)."""
        seg, live = self.segments[i], self.live[i]
        return np.ones(len(seg.article_ids), bool) if live is None else live[seg.table["chunk"]]

    def where(self, article_id: str) -> tuple[int, int] | None:
        """(segment, article row) of a live article; a lookup per segment, so a change to a
        large library does not walk all its articles."""
        for s, (seg, live) in enumerate(zip(self.segments, self.live)):
            row = seg.article_row(article_id)
            if row is not None and (live is None or live[seg.table["chunk"][row]]):
                return s, row
        return None

    @property
    def articles(self) -> Mapping[str, Article]:
        """Live articles by id (read from disk when looked at)."""
        return ArticleMap(self)

    def article_count(self) -> int:
        return sum(int(self._live_articles(i).sum()) for i in range(len(self.segments)))

    def article_key(self, article_id: str) -> tuple[str, str, str] | None:
        """(content hash, origin, source) of a live article, or None."""
        where = self.where(article_id)
        return None if where is None else self.segments[where[0]].article_key(where[1])

    def article_keys(self) -> dict[str, tuple[str, str, str]]:
        """id -> (content hash, origin, source) of every live article, without reading any text."""
        return {article_id: self.segments[s].article_key(row) for article_id, (s, row) in self._article_index.items()}

    def passage_counts(self) -> dict[str, int]:
        return {
            article_id: int(self.segments[s].table[row]["chunks"])
            for article_id, (s, row) in self._article_index.items()
        }

    def chunks_of(self, article_id: str) -> list[Chunk]:
        where = self.where(article_id)
        if where is None:
            return []
        seg = self.segments[where[0]]
        return [seg.chunk_at(r) for r in seg.article_rows(where[1])]

    def keys_of(self, article_id: str) -> np.ndarray:
        where = self.where(article_id)
        if where is None:
            return np.zeros(0, np.int64)
        seg = self.segments[where[0]]
        rows = seg.article_rows(where[1])
        return seg.keys[rows.start : rows.stop]

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every live passage, segment by segment."""
        for seg, live in zip(self.segments, self.live):
            for row in range(len(seg)):
                if live is None or live[row]:
                    yield seg.chunk_at(row)

    def all_chunks(self) -> list[Chunk]:
        """Every live passage (reads them all: for small libraries and tests)."""
        return list(self.iter_chunks())

    def locate(self, keys: Sequence[int] | np.ndarray) -> Located:
        keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        segs = np.full(len(keys), -1, np.int64)
        rows = np.full(len(keys), -1, np.int64)
        for i, (seg, live) in enumerate(zip(self.segments, self.live)):
            found = seg.rows_of(keys)
            ok = found >= 0
            if live is not None:
                ok &= live[np.maximum(found, 0)]
            segs[ok], rows[ok] = i, found[ok]
        return Located(segs, rows)

    def spans(self, keys: Sequence[int]) -> dict[int, tuple[str, int, int]]:
        """Each passage's (article id, start, end), read from the passage tables alone."""
        keys = np.asarray(keys, dtype=np.int64)
        out = {}
        for s, pos, rows in self.locate(keys).groups():
            seg = self.segments[s]
            table = np.asarray(seg.passage_rows[rows])
            for key, row in zip(keys[pos], table):
                out[int(key)] = (seg.article_ids[int(row["article"])], int(row["start"]), int(row["end"]))
        return out

    def chunk_at(self, key: int) -> Chunk:
        where = self.locate([key])
        if where.segments[0] < 0:
            raise KeyError(f"no live passage {key}")
        return self.segments[int(where.segments[0])].chunk_at(int(where.rows[0]))

    def chunks_at(self, keys: Sequence[int]) -> list[Chunk]:
        where = self.locate(keys)
        return [self.segments[int(s)].chunk_at(int(r)) for s, r in zip(where.segments, where.rows)]

    # -- the signals retrieval fuses -------------------------------------------------------

    def dense_search(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, keys) of the n passages closest to the vector, best first."""
        if self.remote is not None:
            return self._remote_search(vector, n)
        scores, keys = [], []
        for engine in self.engines:
            if engine.count():
                s, k = engine.search(vector.reshape(1, -1), n)
                keep = k[0] >= 0
                scores.append(s[0][keep])
                keys.append(k[0][keep])
        if not scores:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, keys = np.concatenate(scores), np.concatenate(keys)
        order = np.lexsort((keys, -scores))[:n]
        return scores[order], keys[order]

    def _remote_search(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The server's nearest passages that are live in this snapshot: it may hold passages
        another process has written but not yet published, or removed but not yet deleted there."""
        fresh = time.time() - float(self.manifest.get("published", 0)) < FRESH_SECONDS
        fetch = n + 16
        for _ in range(4):
            scores, keys = self.remote.search(vector.reshape(1, -1), fetch, fresh=fresh)
            scores, keys = scores[0][keys[0] >= 0], keys[0][keys[0] >= 0]
            live = self.locate(keys).segments >= 0
            if live.sum() >= n or len(keys) < fetch:
                break
            fetch *= 4
        scores, keys = scores[live], keys[live]
        order = np.lexsort((keys, -scores))[:n]
        return scores[order], keys[order]

    def dense_scores(self, vector: np.ndarray, keys: Sequence[int]) -> np.ndarray:
        """Cosine of the vector with each passage's vector."""
        out = np.zeros(len(keys), np.float32)
        where = self.locate(keys)
        for s, pos, _ in where.groups():
            out[pos] = self.engines[s].get(np.asarray(keys, np.int64)[pos]) @ vector.reshape(-1)
        return out

    def lexical_scores(self, query: str) -> LexicalScores:
        return LexicalScores(self, self.lexical.query(query))

    def sentences_of(self, chunk: Chunk) -> tuple[list[tuple[int, int]], np.ndarray]:
        """The passage's sentences, as spans relative to the passage, and their vectors."""
        where = self.locate([chunk.key])
        if where.segments[0] < 0:
            return [], np.zeros((0, self.dim), np.float32)
        spans, vectors = self.segments[int(where.segments[0])].sentences(int(where.rows[0]))
        return [(int(a) - chunk.start, int(b) - chunk.start) for a, b in spans], vectors

    def best_sentence(self, vector: np.ndarray, keys: Sequence[int]) -> np.ndarray:
        """Each passage's best single sentence similarity (-1 for a passage without sentences)."""
        out = np.full(len(keys), -1.0, np.float32)
        for s, pos, rows in self.locate(keys).groups():
            out[pos] = self.segments[s].best_sentence(vector, rows)
        return out

    def maxsim(self, query_tokens: np.ndarray, keys: Sequence[int]) -> np.ndarray:
        """Late interaction score of each passage (tokens.TokenTable.maxsim)."""
        out = np.zeros(len(keys), np.float32)
        for s, pos, rows in self.locate(keys).groups():
            out[pos] = self.segments[s].tokens.maxsim(query_tokens, rows)
        return out

    def token_vectors(self, key: int) -> np.ndarray:
        """One passage's content token vectors, decoded, in the order of its word pieces."""
        for s, _, rows in self.locate([key]).groups():
            return self.segments[s].tokens.vectors(rows)
        return np.zeros((0, self.dim), np.float32)

    def best_match(self, query_tokens: np.ndarray, keys: Sequence[int]) -> np.ndarray:
        """For each question token, its best cosine among all tokens of these passages."""
        parts = [self.segments[s].tokens.best_match(query_tokens, rows) for s, _, rows in self.locate(keys).groups()]
        return np.max(parts, axis=0) if parts else np.zeros(len(query_tokens), np.float32)

    # -- what it is made of ----------------------------------------------------------------

    @property
    def codec(self) -> Codec | None:
        """The token codec new passages are stored with (None until the library has one)."""
        entry = self.manifest.get("tokens")
        if not entry:
            return None
        return self.codecs.get(entry.get("codebook") or "int8") or _codec(self.folder, entry, self.dim, self.codecs)

    def verify(self) -> tuple[int, list[str]]:
        """Every file of the published index read and checked (`verify_folder`)."""
        return verify_folder(self.folder)

    def describe(self) -> dict:
        """Segments, engines and sizes, for `articleqa info`."""
        engines_used: dict[str, dict[str, int]] = {}
        codecs_used: dict[str, dict[str, int]] = {}
        for seg, count in zip(self.segments, self.live_counts):
            entry = engines_used.setdefault(seg.meta["dense"]["engine"], {"segments": 0, "passages": 0})
            entry["segments"] += 1
            entry["passages"] += count
            entry = codecs_used.setdefault(seg.tokens.codec.name, {"segments": 0, "passages": 0, "bytes": 0})
            entry["segments"] += 1
            entry["passages"] += count
            entry["bytes"] = int(seg.tokens.codec.width)
        if self.remote is not None:  # the segments only store vectors; the server searches them
            engines_used = {"milvus": {"segments": len(self.segments), "passages": len(self)}}
        return {
            "format": INDEX_FORMAT,
            "generation": self.generation,
            "segments": len(self.segments),
            "dense": engines_used,
            "vectors": dict(self.manifest.get("vectors") or {"engine": "local"}),
            "tokens": codecs_used,
            "deleted_passages": int(len(self.deleted)),
        }


def _codec(folder: Path | None, entry: dict, dim: int, cache: dict[str, Codec]) -> Codec:
    if entry.get("codec") == "int8":
        return cache.setdefault("int8", Int8Codec(dim))
    if entry.get("codec") == "pq":
        name = entry["codebook"]
        if name not in cache:
            cache[name] = PQCodec.load(Path(folder) / name)
        return cache[name]
    raise ValueError(f"unknown token codec {entry.get('codec')!r}")


class ArticleMap(Mapping):
    """Live articles by id; each is read from its segment when looked up."""

    def __init__(self, index: Index) -> None:
        self._index = index

    def __getitem__(self, article_id: str) -> Article:
        where = self._index.where(article_id) if isinstance(article_id, str) else None
        if where is None:
            raise KeyError(article_id)
        return self._index.segments[where[0]].article(where[1])

    def __iter__(self) -> Iterator[str]:
        return iter(self._index._article_index)

    def __len__(self) -> int:
        return self._index.article_count()

    def __contains__(self, article_id: object) -> bool:
        return isinstance(article_id, str) and self._index.where(article_id) is not None


def check_manifest(manifest: dict, folder: Path, *, model: str | None, chunker: ChunkerSettings | None) -> None:
    """Refuse an index built another way, naming the fix."""
    fix = rebuild_command(folder)
    written = manifest.get("format")
    if isinstance(written, int) and written > INDEX_FORMAT:  # rebuilding would throw a newer index away
        raise IndexMismatch(
            f"{folder} was written by a newer articleqa (index format {written}; this version reads "
            f"{INDEX_FORMAT}): upgrade articleqa to open it (pip install --upgrade articleqa); do not rebuild it"
        )
    if written != INDEX_FORMAT:
        raise IndexMismatch(
            f"{folder} uses index format {manifest.get('format')}, this version reads {INDEX_FORMAT}: {fix}"
        )
    built = manifest.get("model", {}).get("name")
    if model is not None and built != model:
        raise IndexMismatch(f"{folder} was built with model {built!r}, you asked for {model!r}: {fix}")
    if chunker is not None and manifest.get("chunker") != chunker.as_dict():
        raise IndexMismatch(
            f"{folder} was built with chunker settings {manifest.get('chunker')}, "
            f"this version uses {chunker.as_dict()}: {fix}"
        )


class LexicalScores:
    """BM25 scores of one question over a snapshot: the best passages, or any passage's score."""

    def __init__(self, index: Index, matches: Matches) -> None:
        self._index = index
        self._matches = matches

    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, keys) of the n best passages with a positive score, best first."""
        scores, keys = [], []
        for i, seg in enumerate(self._index.segments):
            sc, rows = self._matches.top(i, n)
            scores.append(sc)
            keys.append(seg.keys[rows])
        if not scores:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, keys = np.concatenate(scores), np.concatenate(keys)
        order = np.lexsort((keys, -scores))[:n]
        return scores[order], keys[order]

    def of(self, keys: Sequence[int]) -> np.ndarray:
        out = np.zeros(len(keys), np.float32)
        for s, pos, rows in self._index.locate(keys).groups():
            out[pos] = self._matches.of(s, rows)
        return out


def verify_folder(folder: Path) -> tuple[int, list[str]]:
    """Read every file of every segment of the index in `folder` and check it against its
    checksum (segment.json's; the manifest's for segment.json itself), without opening the index,
    so that an index too damaged to open is still told file by file: (files read, problems)."""
    from articleqa.index.segment import META, file_check

    manifest = storage.read_manifest(folder)
    if manifest is None:
        return 0, [f"{folder}: no {MANIFEST}"]
    files, problems = 1, []
    for entry in manifest.get("segments", []):
        seg = storage.segment_dir(folder, entry["name"])
        try:
            meta = json.loads((seg / META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{seg / META}: unreadable ({exc})")
            continue
        files += 1
        if entry.get("check") is not None and file_check(seg / META) != entry["check"]:
            problems.append(f"{seg / META}: damaged (its checksum is not the one the manifest holds)")
        for name, check in (meta.get("files") or {}).items():
            files += 1
            try:
                found = file_check(seg / name)
            except OSError as exc:
                problems.append(f"{seg / name}: unreadable ({exc})")
                continue
            if found != check:
                problems.append(f"{seg / name}: damaged (CRC-32 {found['crc32']}, {found['bytes']} bytes; "
                                f"written as {check['crc32']}, {check['bytes']} bytes)")  # fmt: skip
    return files, problems
