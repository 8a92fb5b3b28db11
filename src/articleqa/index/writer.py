"""Publishing the next state of an index: a new segment, deletions, and merges where due.

Called with the write lock held, on the latest published snapshot. New files are written first;
the manifest that names them is published last (storage.publish), then whatever no manifest
names any more is removed.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence

import numpy as np

from articleqa.__about__ import __version__
from articleqa.embed.codecs import Codec, Int8Codec, PQCodec, TokenTable, default_codec
from articleqa.index import segment, storage
from articleqa.index.segment import Segment, SegmentData, merged
from articleqa.index.snapshot import Index
from articleqa.index.vectors import local
from articleqa.index.vectors.base import Store, check_store, collection_for_new_library
from articleqa.runtime.stopping import checkpoint
from articleqa.settings import INDEX_FORMAT, StorageSettings

log = logging.getLogger(__name__)


def commit(
    index: Index,
    data: SegmentData | None,
    *,
    delete: Sequence[str] = (),
    removed: dict[str, str] | None = None,
    storage_settings: StorageSettings | None = None,
    note: Callable[[str], None] | None = None,
) -> Index:
    """Publish `index` plus `data` as a new segment, minus the articles `delete`; returns the
    new snapshot (sharing every unchanged segment with `index`). `note` hears of merges."""
    if index.folder is None:
        raise ValueError("an index without a folder cannot be written")
    settings = storage_settings or StorageSettings()
    folder = index.folder
    folder.mkdir(parents=True, exist_ok=True)
    generation = index.generation + 1
    next_key = int(index.manifest.get("next_key", 0))
    codecs = dict(index.codecs)
    library_codec = index.manifest.get("tokens")
    entries = list(index.manifest.get("segments", []))
    segments = list(index.segments)
    remote, vectors = _remote(index, settings)
    if data is not None and len(data):
        data.passage_rows["key"] = next_key + np.arange(len(data), dtype=np.int64)
        next_key += len(data)
        codec = data.tokens.codec
        _keep_codec(folder, codec, codecs)
        library_codec = _library_codec(library_codec, codec)
        entry, seg = _write_segment(index, data, generation, settings, codecs, remote)
        entries.append(entry)
        segments.append(seg)
        if remote is not None:  # before the manifest that names them: readers never miss one
            fields = _fields([a.id for a in data.articles], data.passage_rows)
            remote.put(data.passage_rows["key"], data.vectors, fields)
    dead = [index.keys_of(article_id) for article_id in delete]
    deleted = np.union1d(index.deleted, np.concatenate(dead)) if dead else index.deleted
    entries, segments, deleted, library_codec = _merge(
        index, entries, segments, deleted, generation, settings, codecs, library_codec, remote, note
    )
    manifest = {
        "format": INDEX_FORMAT,
        "generation": generation,
        "articleqa_version": __version__,
        "model": {"name": index.model, "dim": index.dim},
        "chunker": index.chunker.as_dict(),
        "tokens": library_codec,
        "next_key": next_key,
        "segments": entries,
        "deleted": storage.save_deleted(folder, generation, deleted),
        "removed": dict(sorted((index.removed if removed is None else removed).items())),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": _counts(segments, deleted),
    }
    if vectors is not None:
        manifest["vectors"] = vectors
        manifest["published"] = time.time()  # readers of a young snapshot ask the server for every write
    checkpoint()  # the last moment the change can be dropped
    storage.publish(folder, manifest)
    storage.crash_point("published")
    if remote is not None:
        # After the manifest: a reader of the old one filters the server's answers by its own
        # live passages, so a removed passage never comes back. Keys a merge dropped from the
        # deleted list go too (again, harmlessly), in case a crash came between publish and here.
        gone = np.union1d(np.setdiff1d(deleted, index.deleted), np.setdiff1d(index.deleted, deleted))
        remote.remove(np.union1d(gone, np.concatenate(dead)) if dead else gone)
    storage.collect_garbage(folder, manifest)
    return Index._open(folder, manifest, _with_codecs(index, codecs))


def _remote(index: Index, settings: StorageSettings):
    """The server engine this library's vectors go to, and its manifest entry (None, None for a
    local library). A library asked to use a server for the first time copies its vectors there."""
    entry = index.manifest.get("vectors")
    if entry:
        if settings.store:
            check_store(settings.store, entry, index.folder)
        return index.remote, entry
    if not settings.store:
        return None, None
    from articleqa.index.vectors.milvus import MilvusEngine  # only libraries on a server need it

    store = Store.parse(settings.store)
    remote = MilvusEngine(store, store.collection or collection_for_new_library(), index.dim, model=index.model)
    for seg, live, engine in zip(index.segments, index.live, index.engines):  # a local library moves there
        rows = np.arange(len(seg)) if live is None else np.nonzero(live)[0]
        for start in range(0, len(rows), 20_000):
            part = rows[start : start + 20_000]
            fields = _fields(seg.article_ids, np.asarray(seg.passage_rows[part]))
            remote.put(seg.keys[part], engine.get(seg.keys[part]), fields)
    return remote, {k: v for k, v in remote.save().items() if k != "count"}


def drop_vectors(entry: dict, dim: int) -> None:
    """Drop the server collection a rebuilt library no longer names."""
    from articleqa.index.vectors.milvus import MilvusEngine

    MilvusEngine.load(None, entry, dim).drop()


def _fields(article_ids, chunks: np.ndarray) -> dict[str, np.ndarray]:
    """Each passage's article id and span (from its CHUNK_ROW), stored beside its vector on the server."""
    ids = np.asarray(article_ids, dtype=object)
    return {"article": ids[chunks["article"]], "start": chunks["start"], "end": chunks["end"]}


