"""Defaults in one place: model, chunk budget, retrieval and answer knobs."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Bumped whenever chunking.py changes what it produces for the same settings.
CHUNKER_VERSION = 1
INDEX_FORMAT = 3


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
    fusion: str = "zscore"
    dense_weight: float = 0.4
    lexical_weight: float = 0.6
    sentence_weight: float = 0.4
    token_weight: float = 1.0
    # At most this many passages per article before other articles get their turn.
    per_article: int = 3
    batch_size: int = 32
    max_question_chars: int = 1000


MODES = ("hybrid", "dense", "lexical")


def data_home() -> Path:
    """Where the app keeps its own writable index (uploads through the UI)."""
    env = os.environ.get("ARTICLEQA_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "articleqa"
