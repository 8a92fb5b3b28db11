"""One immutable segment of an index: the passages one write added, with everything search needs.

A segment is a folder written once and never changed (deletions are recorded by the manifest):

  segment.json         counts, its dense engine and token codec (written last)
  chunks.npy           one row per passage: key, article row, ordinal, character span, heading
                       path (into headings.json), and its sentences' rows
  headings.json        the distinct heading paths
  articles.jsonl       one article per line: metadata, content hash, origin, text
  articles.npy         per article: byte offset of its line, its passages' and sentences' rows
  article_keys.json    ids, content hashes, origins and sources, readable without parsing any text
  sentence_spans.npy   (sentences, 2) character spans into their article's text
  sentences.npy        (sentences, dim + 4) uint8: unit vectors as int8 with a scale (tokens.Int8Codec)
  tokens.npy, token_offsets.npy     compressed token vectors (tokens.py)
  terms.json, postings_*.npy, lengths.npy   BM25 postings (lexical.py)
  dense.npy, dense_ids.npy [, dense.hnsw]   passage vectors and their engine (local.py)

Rows are ordered by key; every per-passage file is row-aligned with chunks.npy.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from articleqa.embed.codecs import Codec, Int8Codec, TokenTable, offsets_of, ranges
from articleqa.index import storage
from articleqa.index.vectors import local
from articleqa.index.vectors.base import VectorEngine
from articleqa.schema import Article, Chunk
from articleqa.text.lexical import Postings

META = "segment.json"
CHUNKS = "chunks.npy"
HEADINGS = "headings.json"
ARTICLES = "articles.jsonl"
ARTICLE_ROWS = "articles.npy"
ARTICLE_KEYS = "article_keys.json"
TOKENS = "tokens.npy"
TOKEN_OFFSETS = "token_offsets.npy"
SPANS = "sentence_spans.npy"
SENTENCES = "sentences.npy"

CHUNK_ROW = np.dtype(
    [
        ("key", "<i8"),
        ("article", "<i4"),
        ("ordinal", "<i4"),
        ("start", "<i8"),
        ("end", "<i8"),
        ("headings", "<i4"),
        ("sentence", "<i8"),
        ("sentences", "<i4"),
    ]
)
ARTICLE_ROW = np.dtype(
    [
        ("offset", "<i8"),
        ("length", "<i8"),
        ("chunk", "<i8"),
        ("chunks", "<i4"),
        ("sentence", "<i8"),
        ("sentences", "<i4"),
    ]
)


@dataclass
class SegmentData:
    """What one segment holds, in memory, before it is written. Rows are passages, in key order;
    an article's passages and sentences are contiguous."""

    articles: list[Article]
    origins: list[str]
    passage_rows: np.ndarray  # CHUNK_ROW; "article" indexes `articles`, "headings" indexes `headings`
    headings: list[tuple[str, ...]]
    vectors: np.ndarray  # (passages, dim) float32
    tokens: TokenTable
    sentence_spans: np.ndarray  # (sentences, 2) int64
    sentence_codes: np.ndarray  # (sentences, dim + 4) uint8, codecs.Int8Codec
    postings: Postings

    def __len__(self) -> int:
        return len(self.passage_rows)


