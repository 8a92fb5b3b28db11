"""Documents that are not plain text -> text with what they say about themselves: PDF (text in
reading order, with the offset where every page starts), Word (.docx) and EPUB (as Markdown,
headings kept)."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from html.parser import HTMLParser

from articleqa.errors import UnusableFile
from articleqa.runtime.stopping import checkpoint
from articleqa.text.sentences import normalize

PDF, DOCX, EPUB = "PDF document", "Word document (.docx)", "EPUB e-book"
KINDS = (PDF, DOCX, EPUB)
SUFFIXES = {".pdf": PDF, ".docx": DOCX, ".epub": EPUB}

# Who hears of each page read (ingest/isolated.py passes it on as progress).
_pages: ContextVar[Callable[[int, int], None] | None] = ContextVar("articleqa_pages", default=None)

# Metadata that says nothing: what PDF writers put when no one filled the field in.
_EMPTY_META = {"", "anonymous", "unknown", "untitled", "user", "admin", "administrator", "author", "none"}


@dataclass(frozen=True)
class Document:
    """What a reader got from a document. `markdown` tells whether `text` still needs the Markdown
    clean-up every article gets; a PDF's text is final, since `pages` point into it."""

    text: str
    title: str | None = None
    author: str | None = None
    date: str | None = None
    pages: tuple[int, ...] = ()
    markdown: bool = True
    url: str | None = None


@contextmanager
def reporting_pages(report: Callable[[int, int], None]) -> Iterator[None]:
    """Within this block, readers call `report(page, pages)` as they go."""
    token = _pages.set(report)
    try:
        yield
    finally:
        _pages.reset(token)


def read_document(raw: bytes, kind: str) -> Document:
    """Bytes of a PDF, DOCX or EPUB file -> Document; UnusableFile says why one cannot be read."""
    reader = {PDF: read_pdf, DOCX: read_docx, EPUB: read_epub}[kind]
    try:
        if kind in (DOCX, EPUB):
            check_zip(raw, kind)
        return reader(raw)
    except UnusableFile:
        raise
    except Exception as exc:  # a damaged file makes parsers fail in many ways: the reason is what counts
        detail = re.sub(r"^Failed to load document \(PDFium: (.*)\)\.?$", r"\1", str(exc))[:160]
        raise UnusableFile(f"damaged {kind} ({detail or type(exc).__name__})") from exc


# What a DOCX or EPUB may expand to: its markup parts one by one (a parsed tree takes several
# times its text in memory), and all its parts together.
ZIP_PART_BYTES = 32 * 2**20
ZIP_TOTAL_BYTES = 200 * 2**20


def check_zip(raw: bytes, kind: str) -> None:
    """Refuse a zip-based document whose parts would expand past the limits, by the sizes its
    directory declares (Python's zip reader never inflates a part beyond its declared size), before
    anything is inflated: a 3.6 MB DOCX can hold a 1 GiB document.xml."""
    import io
    import zipfile

    try:
        parts = zipfile.ZipFile(io.BytesIO(raw)).infolist()
    except Exception as exc:  # noqa: BLE001 - a damaged directory fails in many ways (a zip "version 9.7": NotImplementedError)
        raise UnusableFile(f"damaged {kind} (not a readable zip archive: {exc or type(exc).__name__})") from exc
    total = 0
    for part in parts:
        total += part.file_size
        markup = part.filename.lower().endswith((".xml", ".rels", ".xhtml", ".html", ".htm", ".opf", ".ncx"))
        if markup and part.file_size > ZIP_PART_BYTES:
            raise UnusableFile(
                f"refused: {kind} part {part.filename} would expand to {part.file_size / 2**20:.0f} MiB "
                f"({part.compress_size / 2**20:.1f} MiB packed; the limit is {ZIP_PART_BYTES // 2**20} MiB)"
            )
    if total > ZIP_TOTAL_BYTES:
        raise UnusableFile(
            f"refused: {kind} would expand to {total / 2**20:.0f} MiB ({len(raw) / 2**20:.1f} MiB packed; "
            f"the limit is {ZIP_TOTAL_BYTES // 2**20} MiB)"
        )


# -- PDF -------------------------------------------------------------------------------------


@dataclass
class _Line:
    text: str
    x0: float
    y0: float  # bottom
    x1: float
    y1: float  # top
    size: float
    bold: bool
    page: int


