"""The build pipeline: Article -> Chunk -> vectors -> a new segment, committed under the write lock.

A change is planned against the latest published state (taken under the lock, so a change made
meanwhile by another process is never lost), then the new and changed articles are cut into
passages, embedded once (passage and token vectors from one forward pass, then the sentences),
and committed in segments of `flush_passages` passages: a long build that is interrupted keeps
what it committed, and resumes without re-embedding it.
"""

from __future__ import annotations

import errno
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as replace_settings
from pathlib import Path

import numpy as np

from articleqa.embed.base import GroupEmbedder
from articleqa.embed.codecs import Codec, Int8Codec, PQCodec, TokenTable, default_codec
from articleqa.errors import DiskFull, IndexMissing
from articleqa.index import storage, writer
from articleqa.index.opening import open_index
from articleqa.index.segment import CHUNK_ROW, SegmentData, passage_row
from articleqa.index.snapshot import Index
from articleqa.index.vectors.base import Store
from articleqa.schema import Article, Chunk, Progress, content_hash
from articleqa.settings import StorageSettings
from articleqa.text.chunking import embed_text, split_article
from articleqa.text.lexical import Postings, tokenize

log = logging.getLogger("articleqa")


@dataclass(frozen=True)
class Change:
    """What an update did: article ids per outcome and how many passages were embedded."""

    added: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    # Articles a sync did not remove because they came from elsewhere (uploads, other folders,
    # the built-in corpus); removing them takes `prune`.
    kept: tuple[str, ...] = ()
    embedded: int = 0  # passages embedded (with their token vectors)
    sentences: int = 0  # sentences embedded (for the re-rank and the highlight)
    # Articles left out of this change, with the reason: (article id, source, reason).
    skipped: tuple[tuple[str, str, str], ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.removed)


@dataclass
class Plan:
    """What to embed and what to delete to bring an index to the wanted state."""

    fresh: list[Article] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    removed: dict[str, str] = field(default_factory=dict)
    change: Change = Change()


Scope = Callable[[str], bool]


def plan(
    index: Index,
    *,
    upsert: Iterable[Article] = (),
    delete: Iterable[str] = (),
    origin: str = "added",
    mirror: bool = False,
    scope: Scope | None = None,
    prune: bool = False,
    forget: bool = False,
    refuse_copies: bool = False,
) -> Plan:
    """Plan a change. `upsert`: articles to add or replace (unchanged content is kept, not
    re-embedded). `delete`: article ids to remove (`forget`: and keep them out of later syncs).
    `mirror`: the index should hold `upsert` and nothing else of its kind: `path` articles whose
    source is in `scope` (all of them when no scope is given) and are not in `upsert` leave; with
    `prune`, every article not in `upsert` leaves. `refuse_copies`: a new article whose text the
    library already holds under another id is left out, naming that one (change.skipped)."""
    upsert, delete = list(upsert), list(delete)
    if mirror:
        known = index.article_keys()
    else:  # only the articles named: a change to a large library does not walk all of it
        wanted = {a.id for a in upsert} | set(delete)
        known = {i: key for i in wanted if (key := index.article_key(i)) is not None}
    removed_record = dict(index.removed)
    if mirror:
        upsert = [a for a in upsert if removed_record.get(a.id) != a.content_hash]
    fresh, added, replaced, unchanged, origins = [], [], [], [], {}
    copies: list[tuple[str, str, str]] = []
    seen: dict[str, Article] = {}  # this change's new texts, by fingerprint
    for article in upsert:
        old = known.get(article.id)
        if old is not None and old[0] == article.content_hash:
            unchanged.append(article.id)
            continue
        if refuse_copies and old is None:
            other = seen.get(fingerprint(article.text)) or copy_in(index, article)
            if other is not None:
                reason = f"the same text as “{other.title}” ({other.id}), already in the library"
                copies.append((article.id, article.source, reason))
                continue
            seen[fingerprint(article.text)] = article
        (replaced if old is not None else added).append(article.id)
        fresh.append(article)
        origins[article.id] = origin
        removed_record.pop(article.id, None)
    gone, kept = set(i for i in delete if i in known), []
    if mirror:
        wanted = {a.id for a in upsert} | {i for i, h in removed_record.items()}
        for article_id, (_, article_origin, source) in known.items():
            if article_id in wanted:
                continue
            if prune or (article_origin == "path" and (scope is None or scope(source))):
                gone.add(article_id)
            else:
                kept.append(article_id)
    removed = sorted(gone)
    if forget:
        for article_id in removed:
            removed_record[article_id] = known[article_id][0]
    change = Change(
        tuple(added), tuple(replaced), tuple(removed), tuple(unchanged), tuple(sorted(kept)), skipped=tuple(copies)
    )
    return Plan(fresh, origins, removed + replaced, removed_record, change)


