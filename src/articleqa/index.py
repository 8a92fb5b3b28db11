"""The index on disk: vectors + BM25 + chunk table + manifest, saved atomically, checked on load.

A folder of plain files:
  manifest.json    model, dimension, chunker settings, versions, content hash per article
  articles.jsonl   one article per line (its cleaned text and metadata)
  chunks.jsonl     one passage per line: article id, ordinal, character span, heading path
  vectors.faiss    the vectors, row i = line i of chunks.jsonl
  sentences.npy    a vector per sentence of every article (float16), for re-ranking and highlights
  tokens.npy, token_scales.npy, token_offsets.npy
                   a vector per content word piece of every passage (int8), for late interaction
  bm25/            the BM25 index over the same rows (bm25s's own plain files)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .__about__ import __version__
from .chunking import embed_text, split_article
from .errors import IndexCorrupt, IndexMismatch, IndexMissing
from .lexical import LexicalIndex
from .schema import Article, Chunk
from .settings import INDEX_FORMAT, ChunkerSettings
from .store import FaissStore, VectorStore
from .tokens import TokenVectors

MANIFEST = "manifest.json"
ARTICLES = "articles.jsonl"
CHUNKS = "chunks.jsonl"
SENTENCES = "sentences.npy"


@dataclass(frozen=True)
class Sentences:
    """An article's sentence spans (into its text) and their unit vectors, row for row."""

    spans: np.ndarray  # (n, 2) int
    vectors: np.ndarray  # (n, dim) float32


@dataclass(frozen=True)
class Change:
    """What an update did: article ids per outcome and how many passages were embedded."""

    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    embedded: int = 0  # passages embedded (with their token vectors)
    sentences: int = 0  # sentences embedded (for the re-rank and the highlight)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.removed)