def write(folder: Path, data: SegmentData, engine: VectorEngine, *, fsync: bool = True) -> dict:
    """Write `data` into the new folder `folder` (which must not exist); returns segment.json."""
    folder = Path(folder)
    folder.mkdir()
    chunks = data.passage_rows
    n = len(chunks)
    if not (len(data.vectors) == len(data.tokens) == len(data.postings) == n):
        raise ValueError("a segment's per-passage parts disagree on the number of passages")
    if n and np.any(np.diff(chunks["key"]) <= 0):
        raise ValueError("a segment's keys must be ascending")
    table = np.zeros(len(data.articles), ARTICLE_ROW)
    with open(folder / ARTICLES, "wb") as fh:
        for i, (article, origin) in enumerate(zip(data.articles, data.origins)):
            line = (json.dumps(_article_row(article, origin), ensure_ascii=False) + "\n").encode("utf-8")
            table[i]["offset"], table[i]["length"] = fh.tell(), len(line)
            fh.write(line)
    rows = chunks["article"].astype(np.int64)
    counts = np.bincount(rows, minlength=len(data.articles)) if n else np.zeros(len(data.articles), np.int64)
    table["chunk"] = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else []
    table["chunks"] = counts
    first = np.full(len(data.articles), -1, np.int64)
    last = np.full(len(data.articles), -1, np.int64)
    for r in range(n):  # an article's sentences are those of its passages, contiguous
        a, s, c = rows[r], chunks[r]["sentence"], chunks[r]["sentences"]
        first[a] = s if first[a] < 0 else min(first[a], s)
        last[a] = max(last[a], s + c)
    table["sentence"] = np.maximum(first, 0)
    table["sentences"] = np.maximum(last - first, 0)
    np.save(folder / ARTICLE_ROWS, table, allow_pickle=False)
    np.save(folder / CHUNKS, chunks, allow_pickle=False)
    (folder / HEADINGS).write_text(json.dumps([list(h) for h in data.headings], ensure_ascii=False), encoding="utf-8")
    keys = {
        "id": [a.id for a in data.articles],
        "content_hash": [a.content_hash for a in data.articles],
        "origin": list(data.origins),
        "source": [a.source for a in data.articles],
    }
    (folder / ARTICLE_KEYS).write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")
    np.save(folder / SPANS, np.asarray(data.sentence_spans, dtype=np.int64).reshape(-1, 2), allow_pickle=False)
    np.save(folder / SENTENCES, np.asarray(data.sentence_codes, dtype=np.uint8), allow_pickle=False)
    np.save(folder / TOKENS, np.ascontiguousarray(data.tokens.codes, dtype=np.uint8), allow_pickle=False)
    np.save(folder / TOKEN_OFFSETS, data.tokens.offsets, allow_pickle=False)
    storage.crash_point("segment-half")
    data.postings.save(folder)
    if engine.count() == 0 and n:
        engine.add(chunks["key"], data.vectors)
    dense = engine.save(folder)
    meta = {
        "passages": n,
        "articles": len(data.articles),
        "sentences": int(len(data.sentence_spans)),
        "keys": [int(chunks["key"][0]), int(chunks["key"][-1])] if n else [0, -1],
        "dense": dense,
        "tokens": data.tokens.codec.entry(),
        # Every file's size (checked at each open) and checksum (checked by `articleqa info --verify`).
        "files": {p.name: file_check(p) for p in sorted(folder.iterdir()) if p.is_file()},
    }
    # segment.json goes last: a folder without it is an unfinished write, never read.
    (folder / META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    if fsync:
        for path in folder.iterdir():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    return meta


def file_check(path: Path) -> dict:
    """A file's size and CRC-32, as segment.json records them."""
    crc, size = 0, 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            crc, size = zlib.crc32(block, crc), size + len(block)
    return {"bytes": size, "crc32": f"{crc:08x}"}


def article_from_row(row: dict) -> Article:
    """An Article from its line in articles.jsonl (format 3's lines have the same fields)."""
    return Article(
        id=row["id"],
        title=row["title"],
        text=row["text"],
        source=row["source"],
        date=row.get("date"),
        url=row.get("url"),
        description=row.get("description"),
        author=row.get("author"),
        pages=tuple(row.get("pages") or ()),
        fetched=row.get("fetched"),
    )


def _article_row(article: Article, origin: str) -> dict:
    return {
        "id": article.id,
        "title": article.title,
        "source": article.source,
        "url": article.url,
        "date": article.date,
        "description": article.description,
        **({"author": article.author} if article.author else {}),
        **({"pages": list(article.pages)} if article.pages else {}),
        **({"fetched": article.fetched} if article.fetched else {}),
        "content_hash": article.content_hash,
        "origin": origin,
        "text": article.text,
    }


class Segment:
    """An opened segment: tables memory-mapped, articles parsed only when asked for."""

    def __init__(self, folder: Path, dim: int, codec: Codec) -> None:
        self.folder = Path(folder)
        self.name = self.folder.name
        self.meta = json.loads((self.folder / META).read_text(encoding="utf-8"))
        self._check_sizes()
        self.dim = dim
        n = self.meta["passages"]
        self.passage_rows = np.load(self.folder / CHUNKS, mmap_mode="r", allow_pickle=False)
        self.keys = np.array(self.passage_rows["key"], dtype=np.int64)
        self.table = np.load(self.folder / ARTICLE_ROWS, allow_pickle=False)
        keys = json.loads((self.folder / ARTICLE_KEYS).read_text(encoding="utf-8"))
        self.article_ids: list[str] = keys["id"]
        self.content_hashes: list[str] = keys["content_hash"]
        self.origins: list[str] = keys["origin"]
        self.sources: list[str] = keys["source"]
        self.sentence_spans = storage.RowFile(self.folder / SPANS)
        self.sentence_codes = storage.RowFile(self.folder / SENTENCES)
        self._sentence_codec = Int8Codec(dim)
        # Read by row, not mapped: only the candidates' codes are read.
        offsets = np.load(self.folder / TOKEN_OFFSETS, allow_pickle=False)
        self.tokens = TokenTable.checked(storage.RowFile(self.folder / TOKENS), offsets, n, codec)
        self.postings = Postings.load(self.folder, n)
        self.engine = local.load(self.folder, self.meta["dense"], dim)
        self._article_rows: dict[str, int] | None = None
        # Opened now, not when first read: a merge may delete this folder while we still use it,
        # and an open file (or mapping) outlives its name.
        self.headings = [tuple(h) for h in json.loads((self.folder / HEADINGS).read_text(encoding="utf-8"))]
        self._text = os.open(self.folder / ARTICLES, os.O_RDONLY)
        self._check(n)
        # Per segment, so a segment that leaves the index takes its cached articles with it.
        self.article = lru_cache(maxsize=256)(self._article)

    def article_key(self, row: int) -> tuple[str, str, str]:
        """(content hash, origin, source) of the article in this row, without reading its text."""
        return self.content_hashes[row], self.origins[row], self.sources[row]

    def article_row(self, article_id: str) -> int | None:
        """The row of an article held in this segment (live or not), by id."""
        if self._article_rows is None:  # once per segment: snapshots share their segments
            self._article_rows = {a: i for i, a in enumerate(self.article_ids)}
        return self._article_rows.get(article_id)

    def _check_sizes(self) -> None:
        """Refuse a segment whose files are not the size segment.json says: cut short or grown."""
        for name, check in (self.meta.get("files") or {}).items():
            try:
                size = (self.folder / name).stat().st_size
            except FileNotFoundError:  # as any read would: a merge may have removed the segment
                raise FileNotFoundError(f"segment {self.name}: {name} is missing") from None
            if size != check["bytes"]:
                raise ValueError(f"segment {self.name}: {name} is {size} bytes, segment.json says {check['bytes']}")

    def _check(self, n: int) -> None:
        m = self.meta["articles"]
        if len(self.passage_rows) != n or self.passage_rows.dtype != CHUNK_ROW:
            raise ValueError(f"segment {self.name}: {len(self.passage_rows)} passage rows, its manifest says {n}")
        if len(self.table) != m or not (len(self.article_ids) == len(self.content_hashes) == len(self.origins) == m):
            raise ValueError(f"segment {self.name}: article tables disagree ({m} articles)")
        if len(self.sentence_spans) != len(self.sentence_codes) or self.sentence_codes.shape[1:] != (self.dim + 4,):
            raise ValueError(f"segment {self.name}: sentence spans and vectors disagree")
        if self.engine.count() != n:
            raise ValueError(f"segment {self.name}: {self.engine.count()} vectors for {n} passages")

    def __del__(self) -> None:
        if getattr(self, "_text", None) is not None:
            os.close(self._text)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, passages={len(self)}, dense={self.meta['dense']['engine']})"

    def _article(self, row: int) -> Article:
        offset, length = int(self.table[row]["offset"]), int(self.table[row]["length"])
        return article_from_row(json.loads(os.pread(self._text, length, offset)))

    def chunk_at(self, row: int) -> Chunk:
        r = self.passage_rows[row]
        article = self.article(int(r["article"]))
        start, end = int(r["start"]), int(r["end"])
        return Chunk(
            article_id=article.id,
            ordinal=int(r["ordinal"]),
            start=start,
            end=end,
            text=article.text[start:end],
            headings=self.headings[int(r["headings"])],
            key=int(r["key"]),
        )

    def rows_of(self, keys: np.ndarray) -> np.ndarray:
        """The row of each key, or -1 where this segment does not hold it."""
        keys = np.asarray(keys, dtype=np.int64)
        if not len(self.keys):
            return np.full(len(keys), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[pos] == keys, pos, -1)

    def sentences(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The passage's sentence spans (into its article's text) and their unit vectors."""
        s, c = int(self.passage_rows[row]["sentence"]), int(self.passage_rows[row]["sentences"])
        codes = np.asarray(self.sentence_codes[s : s + c])
        return np.asarray(self.sentence_spans[s : s + c]), self._sentence_codec.decode(codes)

    def best_sentence(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """For each passage row, its best sentence's cosine with the vector (-1 without sentences):
        all the rows' sentences decoded and scored at once."""
        table = np.asarray(self.passage_rows[np.asarray(rows, dtype=np.int64)])
        counts = table["sentences"].astype(np.int64)
        out = np.full(len(rows), -1.0, np.float32)
        has = counts > 0
        if not has.any():
            return out
        codes = np.asarray(self.sentence_codes[ranges(table["sentence"][has], counts[has])])
        sims = self._sentence_codec.decode(codes) @ np.asarray(vector, np.float32).reshape(-1)
        out[has] = np.maximum.reduceat(sims, offsets_of(counts[has])[:-1])
        return out

    def article_rows(self, row: int) -> range:
        """The passage rows of article `row`."""
        first, count = int(self.table[row]["chunk"]), int(self.table[row]["chunks"])
        return range(first, first + count)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())


