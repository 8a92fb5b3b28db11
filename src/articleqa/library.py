"""The facade Python callers use: open a library of articles, search it, ask it, change it."""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from articleqa.embed.base import Embedder
from articleqa.embed.model import SentenceEmbedder, canonical_name
from articleqa.errors import (
    ArticleQAError,
    IndexMismatch,
    IndexMissing,
    ReadOnlyIndex,
    UnknownArticle,
    UnusableFile,
    rebuild_command,
)
from articleqa.index import build, storage
from articleqa.index.build import Change
from articleqa.index.opening import open_index
from articleqa.index.snapshot import MANIFEST, Index
from articleqa.index.vectors.base import Store, check_store
from articleqa.ingest import isolated
from articleqa.ingest.files import Ingested, Skipped, parse, read_paths, require_articles
from articleqa.ingest.web import is_url, read_url
from articleqa.query.answer import pipeline
from articleqa.query.answer.evidence import Abstention
from articleqa.query.request import Request, check_request
from articleqa.query.retrieve import search_index
from articleqa.query.similar import similar_words
from articleqa.schema import Answer, Article, Hit, Progress
from articleqa.settings import Settings, data_home

log = logging.getLogger("articleqa")

PACKAGE = Path(__file__).resolve().parent
CORPUS = PACKAGE / "corpus"
BUILTIN_SOURCE = "builtin"
ORIGINALS = "originals"  # uploaded files as they came, beside the index (for the reader's download)
HISTORY_TURNS = Settings.history_turns  # earlier questions `ask` reads (settings.py)


@dataclass(frozen=True)
class Info:
    """What `articleqa info` reports."""

    index_dir: str
    articles: int
    chunks: int
    model: str
    dim: int
    size_bytes: int
    read_only: bool
    segments: int = 0
    # Dense search per engine: {"flat": {"segments": 2, "passages": 120}, "hnsw": {...}}
    dense: dict = field(default_factory=dict)
    # Token vectors per codec: {"pq": {"segments": 1, "passages": 13273, "bytes": 32}, "int8": {...}}
    tokens: dict = field(default_factory=dict)
    deleted_passages: int = 0
    # Where the passage vectors are searched: "local" (this folder), or a Milvus server and collection.
    store: str = "local"
    # How questions are encoded: ONNX Runtime (no torch), or torch and why.
    questions: str = ""


def builtin_index_dir() -> Path:
    """The committed embeddings/ of a checkout, else the copy inside the installed package."""
    for candidate in (PACKAGE.parents[1] / "embeddings", PACKAGE / "_embeddings"):
        if (candidate / MANIFEST).exists():
            return candidate
    raise IndexMissing("the built-in index is missing from this installation: reinstall articleqa")


def builtin_articles() -> list[Article]:
    """The shipped corpus, with sources that do not depend on where it is installed."""
    ingested = read_paths([CORPUS])
    return [_with_source(a, f"{BUILTIN_SOURCE}:{Path(a.source).name}") for a in ingested.articles]


def _read_paths(paths: list, settings: Settings, progress: Progress | None) -> Ingested:
    """Files and folders read as the settings say: in worker processes within their budgets."""
    workers = isolated.workers_for(settings.limits)
    return read_paths(paths, max_document_bytes=settings.max_document_bytes, workers=workers, report=_report(progress))


def _report(progress: Progress | None):
    return None if progress is None else (lambda what: progress(0.0, what))


def user_index_dir() -> Path:
    """The default writable index (`articleqa build` without --index-dir, the UI's uploads)."""
    return data_home() / "index"


