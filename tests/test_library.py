"""The Library facade: add, remove, uploads, question checks, results, the read-only built-in."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

import articleqa
from articleqa import Article, Hit
from articleqa.errors import BadQuestion, NoArticles, ReadOnlyIndex, UnknownArticle, UnusableFile
from articleqa.library import Library
from conftest import ARTICLES, BAD

KITES = Article(
    id="kites",
    title="Flying Kites",
    text="A kite flies best in a steady wind of about twenty kilometres an hour. Gusty wind makes it dive.",
    source="notes",
)


def test_add_a_file_and_an_article(make_library):
    lib = make_library()
    change = lib.add(ARTICLES / "bicycle-chain.txt", KITES)
    assert sorted(change.added) == ["bicycle-chain", "kites"]
    assert [a.title for a in lib.articles()] == ["Caring for a Bicycle Chain", "Flying Kites"]
    assert lib.article("kites") == KITES
    # Saved: a fresh Library over the same folder sees both.
    assert sorted(make_library().index.articles) == ["bicycle-chain", "kites"]
    assert lib.search("steady wind for a kite", k=1, mode="lexical")[0].article.id == "kites"


def test_added_articles_survive_a_sync_of_the_folders(built, corpus):
    built.add(KITES)
    change = built.sync([corpus])
    assert not change.changed
    assert "kites" in built.index.articles


def test_add_of_only_bad_files_raises_no_articles(make_library):
    with pytest.raises(NoArticles, match="report.pdf"):
        make_library().add(BAD)


def test_sync_of_only_bad_files_raises_and_keeps_the_index(built):
    with pytest.raises(NoArticles, match="no usable articles"):
        built.sync([BAD])
    assert len(built.index.articles) == 3


def test_remove(built, make_library):
    change = built.remove("green-tea")
    assert change.removed == ("green-tea",)
    assert "green-tea" not in make_library().index.articles
    assert all(h.article.id != "green-tea" for h in built.search("green tea water", mode="lexical"))
    with pytest.raises(UnknownArticle, match="no article 'green-tea'"):
        built.remove("green-tea")


def test_removed_file_stays_out_until_its_content_changes(built, corpus, fake_embedder):
    built.remove("bicycle-chain")
    fake_embedder.reset()
    change = built.sync([corpus])
    assert "bicycle-chain" not in built.index.articles
    assert change.embedded == 0
    path = corpus / "bicycle-chain.txt"
    path.write_text(path.read_text() + "\nA worn chain also skips under load on steep climbs.\n")
    change = built.sync([corpus])
    assert change.added == ("bicycle-chain",)
    assert "steep climbs" in built.index.articles["bicycle-chain"].text


def test_articles_are_looked_up_among_live_ones_only(built, corpus):
    # A replaced article sits in an old segment (deleted) and a new one (live); a removed one
    # only in an old one. Lookups by id, the count and the listing must all agree.
    path = corpus / "bicycle-chain.txt"
    path.write_text(path.read_text() + "\nOil it after rain.\n")
    built.sync([corpus])
    built.remove("green-tea")
    articles = built.index.articles
    assert len(articles) == len(list(articles)) == len(built.index.article_keys())
    assert "green-tea" not in articles and "green-tea" not in list(articles)
    with pytest.raises(KeyError):
        articles["green-tea"]
    assert "Oil it after rain." in articles["bicycle-chain"].text
    assert built.index.article_key("bicycle-chain")[0] == articles["bicycle-chain"].content_hash


def test_add_bytes_never_uses_the_file_name_as_a_path(tmp_path, make_library, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    lib = make_library(work / "idx")
    data = b"# Passwords\n\nNever store passwords in plain text files; use a password manager instead.\n"
    article = lib.add_bytes(data, filename="../../etc/passwd.md")
    assert article.id == "passwd"
    assert article.title == "Passwords"
    assert article.source == "upload:passwd.md"
    assert "passwd" in make_library(work / "idx").index.articles
    # Nothing named after the upload exists outside the index, in particular not at ../../etc/passwd.md;
    # inside it, the kept original is named after the article id.
    assert not (tmp_path / "etc").exists()
    assert [p for p in tmp_path.rglob("*passwd*")] == [work / "idx" / "originals" / "passwd.md"]


def test_add_bytes_windows_path_and_odd_name(make_library):
    lib = make_library()
    data = b"Kites\n\nA kite needs steady wind to fly well.\n"
    article = lib.add_bytes(data, filename="C:\\Users\\me\\my kites!.txt")
    assert article.id == "my-kites"
    assert article.source == "upload:my kites!.txt"


@pytest.mark.parametrize(
    ("data", "filename", "says"),
    [
        (b"%PDF-1.4 binary", "scan.pdf", "damaged PDF document"),
        (b"PK\x03\x04 an archive", "notes.zip", "unsupported file type"),
        (b"", "empty.md", "empty file"),
    ],
    ids=["pdf", "zip", "empty"],
)
def test_unusable_upload_raises_an_articleqa_error(built, data, filename, says):
    # Callers (the UI, scripts) catch the package's own error tree, not an ingest internal.
    with pytest.raises(articleqa.ArticleQAError, match=says):
        built.add_bytes(data, filename=filename)
    assert len(built.index.articles) == 3


@pytest.mark.parametrize(
    ("question", "k", "says"),
    [
        ("", None, "empty"),
        ("   \n\t ", None, "empty"),
        ("???", None, "no words"),
        ("why " * 1250, None, "characters long"),
        ("What is green tea?", 0, "k must be"),
        ("What is green tea?", 101, "k must be"),
    ],
    ids=["empty", "blank", "punctuation", "5000-chars", "k=0", "k=101"],
)
def test_bad_questions_are_refused_with_a_helpful_message(built, fake_embedder, question, k, says):
    fake_embedder.reset()
    for call in (built.search, built.ask):
        with pytest.raises(BadQuestion, match=says):
            call(question, k=k)
    assert fake_embedder.texts_encoded == 0


@pytest.mark.parametrize(
    ("history", "says"),
    [
        (123, "history must be a list of the earlier questions"),
        ("What is green tea?", "history must be a list"),
        (["ok", 7], "questions as strings, not int"),
        (["x" * 5_000_000], "characters long"),
    ],
    ids=["int", "one-string", "int-inside", "5M-chars"],
)
def test_bad_history_is_refused_before_any_work(built, fake_embedder, history, says):
    fake_embedder.reset()
    with pytest.raises(BadQuestion, match=says):
        built.ask("and the water?", history=history)
    assert fake_embedder.texts_encoded == 0


def test_only_the_recent_history_is_read(built):
    # A client that sends its whole conversation: old turns are dropped unread (a huge one too).
    old = ["x" * 5_000_000, *["What is green tea?"] * 100_000]
    answer = built.ask("and the water temperature?", history=[*old, "How do I brew green tea?"])
    assert answer.query == "How do I brew green tea? and the water temperature?"
    assert len(answer.history) == 20
    assert built.ask("How is a chain oiled?", history=None).query == "How is a chain oiled?"


def test_search_returns_hits_best_first(built):
    hits = built.search("how often should I oil a bicycle chain", k=3)
    assert 1 <= len(hits) <= 3
    assert all(isinstance(h, Hit) and dataclasses.is_dataclass(h) for h in hits)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].article.id == "bicycle-chain"
    assert hits[0].text == hits[0].chunk.text
    assert hits[0].article.text[hits[0].chunk.start : hits[0].chunk.end] == hits[0].text


def test_search_modes(built):
    for mode in ("hybrid", "dense", "lexical"):
        hits = built.search("sourdough starter flour water", k=2, mode=mode)
        assert hits[0].article.id == "notes/sourdough", mode
    lexical = built.search("sourdough starter", mode="lexical")[0]
    assert lexical.lexical_rank == 1 and lexical.dense_rank is None
    with pytest.raises(articleqa.ArticleQAError, match="unknown search mode"):
        built.search("tea", mode="semantic")


def test_ask_returns_an_answer_with_cited_hits(built):
    answer = built.ask("how often should I oil a bicycle chain", k=2)
    assert isinstance(answer, articleqa.Answer)
    assert answer.question == "how often should I oil a bicycle chain"
    assert answer.hits and answer.hits[0].article.id == "bicycle-chain"
    if answer.found:
        assert answer.text in answer.hits[0].text
    else:
        assert answer.text == "" and answer.reason


def test_empty_library_answers_nothing(make_library):
    lib = make_library()
    assert lib.search("anything at all") == []
    assert lib.ask("anything at all").found is False


def test_info_counts(built):
    info = built.info()
    assert (info.articles, info.chunks) == (3, len(built.index.all_chunks()))
    assert info.model == "fake-hash-embedder" and info.dim == 64
    assert info.size_bytes > 0 and not info.read_only
    assert Path(info.index_dir) == built.index_dir


def test_builtin_library_is_read_only():
    lib = articleqa.open()
    assert lib.read_only
    assert len(lib.articles()) == 4
    for change in (lambda: lib.add(KITES), lambda: lib.remove(lib.articles()[0].id), lambda: lib.sync_builtin()):
        with pytest.raises(ReadOnlyIndex, match="read-only"):
            change()
    assert len(articleqa.open().articles()) == 4


def test_an_index_reopens_with_the_model_it_was_built_with(built, fake_embedder):
    # Built with the fake model; opened with no model named, as `articleqa search --index-dir` does.
    reopened = Library.load(built.index_dir, embedder=fake_embedder)
    assert reopened.settings.model == "fake-hash-embedder" == reopened.index.model
    assert reopened.settings.chunker == built.index.chunker
    assert reopened.search("green tea", k=1)[0].article.id == "green-tea"


# -- a sync removes only what it added -----------------------------------------------------


def test_syncing_one_folder_keeps_uploads_and_other_folders(built, corpus, tmp_path):
    built.add_bytes(b"# Kites\n\nA kite flies best in a steady wind.\n", filename="kites.md")
    other = tmp_path / "other"
    other.mkdir()
    (other / "volcano.html").write_bytes((ARTICLES / "volcano.html").read_bytes())
    change = built.sync([other])
    assert change.added == ("volcano",)
    assert not change.removed
    assert change.kept == ("bicycle-chain", "green-tea", "kites", "notes/sourdough")
    assert sorted(built.index.articles) == ["bicycle-chain", "green-tea", "kites", "notes/sourdough", "volcano"]
    # A file gone from the synced folder still leaves.
    (corpus / "green-tea.md").unlink()
    assert built.sync([corpus]).removed == ("green-tea",)


def test_prune_removes_everything_not_synced(built, tmp_path):
    built.add_bytes(b"# Kites\n\nA kite flies best in a steady wind.\n", filename="kites.md")
    other = tmp_path / "other"
    other.mkdir()
    (other / "volcano.html").write_bytes((ARTICLES / "volcano.html").read_bytes())
    change = built.sync([other], prune=True)
    assert change.removed == ("bicycle-chain", "green-tea", "kites", "notes/sourdough")
    assert sorted(built.index.articles) == ["volcano"]


def test_info_says_how_the_index_is_stored(built):
    info = built.info()
    assert info.segments == 1
    assert info.dense == {"flat": {"segments": 1, "passages": info.chunks}}
    assert info.tokens == {"int8": {"segments": 1, "passages": info.chunks, "bytes": 64 + 4}}
    assert info.deleted_passages == 0


def test_file_names_that_are_not_utf8_are_indexed_saved_and_shown_escaped(make_library, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    name = os.fsdecode(b"bad\xff.md")  # a name no UTF-8 decoder accepts, as Linux allows
    (folder / name).write_text("# Sloths\n\nSloths move slowly through the canopy.\n")
    lib = make_library()
    assert lib.sync([folder]).added == ("bad",)
    lib.add(Article(id="odd", title="Odd \udcff", text="Otters swim fast in cold rivers.", source="x\ud800"))
    reopened = make_library()  # saved: nothing was lost at write time
    assert reopened.article("bad").source.endswith("bad\\xff.md")
    assert reopened.article("odd").title == "Odd \\xff"
    assert reopened.search("sloths canopy", k=1, mode="lexical")[0].article.id == "bad"
    assert not lib.sync([folder]).changed  # the escaped source still counts as the same file
    uploaded = lib.add_bytes(b"Kites fly in steady wind.", filename=os.fsdecode(b"kite\xfe.txt"))
    assert uploaded.source == "upload:kite\\xfe.txt"


def test_a_file_over_the_passage_limit_is_left_out_with_the_reason(tmp_path, fake_embedder):
    from articleqa.errors import UnusableFile
    from articleqa.settings import Settings

    folder = tmp_path / "docs"
    folder.mkdir()
    long = " ".join(f"Sentence {i} tells about otters and rivers and stones." for i in range(200))
    (folder / "long.txt").write_text(long)
    (folder / "short.txt").write_text("Kites fly best in a steady wind.")
    settings = Settings(model=fake_embedder.name, max_passages_per_file=3)
    lib = Library.at(tmp_path / "idx", settings, embedder=fake_embedder)
    change = lib.sync([folder])
    assert change.added == ("short",)
    assert [(i, r.split(":")[0]) for i, _, r in change.skipped] == [("long", "too long")]
    assert "the limit is 3 per file" in change.skipped[0][2] and "max_passages_per_file" in change.skipped[0][2]
    assert [s.path for s in lib.skipped] == [str(folder / "long.txt")]
    assert "long" not in lib.index.articles
    with pytest.raises(UnusableFile, match="long.txt: too long"):
        lib.add_bytes(long.encode(), filename="long.txt")


def test_an_articles_original_file_is_at_hand_for_download(make_library, tmp_path, corpus):
    lib = make_library()
    lib.sync([corpus])
    synced = lib.articles()[0]
    assert lib.original(synced.id) == Path(synced.source)
    uploaded = lib.add_bytes(b"# Kites\n\nA kite needs steady wind.\n", filename="kites.md")
    kept = lib.original(uploaded.id)
    assert kept is not None and kept.read_bytes() == b"# Kites\n\nA kite needs steady wind.\n"
    assert kept.parent.name == "originals" and kept.parent.parent == lib.index.folder
    Path(synced.source).unlink()
    assert lib.original(synced.id) is None  # gone from disk: nothing to offer


def test_a_builtin_articles_original_is_the_shipped_file():
    from articleqa.library import open as open_library

    lib = open_library()
    article = lib.articles()[0]
    assert lib.original(article.id).name == article.source.split(":", 1)[1]


def test_the_words_a_passage_says_differently_are_named(tmp_path, real_embedder):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "hair.md").write_text(
        "# Hair care\n\nExosome serums may strengthen delicate, brittle hair and calm an irritated scalp. "
        "Apply them twice a week after washing.\n"
    )
    (folder / "tea.md").write_text("# Green tea\n\nGreen tea is steamed soon after picking.\n")
    lib = articleqa.open([folder], index_dir=tmp_path / "idx", embedder=real_embedder)
    hits = lib.search("Can exosomes help fragile hair?", k=2)
    similar = lib.similar_words("Can exosomes help fragile hair?", hits)
    assert hits[0].article.id == "hair" and ("fragile", "brittle") in similar[0]
    assert all(mine not in {"exosomes", "hair"} for mine, _ in similar[0])  # same words are not "similar"
    assert lib.similar_words("anything", []) == []


def test_a_question_about_one_article_goes_deep_into_it(make_library, tmp_path):
    # The cap of 3 passages per article makes room for other articles when several compete; with
    # only one or two among the best candidates it would fill the list with weaker matches.
    folder = tmp_path / "two"
    folder.mkdir()
    reach = " ".join(f"The river Rhine reach flows past town number {j} on its way." for j in range(12))
    (folder / "rivers.md").write_text("# Rivers\n\n" + "\n\n".join(f"## Reach {i}\n\n{reach}" for i in range(8)))
    (folder / "tea.md").write_text("# Tea\n\nGreen tea is steamed soon after picking and sold in every town.\n")
    lib = make_library()
    lib.sync([folder])
    hits = lib.search("river Rhine reach flows past town", k=5, mode="keyword")
    assert "tea" in {c.article.id for c in lib.search("town", k=10, mode="keyword")}  # tea competes, weakly
    assert [h.article.id for h in hits].count("rivers") == 5


def test_the_same_text_under_another_name_is_refused_naming_the_copy(tmp_path, fake_settings, fake_embedder):
    lib = Library.at(tmp_path / "idx", fake_settings, embedder=fake_embedder)
    text = "# Kites\n\nA kite flies best in a steady wind of fifteen to twenty kilometres an hour.\n"
    (tmp_path / "kites.md").write_text(text)
    lib.add(tmp_path / "kites.md")
    # The same article saved again as a web page (other markup, other name): refused, naming it.
    (tmp_path / "page.html").write_text(
        "<html><head><title>Kites</title></head><body><article><h1>Kites</h1>"
        "<p>A kite flies best in a steady wind of fifteen to twenty kilometres an hour.</p></article></body></html>"
    )
    change = lib.add(tmp_path / "page.html")
    assert change.added == () and sorted(lib.index.articles) == ["kites"]
    assert change.skipped and "the same text as “Kites” (kites)" in change.skipped[0][2]
    with pytest.raises(UnusableFile, match="copy.md: the same text as “Kites” \\(kites\\)"):
        lib.add_bytes(text.encode(), filename="copy.md")
    # Re-adding the same file updates it in place, as before; a different text is welcome.
    assert lib.add(tmp_path / "kites.md").unchanged == ("kites",)
    (tmp_path / "other.md").write_text("# Kites\n\nA kite needs a line of at least thirty metres.\n")
    assert lib.add(tmp_path / "other.md").added == ("other",)


@pytest.mark.parametrize(
    "failure",
    [OSError(28, "No space left on device"), OSError("1048576 requested and 4096 written")],
    ids=["ENOSPC", "numpy-short-write"],
)
def test_a_full_disk_says_how_much_room_the_change_needs_and_loses_nothing(built, monkeypatch, failure):
    from articleqa.errors import DiskFull
    from articleqa.index import writer

    before = sorted(a.id for a in built.articles())

    def full(*args, **kwargs):
        raise failure

    monkeypatch.setattr(writer, "commit", full)
    text = "Kettles boil water. " * 500
    with pytest.raises(
        DiskFull, match=r"no space left on the device holding .* MB free\): this change needs about 1 MB"
    ):
        built.add(Article(id="kettles", title="Kettles", text=text, source="kettles.md"))
    monkeypatch.undo()
    assert (
        sorted(a.id for a in articleqa.library.Library.load(built.index_dir, embedder=built.embedder).articles())
        == before
    )