def fingerprint(text: str) -> str:
    """The words of a text, whatever its markup, spacing and case: the same article read from a
    file and from its web page gives the same fingerprint."""
    return content_hash(" ".join(re.findall(r"\w+", text.casefold())))


def copy_in(index: Index, article: Article) -> Article | None:
    """An article of `index` (under another id) with the same words as `article`, or None. Looked
    for among the articles of the passages that best match its opening (one keyword search)."""
    if not len(index) or not article.text.strip():
        return None
    scores, keys = index.lexical_scores(article.text[:600]).top(5)
    wanted = fingerprint(article.text)
    for other_id in dict.fromkeys(span[0] for span in index.spans(keys).values()):
        other = index.articles.get(other_id)
        if other_id != article.id and other is not None and fingerprint(other.text) == wanted:
            return other
    return None


def in_paths(paths: Sequence[str | Path]) -> Scope:
    """Sources that are these files, or lie under these folders."""
    roots = [Path(p).resolve() for p in paths]

    def inside(source: str) -> bool:
        if ":" in source.split("/")[0] and not Path(source).exists():
            return False  # builtin:, upload:, beir:, ...
        path = Path(source).resolve()
        return any(path == root or root in path.parents for root in roots)

    return inside


def with_prefix(prefix: str) -> Scope:
    return lambda source: source.startswith(prefix)


# Bytes an index takes on disk per character of article text (token vectors, one int8 row per
# word piece, are most of it): enough to say roughly how much room a change needs.
BYTES_PER_CHAR = 100


def apply(
    index: Index,
    plan_change: Callable[[Index], Plan],
    *,
    embedder: Callable[[], object],
    storage_settings: StorageSettings,
    progress: Progress | None = None,
    replace: bool = False,
    batch_size: int = 16,
    max_passages: int | None = None,
) -> tuple[Index, Change]:
    """Plan against the latest published state and commit it, holding the write lock throughout.

    Returns the new snapshot and what changed. `index` is the caller's snapshot; its folder is
    the index written (created if needed). `embedder` gives the model, loaded only if needed.
    `replace`: start from `index` (a new, empty one) instead of what the folder holds; the old
    segments go when the first new one is committed (a rebuild)."""
    planned = [0]  # characters of text the change writes, for the message if the disk is full
    try:
        return _apply(
            index, plan_change, embedder, storage_settings, progress, replace, batch_size, max_passages, planned
        )
    except OSError as exc:
        # numpy reports a short write as "OSError: N requested and M written", without an errno
        if exc.errno != errno.ENOSPC and not re.search(r"requested and \d+ written", str(exc)):
            raise
        raise DiskFull(no_room(index.folder, planned[0])) from exc


def no_room(folder, chars: int) -> str:
    """What to say when the disk holding `folder` is full: how much the change needs, how much is free."""
    free = shutil.disk_usage(folder).free if folder is not None and Path(folder).exists() else 0
    needed = max(1, round(chars * BYTES_PER_CHAR / 1e6))
    return (
        f"no space left on the device holding {folder} ({free / 1e6:.0f} MB free): this change needs about "
        f"{needed} MB; free some space and try again (the library is as it was before the change)"
    )