def passage_row(
    number: int, ordinal: int, start: int, end: int, heading: int, spans: np.ndarray, sentence_base: int, key: int = 0
) -> tuple:
    """One CHUNK_ROW: a passage of article `number` at [start, end), its heading path's number,
    and which of its article's sentences (`spans`, numbered from `sentence_base` in the segment)
    lie wholly inside it: the first and how many."""
    spans = np.asarray(spans, np.int64).reshape(-1, 2)
    inside = np.nonzero((spans[:, 0] >= start) & (spans[:, 1] <= end))[0]
    first = sentence_base + (int(inside[0]) if len(inside) else 0)
    return (key, number, ordinal, start, end, heading, first, len(inside))


def merged(parts: list[tuple[Segment, np.ndarray]], codec: Codec) -> SegmentData:
    """The live rows of several segments as the data of one, in key order, nothing re-embedded.

    `parts` gives each segment with its live-row mask. Articles leave whole, and each write's keys
    are one contiguous block, so sorting passages by key keeps every article's passages together.
    Token codes are re-encoded only where a segment used another codec.
    """
    gathered = _Gathered.of(parts)
    if not gathered.articles:
        dim = codec.dim
        return SegmentData(
            [], [], np.zeros(0, CHUNK_ROW), [], np.zeros((0, dim), np.float32),
            TokenTable.concat([], codec), np.zeros((0, 2), np.int64), np.zeros((0, dim + 4), np.uint8),
            Postings.from_terms([]),
        )  # fmt: skip
    g = gathered
    chunks, headings, vectors, token_counts, postings_parts = _merged_passages(parts, g, codec.dim)
    tokens = _merged_tokens(parts, g, token_counts, codec)
    spans, sentence_codes = _merged_sentences(parts, g, codec.dim)
    return SegmentData(
        [g.articles[a] for a in g.article_order],
        [g.origins[a] for a in g.article_order],
        chunks,
        headings,
        vectors,
        tokens,
        spans,
        sentence_codes,
        Postings.merge(postings_parts, len(g.keys)),
    )