def _with_codecs(index: Index, codecs: dict[str, Codec]) -> Index:
    index.codecs.update(codecs)
    return index


def _write_segment(
    index: Index, data: SegmentData, generation: int, settings: StorageSettings, codecs: dict[str, Codec], remote=None
) -> tuple[dict, Segment]:
    tmp, name = storage.new_segment(index.folder, generation)
    # With a server searching the vectors, a segment only stores them (for re-scoring and merges).
    engine = local.for_size(len(data), index.dim, settings) if remote is None else local.FlatEngine(index.dim)
    try:
        meta = segment.write(tmp, data, engine)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = storage.finish_segment(tmp, name)
    entry = {
        "check": segment.file_check(final / segment.META),  # segment.json holds the other files' checks
        "name": name,
        "passages": meta["passages"],
        "articles": meta["articles"],
        "dense": meta["dense"]["engine"],
        "tokens": meta["tokens"],
        "codebook": meta["tokens"].get("codebook"),
    }
    return entry, Segment(final, index.dim, codecs[meta["tokens"].get("codebook") or "int8"])


def _merge(index, entries, segments, deleted, generation, settings, codecs, library_codec, remote=None, note=None):
    """Merge segments as the tiered policy says (`merge_group`), until it says no more. A merged
    segment's token vectors are compressed once it holds `compact_from` passages (or held any
    compressed ones already); they are re-encoded, never re-embedded."""
    while True:
        checkpoint()  # between merges: a stopping server drops the change, never half of one
        group = merge_group(segments, deleted, settings)
        if not group:
            return entries, segments, deleted, library_codec
        need = 2 * sum(segments[i].size_bytes() for i in group)  # the merged copy, and room to spare
        free = shutil.disk_usage(index.folder).free
        if free < need:  # the library stays whole, only unmerged: a later write merges it
            log.warning(
                "not merging %d segments of %s: the merge needs about %.0f MB and the device has %.0f MB free",
                len(group), index.folder, need / 1e6, free / 1e6,
            )  # fmt: skip
            return entries, segments, deleted, library_codec
        group = sorted(group, key=lambda i: int(segments[i].keys[0]) if len(segments[i]) else 0)
        parts = [(segments[i], ~np.isin(segments[i].keys, deleted)) for i in group]
        gone = np.concatenate([segments[i].keys for i in group])
        size = sum(int(live.sum()) for _, live in parts)
        if note is not None:
            note(f"merging {len(group)} segments ({size:,} passages)")
        compact = size >= settings.compact_from or any(seg.tokens.codec.name == "pq" for seg, _ in parts)
        codec = _pq_codec(index, codecs, library_codec) if compact else Int8Codec(index.dim)
        data = merged(parts, codec or Int8Codec(index.dim))
        if compact and codec is None and len(data):  # a model without a codebook: train one now
            codec = train_codec(data.tokens, settings)
            vectors = data.tokens.vectors(np.arange(len(data)))
            data.tokens = TokenTable(codec.encode(vectors), data.tokens.offsets, codec)
        if codec is not None:
            _keep_codec(index.folder, codec, codecs)
            library_codec = _library_codec(library_codec, codec)
        entry, seg = _write_segment(index, data, generation, settings, codecs, remote) if len(data) else (None, None)
        keep = [i for i in range(len(segments)) if i not in group]
        entries = [entries[i] for i in keep] + ([entry] if entry else [])
        segments = [segments[i] for i in keep] + ([seg] if seg else [])
        deleted = np.setdiff1d(deleted, gone)