def _apply(index, plan_change, embedder, storage_settings, progress, replace, batch_size, max_passages, planned):
    folder = index.folder
    old_vectors = None
    with storage.write_lock(folder, timeout=storage_settings.lock_timeout):
        if replace:
            on_disk = storage.read_manifest(folder) or {}
            latest = Index.empty(index.model, index.dim, index.chunker, folder=folder)
            latest.generation = int(on_disk.get("generation", 0))
            old_vectors = on_disk.get("vectors")
            if old_vectors and not storage_settings.store:  # a rebuild stays on its server, in a new collection
                storage_settings = replace_settings(storage_settings, store=str(Store(old_vectors["uri"])))
        else:
            latest = latest_state(index)
        if latest.manifest:
            storage.collect_garbage(folder, latest.manifest)  # whatever an interrupted write left
        work = plan_change(latest)
        fresh = work.fresh
        moving = bool(storage_settings.store) and not latest.manifest.get("vectors")
        if not fresh and not work.delete and not replace and storage.read_manifest(folder) is not None:
            if work.removed != latest.removed or moving:
                latest = writer.commit(latest, None, removed=work.removed, storage_settings=storage_settings)
            return latest, work.change
        model = embedder() if fresh else None
        replaced = set(work.change.replaced)
        pending_deletes = [i for i in work.delete if i not in replaced]
        codec = latest.codec
        # Articles are cut into passages group by group, so a large build holds one group at a time.
        total_chars = sum(len(a.text) for a in fresh) or 1
        planned[0] = total_chars
        chars_done, embedded, sentences = 0, 0, 0
        skipped: list[tuple[str, str, str]] = list(work.change.skipped)
        if progress is not None and fresh:
            progress(0.0, f"splitting {len(fresh)} article{'s' * (len(fresh) != 1)} into passages")
        for group in _groups(fresh, model, latest.chunker, storage_settings.flush_passages, max_passages, skipped):
            data = None
            if group:
                group_chars = sum(len(a.text) for a, _, _ in group)
                report = None
                if progress is not None:
                    start = chars_done

                    def report(fraction, message, start=start, size=group_chars):
                        progress((start + fraction * size) / total_chars, message)

                data, codec = encode(
                    group, work.origins, model, codec, storage_settings, progress=report, batch_size=batch_size
                )
                chars_done += group_chars
                embedded += len(data)
                sentences += len(data.sentence_spans)
            delete = pending_deletes + [a.id for a, _, _ in group if a.id in replaced]
            pending_deletes = []
            note = None if progress is None else (lambda m, at=chars_done / total_chars: progress(at, m))
            latest = writer.commit(
                latest, data, delete=delete, removed=work.removed, storage_settings=storage_settings, note=note
            )
        if model is not None:
            model.done_building()
        if old_vectors and old_vectors != latest.manifest.get("vectors"):
            writer.drop_vectors(old_vectors, latest.dim)  # the rebuilt library no longer names them
        if progress is not None and fresh:
            progress(1.0, f"embedded {embedded} passages and {sentences} sentences")
        change = work.change
        out = {i for i, _, _ in skipped}
        return latest, Change(
            tuple(i for i in change.added if i not in out),
            tuple(i for i in change.replaced if i not in out),
            change.removed,
            change.unchanged,
            change.kept,
            embedded,
            sentences,
            tuple(skipped),
        )


def latest_state(index: Index) -> Index:
    """The published state of the index's folder (the given snapshot's segments reused)."""
    try:
        return open_index(index.folder, previous=index)
    except IndexMissing:
        return Index.empty(index.model, index.dim, index.chunker, folder=index.folder)


def _groups(articles: Sequence[Article], model, chunker, size: int, cap: int | None, skipped: list) -> Iterator[list]:
    """(article, passages, sentence spans) in groups of about `size` passages; one empty group
    when there are no articles (a commit still records deletions). An article of more than `cap`
    passages is left out (a replaced one keeps its old version) and noted in `skipped`."""
    group, n = [], 0
    for article in articles:
        chunks, spans = split_article(article, model.count_tokens, chunker, model_limit=model.max_tokens)
        if cap is not None and len(chunks) > cap:
            reason = (
                f"too long: {len(chunks):,} passages, the limit is {cap:,} per file "
                "(Settings.max_passages_per_file, articleqa build --max-passages)"
            )
            log.warning("skipped %s: %s", article.source, reason)
            skipped.append((article.id, article.source, reason))
            continue
        group.append((article, chunks, spans))
        n += len(chunks)
        if n >= size:
            yield group
            group, n = [], 0
    if group or not articles:
        yield group