def open(  # noqa: A001 - the public name the brief asks for
    paths: str | Path | Sequence[str | Path] | None = None,
    *,
    index_dir: str | Path | None = None,
    model: str | None = None,
    settings: Settings | None = None,
    rebuild: bool = False,
    prune: bool = False,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    store: str | None = None,
) -> Library:
    """Open a library.

    With no paths: the built-in corpus, read-only, from its committed index (nothing is embedded).
    With paths: their articles, indexed in `index_dir` (default: the user index), built or
    brought up to date as needed: new and changed files are embedded, and articles whose files
    under these paths are gone leave. Articles from elsewhere (uploads, other folders, the
    built-in corpus) stay unless `prune` is given; `Library.last_change.kept` lists them.
    `store`: "milvus://HOST:PORT[/COLLECTION]" searches the passage vectors on a Milvus server
    (a local library moves its vectors there once); by default, wherever the library keeps them.
    """
    settings = settings or Settings()
    if model is not None:
        settings = replace(settings, model=model)
    settings = settings.on_store(store)
    if paths is None and index_dir is None:
        if store is not None:
            raise ArticleQAError("the built-in library is read-only and local: give an index_dir for a store")
        lib = Library(Index.load(builtin_index_dir()), settings, read_only=True, embedder=embedder)
        lib._check_builtin_fresh()
        return lib
    index_dir = Path(index_dir) if index_dir is not None else user_index_dir()
    ingested = None
    if paths is not None:
        # Read the files first: a folder with nothing usable fails before any model loads.
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        ingested = _read_paths(paths, settings, progress)
        require_articles(ingested, paths)
    lib = Library.at(index_dir, settings, rebuild=rebuild, embedder=embedder)
    if ingested is not None:
        lib.skipped = ingested.skipped
        lib.sync_articles(ingested.articles, progress=progress, scope=build.in_paths(paths), prune=prune)
    return lib


def existing(index_dir: str | Path | None = None, *, store: str | None = None) -> Library:
    """The library a reading command opens (search, ask, info, eval): `index_dir`; else your own
    library if you built one; else the built-in corpus, read-only."""
    if index_dir:
        return Library.load(index_dir, store=store)
    if (user_index_dir() / MANIFEST).exists():
        return Library.load(user_index_dir(), store=store)
    return open(store=store)


