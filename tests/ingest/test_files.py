"""Files and folders -> Article: formats, titles, metadata, encodings, and files that are skipped."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from articleqa.errors import NoArticles
from articleqa.ingest import documents
from articleqa.ingest.files import SkipFile, parse, read_file, read_paths, require_articles
from articleqa.library import builtin_articles
from conftest import ARTICLES, BAD


def parse_text(text: str | bytes, name: str = "article.md"):
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return parse(raw, name=name, article_id="a", source=name)


# -- formats and titles ----------------------------------------------------------------------


def test_markdown_front_matter_becomes_metadata():
    article = read_file(ARTICLES / "green-tea.md")
    assert article.title == "Brewing Green Tea Without Bitterness"
    assert article.date == "2024-03-18"
    assert article.url == "https://example.org/green-tea"
    assert article.link == "https://example.org/green-tea"
    assert article.description.startswith("Water temperature and steeping time")
    # The front matter itself is not article text.
    assert "---" not in article.text
    assert "title:" not in article.text
    assert article.text.startswith("## Water temperature")
    assert "Green tea turns bitter when the water is too hot." in article.text


def test_markdown_without_front_matter_takes_title_from_heading():
    article = read_file(ARTICLES / "notes" / "sourdough.md")
    assert article.title == "Feeding a Sourdough Starter"
    assert article.date is None and article.url is None
    # The title heading is not repeated as body text.
    assert not article.text.startswith("#")
    assert article.text.startswith("A sourdough starter is a colony")


def test_plain_text_short_first_line_is_title():
    article = read_file(ARTICLES / "bicycle-chain.txt")
    assert article.title == "Caring for a Bicycle Chain"
    assert article.text.startswith("A clean chain shifts smoothly")
    assert "Caring for a Bicycle Chain" not in article.text


def test_text_without_title_uses_first_sentence_not_file_name(tmp_path):
    path = tmp_path / "scan_0042.txt"
    path.write_text(
        "Tides rise and fall twice a day because the moon pulls on the oceans. "
        "The sun adds a smaller pull of its own, which is why spring tides are higher.\n\n"
        "Neap tides come when the sun and the moon pull at right angles.\n",
        encoding="utf-8",
    )
    article = read_file(path)
    assert article.title == "Tides rise and fall twice a day because the moon pulls on the oceans."
    assert "scan" not in article.title
    # Nothing is lost from the body to make the title.
    assert article.text.startswith("Tides rise and fall")


def test_long_first_sentence_title_is_shortened_between_words():
    sentence = " ".join(["Exosomes carry proteins and lipids between skin cells"] * 4) + "."
    article = parse_text(sentence + " Second sentence.", name="long.txt")
    assert article.title.endswith("…")
    assert len(article.title) <= 91
    assert sentence.startswith(article.title[:-1])


def test_html_main_text_and_title_are_extracted_without_page_furniture():
    article = read_file(ARTICLES / "volcano.html")
    assert article.title == "How Shield Volcanoes Form"
    assert "Mauna Loa in Hawaii is the largest shield volcano on Earth." in article.text
    assert "Hot spots" in article.text
    for furniture in (
        "NAVIGATION_MENU_SHOP",
        "FOOTER_COPYRIGHT_NOTICE",
        "SCRIPT_SHOULD_NOT_APPEAR",
        "SCRIPT_AT_END_SHOULD_NOT_APPEAR",
        "NoStyleShouldAppear",
        "<p>",
    ):
        assert furniture not in article.text


def test_boilerplate_lines_are_dropped():
    article = read_file(ARTICLES / "green-tea.md")
    assert "Related topics" not in article.text
    assert "Featured image" not in article.text
    assert article.text.endswith("adding thirty seconds each round.")


def test_markdown_inline_markup_is_plain_text():
    article = parse_text(
        "# Title\n\nSome **bold** and *italic* words with a [link](https://x.org) and ![img](a.png) here.\n"
    )
    assert " ".join(article.text.split()) == "Some bold and italic words with a link and here."


# -- bytes and encodings ---------------------------------------------------------------------


def test_trailing_blank_lines_and_spaces_are_trimmed():
    article = parse_text("Title line\n\nFirst paragraph with words.   \n\n\n\n\n\nSecond paragraph.\n\n\n\n", "t.txt")
    assert article.text == "First paragraph with words.\n\nSecond paragraph."


def test_utf8_bom_is_not_part_of_the_text():
    article = parse_text(b"\xef\xbb\xbf# Hello World\n\nA text saved with a byte order mark.\n", "bom.md")
    assert article.title == "Hello World"
    assert "\ufeff" not in article.text and "\ufeff" not in article.title
    assert article.text == "A text saved with a byte order mark."


@pytest.mark.parametrize(
    "text",
    [
        "Notes from a café\n\nThe café on Main Street serves strong coffee and a decent crème brûlée. "
        "Locals say it is the best café in town.\n",
        "Un café au lait\n\nLe café de la place est très bon, même en été. On y sert une crème brûlée à côté du thé.\n",
    ],
    ids=["english", "french"],
)
def test_latin1_file_is_decoded_correctly(tmp_path, text):
    path = tmp_path / "latin1.txt"
    path.write_bytes(text.encode("latin-1"))
    article = read_file(path)
    title, _, body = text.partition("\n\n")
    assert article.title == title
    assert article.text == body.strip()


def test_utf16_with_bom_is_decoded(tmp_path):
    path = tmp_path / "wide.txt"
    path.write_bytes("Wide Text\n\nA file saved by a Windows editor as UTF-16, with café.\n".encode("utf-16"))
    article = read_file(path)
    assert article.title == "Wide Text"
    assert article.text == "A file saved by a Windows editor as UTF-16, with café."


# -- folders and skipped files ---------------------------------------------------------------


def test_bad_files_are_skipped_with_name_and_reason_and_good_ones_kept(tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(BAD, folder)
    shutil.copy(ARTICLES / "bicycle-chain.txt", folder / "bicycle-chain.txt")
    result = read_paths([folder])
    assert [a.id for a in result.articles] == ["bicycle-chain"]
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert set(reasons) == {"report.pdf", "empty.txt", "blank.md", "image.txt"}
    assert reasons["report.pdf"].startswith("damaged PDF document (")
    assert reasons["empty.txt"] == "empty file"
    assert reasons["blank.md"] == "empty file"
    assert "binary" in reasons["image.txt"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_file_is_skipped(tmp_path):
    good = tmp_path / "good.txt"
    shutil.copy(ARTICLES / "bicycle-chain.txt", good)
    locked = tmp_path / "locked.md"
    locked.write_text("# Locked\n\nYou cannot read this one.\n")
    locked.chmod(0)
    try:
        result = read_paths([tmp_path])
    finally:
        locked.chmod(0o644)
    assert [a.id for a in result.articles] == ["good"]
    assert [(Path(s.path).name, s.reason.split(" ")[0]) for s in result.skipped] == [("locked.md", "unreadable")]


def test_missing_path_is_reported():
    result = read_paths(["/no/such/folder"])
    assert result.articles == []
    assert result.skipped[0].reason == "no such file or folder"


def test_folder_of_only_bad_files_raises_no_articles_naming_the_problem():
    result = read_paths([BAD])
    with pytest.raises(NoArticles) as excinfo:
        require_articles(result, [BAD])
    message = str(excinfo.value)
    assert str(BAD) in message
    assert "report.pdf" in message and "empty file" in message
    assert ".md, .txt, .html, .pdf, .docx or .epub" in message


def test_folders_are_read_recursively_with_ids_from_relative_paths(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copy(ARTICLES / "notes" / "sourdough.md", tmp_path / "a" / "b" / "sourdough.md")
    shutil.copy(ARTICLES / "bicycle-chain.txt", tmp_path / "top.txt")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD.txt").write_text("Hidden folders are never articles at all.\n")
    result = read_paths([tmp_path])
    assert sorted(a.id for a in result.articles) == ["a/b/sourdough", "top"]


def test_ids_are_stable_across_reads_and_locations(tmp_path):
    first = {a.id: a.content_hash for a in read_paths([ARTICLES]).articles}
    copy = tmp_path / "elsewhere"
    shutil.copytree(ARTICLES, copy)
    second = {a.id: a.content_hash for a in read_paths([copy]).articles}
    assert first == second
    assert {"green-tea", "bicycle-chain", "notes/sourdough"} <= set(first)


def test_content_hash_follows_the_text(tmp_path):
    path = tmp_path / "note.md"
    path.write_text("# Note\n\nThe kettle should cool to seventy five degrees.\n")
    before = read_file(path)
    assert read_file(path).content_hash == before.content_hash
    path.write_text("# Note\n\nThe kettle should cool to eighty degrees.\n")
    after = read_file(path)
    assert after.id == before.id
    assert after.content_hash != before.content_hash


# -- the shipped corpus ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed():
    return {a.id[:3]: a for a in builtin_articles()}


def test_seed_corpus_has_four_articles(seed):
    assert sorted(seed) == ["000", "001", "002", "003"]
    for article in seed.values():
        assert article.source.startswith("builtin:")
        assert len(article.text) > 1000


def test_seed_article_with_front_matter(seed):
    article = seed["000"]
    assert article.title == "Exosomes: K-Beauty's Next-Gen Leap in Skin Regeneration"
    assert article.date == "2025-11-27"
    assert article.description.startswith("Forget glass skin")
    assert "title:" not in article.text


def test_seed_article_with_a_title_line(seed):
    article = seed["002"]
    assert article.title == "Exploring the Exosome Skincare Craze: What You Need to Know"
    assert not article.text.startswith("Exploring the Exosome Skincare Craze")


def test_seed_article_without_title_line_uses_its_first_sentence(seed):
    article = seed["001"]
    assert article.text.startswith("Move over, snail mucin and peptides")
    title = article.title.removesuffix("…")
    assert article.text.startswith(title)
    assert "001" not in article.title and "d0605b5d1b92440e" not in article.title


def test_seed_articles_have_no_page_furniture(seed):
    for article in seed.values():
        assert "Related topics" not in article.text
        assert "Featured image" not in article.text
        assert article.text == article.text.strip()
        assert "\n\n\n" not in article.text


def test_links_fifos_and_loops_are_named_with_their_reason_and_never_block(tmp_path, caplog):
    folder = tmp_path / "odd"
    folder.mkdir()
    shutil.copy(ARTICLES / "bicycle-chain.txt", folder / "good.txt")
    (folder / "dangling.md").symlink_to(tmp_path / "gone.md")
    (folder / "loop.md").symlink_to(folder / "loop.md")
    (folder / "linked.txt").symlink_to(folder / "good.txt")  # a link to a file is read
    (folder / "elsewhere").symlink_to(tmp_path)  # a link to a folder (here: a loop) is not followed
    os.mkfifo(folder / "pipe.txt")
    result = read_paths([folder])
    assert sorted(a.id for a in result.articles) == ["good", "linked"]
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert reasons == {
        "dangling.md": f"broken link (to {tmp_path / 'gone.md'})",
        "loop.md": "link loop",
        "elsewhere": "link to a folder (not followed)",
        "pipe.txt": "not a regular file (FIFO)",
    }
    # Named directly, a FIFO is refused before anything tries to read it (that would block).
    direct = read_paths([folder / "pipe.txt", folder / "loop.md"])
    assert [s.reason for s in direct.skipped] == ["not a regular file (FIFO)", "link loop"]


def test_invalid_front_matter_warning_names_the_file(tmp_path, caplog):
    path = tmp_path / "broken.md"
    path.write_text("---\ntitle: [unclosed\n---\n\nSloths move slowly through the canopy.\n")
    with caplog.at_level("WARNING", logger="articleqa"):
        article = read_file(path)
    assert "Sloths" in article.text
    assert any(str(path) in r.getMessage() and "not valid YAML" in r.getMessage() for r in caplog.records)


def test_deeply_nested_html_falls_back_to_its_visible_text(tmp_path):
    body = "<div>" * 400 + "<p>Otters hold hands while they sleep so they do not drift apart.</p>" + "</div>" * 400
    path = tmp_path / "deep.html"
    path.write_text(f"<html><head><title>Otters</title><style>p{{}}</style></head><body>{body}</body></html>")
    article = read_file(path)
    assert article.title == "Otters"
    assert "hold hands while they sleep" in article.text and "p{}" not in article.text
    empty = tmp_path / "empty.html"
    empty.write_text("<html><body>" + "<div>" * 300 + "</div>" * 300 + "</body></html>")
    with pytest.raises(SkipFile, match="no text in the HTML page"):
        read_file(empty)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_read_not_called_binary(tmp_path, codec):
    path = tmp_path / "notes.txt"
    path.write_bytes("Crème brûlée\n\nCaramelize the sugar with a torch until it is amber.\n".encode(codec))
    article = read_file(path)
    assert article.title == "Crème brûlée" and "amber" in article.text


def test_markup_the_standard_parser_gives_up_on_is_still_read_or_refused(tmp_path):
    # Found by the fuzzer: "<![" with no name makes html.parser raise AssertionError.
    path = tmp_path / "odd.html"
    path.write_bytes(b"&\n\xff\xff<v:<![\xff<v: Otters hold hands when they sleep so they do not drift.")
    article = read_file(path)
    assert "Otters hold hands" in article.text


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (
            b"%PDF-1.3\n1 0 obj << /Title (Exosomes) >> endobj\nBT (Exosomes are vesicles) Tj ET\n%%EOF\n",
            "PDF document",
        ),
        (b"\xef\xbb\xbf  %PDF-1.7\n" + b"plain looking text " * 50, "PDF document"),
        (b"PK\x03\x04" + b"\x00" * 26 + b"word/document.xml" + b"x" * 100, "Word document (.docx)"),
        (b"PK\x03\x04" + b"\x00" * 26 + b"mimetypeapplication/epub+zip", "EPUB e-book"),
        (b"{\\rtf1\\ansi Otters hold hands.}", "RTF document"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "PNG image"),
    ],
    ids=["pdf", "pdf-after-bom", "docx", "epub", "rtf", "png"],
)
def test_format_is_decided_by_content_not_by_the_name(tmp_path, data, kind):
    # A PDF renamed to .txt was once indexed as passages of "%PDF-1.3" and cited as a source. Now
    # it is read as the document it is (these are broken ones); other formats are named and refused.
    path = tmp_path / "renamed.txt"
    path.write_bytes(data)
    if kind in documents.KINDS:
        expected = f"damaged {re.escape(kind)} \\("
    else:
        expected = f"a {re.escape(kind)}, not an article \\(named .txt\\)"
    with pytest.raises(SkipFile, match=expected):
        read_file(path)


def test_text_that_starts_like_a_magic_number_is_still_text(tmp_path):
    path = tmp_path / "mz.txt"
    path.write_text("MZ stands for Mark Zbikowski, who designed the format. Otters hold hands.")
    assert "Zbikowski" in read_file(path).text