def read_pdf(raw: bytes) -> Document:
    """Text PDFs: lines in the order the page draws them (columns one after the other), running
    headers and footers and page numbers dropped, hyphenated line ends joined, paragraphs and
    larger-type headings found from the layout."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise UnusableFile("the PDF is password-protected: save a copy without the password") from exc
        raise
    try:
        meta = pdf.get_metadata_dict()
        pages, heights = [], []
        report = _pages.get()
        for number in range(len(pdf)):
            checkpoint()
            if report is not None and number % 10 == 0:
                report(number + 1, len(pdf))
            page = pdf[number]
            heights.append(page.get_height())
            pages.append(_pdf_lines(page, number))
    finally:
        pdf.close()
    if not any(pages):
        raise UnusableFile("no text layer (scanned?): run it through OCR first (e.g. ocrmypdf)")
    size = statistics.median(
        line.size for lines in pages for line in lines for _ in range(max(1, len(line.text) // 20))
    )
    title, author = _pdf_title(meta, pages[0], size)
    body, url = _drop_furniture(pages, heights, title)
    if not body:
        raise UnusableFile("no text besides page headers and footers")
    text, starts = _pdf_paragraphs(body, size, title)
    if not re.search(r"[^\W\d_]{2}", text):
        raise UnusableFile("no text layer (scanned?): run it through OCR first (e.g. ocrmypdf)")
    return Document(
        text=text,
        title=title,
        author=_meta_value(meta.get("Author")) or author,
        date=_pdf_date(meta.get("CreationDate") or ""),
        pages=tuple(starts),
        markdown=False,
        url=url,
    )


def _pdf_lines(page, number: int) -> list[_Line]:
    """The page's text lines in drawing order; pieces of one line (pdfium's rectangles) merged."""
    import pypdfium2.raw as c

    text_page = page.get_textpage()
    lines: list[_Line] = []
    try:
        for i in range(text_page.count_rects()):
            x0, y0, x1, y1 = text_page.get_rect(i)
            text = text_page.get_text_bounded(x0, y0, x1, y1)
            if not text.strip():
                continue
            at = c.FPDFText_GetCharIndexAtPos(text_page.raw, x0 + 0.5, (y0 + y1) / 2, 2.0, 2.0)
            size = c.FPDFText_GetFontSize(text_page.raw, at) if at >= 0 else y1 - y0
            bold = at >= 0 and (c.FPDFText_GetFontWeight(text_page.raw, at) >= 600 or _bold_font(text_page, at))
            last = lines[-1] if lines else None
            if last is not None and abs(last.y0 - y0) < 0.5 * size and 0 <= x0 - last.x1 < 3 * size:
                last.text = f"{last.text.rstrip()} {text.lstrip()}"
                last.x1, last.y1 = x1, max(last.y1, y1)
                continue
            lines.append(_Line(text, x0, y0, x1, y1, size or (y1 - y0), bold, number))
    finally:
        text_page.close()
    return lines


def _bold_font(text_page, index: int) -> bool:
    import ctypes

    import pypdfium2.raw as c

    buffer = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()
    n = c.FPDFText_GetFontInfo(text_page.raw, index, buffer, 128, ctypes.byref(flags))
    return n > 0 and bool(re.search(rb"bold|black|heavy|semibold", buffer.raw[:n], re.IGNORECASE))


_PAGE_NUMBER = re.compile(r"((page|p\.|seite|pagina)\s*)?[ivxlc#]+(\s*(of|/|von|de)\s*#)?|[-–—]\s*#\s*[-–—]", re.I)


def _drop_furniture(
    pages: list[list[_Line]], heights: list[float], title: str | None
) -> tuple[list[_Line], str | None]:
    """Body lines of all pages, and the address a browser printed in the margin (if any). Page
    furniture is not text: lines in the top or bottom margin that recur on many pages (digits
    aside), page numbers, and what a browser prints there (the page's address, the date and title)."""

    def key(line: _Line) -> str:
        return re.sub(r"\d+", "#", line.text.strip().lower())

    def in_margin(line: _Line, height: float) -> bool:
        return line.y0 > 0.88 * height or line.y1 < 0.1 * height

    recurring = Counter()
    for lines, height in zip(pages, heights, strict=True):
        recurring.update({key(line) for line in lines if in_margin(line, height)})
    often = max(2, (len(pages) + 1) // 2)
    titled = re.sub(r"\W+", " ", (title or "").lower()).strip()
    body, url = [], None
    for lines, height in zip(pages, heights, strict=True):
        for line in lines:
            if in_margin(line, height):
                text = line.text.strip()
                address = re.fullmatch(r"https?://\S+", text)
                if address and url is None:
                    url = text
                if (
                    address
                    or recurring[key(line)] >= often
                    or _PAGE_NUMBER.fullmatch(key(line))
                    or (titled and titled in re.sub(r"\W+", " ", text.lower()) and len(text) < len(titled) + 40)
                ):
                    continue
            body.append(line)
    return body, url


def _pdf_title(meta: dict, first_page: list[_Line], size: float) -> tuple[str | None, str | None]:
    """The title from the metadata, else the largest type on page 1 (and the byline under it)."""
    title = _meta_value(meta.get("Title"))
    if title and re.search(r"\.(docx?|pdf|tex|indd)$|^microsoft word", title, re.I):
        title = None  # a file name the writing program put there, not a title
    big = [line for line in first_page if line.size >= 1.2 * size]
    if not big:
        return title, None
    top = max(line.size for line in big)
    heading = [line for line in big if line.size >= top - 0.5]
    found = " ".join(line.text.strip() for line in heading)
    after = first_page.index(heading[-1]) + 1
    author = None
    if after < len(first_page):
        nxt = first_page[after].text.strip()
        names = re.split(r",\s*|\s+and\s+|\s*&\s*", nxt)
        if (
            0 < len(nxt) <= 150
            and not re.search(r"[.:;!?]$", nxt)
            and all(re.fullmatch(r"([A-Z][\w'’.-]*\s*){2,4}", n.strip()) for n in names if n.strip())
        ):
            author = nxt
    return title or found, author


def _pdf_paragraphs(body: list[_Line], size: float, title: str | None) -> tuple[str, list[int]]:
    """Lines -> paragraphs and '##' headings; the offset where each page's text begins (inside a
    paragraph when one runs on to the next page)."""
    widths = sorted(line.x1 - line.x0 for line in body if abs(line.size - size) < 0.5)
    full = widths[int(0.75 * (len(widths) - 1))] if widths else 0
    vocabulary = Counter(w.lower() for line in body for w in re.findall(r"[^\W\d_]+(?:-[^\W\d_]+)*", line.text))
    blocks: list[tuple[str, bool, list[tuple[int, int]]]] = []  # text, heading, (page, offset in text)
    text, heading, turns, prev, soft = "", False, [], None, False
    for line in body:
        raw = line.text.strip()
        piece = normalize(raw.replace("\x02", ""))
        if not piece:
            continue
        is_heading = (line.size >= 1.12 * size or (line.bold and len(piece) < 90)) and len(piece) < 200
        new = prev is None or is_heading != heading
        if not new and is_heading:
            new = abs(line.size - prev.size) > 0.5  # a title, then a section heading
        elif not new:
            below = line.y1 <= prev.y0 + 0.2 * size and line.page == prev.page and line.x0 < prev.x1
            gap = prev.y0 - line.y1 if below else 0.0
            ended = re.search(r"[.!?:\"”)]$", prev.text.strip()) is not None
            new = gap > 0.7 * size or (ended and full and prev.x1 - prev.x0 < 0.8 * full)
            new = new or (below and line.x0 > prev.x0 + 1.5 * size and ended)
        if new and text:
            blocks.append((text, heading, turns))
            text, turns = "", []
        if not text:
            heading, text = is_heading, piece
            turns.append((line.page, 0))
        else:
            joined = text + piece if soft else _join(text, piece, vocabulary)
            if line.page != prev.page:
                turns.append((line.page, len(joined) - len(piece)))
            text = joined
        prev, soft = line, raw.endswith("\x02")
    if text:
        blocks.append((text, heading, turns))
    title_key = re.sub(r"\W+", "", (title or "").lower())
    out, starts, offset = [], [], 0
    for content, is_heading, block_turns in blocks:
        if is_heading and re.sub(r"\W+", "", content.lower()) == title_key:
            continue  # the title is the article's title, not a passage
        piece = f"## {content}" if is_heading else content
        for page, at in block_turns:
            while len(starts) <= page:
                starts.append(offset + (at + 3 if is_heading and at else at))
        out.append(piece)
        offset += len(piece) + 2
    return "\n\n".join(out), starts


def _join(text: str, piece: str, vocabulary: Counter) -> str:
    """Two lines of one paragraph: a word hyphenated at the line end is joined again."""
    match = re.search(r"([^\W\d_]+)-$", text)
    if match and piece[:1].islower():
        head, tail = match.group(1), re.match(r"[^\W\d_]*", piece).group(0)
        # "exo-|somes" -> "exosomes"; "split-|face" stays hyphenated when the text writes it so.
        if vocabulary[(head + "-" + tail).lower()] == 0:
            return text[:-1] + piece
        return text + piece
    return f"{text} {piece}"


def _pdf_date(value: str) -> str | None:
    match = re.match(r"D:(\d{4})(\d{2})?(\d{2})?", value.strip())
    if not match or match.group(1) in ("0000", "1970", "2000") and not match.group(2):
        return None
    year, month, day = match.group(1), match.group(2) or "01", match.group(3) or "01"
    if (year, month, day) == ("2000", "01", "01"):  # a reproducible-build placeholder, not a date
        return None
    return f"{year}-{month}-{day}"


def _meta_value(value) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.replace("\x00", "").split())
    return value if value.lower() not in _EMPTY_META else None


# -- DOCX ------------------------------------------------------------------------------------


def read_docx(raw: bytes) -> Document:
    """Word documents: paragraphs in order, heading styles as '#' headings, lists and tables
    kept as lines."""
    import io

    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(raw))
    out: list[str] = []
    title = None
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                if any(cells):
                    out.append(" | ".join(dict.fromkeys(cells)))  # merged cells repeat
            continue
        text = " ".join(block.text.split())
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        level = re.fullmatch(r"Heading (\d)", style)
        if style == "Title" and title is None:
            title = text
        elif level:
            out.append("#" * min(6, int(level.group(1)) + 1) + " " + text)
        elif style.startswith("List"):
            out.append("• " + text)
        else:
            out.append(text)
    props = document.core_properties
    created = props.created
    return Document(
        text="\n\n".join(out),
        title=title or _meta_value(props.title),
        author=_meta_value(props.author),
        date=created.date().isoformat() if created is not None and created.year > 1980 else None,
    )


