"""PDF, DOCX and EPUB articles: read as people would read them, and answerable.

The fixtures are written by tests/data/documents/make_fixtures.py: a two-column paper with a
running header and page numbers, a report with a running footer and metadata, a scan without a
text layer, a Word document with headings and an e-book."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from articleqa import Library, Settings
from articleqa.ingest.files import SkipFile, parse, read_paths
from conftest import DATA

DOCS = DATA / "documents"


def read(name: str, *, as_name: str | None = None):
    return parse((DOCS / name).read_bytes(), name=as_name or name, article_id=Path(name).stem, source=name)


# -- PDF ---------------------------------------------------------------------------------------


def test_a_two_column_paper_reads_in_order_without_its_page_furniture():
    paper = read("paper.pdf")
    assert paper.title == "Plant-Derived Exosomes After Fractional Laser: A Split-Face Trial"
    assert paper.author == "Ingrid Lindqvist, Tomas Berglund and Aiko Moriyama"
    assert paper.date == "2025-03-02"
    text = paper.text
    # The running header, the volume line and the page numbers (141, 142) are gone.
    for furniture in ("Journal of Applied Cosmetic Science", "Vol. 12", "141", "142"):
        assert furniture not in text
    # Column by column, page by page: the sections come in the order they were written.
    order = [text.index(s) for s in ("## Abstract", "## 1. Introduction", "## 2. Methods", "## 3. Results",
                                     "## 4. Discussion", "## 5. Limitations")]  # fmt: skip
    assert order == sorted(order)
    # Words hyphenated at line ends are whole again; a real compound keeps its hyphen.
    assert "volunteers" in text and "volun-" not in text
    assert "split-face" in text.lower()
    # A sentence that runs from column to column and page to page stays one sentence.
    assert "afterwards most could no longer tell the two sides apart." in text


def test_every_passage_of_a_pdf_knows_its_page():
    paper = read("paper.pdf")
    assert len(paper.pages) == 2 and paper.pages[0] == 0
    assert paper.text[paper.pages[1] :].startswith("tell the two sides apart")
    assert paper.page_at(paper.text.index("Uppsala")) == 1
    assert paper.page_at(paper.text.index("Nordic Skin Foundation")) == 2


def test_a_report_takes_title_author_and_date_from_its_metadata_and_drops_its_footer():
    report = read("report.pdf")
    assert (report.title, report.author, report.date) == (
        "Storage Stability of Cosmetic Exosome Serums",
        "Helena Marsh",
        "2025-04-17",
    )
    assert "Marsh Laboratory" not in report.text and "Page 1 of 2" not in report.text
    assert report.text.startswith("## Summary")
    assert report.page_at(report.text.index("ninety-two percent")) == 2


def test_a_web_page_printed_to_pdf_keeps_its_address_and_loses_the_browser_margins():
    page = read("webpage.pdf")
    assert page.title == "Why Your Exosome Serum Stings"
    assert page.url == "https://skin-notes.example/exosome-serum-sting"
    assert page.link == page.url  # citations link to the page, not to the file
    assert page.date == "2025-05-03"
    assert page.text.startswith("A stinging feeling in the first minute")
    assert "10:14 AM" not in page.text and "1/1" not in page.text and "https://" not in page.text
    assert "\n## When to stop\n" in page.text


def test_pdf_text_comes_out_whole_and_in_order():
    # The truth is the text the fixtures were written from (make_fixtures.py).
    truth = json.loads((DOCS / "truth.json").read_text())
    for name, expected in truth.items():
        article = read(name)
        got = re.findall(r"\w+", f"{article.title} {article.text}".lower())
        assert got == re.findall(r"\w+", expected.lower()), name


def test_a_scanned_pdf_is_skipped_with_the_reason():
    with pytest.raises(SkipFile, match=r"no text layer \(scanned\?\)"):
        read("scanned.pdf")


def test_the_content_decides_the_format_not_the_name():
    assert read("paper.pdf", as_name="paper.txt").pages == read("paper.pdf").pages
    with pytest.raises(SkipFile, match="not a PDF document"):
        parse(b"Just some words, not a PDF at all.", name="fake.pdf", article_id="fake", source="fake.pdf")
    assert read("protocol.docx", as_name="protocol.md").title == "Clinic Protocol for Exosome Facials"
    with pytest.raises(SkipFile, match="PNG image, not an article"):
        parse(b"\x89PNG\r\n\x1a\n" + bytes(64), name="photo.txt", article_id="photo", source="photo.txt")


def test_a_damaged_pdf_is_skipped_with_the_reason(tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes((DOCS / "paper.pdf").read_bytes()[:700])
    (tmp_path / "fine.md").write_text("# Fine\n\nA fine article about exosomes.\n")
    got = read_paths([tmp_path])
    assert [a.id for a in got.articles] == ["fine"]
    assert [(Path(s.path).name, s.reason.split(" (")[0]) for s in got.skipped] == [
        ("broken.pdf", "damaged PDF document")
    ]


# -- DOCX and EPUB -----------------------------------------------------------------------------


def test_a_word_document_keeps_its_headings_and_lists():
    doc = read("protocol.docx")
    assert (doc.title, doc.author, doc.date) == ("Clinic Protocol for Exosome Facials", "Marta Oliveira", "2025-02-03")
    lines = doc.text.split("\n")
    assert "## Before the treatment" in lines and "### Skin preparation" in lines
    assert "• Bring the signed consent form" in lines
    assert doc.pages == ()


def test_an_epub_reads_its_chapters_in_order_with_their_headings():
    book = read("handbook.epub")
    assert (book.title, book.author, book.date) == (
        "A Short Handbook of Skin Messengers",
        "Rosalind Achebe",
        "2019-06-01",
    )
    text = book.text
    assert text.index("## Chapter 1: Messengers Between Cells") < text.index("### Vesicles as letters")
    assert text.index("### Vesicles as letters") < text.index("## Chapter 2: Messengers in a Bottle")
    assert "Contents" not in text.split("\n")[0]  # the navigation page is not a chapter


# -- answerable --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def documents_library(tmp_path_factory, real_embedder):
    root = tmp_path_factory.mktemp("documents")
    for name in ("paper.pdf", "report.pdf", "protocol.docx", "handbook.epub", "scanned.pdf"):
        shutil.copy(DOCS / name, root / name)
    (root / "plain.md").write_text("# Exosome basics\n\nExosomes are small vesicles that cells release.\n")
    lib = Library.at(tmp_path_factory.mktemp("index") / "idx", Settings(), embedder=real_embedder)
    lib.sync([root])
    return lib


@pytest.mark.parametrize(
    ("question", "source", "words", "page"),
    [
        ("Which filtration method purified the plant vesicles?", "paper.pdf", "tangential flow filtration", 1),
        ("Who funded the split-face laser trial?", "paper.pdf", "Nordic Skin Foundation", 2),
        ("How stable are freeze-dried exosome powders at room temperature?", "report.pdf", "ninety-two", 2),
        ("How long must retinoids be paused before microneedling with exosomes?", "protocol.docx", "five days", None),
        ("What does the handbook compare exosomes to?", "handbook.epub", "sealed letters", None),
    ],
)
def test_a_question_answered_only_by_a_document_cites_it(documents_library, question, source, words, page):
    answer = documents_library.ask(question)
    assert answer.found, answer.reason
    top = answer.hits[0]
    assert Path(top.article.source).name == source
    assert words in top.text
    if page is None:
        assert top.pages is None and top.page_label == ""
        assert top.chunk.headings  # the document's headings are the passage's heading path
    else:  # the citation names the page the words are on
        first, last = top.pages
        assert first <= page <= last
        assert top.page_label == (f"p. {page}" if first == last else f"pp. {first}–{last}")


def test_the_scan_is_listed_as_skipped(documents_library):
    skipped = {Path(s.path).name: s.reason for s in documents_library.skipped}
    assert "no text layer" in skipped["scanned.pdf"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Who wrote the report on the storage stability of exosome serums?", "was written by Helena Marsh."),
        ("When was the split-face laser trial paper published?", "was published on 2 March 2025."),
        ("Who is the author of the handbook of skin messengers?", "was written by Rosalind Achebe."),
        ("When was the clinic protocol for exosome facials written?", "was published on 3 February 2025."),
    ],
)
def test_who_wrote_it_and_when_are_answered_from_what_the_document_says(documents_library, question, expected):
    answer = documents_library.ask(question)
    assert answer.found and answer.text.endswith(expected), (answer.text, answer.reason)
    assert answer.hits[0].chunk.ordinal == 0


def test_an_article_that_names_no_author_says_so(documents_library):
    answer = documents_library.ask("Who wrote the article on exosome basics?")
    assert not answer.found
    assert answer.reason == "“Exosome basics” does not say who wrote it."


def test_the_document_size_limit_is_settable_and_named(tmp_path, fake_settings, fake_embedder):
    shutil.copy(DOCS / "paper.pdf", tmp_path / "paper.pdf")
    (tmp_path / "note.md").write_text("# Note\n\nA short note about exosomes.\n")
    small = Settings(model=fake_settings.model, max_file_mb=0.002)  # 2 KB: the 4 KB paper is too large
    lib = Library.at(tmp_path / "idx", small, embedder=fake_embedder)
    lib.sync([tmp_path])
    reasons = {Path(s.path).name: s.reason for s in lib.skipped}
    assert reasons["paper.pdf"].startswith("too large (5.8 KiB; the limit is 2.0 KiB (Settings.max_file_mb")
    assert [a.id for a in lib.articles()] == ["note"]


def _bomb(name: str, part: str, size: int) -> bytes:
    """`name` from the fixtures with `part` swapped for `size` bytes of markup that packs to little."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(DOCS / name) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == part:
                data = data[:200] + b" " * size
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED if info.filename == part else None)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "part"), [("protocol.docx", "word/document.xml"), ("handbook.epub", "EPUB/chapter1.xhtml")]
)
def test_a_document_that_would_expand_past_the_limit_is_refused_before_it_is_read(name, part):
    raw = _bomb(name, part, 64 * 2**20)
    assert len(raw) < 2**20  # 64 MiB of markup packs into well under a megabyte
    with pytest.raises(SkipFile, match=rf"refused: .*part {re.escape(part)} would expand to 64 MiB"):
        parse(raw, name=name, article_id="bomb", source=name)
