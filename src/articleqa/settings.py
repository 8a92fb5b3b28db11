"""Defaults in one place: model, chunk budget, retrieval and answer knobs."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Bumped whenever chunking.py changes what it produces for the same settings.
CHUNKER_VERSION = 2
INDEX_FORMAT = 4


@dataclass(frozen=True)
class ChunkerSettings:
    """How articles are cut into passages; recorded in the manifest."""

    target_tokens: int = 120
    max_tokens: int = 200
    min_tokens: int = 60
    overlap_sentences: int = 1
    version: int = CHUNKER_VERSION

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StorageSettings:
    """How an index folder grows: segment sizes, when search turns approximate, when to merge.

    The thresholds were measured on this project's machine (docs/benchmarks.md).
    """

    # A segment of at least this many passages is searched approximately (`ann`: "ivf", an inverted
    # file over 8-bit scalar-quantized vectors, or "hnsw", a graph); smaller ones exactly. Small
    # segments are merged once together they pass it, so an exact scan never covers more.
    ann_threshold: int = 50_000
    ann: str = "ivf"
    # Inverted lists: 4·√n of them; a search visits ivf_probe·√lists of them (its recall is
    # measured in docs/benchmarks.md and docs/scale.md).
    ivf_probe: float = 4.0
    hnsw_m: int = 32
    hnsw_ef_construction: int = 160
    hnsw_ef_search: int = 256
    # A long build commits a segment every this many passages, so a crash loses at most one.
    flush_passages: int = 20_000
    # This many segments of one size tier are merged into one (tiers grow by this factor).
    merge_factor: int = 8
    # A segment with more than this share of its passages deleted is rewritten without them.
    max_deleted: float = 0.2
    # Token vectors: a segment of at least `compact_from` passages stores them product-quantized,
    # `pq_m` sub-vectors of `pq_bits` bits (32 bytes a word piece, a tenth of int8); a smaller one
    # keeps int8, whose scores equal float32's (docs/retrieval.md: what compression costs).
    compact_from: int = 2_000
    pq_m: int = 32
    pq_bits: int = 8
    # A model without a shipped codebook trains one from its first compressed segment's first
    # this many word pieces.
    pq_train_min: int = 20_000
    # How long a writer waits for another process's write to the same index before giving up.
    lock_timeout: float = 600.0
    # Where passage vectors are searched: None keeps them in the folder (or wherever the library
    # already keeps them); "milvus://HOST:PORT[/COLLECTION]" puts them on a Milvus server (milvus.py).
    store: str | None = None


MIB = 1024 * 1024


@dataclass(frozen=True)
class AnswerSettings:
    """How the answering sentence is chosen, and when to say the articles don't answer
    (docs/how-it-works.md, "Highlighting" and "Abstention"; measured in docs/evaluation.md)."""

    # Next to each sentence's cosine with the question: the share of the question's content terms
    # it holds, a bonus when it holds the kind of thing asked for (a duration for "how long", a
    # year for "when"...), how well the question's word pieces find theirs in it, and a penalty
    # for a sentence that is itself a question.
    lexical_weight: float = 0.3
    type_weight: float = 0.45
    token_weight: float = 0.5
    question_penalty: float = 0.1
    # The neighbour of the best sentence is shown with it when it scores within this of the best
    # (`reader_pair_margin` where the reader read the passage), the two at most `pair_chars` long.
    pair_margin: float = 0.15
    reader_pair_margin: float = 0.3
    pair_chars: int = 400
    # Abstention: answer when the closest sentence's cosine reaches `abstain_sentence`; or, for
    # names and rare terms, when every content term occurs in the articles, the top passages hold
    # `named_coverage` of them and the closest sentence reaches `named_sentence`. Never when a
    # question word matches nothing in the top passages (best cosine under `unmatched_word`) and
    # no sentence reaches `unmatched_sentence`.
    # The reader (query/answer/readers.py) reads the best `reader_passages` passages with the
    # question; they are re-ranked by fused score + `reader_weight` x its margin (0: measured to
    # cost top passages, docs/reader.md); a span reader's span decides the sentences shown, a
    # sentence reader's margins add `reader_sentence_weight` x the margin to each sentence's
    # score. Off: the sentence scoring above alone.
    reader: bool = True
    reader_passages: int = 3
    reader_weight: float = 0.0
    reader_sentence_weight: float = 0.1
    abstain_sentence: float = 0.46
    named_sentence: float = 0.20
    named_coverage: float = 0.6
    unmatched_word: float = 0.29
    unmatched_sentence: float = 0.60
    # A name or rare term of the question that no article holds, whose word pieces' best match
    # in the top passages stays under this, is said to be never mentioned ("retinol").
    unmentioned_word: float = 0.5
    # Confidence where the reader read the top passage: sigmoid(bias + a x closest sentence's
    # similarity + b x reader margin), as (bias, a, b) fitted by benchmarks/calibration.py; and
    # the least confidence an answer is shown with, chosen on that curve (docs/evaluation.md).
    confidence_curve: tuple[float, float, float] | None = (-2.5982, 2.4708, 0.2886)
    least_confidence: float = 0.10


@dataclass(frozen=True)
class Limits:
    """How much input is read, and for how long: every such bound in one place (reliability.md
    lists them). The limit for documents (PDF, DOCX, EPUB) is Settings.max_file_mb."""

    text_mb: float = 10.0  # a Markdown, text or HTML file
    link_mb: float = 50.0  # what a link sends, page or document
    link_seconds: float = 20.0  # a whole fetch, redirects included, however slowly the server sends
    redirects: int = 5
    # Reading one file or fetched page (ingest/isolated.py): in a worker process, stopped past
    # these; a file in the way of others ends as skipped with the reason.
    isolate: bool = True
    parse_seconds: float = 60.0
    parse_memory_mb: float = 256.0
    upload_mb: float = 5.0  # a text file uploaded through the web UI
    document_upload_mb: float = 50.0  # a PDF, DOCX or EPUB uploaded through the web UI
    # Any other request to the web UI (a chat turn carries its conversation: about 250 replies),
    # refused at the door before it is read; a call of the ask or search API carries one
    # question and the last `history_turns` ones, and gets the tighter bound.
    request_kib: int = 4096
    api_request_kib: int = 256

    @property
    def text_bytes(self) -> int:
        return int(self.text_mb * MIB)

    @property
    def link_bytes(self) -> int:
        return int(self.link_mb * MIB)


@dataclass(frozen=True)
class Settings:
    """Everything a Library needs that is not data."""

    model: str = field(default_factory=lambda: os.environ.get("ARTICLEQA_MODEL", DEFAULT_MODEL))
    chunker: ChunkerSettings = ChunkerSettings()
    k: int = 5
    mode: str = "hybrid"
    # Candidates taken from each retriever before fusion.
    candidates: int = 50
    # Fusion: z-score each signal over the candidates, then a weighted sum (docs/retrieval.md).
    # Signals: passage vector (dense), BM25 (lexical), best sentence, token MaxSim (late interaction);
    # the weights were chosen in docs/evaluation.md, "How far the fusion goes".
    fusion: str = "zscore"
    dense_weight: float = 0.3
    lexical_weight: float = 0.55
    sentence_weight: float = 0.4
    token_weight: float = 1.0
    # Reciprocal rank fusion's constant (fusion "rrf").
    rrf_k: int = 60
    # BM25's term-frequency saturation and length normalisation (read when an index is opened).
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    # At most this many passages per article before other articles get their turn, when at
    # least `competing_articles` articles are among the best 2k candidates (with fewer, the
    # question is about one or two articles and the best one goes deep).
    per_article: int = 3
    competing_articles: int = 3
    # Texts per forward pass when building; batches are formed by length, so there is little
    # padding (the fastest size with ONNX Runtime, docs/benchmarks.md).
    batch_size: int = 16
    max_question_chars: int = 1000
    # At most this many passages a request may ask for (the API and CLI; eval's recall@100 needs
    # 100), and at most this many the chat UI's slider offers.
    max_k: int = 100
    ui_max_k: int = 10
    # Earlier questions `ask` reads: a follow-up leans on the last few, never on the 21st back.
    history_turns: int = 20
    # How close two word pieces' contextual vectors must be to call two words the same meaning
    # (the UI's "says X for your Y").
    similar_word: float = 0.6
    # A file that would make more passages is left out, with the reason (the cost of an article
    # is proportional to its passages).
    max_passages_per_file: int = 12_000
    # Web links (Library.add("https://...")): loopback and private addresses are refused unless
    # allowed, so that a shared server cannot be made to fetch from its own network.
    allow_private_urls: bool = False
    # The largest PDF, DOCX or EPUB file read (text files: Limits.text_mb; links: Limits.link_mb).
    max_file_mb: float = 100.0

    @property
    def max_document_bytes(self) -> int:
        return int(self.max_file_mb * MIB)

    storage: StorageSettings = StorageSettings()
    limits: Limits = Limits()
    answer: AnswerSettings = AnswerSettings()

    def on_store(self, store: str | None) -> Settings:
        """These settings with the passage vectors on `store` (unchanged for None)."""
        return self if not store else replace(self, storage=replace(self.storage, store=store))


MODES = ("hybrid", "dense", "keyword")  # "lexical", the old name of keyword, is accepted too


def data_home() -> Path:
    """Where the app keeps its own writable index (uploads through the UI)."""
    env = os.environ.get("ARTICLEQA_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "articleqa"
