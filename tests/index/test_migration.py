"""Format 3 (whole-index files, replaced on every save) is migrated once to segments, and what an
interrupted format-3 save left is restored only when complete (opening.py, migration.py)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest

from articleqa.index.opening import open_index
from articleqa.library import Library
from conftest import DATA


def test_a_format_3_index_is_migrated_once_without_embedding(tmp_path, fake_embedder):
    folder = tmp_path / "old"
    shutil.copytree(DATA / "format3", folder)
    lib = Library.load(folder, embedder=fake_embedder)
    assert fake_embedder.texts_encoded == 0
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["manifest.json", "segments"]
    assert json.loads((folder / "manifest.json").read_text())["format"] == 4
    assert sorted(lib.index.articles) == ["bicycle-chain", "green-tea", "sourdough"]
    # The ranking the format-3 index gave (recorded when the fixture was built, with the fusion
    # weights of then); scores move only by the rounding of sentence vectors from float16 to int8.
    lib.settings = replace(lib.settings, dense_weight=0.4, lexical_weight=0.6)
    hits = lib.search("how hot should the water be for green tea", k=3)
    assert [h.chunk.id for h in hits] == ["green-tea#0", "bicycle-chain#0", "sourdough#0"]
    assert [h.score for h in hits] == pytest.approx([2.609061, -0.074752, -2.534309], abs=0.005)
    assert Library.load(folder, embedder=fake_embedder).search("chain checker tool", k=1)[0].article.id == (
        "bicycle-chain"
    )


def test_a_format_3_crash_leftover_is_restored_only_when_complete(tmp_path):
    folder = tmp_path / "idx"
    partial = tmp_path / ".idx.old-11111111"
    partial.mkdir()
    (partial / "manifest.json").write_text("{}")  # a copy missing its files
    complete = tmp_path / ".idx.old-22222222"
    shutil.copytree(DATA / "format3", complete)
    os.utime(partial, (2_000_000_000, 2_000_000_000))  # the newer one is the broken one
    index = open_index(folder)
    assert sorted(index.articles) == ["bicycle-chain", "green-tea", "sourdough"]
    assert np.all(np.isfinite(index.dense_scores(np.ones(64, np.float32) / 8, [c.key for c in index.all_chunks()])))