@dataclass
class _Gathered:
    """Where every live passage of a merge comes from and goes to."""

    keys: np.ndarray  # the live passages' keys, part by part
    part_of: np.ndarray  # which part each comes from
    row_of: np.ndarray  # its row there
    article_of: np.ndarray  # its article's number among `articles`
    articles: list[Article]  # the articles with live passages, part by part
    origins: list[str]
    article_sentences: list[tuple[int, int, int]]  # (part, first sentence row, count) per article
    position: np.ndarray = None  # each passage's row in the merged segment
    article_order: np.ndarray = None  # the articles in the order their passages now come
    renumber: np.ndarray = None  # an article's number -> its row in the merged segment
    sentence_counts: np.ndarray = None
    sentence_start: np.ndarray = None  # an article's number -> its first sentence row

    @classmethod
    def of(cls, parts: list[tuple[Segment, np.ndarray]]) -> _Gathered:
        keys, part_of, row_of, article_of = [], [], [], []
        articles: list[Article] = []
        origins: list[str] = []
        article_sentences = []
        for p, (seg, live) in enumerate(parts):
            rows = np.nonzero(np.asarray(live))[0]
            if not len(rows):
                continue
            art_rows = np.unique(np.asarray(seg.passage_rows["article"])[rows])
            base = len(articles)
            number = np.full(len(seg.article_ids), -1, np.int64)
            number[art_rows] = base + np.arange(len(art_rows))
            for a in art_rows:
                articles.append(seg.article(int(a)))
                origins.append(seg.origins[int(a)])
                article_sentences.append((p, int(seg.table[a]["sentence"]), int(seg.table[a]["sentences"])))
            keys.append(seg.keys[rows])
            part_of.append(np.full(len(rows), p, np.int64))
            row_of.append(rows)
            article_of.append(number[np.asarray(seg.passage_rows["article"])[rows]])
        if not articles:
            empty = np.zeros(0, np.int64)
            return cls(empty, empty, empty, empty, [], [], [])
        g = cls(*map(np.concatenate, (keys, part_of, row_of, article_of)), articles, origins, article_sentences)
        order = np.argsort(g.keys, kind="stable")
        g.position = np.empty(len(g.keys), np.int64)
        g.position[order] = np.arange(len(g.keys))
        # Articles renumbered in the order their passages now come.
        first_seen = np.unique(g.article_of[order], return_index=True)
        g.article_order = first_seen[0][np.argsort(first_seen[1])]
        g.renumber = np.empty(len(articles), np.int64)
        g.renumber[g.article_order] = np.arange(len(articles))
        # Sentences move with their article, as one block.
        g.sentence_counts = np.array([c for _, _, c in article_sentences], np.int64)
        new_first = np.concatenate([[0], np.cumsum(g.sentence_counts[g.article_order])[:-1]])
        g.sentence_start = np.empty(len(articles), np.int64)
        g.sentence_start[g.article_order] = new_first
        return g

    def mine(self, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Part `p`'s passages: their numbers here, their rows there, their rows in the merge."""
        mine = np.nonzero(self.part_of == p)[0]
        return mine, self.row_of[mine], self.position[mine]


def _merged_passages(parts, g: _Gathered, dim: int):
    """The merged passage table, heading paths, passage vectors, word pieces per passage, and
    each part's postings with where its rows go."""
    heading_number: dict[tuple[str, ...], int] = {}
    chunks = np.zeros(len(g.keys), CHUNK_ROW)
    vectors = np.zeros((len(g.keys), dim), np.float32)
    token_counts = np.zeros(len(g.keys), np.int64)
    postings_parts = []
    for p, (seg, _) in enumerate(parts):
        mine, rows, new_rows = g.mine(p)
        if not len(mine):
            continue
        src = np.asarray(seg.passage_rows[rows])
        local_headings = seg.headings
        mapped = np.array(
            [heading_number.setdefault(local_headings[h], len(heading_number)) for h in src["headings"]], np.int64
        )
        arts = g.article_of[mine]
        out = chunks[new_rows]
        out["key"], out["ordinal"], out["start"], out["end"] = src["key"], src["ordinal"], src["start"], src["end"]
        out["article"] = g.renumber[arts]
        out["headings"] = mapped
        old_first = np.array([g.article_sentences[a][1] for a in arts], np.int64)
        out["sentence"] = g.sentence_start[arts] + (src["sentence"] - old_first)
        out["sentences"] = src["sentences"]
        chunks[new_rows] = out
        vectors[new_rows] = seg.engine.get(seg.keys[rows])
        token_counts[new_rows] = seg.tokens.counts(rows)
        postings_parts.append((seg.postings, rows, new_rows))
    headings = [h for h, _ in sorted(heading_number.items(), key=lambda kv: kv[1])]
    return chunks, headings, vectors, token_counts, postings_parts


def _merged_tokens(parts, g: _Gathered, token_counts: np.ndarray, codec: Codec) -> TokenTable:
    """Token codes copied straight into place, one segment at a time (re-encoded where its codec
    differs), so a merge holds the merged codes once."""
    offsets = offsets_of(token_counts)
    codes = np.empty((int(offsets[-1]), codec.width), np.uint8)
    for p, (seg, _) in enumerate(parts):
        mine, rows, new_rows = g.mine(p)
        if not len(mine):
            continue
        block = np.asarray(seg.tokens.codes[seg.tokens.token_rows(rows)])
        if seg.tokens.codec is not codec:
            block = codec.encode(seg.tokens.codec.decode(block))
        codes[ranges(offsets[new_rows], token_counts[new_rows])] = block
    return TokenTable(codes, offsets, codec)


def _merged_sentences(parts, g: _Gathered, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Sentence spans and codes, each article's as one block."""
    spans = np.zeros((int(g.sentence_counts.sum()), 2), np.int64)
    sentence_codes = np.zeros((len(spans), dim + 4), np.uint8)
    for a, (p, first, count) in enumerate(g.article_sentences):
        seg = parts[p][0]
        dst = int(g.sentence_start[a])
        spans[dst : dst + count] = seg.sentence_spans[first : first + count]
        sentence_codes[dst : dst + count] = seg.sentence_codes[first : first + count]
    return spans, sentence_codes