@dataclass
class Index:
    """An immutable snapshot: updating returns a new Index, so readers never see half a change."""

    model: str
    dim: int
    chunker: ChunkerSettings
    articles: dict[str, Article] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    store: VectorStore | None = None
    lexical: LexicalIndex | None = None
    # "path" articles follow the folders they came from; "added" ones stay until removed.
    origins: dict[str, str] = field(default_factory=dict)
    # Removed by the user although their file is still there: id -> content hash.
    removed: dict[str, str] = field(default_factory=dict)
    sentences: dict[str, Sentences] = field(default_factory=dict)
    tokens: TokenVectors | None = None

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = FaissStore(self.dim)
        if self.tokens is None:
            self.tokens = TokenVectors.empty(self.dim, len(self.chunks))
        if len(self.tokens) != len(self.chunks):
            raise ValueError(f"token vectors for {len(self.tokens)} passages, {len(self.chunks)} passages given")
        self._rows = {c.id: i for i, c in enumerate(self.chunks)}
        if self.lexical is None:
            self.lexical = LexicalIndex.build([self.embed_text(c) for c in self.chunks])

    def embed_text(self, chunk: Chunk) -> str:
        return embed_text(self.articles[chunk.article_id], chunk)

    def row_of(self, chunk: Chunk) -> int:
        return self._rows[chunk.id]

    def chunks_of(self, article_id: str) -> list[Chunk]:
        return [c for c in self.chunks if c.article_id == article_id]

    def sentences_of(self, chunk: Chunk) -> tuple[list[tuple[int, int]], np.ndarray]:
        """The passage's sentences, as spans relative to the passage, and their vectors."""
        sents = self.sentences.get(chunk.article_id)
        if sents is None or not len(sents.spans):
            return [], np.zeros((0, self.dim), dtype=np.float32)
        inside = (sents.spans[:, 0] >= chunk.start) & (sents.spans[:, 1] <= chunk.end)
        spans = [(int(a) - chunk.start, int(b) - chunk.start) for a, b in sents.spans[inside]]
        return spans, sents.vectors[inside]

    # -- changes ---------------------------------------------------------------------------

    def updated(
        self,
        *,
        upsert: Iterable[Article] = (),
        delete: Iterable[str] = (),
        origin: str = "added",
        embedder,
        progress: Callable[[float, str], None] | None = None,
    ) -> tuple[Index, Change]:
        """A new Index with `upsert` added or replaced and `delete` gone.

        Articles whose content hash is unchanged keep their vectors: nothing is re-embedded.
        """
        delete = set(delete)
        added, replaced, unchanged, fresh = [], [], [], []
        for article in upsert:
            old = self.articles.get(article.id)
            if old is not None and old.content_hash == article.content_hash:
                unchanged.append(article.id)
            else:
                (replaced if old is not None else added).append(article.id)
                fresh.append(article)
        removed = sorted(i for i in delete if i in self.articles)
        drop = set(removed) | {a.id for a in fresh}
        keep_rows = np.array([i for i, c in enumerate(self.chunks) if c.article_id not in drop], dtype=np.int64)

        articles = {k: v for k, v in self.articles.items() if k not in drop}
        chunks = [self.chunks[i] for i in keep_rows]
        new_chunks: list[Chunk] = []
        new_spans: dict[str, list[tuple[int, int]]] = {}
        for article in fresh:
            articles[article.id] = article
            cut, spans = split_article(article, embedder.count_tokens, self.chunker, model_limit=embedder.max_tokens)
            new_chunks.extend(cut)
            new_spans[article.id] = spans
        texts = [embed_text(articles[c.article_id], c) for c in new_chunks]
        sentence_texts = [articles[i].text[a:b] for i, spans in new_spans.items() for a, b in spans]
        vectors, token_vectors, sentence_vectors = _encode(embedder, texts, sentence_texts, progress)
        # Stored in half precision; round now so a fresh index answers exactly as a reloaded one.
        sentence_vectors = sentence_vectors.astype(np.float16).astype(np.float32)
        sentences = {k: v for k, v in self.sentences.items() if k not in drop}
        offset = 0
        for article_id, spans in new_spans.items():
            rows = sentence_vectors[offset : offset + len(spans)]
            sentences[article_id] = Sentences(np.asarray(spans, dtype=np.int64).reshape(-1, 2), rows)
            offset += len(spans)
        chunks.extend(new_chunks)
        origins = {k: v for k, v in self.origins.items() if k not in drop}
        origins.update({a.id: origin for a in fresh})
        for article_id in unchanged:
            origins.setdefault(article_id, origin)
        removed_ids = dict(self.removed)
        for article_id in removed:
            removed_ids[article_id] = self.articles[article_id].content_hash
        for article in fresh:
            removed_ids.pop(article.id, None)
        index = Index(
            model=self.model,
            dim=self.dim,
            chunker=self.chunker,
            articles=articles,
            chunks=chunks,
            store=self.store.with_rows(keep_rows, vectors),
            lexical=None,  # rebuilt: BM25 statistics depend on every document
            origins=origins,
            removed=removed_ids,
            sentences=sentences,
            tokens=self.tokens.with_rows(keep_rows, token_vectors),
        )
        change = Change(
            tuple(added), tuple(replaced), tuple(removed), tuple(unchanged), len(new_chunks), len(sentence_texts)
        )
        return index, change

    # -- disk ------------------------------------------------------------------------------

    def manifest(self) -> dict:
        per_article: dict[str, dict] = {}
        for chunk in self.chunks:
            per_article.setdefault(chunk.article_id, {"chunks": 0})["chunks"] += 1
        return {
            "format": INDEX_FORMAT,
            "articleqa_version": __version__,
            "model": {"name": self.model, "dim": self.dim},
            "chunker": self.chunker.as_dict(),
            "vector_store": self.store.name,
            "lexical": self.lexical.name,
            "counts": {"articles": len(self.articles), "chunks": len(self.chunks)},
            "articles": {
                a.id: {
                    "content_hash": a.content_hash,
                    "chunks": per_article.get(a.id, {}).get("chunks", 0),
                    "origin": self.origins.get(a.id, "added"),
                }
                for a in self.articles.values()
            },
            "removed": dict(sorted(self.removed.items())),
        }

    def save(self, folder: str | Path) -> Path:
        """Write to a temporary sibling folder, then rename it into place."""
        folder = Path(folder).resolve()
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            with open(tmp / ARTICLES, "w", encoding="utf-8") as fh:
                for a in self.articles.values():
                    row = {
                        "id": a.id,
                        "title": a.title,
                        "source": a.source,
                        "url": a.url,
                        "date": a.date,
                        "description": a.description,
                        "text": a.text,
                        "sentences": self.sentences[a.id].spans.tolist() if a.id in self.sentences else [],
                    }
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            stacked = [self.sentences[a.id].vectors for a in self.articles.values() if a.id in self.sentences]
            matrix = np.vstack(stacked) if stacked else np.zeros((0, self.dim), dtype=np.float32)
            # Half precision: sentence vectors only re-rank and highlight, and it halves the file.
            np.save(tmp / SENTENCES, matrix.astype(np.float16), allow_pickle=False)
            with open(tmp / CHUNKS, "w", encoding="utf-8") as fh:
                for c in self.chunks:
                    row = {"article": c.article_id, "ordinal": c.ordinal, "start": c.start, "end": c.end}
                    fh.write(json.dumps({**row, "headings": list(c.headings)}, ensure_ascii=False) + "\n")
            self.store.save(tmp)
            self.lexical.save(tmp)
            self.tokens.save(tmp)
            # The manifest goes last: a folder without one is never mistaken for an index.
            (tmp / MANIFEST).write_text(json.dumps(self.manifest(), indent=2, ensure_ascii=False) + "\n")
            _fsync_tree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
        if folder.exists():
            os.rename(folder, old)
        os.rename(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, model: str | None = None, chunker: ChunkerSettings | None = None) -> Index:
        """Open an index folder, checking it was built the way the caller expects."""
        folder = Path(folder)
        _recover(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.exists():
            if folder.exists() and any(folder.iterdir()):
                raise IndexCorrupt(f"{folder} has no {MANIFEST}: rebuild it with `articleqa build --rebuild`")
            raise IndexMissing(f"no index in {folder}: create one with `articleqa build PATHS --index-dir {folder}`")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorrupt(
                f"{manifest_path} is unreadable ({exc}): rebuild with `articleqa build --rebuild`"
            ) from exc
        check_manifest(manifest, folder, model=model, chunker=chunker)
        try:
            articles = {}
            spans: dict[str, list] = {}
            for line in _lines(folder / ARTICLES):
                row = json.loads(line)
                spans[row["id"]] = row.get("sentences", [])
                articles[row["id"]] = Article(
                    id=row["id"],
                    title=row["title"],
                    text=row["text"],
                    source=row["source"],
                    date=row.get("date"),
                    url=row.get("url"),
                    description=row.get("description"),
                )
            chunks = []
            for line in _lines(folder / CHUNKS):
                row = json.loads(line)
                text = articles[row["article"]].text[row["start"] : row["end"]]
                chunks.append(
                    Chunk(row["article"], row["ordinal"], row["start"], row["end"], text, tuple(row["headings"]))
                )
            store = FaissStore.load(folder)
            lexical = LexicalIndex.load(folder, len(chunks))
            matrix = np.load(folder / SENTENCES, allow_pickle=False).astype(np.float32)
            sentences, offset = {}, 0
            for article_id, article_spans in spans.items():
                n = len(article_spans)
                sentences[article_id] = Sentences(
                    np.asarray(article_spans, dtype=np.int64).reshape(-1, 2), matrix[offset : offset + n]
                )
                offset += n
            if offset != len(matrix):
                raise ValueError(f"{len(matrix)} sentence vectors for {offset} sentences")
            tokens = TokenVectors.load(folder, len(chunks), manifest["model"]["dim"])
        except Exception as exc:
            raise IndexCorrupt(f"{folder} is damaged ({exc}): rebuild it with `articleqa build --rebuild`") from exc
        if len(store) != len(chunks) or store.dim != manifest["model"]["dim"]:
            raise IndexCorrupt(
                f"{folder}: {len(store)} vectors for {len(chunks)} passages; rebuild with `articleqa build --rebuild`"
            )
        entries = manifest["articles"]
        return cls(
            model=manifest["model"]["name"],
            dim=manifest["model"]["dim"],
            chunker=ChunkerSettings(**manifest["chunker"]),
            articles=articles,
            chunks=chunks,
            store=store,
            lexical=lexical,
            origins={k: v.get("origin", "added") for k, v in entries.items()},
            removed=manifest.get("removed", {}),
            sentences=sentences,
            tokens=tokens,
        )


def check_manifest(manifest: dict, folder: Path, *, model: str | None, chunker: ChunkerSettings | None) -> None:
    """Refuse an index built another way, naming the fix."""
    fix = f"rebuild it with `articleqa build --rebuild --index-dir {folder}`"
    if manifest.get("format") != INDEX_FORMAT:
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


def _encode(embedder, texts: list[str], sentences: list[str], progress) -> tuple[np.ndarray, TokenVectors, np.ndarray]:
    """Vectors and token vectors for the passages, then vectors for the sentences, in batches
    that report progress. Token vectors are quantized batch by batch: in float32, a large
    library's would not fit in memory."""
    total = len(texts) + len(sentences)
    vectors, tokens, sentence_vectors = [np.zeros((0, embedder.dim), dtype=np.float32)], [], []
    step, done = 256, 0
    quiet = None if progress is None else False
    for what, items in (("passages", texts), ("sentences", sentences)):
        for i in range(0, len(items), step):
            batch = items[i : i + step]
            if progress is not None:
                progress(done / total, f"embedding {what}: {done + len(batch)} of {total} texts")
            if what == "passages":
                v, t = embedder.encode_tokens(batch, progress=quiet)
                vectors.append(v)
                tokens.append(TokenVectors.from_passages(t, embedder.dim))
            else:
                sentence_vectors.append(embedder.encode(batch, progress=quiet))
            done += len(batch)
    if progress is not None and total:
        progress(1.0, f"embedded {len(texts)} passages and {len(sentences)} sentences")
    sentence_matrix = np.vstack(sentence_vectors) if sentence_vectors else np.zeros((0, embedder.dim), np.float32)
    return np.vstack(vectors), TokenVectors.concat(tokens, embedder.dim), sentence_matrix


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _recover(folder: Path) -> None:
    """A crash between the two renames of save() leaves only the old copy: put it back."""
    if folder.exists() or not folder.parent.exists():
        return
    olds = sorted(folder.parent.glob(f".{folder.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and (olds[-1] / MANIFEST).exists():
        os.rename(olds[-1], folder)