def _library_codec(current: dict | None, codec: Codec) -> dict:
    """The codec new writes follow: the first one, and the first codebook once there is one."""
    if current is None or (current["codec"] != "pq" and codec.name == "pq"):
        return codec.entry()
    return current


def _pq_codec(index: Index, codecs: dict[str, Codec], library_codec: dict | None) -> PQCodec | None:
    if library_codec and library_codec.get("codec") == "pq":
        return codecs.get(library_codec["codebook"]) or index.codec
    return default_codec(index.model)


def train_codec(tokens: TokenTable, settings: StorageSettings) -> PQCodec:
    """A codebook trained on (a sample of) these token vectors."""
    rows = np.arange(len(tokens))
    vectors = tokens.vectors(rows)
    sample = vectors[np.random.default_rng(1234).permutation(len(vectors))[:100_000]]
    return PQCodec.train(sample, m=settings.pq_m, bits=settings.pq_bits)


def merge_group(segments: Sequence[Segment], deleted: np.ndarray, settings: StorageSettings) -> list[int]:
    """The segments to merge next, or none.

    A segment with more than `max_deleted` of its passages deleted is rewritten alone. Segments
    searched exactly are merged once together they reach `ann_threshold` (the merged one is then
    searched approximately), so an exact scan never covers more than that. And `merge_factor`
    segments of one size tier (tiers grow by that factor) become one, so each passage is copied
    about log(N) times over its life.
    """
    tiers: dict[int, list[int]] = {}
    exact, exact_size = [], 0
    for i, seg in enumerate(segments):
        dead = int(np.isin(seg.keys, deleted).sum()) if len(deleted) else 0
        if len(seg) and dead / len(seg) > settings.max_deleted:
            return [i]
        live = len(seg) - dead
        if seg.meta["dense"]["engine"] == "flat":
            exact.append(i)
            exact_size += live
        tiers.setdefault(int(math.log(max(live, 1), settings.merge_factor)), []).append(i)
    if len(exact) > 1 and exact_size >= settings.ann_threshold:
        return exact
    for tier in sorted(tiers):
        if len(tiers[tier]) >= settings.merge_factor:
            return tiers[tier][: settings.merge_factor]
    return []


def _counts(segments: Sequence[Segment], deleted: np.ndarray) -> dict:
    articles = 0
    for seg in segments:
        if len(deleted):
            articles += int((~np.isin(seg.keys, deleted))[seg.table["chunk"]].sum())
        else:
            articles += len(seg.article_ids)
    passages = sum(len(s) for s in segments) - int(len(deleted))
    return {"articles": articles, "chunks": passages, "segments": len(segments), "deleted": int(len(deleted))}


def _keep_codec(folder, codec: Codec, cache: dict[str, Codec]) -> None:
    """Save a codebook into the index the first time a segment uses it."""
    if isinstance(codec, PQCodec):
        codec.save_as(folder)
        cache.setdefault(codec.file, codec)
    else:
        cache.setdefault("int8", codec)