class Library:
    """Articles, their index, and the questions asked of them. Safe to share between threads."""

    def __init__(
        self,
        index: Index,
        settings: Settings,
        *,
        index_dir: Path | None = None,
        read_only: bool = False,
        embedder: Embedder | None = None,
    ) -> None:
        if embedder is not None and len(index) and embedder.name != index.model:
            raise IndexMismatch(
                f"the index was built with model {index.model!r}, the embedder given is {embedder.name!r}: "
                f"open it with the same model, or {rebuild_command()}"
            )
        self._index = index
        self.settings = settings
        self.index_dir = index_dir
        self.read_only = read_only
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stamp = storage.stamp(index_dir) if index_dir is not None and not read_only else None
        self._replace = False
        self.skipped: list[Skipped] = []
        self.last_change = Change()
        self.abstention = Abstention.of(settings.answer)

    @classmethod
    def at(cls, index_dir: Path, settings: Settings, *, rebuild: bool = False, embedder=None) -> Library:
        """The library whose index lives in `index_dir`, created empty if there is none."""
        model = canonical_name(settings.model)
        index = None
        if not rebuild:
            try:
                index = open_index(index_dir, model=model, chunker=settings.chunker)
            except IndexMissing:
                index = None
        if index is None:
            embedder = embedder or SentenceEmbedder(model)
            index = Index.empty(model, embedder.dim, settings.chunker, folder=Path(index_dir))
        lib = cls(index, settings, index_dir=Path(index_dir), embedder=embedder)
        # The old index stays readable until the first write of the new one replaces it.
        lib._replace = rebuild
        if not rebuild:
            lib._use_store()
        elif settings.storage.store:
            from articleqa.index.vectors.milvus import connect

            connect(Store.parse(settings.storage.store))  # fail before anything is embedded
        return lib

    @classmethod
    def load(cls, index_dir: str | Path, *, embedder: Embedder | None = None, store: str | None = None) -> Library:
        """An existing index, searched with the model and chunker it was built with (and on the
        store it names; `store` moves a local one's vectors to a server first)."""
        index = open_index(index_dir)
        settings = replace(Settings(), model=index.model, chunker=index.chunker).on_store(store)
        lib = cls(index, settings, index_dir=Path(index_dir), embedder=embedder)
        lib._use_store()
        return lib

    def _use_store(self) -> None:
        """Check the store asked for is the library's; move a local library's vectors to it."""
        wanted = self.settings.storage.store
        if not wanted:
            return
        store = Store.parse(wanted)  # a bad address fails here, before anything is embedded
        entry = self._index.manifest.get("vectors")
        if entry is None and self._index.manifest:
            self._apply(lambda index: build.plan(index), None)
        elif entry is None:
            from articleqa.index.vectors.milvus import connect

            connect(store)  # an unreachable server too
        else:
            check_store(wanted, entry, self.index_dir)

    # -- reading ---------------------------------------------------------------------------

    @property
    def index(self) -> Index:
        """The latest published snapshot (a change made by another process is picked up here)."""
        self._refresh()
        return self._index

    def _refresh(self) -> None:
        if self.read_only or self.index_dir is None or self._replace:
            return
        stamp = storage.stamp(self.index_dir)
        if stamp == self._stamp or stamp is None:
            return
        with self._refresh_lock:
            if stamp != self._stamp:
                self._index = open_index(self.index_dir, previous=self._index)
                self._stamp = stamp

    @property
    def embedder(self) -> Embedder:
        """The model, loaded on first use (a lexical-only search never loads it)."""
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = SentenceEmbedder(self._index.model)
            return self._embedder

    def articles(self) -> list[Article]:
        return sorted(self.index.articles.values(), key=lambda a: (a.title.lower(), a.id))

    def passage_counts(self) -> dict[str, int]:
        """Passages per article id."""
        return self.index.passage_counts()

    def article(self, article_id: str) -> Article:
        try:
            return self.index.articles[article_id]
        except KeyError:
            raise UnknownArticle(f"no article {article_id!r} in this library; `articleqa info` lists them") from None

    def info(self) -> Info:
        index = self.index
        folder = Path(self.index_dir) if self.index_dir is not None else builtin_index_dir()
        described = index.describe()
        return Info(
            index_dir=str(folder),
            articles=len(index.articles),
            chunks=len(index),
            model=index.model,
            dim=index.dim,
            size_bytes=_folder_size(folder),
            read_only=self.read_only,
            segments=described["segments"],
            dense=described["dense"],
            tokens=described["tokens"],
            deleted_passages=described["deleted_passages"],
            store=_store_text(described["vectors"]),
            questions=self.embedder.describe_queries(),
        )

    def verify(self) -> tuple[int, list[str]]:
        """Read the whole index and check every file against its checksum: (files read, problems)."""
        return self.index.verify()

    def search(
        self, question: str, *, k: int | None = None, mode: str | None = None, per_article: int | None = None
    ) -> list[Hit]:
        """The passages that best answer `question`, best first.

        `per_article` caps passages per article before others get their turn (1: one per article).
        """
        request = self.check(question, k=k, mode=mode)
        query, k, mode = request.question, request.k, request.mode
        index = self.index
        if not len(index):
            return []
        vector, tokens = pipeline.encode(self.embedder, query) if mode != "keyword" else (None, None)
        return search_index(
            index,
            query,
            vector,
            k=k,
            mode=mode,
            settings=self.settings,
            per_article=per_article,
            query_tokens=tokens,
        )

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        mode: str | None = None,
        history: Sequence[str] = (),
    ) -> Answer:
        """Answer with evidence: cited passages, the sentence that answers, or an honest no.

        `history` holds the previous questions of the conversation, oldest first; a short
        follow-up ("and for hair?") is searched together with the question before it.
        """
        request = self.check(question, k=k, mode=mode, history=history)
        return pipeline.answer(self.index, self.embedder, self.settings, request, self.abstention)

    def similar_words(self, question: str, hits: Sequence[Hit]) -> list[list[tuple[str, str]]]:
        """For each hit, the question's words it says in other words: (question word, passage word)
        pairs (query/similar.py). For explaining a passage; `ask` itself does not spend the time."""
        if not hits or not self.embedder.word_pieces:
            return [[] for _ in hits]
        _, tokens = pipeline.encode(self.embedder, question)
        return similar_words(self.index, self.embedder, question, tokens, hits, cosine=self.settings.similar_word)

    # -- changing --------------------------------------------------------------------------

    def sync(self, paths: Sequence[str | Path], *, prune: bool = False, progress: Progress | None = None) -> Change:
        """Make the index mirror the files under `paths`; saves if anything changed. Articles from
        elsewhere (uploads, other folders) stay unless `prune` is given."""
        ingested = _read_paths(list(paths), self.settings, progress)
        self.skipped = ingested.skipped
        articles = require_articles(ingested, paths)
        return self.sync_articles(articles, scope=build.in_paths(paths), prune=prune, progress=progress)

    def sync_builtin(self, *, prune: bool = False, progress: Progress | None = None) -> Change:
        return self.sync_articles(
            builtin_articles(), scope=build.with_prefix(f"{BUILTIN_SOURCE}:"), prune=prune, progress=progress
        )

    def sync_articles(
        self,
        articles: Sequence[Article],
        *,
        scope: build.Scope | None = None,
        prune: bool = False,
        progress: Progress | None = None,
    ) -> Change:
        """Make the index hold these articles; saves if anything changed. Synced (`path`) articles
        that are not among them leave when `scope` holds their source (all of them without a
        scope); with `prune`, every article not among them leaves."""
        articles = list(articles)
        return self._apply(
            lambda index: build.plan(index, upsert=articles, origin="path", mirror=True, scope=scope, prune=prune),
            progress,
        )

    def add(self, *sources: str | Path | Article, progress: Progress | None = None) -> Change:
        """Add articles (files, folders, web links or Article objects) and save; they stay until
        removed. A link is fetched (see fetch.py); adding it again updates the article if the page
        changed."""
        articles: list[Article] = []
        links = [s for s in sources if is_url(s)]
        paths = [s for s in sources if not isinstance(s, Article) and not is_url(s)]
        self.skipped = []
        if paths:
            ingested: Ingested = _read_paths(paths, self.settings, progress)
            self.skipped = ingested.skipped
            articles.extend(ingested.articles)
        for link in links:
            try:
                articles.append(self.read_link(link, progress=progress))
            except UnusableFile as exc:
                log.warning("skipped %s", exc)
                self.skipped.append(Skipped(link, str(exc).removeprefix(f"{link.strip()}: ")))
        paths += links
        articles.extend(s for s in sources if isinstance(s, Article))
        if not articles and len(self.skipped) == 1:
            raise UnusableFile(f"{self.skipped[0].path}: {self.skipped[0].reason}")
        if not articles:
            require_articles(Ingested(skipped=self.skipped), paths)
        return self._apply(
            lambda index: build.plan(index, upsert=articles, origin="added", refuse_copies=True), progress
        )

    def add_bytes(self, data: bytes, *, filename: str, progress: Progress | None = None) -> Article:
        """Add an uploaded file's content. The name only tells the format and the id; it is
        never used as a path."""
        return self.add_upload(self.read_upload(data, filename=filename, progress=progress), data, progress=progress)

    def read_upload(self, data: bytes, *, filename: str, progress: Progress | None = None) -> Article:
        """An uploaded file's content -> Article, read within the read budget (Settings.limits);
        nothing is saved. UnusableFile says why it cannot be read. The server reads uploads
        outside its one write lane, then adds them with `add_upload`."""
        stem = Path(filename.replace("\\", "/")).name
        base = _safe_id(Path(stem).stem)
        article_id, n = base, 2
        index = self.index
        while (key := index.article_key(article_id)) is not None and key[1] == "path":
            article_id, n = f"{base}-{n}", n + 1
        source = f"upload:{stem}"
        workers = isolated.workers_for(self.settings.limits)
        if workers is None:
            return parse(data, name=stem, article_id=article_id, source=source)
        return workers.parse(data, name=stem, article_id=article_id, source=source, report=_report(progress))

    def add_upload(self, article: Article, data: bytes, *, progress: Progress | None = None) -> Article:
        """Add an upload read by `read_upload`, keeping its original for download."""
        self.skipped = []
        change = self.add(article, progress=progress)
        stem = article.source.removeprefix("upload:")
        for skipped_id, _, reason in change.skipped:
            if skipped_id == article.id:
                raise UnusableFile(f"{stem}: {reason}")
        self._keep_original(article.id, data, Path(stem).suffix.lower())
        return self.article(article.id)

    def read_link(self, url: str, *, progress: Progress | None = None) -> Article:
        """Fetch a web link and read it (nothing is saved), within the fetch and read budgets;
        UnusableFile says why not."""
        max_bytes = min(self.settings.limits.link_bytes, self.settings.max_document_bytes)
        allow = self.settings.allow_private_urls
        workers = isolated.workers_for(self.settings.limits)
        if workers is None:
            return read_url(url, allow_private=allow, max_bytes=max_bytes, timeout=self.settings.limits.link_seconds)
        return workers.read_url(url, allow_private=allow, max_bytes=max_bytes, report=_report(progress))

    def original(self, article_id: str) -> Path | None:
        """The file an article was read from, when it is still at hand: an uploaded file (kept
        beside the index), a file of a synced folder, a built-in article; None for web pages (their
        link is the source) and files that are gone."""
        article = self.article(article_id)
        if article.url and is_url(article.source):
            return None
        kept = self.index.folder / ORIGINALS if self.index.folder is not None else None
        if article.source.startswith("upload:") and kept is not None:
            found = sorted(kept.glob(f"{_safe_id(article_id)}.*"))
            return found[0] if found else None
        if article.source.startswith(f"{BUILTIN_SOURCE}:"):
            path = CORPUS / article.source.split(":", 1)[1]
        else:
            path = Path(article.source)
        return path if path.is_file() else None

    def _keep_original(self, article_id: str, data: bytes, suffix: str) -> None:
        """Keep an upload's bytes for the reader's download; those of articles no longer in the
        library go (a removed one's stays until the next upload, so Undo can bring it back whole)."""
        folder = self.index.folder / ORIGINALS
        try:
            folder.mkdir(exist_ok=True)
            live = {_safe_id(a) for a in self.index.articles}
            for path in folder.iterdir():
                if path.stem not in live:
                    path.unlink(missing_ok=True)
            for path in folder.glob(f"{_safe_id(article_id)}.*"):
                path.unlink(missing_ok=True)
            suffix = suffix if re.fullmatch(r"\.\w{1,5}", suffix) else ".bin"
            (folder / f"{_safe_id(article_id)}{suffix}").write_bytes(data)
        except OSError as exc:  # the article is indexed either way; only its download is missing
            log.warning("could not keep the uploaded file of %s: %s", article_id, exc)

    def remove(self, *article_ids: str) -> Change:
        """Remove articles by id and save. A removed file stays out until its content changes."""
        for article_id in article_ids:
            self.article(article_id)
        ids = list(article_ids)
        return self._apply(lambda index: build.plan(index, delete=ids, forget=True), None)

    def _apply(self, plan_change, progress) -> Change:
        if self.read_only:
            raise ReadOnlyIndex(
                "the built-in library is read-only: open your own with "
                "articleqa.open(paths, index_dir=...) or `articleqa build PATHS`"
            )
        with self._write_lock:
            index, change = build.apply(
                self._index,
                plan_change,
                embedder=lambda: self.embedder,
                storage_settings=self.settings.storage,
                progress=progress,
                replace=self._replace,
                batch_size=self.settings.batch_size,
                max_passages=self.settings.max_passages_per_file,
            )
            self._replace = False
            with self._refresh_lock:
                self._index = index
                self._stamp = storage.stamp(self.index_dir)
            self.last_change = change
            self.skipped = [*self.skipped, *(Skipped(source, reason) for _, source, reason in change.skipped)]
            return change

    def check(self, question, *, k=None, mode=None, history: Sequence[str] | None = ()) -> Request:
        """A request as `ask` and `search` take it, checked and normalized (query/request.py).
        Raises BadQuestion (or ArticleQAError for a mode) saying what to send, before any work
        is done; a server runs it at the door too."""
        return check_request(question, k=k, mode=mode, history=history, settings=self.settings)

    # -- helpers ---------------------------------------------------------------------------

    def _check_builtin_fresh(self) -> None:
        shipped = {a.id: a.content_hash for a in builtin_articles()}
        indexed = {i: keys[0] for i, keys in self._index.article_keys().items()}
        if shipped != indexed:
            raise IndexMismatch(
                "the built-in index does not match the shipped articles: rebuild it with `make embeddings`"
            )


