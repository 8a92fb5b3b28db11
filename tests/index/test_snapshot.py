"""The index on disk: segments, incremental updates that write only what changed, merges,
approximate search past a size, checked loads, and the migration of format 3."""

from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pytest

from articleqa import Library, Settings
from articleqa.__about__ import __version__
from articleqa.errors import IndexCorrupt, IndexMismatch, IndexMissing
from articleqa.index.segment import TOKEN_OFFSETS
from articleqa.index.snapshot import Index
from articleqa.settings import ChunkerSettings, StorageSettings
from conftest import DATA
from fakes import FakeEmbedder

KITES = "# Kites\n\nA kite flies best in a steady wind of about twenty kilometres an hour.\n"


def files(folder) -> dict:
    """Every file of an index and its bytes, the lock files aside (each write stamps them)."""
    return {
        p.relative_to(folder): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name not in (".lock", ".writer")
    }


def segments(folder) -> list[str]:
    return sorted(p.name for p in (folder / "segments").iterdir())


def test_round_trip_keeps_articles_chunks_and_vectors(built):
    folder = built.index_dir
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["manifest.json", "segments"]
    assert len(segments(folder)) == 1
    loaded = Index.load(folder)
    assert dict(loaded.articles) == dict(built.index.articles)
    assert loaded.all_chunks() == built.index.all_chunks()
    assert sorted(loaded.articles) == ["bicycle-chain", "green-tea", "notes/sourdough"]
    keys = [c.key for c in loaded.all_chunks()]
    assert keys == sorted(set(keys))  # unique, stable keys
    for chunk in loaded.all_chunks():
        assert loaded.chunk_at(chunk.key) == chunk


def test_token_vectors_follow_their_passages_through_an_update(built, corpus, fake_embedder):
    index = built.index
    query = fake_embedder.encode_tokens(["chain checker tool"])[1][0]
    keys = [c.key for c in index.all_chunks()]
    before = dict(zip(keys, index.maxsim(query, keys)))
    (corpus / "green-tea.md").unlink()
    built.sync([corpus])
    after = built.index
    kept = [c.key for c in after.all_chunks()]
    assert len(kept) < len(keys) and set(kept) <= set(keys)  # surviving passages keep their keys
    assert dict(zip(kept, after.maxsim(query, kept))) == {k: before[k] for k in kept}


def test_manifest_records_how_the_index_was_built(built):
    manifest = json.loads((built.index_dir / "manifest.json").read_text())
    assert manifest["format"] == 4
    assert manifest["model"] == {"name": "fake-hash-embedder", "dim": 64}
    assert manifest["chunker"] == ChunkerSettings().as_dict()
    assert manifest["articleqa_version"] == __version__
    assert manifest["counts"]["articles"] == 3 and manifest["counts"]["chunks"] == len(built.index.all_chunks())
    assert [s["name"] for s in manifest["segments"]] == segments(built.index_dir)
    assert manifest["segments"][0]["dense"] == "flat"
    assert manifest["tokens"]["codec"] == "int8"  # the fake model has no codebook, and too few word pieces to train


def test_reopened_library_gives_the_same_answers(built, make_library):
    before = built.search("how hot should the water be for green tea", k=3)
    reopened = make_library()
    after = reopened.search("how hot should the water be for green tea", k=3)
    assert [(h.chunk.id, h.score) for h in after] == [(h.chunk.id, h.score) for h in before]
    assert after[0].article.id == "green-tea"


# -- incremental builds --------------------------------------------------------------------


def test_resync_of_unchanged_corpus_embeds_and_writes_nothing(built, corpus, fake_embedder):
    before = files(built.index_dir)
    fake_embedder.reset()
    change = built.sync([corpus])
    assert fake_embedder.texts_encoded == 0
    assert change.embedded == 0 and not change.changed
    assert sorted(change.unchanged) == ["bicycle-chain", "green-tea", "notes/sourdough"]
    assert files(built.index_dir) == before


