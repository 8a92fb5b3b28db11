"""The index on disk: round trip, incremental updates, atomic saves, checked loads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from articleqa import Library, Settings
from articleqa.__about__ import __version__
from articleqa.errors import IndexCorrupt, IndexMismatch, IndexMissing
from articleqa.index import Index
from articleqa.lexical import LexicalIndex
from articleqa.settings import ChunkerSettings
from articleqa.store import FaissStore
from fakes import FakeEmbedder


def test_round_trip_keeps_articles_chunks_and_vectors(built):
    folder = built.index_dir
    assert sorted(p.name for p in folder.iterdir()) == [
        "articles.jsonl", "bm25", "chunks.jsonl", "manifest.json", "sentences.npy",
        "token_offsets.npy", "token_scales.npy", "tokens.npy", "vectors.faiss",
    ]  # fmt: skip
    loaded = Index.load(folder)
    assert loaded.articles == built.index.articles
    assert loaded.chunks == built.index.chunks
    assert len(loaded.store) == len(loaded.chunks) == len(built.index.chunks)
    np.testing.assert_allclose(loaded.store.vectors(), built.index.store.vectors(), atol=1e-6)
    assert sorted(loaded.articles) == ["bicycle-chain", "green-tea", "notes/sourdough"]
    for name in ("codes", "scales", "offsets"):
        np.testing.assert_array_equal(getattr(loaded.tokens, name), getattr(built.index.tokens, name))


def test_token_vectors_follow_their_passages_through_an_update(built, corpus, fake_embedder):
    index = built.index
    query = fake_embedder.encode_tokens(["chain checker tool"])[1][0]
    before = {c.id: s for c, s in zip(index.chunks, index.tokens.maxsim(query, range(len(index.chunks))))}
    (corpus / "green-tea.md").unlink()
    built.sync([corpus])
    after = built.index
    assert len(after.tokens) == len(after.chunks) < len(index.chunks)
    scores = after.tokens.maxsim(query, range(len(after.chunks)))
    # Kept passages keep their own token vectors, at their new rows.
    assert {c.id: s for c, s in zip(after.chunks, scores)} == {c.id: before[c.id] for c in after.chunks}
    assert after.chunks[int(np.argmax(scores))].article_id == "bicycle-chain"


def test_manifest_records_how_the_index_was_built(built):
    manifest = json.loads((built.index_dir / "manifest.json").read_text())
    assert manifest["model"] == {"name": "fake-hash-embedder", "dim": 64}
    assert manifest["chunker"] == ChunkerSettings().as_dict()
    assert manifest["articleqa_version"] == __version__
    assert manifest["counts"] == {"articles": 3, "chunks": len(built.index.chunks)}
    for article in built.index.articles.values():
        assert manifest["articles"][article.id]["content_hash"] == article.content_hash
        assert manifest["articles"][article.id]["chunks"] == len(built.index.chunks_of(article.id))


def test_reopened_library_gives_the_same_answers(built, make_library):
    before = built.search("how hot should the water be for green tea", k=3)
    reopened = make_library()
    after = reopened.search("how hot should the water be for green tea", k=3)
    assert [(h.chunk.id, h.score) for h in after] == [(h.chunk.id, h.score) for h in before]
    assert after[0].article.id == "green-tea"


# -- incremental builds --------------------------------------------------------------------


def test_resync_of_unchanged_corpus_embeds_nothing(built, corpus, fake_embedder):
    saved = (built.index_dir / "manifest.json").stat().st_mtime_ns
    fake_embedder.reset()
    change = built.sync([corpus])
    assert fake_embedder.texts_encoded == 0
    assert change.embedded == 0 and not change.changed
    assert sorted(change.unchanged) == ["bicycle-chain", "green-tea", "notes/sourdough"]
    assert (built.index_dir / "manifest.json").stat().st_mtime_ns == saved


def test_changed_article_is_reembedded_alone_and_its_old_passages_are_gone(built, corpus, fake_embedder):
    path = corpus / "bicycle-chain.txt"
    path.write_text(path.read_text().replace("chain checker tool", "digital caliper gauge"))
    fake_embedder.reset()
    change = built.sync([corpus])
    assert change.replaced == ("bicycle-chain",) and not change.added and not change.removed
    new_chunks = built.index.chunks_of("bicycle-chain")
    assert change.embedded == len(new_chunks)
    assert fake_embedder.texts_encoded == change.embedded + change.sentences  # passages, then sentences
    passages, sentences = fake_embedder.encoded[: change.embedded], fake_embedder.encoded[change.embedded :]
    assert all(text.startswith("Caring for a Bicycle Chain") for text in passages)
    article_text = built.index.articles["bicycle-chain"].text
    assert sentences and all(sentence in article_text for sentence in sentences)
    reloaded = Index.load(built.index_dir)
    texts = " ".join(c.text for c in reloaded.chunks)
    assert "digital caliper gauge" in texts and "chain checker tool" not in texts
    assert len(reloaded.store) == len(reloaded.chunks)
    hits = built.search("digital caliper gauge", k=1, mode="lexical")
    assert hits[0].article.id == "bicycle-chain" and "digital caliper gauge" in hits[0].text


def test_removed_file_leaves_the_index(built, corpus, make_library):
    (corpus / "notes" / "sourdough.md").unlink()
    change = built.sync([corpus])
    assert change.removed == ("notes/sourdough",)
    reopened = make_library()
    assert sorted(reopened.index.articles) == ["bicycle-chain", "green-tea"]
    assert all(c.article_id != "notes/sourdough" for c in reopened.index.chunks)
    assert len(reopened.index.store) == len(reopened.index.chunks)
    assert all(h.article.id != "notes/sourdough" for h in reopened.search("sourdough starter flour", mode="lexical"))


def test_new_file_is_added_without_reembedding_the_others(built, corpus, fake_embedder):
    (corpus / "kites.md").write_text("# Kites\n\nA kite flies best in a steady wind.\n")
    fake_embedder.reset()
    change = built.sync([corpus])
    assert change.added == ("kites",)
    assert change.embedded == 1 and change.sentences == 1  # one passage of one sentence
    assert fake_embedder.texts_encoded == 2


# -- atomic saves --------------------------------------------------------------------------


@pytest.mark.parametrize("target", [LexicalIndex, FaissStore])
def test_crash_during_save_leaves_the_previous_index_intact(built, corpus, make_library, monkeypatch, target):
    folder = built.index_dir
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def crash(self, folder):
        raise OSError("disk full")

    monkeypatch.setattr(target, "save", crash)
    (corpus / "kites.md").write_text("# Kites\n\nA kite flies best in a steady wind of about twenty kilometres.\n")
    with pytest.raises(OSError, match="disk full"):
        built.sync([corpus])
    monkeypatch.undo()

    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in folder.parent.iterdir()) == sorted(["idx", "articles"])  # no temp folder
    assert "kites" not in built.index.articles  # the library did not half-apply the change
    reopened = make_library()
    assert sorted(reopened.index.articles) == ["bicycle-chain", "green-tea", "notes/sourdough"]
    assert reopened.search("green tea water temperature", k=1)[0].article.id == "green-tea"


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
    (built.index_dir / "vectors.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexCorrupt, match="rebuild"):
        Index.load(built.index_dir)


def test_missing_index_says_how_to_create_one(tmp_path):
    with pytest.raises(IndexMissing, match="articleqa build"):
        Index.load(tmp_path / "nowhere")