def ray_embedder(model: str, *, address: str | None = None, actors: int | None = None) -> Embedder:
    """The model on a Ray cluster (embed/ray.py), for builds: `address` "local" (or None) starts
    one on this machine; `actors`, copies of the model (default: one per CPU)."""
    from articleqa.embed.ray import RayEmbedder

    return RayEmbedder(model, address=address, actors=actors)


def verify(index_dir: str | Path) -> tuple[int, list[str]]:
    """Read every file of the index in `index_dir` and check it against its checksum, without
    opening it (a damaged index is still told file by file): (files read, what is wrong)."""
    from articleqa.index.snapshot import verify_folder

    return verify_folder(Path(index_dir))


def seed_user_index(index_dir: Path) -> None:
    """Start a writable library from the built-in one (copied, not re-embedded)."""
    if (index_dir / MANIFEST).exists():
        return
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_dir.parent / f".{index_dir.name}.seed"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(builtin_index_dir(), tmp, ignore=shutil.ignore_patterns(storage.LOCK, storage.WRITER))
    tmp.rename(index_dir)


def _with_source(article: Article, source: str) -> Article:
    return replace(article, source=source)


def _safe_id(value: str) -> str:
    import re

    value = re.sub(r"[^\w\-]+", "-", value).strip("-")[:80]
    return value or "upload"


def _store_text(entry: dict) -> str:
    return str(Store.of(entry)) if entry.get("engine") == "milvus" else "local"


def _folder_size(folder: Path) -> int:
    if not folder.exists():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
