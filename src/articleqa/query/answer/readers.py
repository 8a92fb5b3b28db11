"""Which reader the package ships: the kind its models/reader/meta.json names, or none."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from articleqa.errors import ModelUnavailable
from articleqa.query.answer.reader import READER_DIR, PassageReader, SpanReader
from articleqa.query.answer.sentence_reader import SentenceReader

KINDS = {SpanReader.kind: SpanReader, SentenceReader.kind: SentenceReader}


def load(folder: Path = READER_DIR) -> PassageReader:
    """The reader in `folder`, of the kind its meta.json names."""
    meta = folder / "meta.json"
    if not meta.exists():
        raise ModelUnavailable(f"no reader model in {folder}: train one with models/train_sentences.py")
    kind = json.loads(meta.read_text(encoding="utf-8")).get("kind", SpanReader.kind)
    if kind not in KINDS:
        raise ModelUnavailable(f"the reader in {folder} is a {kind!r}; this version reads {', '.join(KINDS)}")
    return KINDS[kind](folder)


@lru_cache(maxsize=1)
def shipped() -> PassageReader | None:
    """The reader shipped with the package, or None where there is none (a checkout before
    training, a build without it)."""
    try:
        return load()
    except ModelUnavailable:
        return None