def encode(
    cut: Sequence[tuple[Article, list[Chunk], list[tuple[int, int]]]],
    origins: dict[str, str],
    embedder,
    codec: Codec | None,
    storage_settings: StorageSettings,
    *,
    progress: Progress | None = None,
    batch_size: int = 16,
) -> tuple[SegmentData, Codec]:
    """Embed articles already cut into passages: the data of one segment (keys not yet given),
    and the token codec used."""
    dim = embedder.dim
    articles = [a for a, _, _ in cut]
    chunk_rows, heading_number = [], {}
    texts, sentence_texts, spans = [], [], []
    for number, (article, chunks, article_spans) in enumerate(cut):
        base = len(spans)
        for chunk in chunks:
            h = heading_number.setdefault(chunk.headings, len(heading_number))
            chunk_rows.append(passage_row(number, chunk.ordinal, chunk.start, chunk.end, h, article_spans, base))
            texts.append(embed_text(article, chunk))
        spans.extend(article_spans)
        sentence_texts.extend(article.text[a:b] for a, b in article_spans)
    total, done = len(texts) + len(sentence_texts), 0
    step = 256
    quiet = None if progress is None else False
    # A small segment keeps int8. A large one: the library's codebook; else the model's shipped one;
    # else one trained on this write's first `pq_train_min` word pieces (kept in float until then).
    if len(texts) < storage_settings.compact_from:
        target = Int8Codec(dim)
    else:
        target = codec if isinstance(codec, PQCodec) else default_codec(embedder.name)
    if isinstance(embedder, GroupEmbedder) and target is not None:
        # A distributed embedder (distributed.RayEmbedder) takes the whole group at once and
        # returns token vectors already compressed: they never travel as floats.
        if progress is not None:
            progress(0.0, f"embedding {len(texts)} passages and {len(sentence_texts)} sentences")
        passage_vectors, table, sentence_vectors = embedder.encode_group(texts, sentence_texts, target)
        vectors, coded = [passage_vectors], [table]
        sentence_codes = [Int8Codec(dim).encode(sentence_vectors)]
    else:
        vectors, coded, target = _embed_passages(
            embedder, texts, target, storage_settings, progress, total, batch_size=batch_size
        )
        done = len(texts)
        sentence_codec = Int8Codec(dim)
        sentence_codes = [np.zeros((0, dim + 4), np.uint8)]
        for i in range(0, len(sentence_texts), step):
            batch = sentence_texts[i : i + step]
            if progress is not None:
                progress(done / total, f"embedding sentences: {done + len(batch)} of {total} texts")
            sentence_codes.append(sentence_codec.encode(embedder.encode(batch, batch_size=batch_size, progress=quiet)))
            done += len(batch)
    data = SegmentData(
        articles=articles,
        origins=[origins.get(a.id, "added") for a in articles],
        passage_rows=np.array(chunk_rows, dtype=CHUNK_ROW).reshape(-1),
        headings=[h for h, _ in sorted(heading_number.items(), key=lambda kv: kv[1])],
        vectors=np.vstack(vectors),
        tokens=TokenTable.concat(coded, target),
        sentence_spans=np.asarray(spans, dtype=np.int64).reshape(-1, 2),
        sentence_codes=np.vstack(sentence_codes),
        postings=Postings.from_terms(tokenize(texts) if texts else []),
    )
    return data, target


def _embed_passages(embedder, texts, target, storage_settings, progress, total, *, batch_size: int, step: int = 256):
    """Passage vectors and their token codes, 256 texts at a time (see `encode` for the codec)."""
    dim = embedder.dim
    quiet = None if progress is None else False
    done = 0
    vectors, coded, waiting = [np.zeros((0, dim), np.float32)], [], []
    for i in range(0, len(texts), step):
        batch = texts[i : i + step]
        if progress is not None:
            progress(done / total, f"embedding passages: {done + len(batch)} of {total} texts")
        v, t = embedder.encode_tokens(batch, batch_size=batch_size, progress=quiet)
        vectors.append(v)
        done += len(batch)
        if target is not None:
            coded.append(TokenTable.encode(t, target))
            continue
        waiting.extend(t)
        if sum(len(m) for m in waiting) >= storage_settings.pq_train_min:
            target = PQCodec.train(np.vstack(waiting), m=storage_settings.pq_m, bits=storage_settings.pq_bits)
            coded.append(TokenTable.encode(waiting, target))
            waiting = []
    if target is None:
        target = Int8Codec(dim)
        coded.append(TokenTable.encode(waiting, target))
    return vectors, coded, target
