"""Format 3 (one folder of whole-index files, replaced on every save): migrated once to segments.

Nothing is re-embedded: passage, sentence and token vectors are carried over (token vectors
recompressed with the model's codebook where there is one), and BM25 postings are rebuilt from
the passages' text.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from articleqa.errors import IndexMismatch, rebuild_command
from articleqa.index import storage
from articleqa.schema import Chunk

log = logging.getLogger("articleqa")

FORMAT = 3
FILES = storage.LEGACY_FILES


def recover(folder: Path) -> None:
    """Format 3 renamed whole folders: a crash between its two renames left only the previous
    copy beside the index. Put back the newest complete one (never a half-written one)."""
    folder = Path(folder)
    if folder.exists() or not folder.parent.exists():
        return
    complete = [
        p
        for p in folder.parent.glob(f".{folder.name}.old-*")
        if (p / storage.MANIFEST).exists() and all((p / f).exists() for f in FILES[:4])
    ]
    if complete:
        os.rename(max(complete, key=lambda p: p.stat().st_mtime), folder)


def migrate(folder: Path) -> None:
    """Convert a format-3 index in place, under the write lock; a crash leaves format 3 intact."""
    from articleqa.index import writer
    from articleqa.index.snapshot import Index

    folder = Path(folder)
    fix = rebuild_command(folder)
    try:
        lock = storage.write_lock(folder)
        lock.__enter__()
    except OSError as exc:
        raise IndexMismatch(f"{folder} uses index format 3 and cannot be migrated here ({exc}): {fix}") from None
    try:
        manifest = storage.read_manifest(folder)
        if not manifest or manifest.get("format") != FORMAT:
            return  # another process migrated it meanwhile
        try:
            data, dim = _read(folder, manifest)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexMismatch(f"{folder} uses index format 3 and is damaged ({exc}): {fix}") from exc
        from articleqa.settings import ChunkerSettings

        empty = Index.empty(manifest["model"]["name"], dim, ChunkerSettings(**manifest["chunker"]), folder=folder)
        writer.commit(empty, data, removed=manifest.get("removed", {}))
        log.warning("migrated %s from index format 3 to segments (nothing was re-embedded)", folder)
    finally:
        lock.__exit__(None, None, None)


def _read(folder: Path, manifest: dict):
    import faiss

    from articleqa.embed.codecs import Int8Codec, TokenTable, default_codec
    from articleqa.index.segment import CHUNK_ROW, SegmentData, article_from_row, passage_row
    from articleqa.settings import StorageSettings
    from articleqa.text.chunking import embed_text
    from articleqa.text.lexical import Postings, tokenize

    dim = int(manifest["model"]["dim"])
    articles, spans_of = [], {}
    for line in (folder / "articles.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        articles.append(article_from_row(row))
        spans_of[row["id"]] = np.asarray(row.get("sentences", []), dtype=np.int64).reshape(-1, 2)
    by_id = {a.id: i for i, a in enumerate(articles)}
    sentence_matrix = np.load(folder / "sentences.npy", allow_pickle=False)
    first_sentence, offset = {}, 0
    for a in articles:
        first_sentence[a.id] = offset
        offset += len(spans_of[a.id])
    if offset != len(sentence_matrix):
        raise ValueError(f"{len(sentence_matrix)} sentence vectors for {offset} sentences")
    rows = []
    for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    store = faiss.read_index(str(folder / "vectors.faiss"))
    if store.ntotal != len(rows):
        raise ValueError(f"{store.ntotal} vectors for {len(rows)} passages")
    vectors = store.reconstruct_n(0, store.ntotal) if store.ntotal else np.zeros((0, dim), np.float32)
    codes = np.load(folder / "tokens.npy", allow_pickle=False).astype(np.float32)
    scales = np.load(folder / "token_scales.npy", allow_pickle=False)
    offsets = np.load(folder / "token_offsets.npy", allow_pickle=False)
    if len(offsets) != len(rows) + 1:
        raise ValueError(f"token vectors for {len(offsets) - 1} passages, {len(rows)} passages")
    token_vectors = codes * scales[:, None]
    # Passages grouped by article, in the order articles are listed (the order a segment keeps).
    order = sorted(range(len(rows)), key=lambda i: (by_id[rows[i]["article"]], rows[i]["ordinal"]))
    headings, heading_number = [], {}
    chunks = np.zeros(len(rows), CHUNK_ROW)
    texts, per_passage = [], []
    used = sorted({by_id[r["article"]] for r in rows})
    renumber = {a: i for i, a in enumerate(used)}
    sentence_base, spans, sentence_vectors = {}, [], []
    for a in used:
        article = articles[a]
        sentence_base[a] = len(spans)
        first = first_sentence[article.id]
        spans.extend(spans_of[article.id].tolist())
        sentence_vectors.append(sentence_matrix[first : first + len(spans_of[article.id])])
    for new, i in enumerate(order):
        r = rows[i]
        a = by_id[r["article"]]
        article = articles[a]
        path = tuple(r["headings"])
        heading = heading_number.setdefault(path, len(heading_number))
        chunks[new] = passage_row(
            renumber[a], r["ordinal"], r["start"], r["end"], heading, spans_of[article.id], sentence_base[a], key=new
        )
        chunk = Chunk(article.id, r["ordinal"], r["start"], r["end"], article.text[r["start"] : r["end"]], path)
        texts.append(embed_text(article, chunk))
        per_passage.append(token_vectors[offsets[i] : offsets[i + 1]])
    headings = [h for h, _ in sorted(heading_number.items(), key=lambda kv: kv[1])]
    # As a new build would store them: compressed from `compact_from` passages, if there is a codebook.
    large = len(rows) >= StorageSettings().compact_from
    codec = (default_codec(manifest["model"]["name"]) if large else None) or Int8Codec(dim)
    stacked = np.vstack(sentence_vectors) if sentence_vectors else np.zeros((0, dim), np.float32)
    data = SegmentData(
        articles=[articles[a] for a in used],
        origins=[manifest["articles"].get(articles[a].id, {}).get("origin", "added") for a in used],
        passage_rows=chunks,
        headings=headings,
        vectors=vectors[order] if len(order) else vectors,
        tokens=TokenTable.encode(per_passage, codec),
        sentence_spans=np.asarray(spans, dtype=np.int64).reshape(-1, 2),
        sentence_codes=Int8Codec(dim).encode(stacked.astype(np.float32)),
        postings=Postings.from_terms(tokenize(texts)),
    )
    return data, dim