def test_adding_an_article_writes_one_new_segment_and_touches_no_other_file(built, corpus, fake_embedder):
    folder = built.index_dir
    before = {k: v for k, v in files(folder).items() if k.parts[0] == "segments"}
    (corpus / "kites.md").write_text(KITES)
    fake_embedder.reset()
    change = built.sync([corpus])
    assert change.added == ("kites",)
    assert change.embedded == 1 and change.sentences == 1  # one passage of one sentence
    assert fake_embedder.texts_encoded == 2
    after = files(folder)
    assert all(after[path] == data for path, data in before.items())  # old segments untouched
    new = {p.parts[1] for p in after if p.parts[0] == "segments"} - {p.parts[1] for p in before}
    assert len(new) == 1
    assert built.search("steady wind for a kite", k=1, mode="lexical")[0].article.id == "kites"


def test_changed_article_is_reembedded_alone_and_its_old_passages_are_gone(built, corpus, fake_embedder):
    path = corpus / "bicycle-chain.txt"
    path.write_text(path.read_text().replace("chain checker tool", "digital caliper gauge"))
    fake_embedder.reset()
    change = built.sync([corpus])
    assert change.replaced == ("bicycle-chain",) and not change.added and not change.removed
    new_chunks = built.index.chunks_of("bicycle-chain")
    assert change.embedded == len(new_chunks)
    assert fake_embedder.texts_encoded == change.embedded + change.sentences  # passages, then sentences
    passages = fake_embedder.encoded[: change.embedded]
    assert all(text.startswith("Caring for a Bicycle Chain") for text in passages)
    reloaded = Index.load(built.index_dir)
    texts = " ".join(c.text for c in reloaded.all_chunks())
    assert "digital caliper gauge" in texts and "chain checker tool" not in texts
    hits = built.search("digital caliper gauge", k=1, mode="lexical")
    assert hits[0].article.id == "bicycle-chain" and "digital caliper gauge" in hits[0].text
    assert not built.search("chain checker tool", k=5, mode="lexical") or all(
        "chain checker tool" not in h.text for h in built.search("chain checker tool", k=5, mode="lexical")
    )


def test_removed_file_leaves_the_index(built, corpus, make_library):
    (corpus / "notes" / "sourdough.md").unlink()
    change = built.sync([corpus])
    assert change.removed == ("notes/sourdough",)
    reopened = make_library()
    assert sorted(reopened.index.articles) == ["bicycle-chain", "green-tea"]
    assert all(c.article_id != "notes/sourdough" for c in reopened.index.all_chunks())
    assert all(h.article.id != "notes/sourdough" for h in reopened.search("sourdough starter flour", mode="dense"))
    assert all(h.article.id != "notes/sourdough" for h in reopened.search("sourdough starter flour", mode="lexical"))


def test_a_restored_file_comes_back(built, corpus):
    text = (corpus / "notes" / "sourdough.md").read_text()
    (corpus / "notes" / "sourdough.md").unlink()
    built.sync([corpus])
    (corpus / "notes" / "sourdough.md").write_text(text)
    assert built.sync([corpus]).added == ("notes/sourdough",)


def test_deletions_are_merged_away_once_they_pass_the_threshold(tmp_path, fake_settings, fake_embedder, corpus):
    storage = StorageSettings(max_deleted=0.5, merge_factor=100)
    lib = Library.at(tmp_path / "idx", Settings(model=fake_settings.model, storage=storage), embedder=fake_embedder)
    lib.sync([corpus])
    lib.remove("green-tea")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["counts"]["deleted"] > 0  # one of three passages: below the threshold, kept as a deletion
    lib.remove("bicycle-chain")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["counts"]["deleted"] == 0 and manifest["deleted"] is None  # rewritten without them
    assert sorted(lib.index.articles) == ["notes/sourdough"]
    assert len(segments(tmp_path / "idx")) == 1


def test_small_segments_are_merged_by_tier(tmp_path, fake_settings, fake_embedder):
    storage = StorageSettings(merge_factor=3)
    lib = Library.at(tmp_path / "idx", Settings(model=fake_settings.model, storage=storage), embedder=fake_embedder)
    for name in ("green-tea.md", "bicycle-chain.txt", "notes/sourdough.md", "volcano.html"):
        lib.add(DATA / "articles" / name)
    # Three one-passage segments became one; the fourth article's segment waits for two more.
    assert len(segments(tmp_path / "idx")) == 2
    assert len(lib.index.articles) == 4
    assert lib.search("how hot should the water be for green tea", k=1)[0].article.id == "green-tea"
    assert lib.search("sourdough starter", k=1, mode="lexical")[0].article.id == "sourdough"


