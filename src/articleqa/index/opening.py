"""Opening an index folder as a reader finds it after a crash or an upgrade: what an interrupted
format-3 save left is recovered, a format-3 folder is migrated once (migration.py), then the
published state is read (snapshot.py, a pure reader that imports neither)."""

from __future__ import annotations

from pathlib import Path

from articleqa.index import migration, storage
from articleqa.index.snapshot import Index
from articleqa.settings import ChunkerSettings


def open_index(
    folder: str | Path,
    *,
    model: str | None = None,
    chunker: ChunkerSettings | None = None,
    previous: Index | None = None,
) -> Index:
    """The published state of `folder`, checked against the model and chunker the caller expects
    (None: whatever built it). Segments already open in `previous` are reused."""
    folder = Path(folder)
    migration.recover(folder)
    manifest = storage.read_manifest(folder)
    if manifest and manifest.get("format") == migration.FORMAT:
        migration.migrate(folder)
    return Index.load(folder, model=model, chunker=chunker, previous=previous)
