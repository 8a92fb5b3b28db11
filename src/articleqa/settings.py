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
    # Inverted lists: 4·√n of them; a search visits ivf_probe·√lists of them (recall@10 0.993 on
    # the 1M synthetic library, 0.961 on 200k clustered vectors; docs/benchmarks.md, docs/scale.md).
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
    # Signals: passage vector (dense), BM25 (lexical), best sentence, token MaxSim (late interaction).
    # Dense 0.3 / lexical 0.55 (were 0.4 / 0.6): Rhine hit@1 0.907 -> 0.917, nothing lost on the
    # built-in, blind, follow-up and SciFact sets (docs/evaluation.md, "How far the fusion goes").
    fusion: str = "zscore"
    dense_weight: float = 0.3
    lexical_weight: float = 0.55
    sentence_weight: float = 0.4
    token_weight: float = 1.0
    # At most this many passages per article before other articles get their turn.
    per_article: int = 3
    # Texts per forward pass when building; batches are formed by length, so there is little
    # padding (16 measured fastest with ONNX Runtime on this project's 2-core machine).
    batch_size: int = 16
    max_question_chars: int = 1000
    # A file that would make more passages is left out, with the reason (about 6 MB of prose;
    # the cost of an article is proportional to its passages).
    max_passages_per_file: int = 12_000
    # Web links (Library.add("https://...")): loopback and private addresses are refused unless
    # allowed, so that a shared server cannot be made to fetch from its own network.
    allow_private_urls: bool = False
    # The largest PDF, DOCX or EPUB file (or fetched page) read; text files stop at 10 MiB, about
    # 15,000 passages, past max_passages_per_file anyway.
    max_file_mb: float = 100.0

    @property
    def max_document_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    storage: StorageSettings = StorageSettings()

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