def test_a_merge_without_room_on_the_disk_waits_and_the_library_stays_whole(
    tmp_path, fake_settings, fake_embedder, monkeypatch, caplog
):
    from collections import namedtuple

    from articleqa.index import writer

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(writer.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    storage = StorageSettings(merge_factor=3)
    lib = Library.at(tmp_path / "idx", Settings(model=fake_settings.model, storage=storage), embedder=fake_embedder)
    for name in ("green-tea.md", "bicycle-chain.txt", "notes/sourdough.md"):
        lib.add(DATA / "articles" / name)
    assert len(segments(tmp_path / "idx")) == 3  # not merged: no room for the merged copy
    assert "not merging 3 segments" in caplog.text and "MB free" in caplog.text
    assert len(Library.load(tmp_path / "idx", embedder=fake_embedder).index.articles) == 3
    monkeypatch.undo()
    lib.add(DATA / "articles" / "volcano.html")  # room again: the next write merges
    assert len(segments(tmp_path / "idx")) == 2


def test_a_large_segment_is_searched_approximately_and_says_so(tmp_path, fake_settings, fake_embedder, corpus):
    for ann, file in (("ivf", "dense.ivf"), ("hnsw", "dense.hnsw")):
        storage = StorageSettings(ann_threshold=2, ann=ann)
        settings = Settings(model=fake_settings.model, storage=storage)
        lib = Library.at(tmp_path / ann, settings, embedder=fake_embedder)
        lib.sync([corpus])
        assert lib.info().dense == {ann: {"segments": 1, "passages": 3}}
        assert (next((tmp_path / ann / "segments").iterdir()) / file).exists()
        assert lib.search("how hot should the water be for green tea", k=1)[0].article.id == "green-tea"
        lib.remove("green-tea")  # a deletion inside an approximate segment
        assert all(h.article.id != "green-tea" for h in lib.search("green tea water", k=3))


def test_the_folder_keeps_its_permissions(built, corpus):
    os.chmod(built.index_dir, 0o755)
    (corpus / "kites.md").write_text(KITES)
    built.sync([corpus])
    assert stat.S_IMODE(os.stat(built.index_dir).st_mode) == 0o755


def test_leftovers_of_crashed_writes_are_cleaned_by_the_next_write(built, corpus):
    folder = built.index_dir
    (folder / "segments" / ".tmp-000009-deadbeef").mkdir()
    (folder / "segments" / "000009-deadbeef").mkdir()  # written, never published
    (folder / ".tmp-manifest.json-1234").write_text("{")
    (folder / "deleted-000001.npy").write_bytes(b"")
    legacy = [folder.parent / f".{folder.name}.tmp-abc", folder.parent / f".{folder.name}.old-abc"]
    for path in legacy:
        path.mkdir()
    (corpus / "kites.md").write_text(KITES)
    built.sync([corpus])
    names = {p.name for p in folder.iterdir()} | {p.name for p in (folder / "segments").iterdir()}
    assert not {".tmp-000009-deadbeef", "000009-deadbeef", ".tmp-manifest.json-1234", "deleted-000001.npy"} & names
    assert not any(p.exists() for p in legacy)


def test_a_failing_write_leaves_the_previous_index_intact(built, corpus, make_library, monkeypatch):
    from articleqa.text import lexical

    folder = built.index_dir
    before = files(folder)

    def crash(self, folder):
        raise OSError("disk full")

    monkeypatch.setattr(lexical.Postings, "save", crash)
    (corpus / "kites.md").write_text(KITES)
    with pytest.raises(OSError, match="disk full"):
        built.sync([corpus])
    monkeypatch.undo()
    assert files(folder) == before
    assert not [p for p in (folder / "segments").iterdir() if p.name.startswith(".tmp")]
    assert "kites" not in built.index.articles  # the library did not half-apply the change
    reopened = make_library()
    assert sorted(reopened.index.articles) == ["bicycle-chain", "green-tea", "notes/sourdough"]


# -- checked loads -------------------------------------------------------------------------


def test_other_model_is_refused_with_the_fix(built):
    with pytest.raises(IndexMismatch) as excinfo:
        Library.at(built.index_dir, Settings(model="sentence-transformers/all-mpnet-base-v2"))
    message = str(excinfo.value)
    assert "fake-hash-embedder" in message and "all-mpnet-base-v2" in message
    assert "articleqa build --rebuild" in message


def test_other_chunker_settings_are_refused_with_the_fix(built, fake_embedder):
    settings = Settings(model=FakeEmbedder.name, chunker=ChunkerSettings(max_tokens=150))
    with pytest.raises(IndexMismatch, match="articleqa build --rebuild"):
        Library.at(built.index_dir, settings, embedder=fake_embedder)


def test_rebuild_starts_over_with_new_settings(built, corpus, fake_embedder):
    settings = Settings(model=FakeEmbedder.name, chunker=ChunkerSettings(max_tokens=150))
    lib = Library.at(built.index_dir, settings, embedder=fake_embedder, rebuild=True)
    change = lib.sync([corpus])
    assert len(change.added) == 3
    assert Index.load(built.index_dir, chunker=settings.chunker).chunker.max_tokens == 150


def test_embedder_for_another_model_is_refused(built):
    class Other(FakeEmbedder):
        name = "another-model"

    with pytest.raises(IndexMismatch, match="articleqa build --rebuild"):
        Library(built.index, built.settings, embedder=Other())


def test_folder_without_manifest_is_corrupt(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "chunks.jsonl").write_text("{}\n")
    with pytest.raises(IndexCorrupt, match="articleqa build --rebuild"):
        Index.load(folder)


def test_damaged_files_are_corrupt(built):
    segment = next((built.index_dir / "segments").iterdir())
    (segment / "dense.npy").write_bytes(b"not an array")
    with pytest.raises(IndexCorrupt, match="rebuild"):
        Index.load(built.index_dir)


def test_a_missing_segment_is_corrupt(built):
    shutil.rmtree(next((built.index_dir / "segments").iterdir()))
    with pytest.raises(IndexCorrupt, match="missing files.*articleqa build --rebuild"):
        Index.load(built.index_dir)


def test_missing_index_says_how_to_create_one(tmp_path):
    with pytest.raises(IndexMissing, match="articleqa build"):
        Index.load(tmp_path / "nowhere")


def test_another_format_names_the_rebuild(built):
    path = built.index_dir / "manifest.json"
    path.write_text(path.read_text().replace('"format": 4', '"format": 2'))
    with pytest.raises(IndexMismatch, match="format 2.*articleqa build --rebuild"):
        Index.load(built.index_dir)


def test_a_newer_format_says_to_upgrade_not_to_rebuild(built):
    path = built.index_dir / "manifest.json"
    path.write_text(path.read_text().replace('"format": 4', '"format": 5'))
    with pytest.raises(IndexMismatch, match="written by a newer articleqa.*upgrade articleqa") as excinfo:
        Index.load(built.index_dir)
    assert "--rebuild" not in str(excinfo.value)


def test_small_exact_segments_become_one_approximate_segment_once_they_add_up(tmp_path, fake_settings, fake_embedder):
    storage = StorageSettings(ann_threshold=3, merge_factor=100)
    lib = Library.at(tmp_path / "idx", Settings(model=fake_settings.model, storage=storage), embedder=fake_embedder)
    lib.add(DATA / "articles" / "green-tea.md")
    lib.add(DATA / "articles" / "bicycle-chain.txt")
    assert lib.info().dense == {"flat": {"segments": 2, "passages": 2}}
    lib.add(DATA / "articles" / "volcano.html")
    assert lib.info().dense == {"ivf": {"segments": 1, "passages": 3}}
    assert lib.search("volcano eruption lava", k=1)[0].article.id == "volcano"


def test_token_vectors_are_compressed_in_a_segment_large_enough(tmp_path, fake_settings, fake_embedder, corpus):
    # The fake model has no shipped codebook: one is trained from the first large segment.
    storage = StorageSettings(compact_from=3, pq_m=8, pq_train_min=100)
    lib = Library.at(tmp_path / "idx", Settings(model=fake_settings.model, storage=storage), embedder=fake_embedder)
    lib.sync([corpus])
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["tokens"]["codec"] == "pq" and manifest["tokens"]["m"] == 8
    assert (tmp_path / "idx" / manifest["tokens"]["codebook"]).exists()
    segment = lib.index.segments[0]
    assert segment.tokens.codes.shape[1] == 8  # bytes per word piece
    assert lib.search("how hot should the water be for green tea", k=1)[0].article.id == "green-tea"
    # A later small write keeps int8 until a merge makes it large enough.
    lib.add(DATA / "articles" / "volcano.html")
    assert [s.tokens.codec.name for s in lib.index.segments] == ["pq", "int8"]


def test_a_merge_compresses_token_vectors_without_embedding_again(tmp_path, fake_settings, fake_embedder):
    storage = StorageSettings(compact_from=3, merge_factor=3, pq_m=8, pq_train_min=100)
    lib = Library.at(tmp_path / "idx", Settings(model=fake_settings.model, storage=storage), embedder=fake_embedder)
    for name in ("green-tea.md", "bicycle-chain.txt"):
        lib.add(DATA / "articles" / name)
    assert [s.tokens.codec.name for s in lib.index.segments] == ["int8", "int8"]
    fake_embedder.reset()
    change = lib.add(DATA / "articles" / "notes" / "sourdough.md")
    assert fake_embedder.texts_encoded == change.embedded + change.sentences  # the new article's only
    assert [s.tokens.codec.name for s in lib.index.segments] == ["pq"]
    assert lib.search("sourdough starter flour", k=1)[0].article.id == "sourdough"


def test_an_index_with_damaged_token_files_is_refused_with_the_fix(built):
    segment = next((built.index_dir / "segments").iterdir())
    np.save(segment / TOKEN_OFFSETS, np.array([0, 1], dtype=np.int64))
    with pytest.raises(IndexCorrupt, match=r"token_offsets.npy is \d+ bytes, segment.json says.*--rebuild"):
        Index.load(built.index_dir)


# -- damage: checksums, sizes, what to do ---------------------------------------------------------


def _segment_file(index_dir, name: str):
    return next((index_dir / "segments").iterdir()) / name


def test_every_file_is_checked_whole_and_a_flipped_byte_is_named(built):
    files, problems = built.verify()
    assert files > 10 and problems == []
    postings = next(p for p in _segment_file(built.index_dir, "x").parent.iterdir() if "postings" in p.name)
    data = bytearray(postings.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    postings.write_bytes(bytes(data))
    files, problems = Library.load(built.index_dir, embedder=built.embedder).verify()
    assert len(problems) == 1 and str(postings) in problems[0] and "damaged (CRC-32" in problems[0]


def test_a_cut_short_file_is_refused_at_open_naming_it(built):
    from articleqa.index.segment import TOKENS

    tokens = _segment_file(built.index_dir, TOKENS)
    tokens.write_bytes(tokens.read_bytes()[:-10])
    with pytest.raises(IndexCorrupt, match=rf"{TOKENS} is \d+ bytes, segment.json says \d+.*articleqa build --rebuild"):
        Index.load(built.index_dir)


def test_a_row_file_that_ends_early_names_itself_and_the_fix(built, tmp_path):
    from articleqa.index.segment import TOKENS
    from articleqa.index.storage import RowFile

    copy = tmp_path / "segments" / "s" / TOKENS
    copy.parent.mkdir(parents=True)
    copy.write_bytes(_segment_file(built.index_dir, TOKENS).read_bytes()[:-10])
    rows = RowFile(copy)
    with pytest.raises(IndexCorrupt, match=rf"{TOKENS} ends early .*articleqa info --verify.*--rebuild"):
        np.asarray(rows)


def test_a_manifest_that_is_not_utf8_is_damaged_not_a_crash(built):
    (built.index_dir / "manifest.json").write_bytes(b'{"format": 4, "name": "\xff\xfe"}')
    with pytest.raises(IndexCorrupt, match="manifest.json is damaged \\(not UTF-8 text"):
        Index.load(built.index_dir)


def test_info_verify_says_whether_every_file_is_whole(built, capsys):
    from articleqa.cli import main

    assert main(["info", "--verify", "--index-dir", str(built.index_dir)]) == 0
    assert "every one whole" in capsys.readouterr().out
    heads = _segment_file(built.index_dir, "headings.json")
    heads.write_bytes(heads.read_bytes().replace(b"[", b"{", 1))
    assert main(["info", "--verify", "--index-dir", str(built.index_dir)]) == 2
    err = capsys.readouterr().err
    assert "damaged: " in err and "headings.json" in err and "articleqa build --rebuild" in err