# -- EPUB ------------------------------------------------------------------------------------


def read_epub(raw: bytes) -> Document:
    """E-books: the chapters in reading order (the spine), their headings kept."""
    import io

    import ebooklib
    from ebooklib import epub

    book = epub.read_epub(io.BytesIO(raw), options={"ignore_ncx": True})
    parts = []
    for idref, _ in book.spine:
        item = book.get_item_with_id(idref)
        checkpoint()
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT or isinstance(item, epub.EpubNav):
            continue
        # A chapter's <h1> is a section of the book (the book's title is the article's title).
        markdown = chapter_to_markdown(item.get_content().decode("utf-8", errors="replace"), shift=1)
        if markdown.strip():
            parts.append(markdown)

    def first(name: str) -> str | None:
        values = book.get_metadata("DC", name)
        return _meta_value(values[0][0]) if values else None

    date = first("date")
    return Document(
        text="\n\n".join(parts),
        title=first("title"),
        author=", ".join(v for v, _ in book.get_metadata("DC", "creator") if _meta_value(v)) or None,
        date=date[:10] if date and re.match(r"\d{4}", date) else None,
    )


class _Markdown(HTMLParser):
    """Well-formed document HTML (an e-book chapter) -> Markdown: headings, paragraphs, items."""

    BLOCKS = {"p", "div", "li", "tr", "blockquote", "pre", "br", "dd", "dt", "section", "article"}
    SKIP = {"script", "style", "head", "nav", "title"}

    def __init__(self, shift: int = 0) -> None:
        super().__init__(convert_charrefs=True)
        self.shift = shift
        self.out: list[str] = []
        self.line: list[str] = []
        self.prefix = ""
        self.skipping = 0

    def flush(self) -> None:
        text = " ".join("".join(self.line).split())
        if text:
            self.out.append(self.prefix + text)
        self.line, self.prefix = [], ""

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.flush()
            self.prefix = "#" * min(6, int(tag[1]) + self.shift) + " "
        elif tag in self.BLOCKS:
            self.flush()
            if tag == "li":
                self.prefix = "• "

    def handle_endtag(self, tag) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif re.fullmatch(r"h[1-6]", tag) or tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data) -> None:
        if not self.skipping:
            self.line.append(data)


def chapter_to_markdown(html: str, *, shift: int = 0) -> str:
    """Markdown of clean HTML; `shift` demotes every heading by that many levels."""
    parser = _Markdown(shift)
    parser.feed(html)
    parser.close()
    parser.flush()
    return "\n\n".join(parser.out)
