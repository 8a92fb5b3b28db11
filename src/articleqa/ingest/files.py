"""Files and folders -> Article: Markdown (with or without front matter), plain text, HTML, and
the documents of documents.py (PDF, DOCX, EPUB). The content decides the format, not the name."""

from __future__ import annotations

import datetime as _dt
import errno
import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Protocol

from articleqa.errors import ArticleQAError, NoArticles, UnusableFile
from articleqa.ingest import documents
from articleqa.schema import Article, valid_text
from articleqa.settings import Limits, Settings
from articleqa.text.sentences import HEADING, normalize, sentence_spans

log = logging.getLogger("articleqa")

MARKDOWN = (".md", ".markdown", ".mdown")
TEXT = (".txt", ".text")
HTML = (".html", ".htm", ".xhtml")
SUPPORTED = MARKDOWN + TEXT + HTML + tuple(documents.SUFFIXES)
FORMATS = ".md, .txt, .html, .pdf, .docx or .epub"
MAX_BYTES = Limits().text_bytes
# Documents carry pictures and fonts besides their text: a 30 MB PDF paper is ordinary.
MAX_DOCUMENT_BYTES = Settings().max_document_bytes

# Lines that are page furniture, not article text (only matched on short lines).
_BOILERPLATE = re.compile(
    r"^\W*(related (topics|articles|posts|stories|reading)|featured image|image (credit|source)"
    r"|photo( credit)?s?\s*:|share (this|on)\b|advertisement|subscribe\b|sign up (for|to)\b"
    r"|read more\b|follow us\b|click here\b|all rights reserved|copyright\b|©|tags\s*:"
    r"|you may also like|recommended for you)",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*[*+\-•·]\s+")
_NUMBERED = re.compile(r"^\s*(\d{1,3})[.)]\s+")


@dataclass(frozen=True)
class Skipped:
    """A file that was not ingested, and why."""

    path: str
    reason: str


@dataclass
class Ingested:
    """What reading some paths produced: the articles and the files skipped."""

    articles: list[Article] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class SkipFile(UnusableFile):
    """Raised inside ingestion for a file that cannot become an article."""


class FileReader(Protocol):
    """Reads one file elsewhere, within bounds (isolated.Workers: in a worker process)."""

    def read_file(
        self, path: Path, *, article_id: str, max_document_bytes: int | None, report: Callable[[str], None] | None
    ) -> Article: ...


def read_paths(
    paths: list[str | Path] | tuple[str | Path, ...],
    *,
    max_document_bytes: int | None = None,
    workers: FileReader | None = None,
    report: Callable[[str], None] | None = None,
) -> Ingested:
    """Read files and folders (recursively). Every path given or found is either read or listed
    among the skipped with its reason: unusable files, broken links and link loops, FIFOs and
    other special files, unreadable folders. With `workers`, each file is read in a worker
    process within its time and memory budget (isolated.py); `report` hears what is being read."""
    out = Ingested()
    seen: set[str] = set()
    for root in map(Path, paths):
        problem = _not_readable(root)
        if problem:
            out.skipped.append(Skipped(valid_text(str(root)), problem))
            continue
        files = _walk(root, out.skipped) if root.is_dir() else [root]
        for path in files:
            base = path.relative_to(root).with_suffix("") if root.is_dir() else Path(path.stem)
            article_id = _unique(_slug(base.as_posix()), seen)
            try:
                if workers is None:
                    article = read_file(path, article_id=article_id, max_document_bytes=max_document_bytes)
                else:
                    shown = valid_text(path.name)
                    if report is not None:
                        report(f"reading {shown}")
                    tell = None if report is None else (lambda what, shown=shown: report(f"{shown}: {what}"))
                    article = workers.read_file(
                        path, article_id=article_id, max_document_bytes=max_document_bytes, report=tell
                    )
                out.articles.append(article)
                seen.add(article_id)
            except UnusableFile as exc:
                out.skipped.append(Skipped(valid_text(str(path)), str(exc)))
            except RecursionError:
                out.skipped.append(Skipped(valid_text(str(path)), "nested too deeply to read"))
            except (ArticleQAError, KeyboardInterrupt, SystemExit, MemoryError):
                raise  # a stop, or a problem of the library rather than of this file
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not end the build
                log.debug("reading %s failed", path, exc_info=True)
                out.skipped.append(Skipped(valid_text(str(path)), f"could not be read ({type(exc).__name__}: {exc})"))
    for s in out.skipped:
        log.warning("skipped %s: %s", s.path, s.reason)
    return out


def _not_readable(path: Path) -> str | None:
    """Why `path` cannot be read as an article file or folder, or None."""
    try:
        info = path.stat()  # follows links
    except FileNotFoundError:
        if path.is_symlink():
            return f"broken link (to {valid_text(os.readlink(path))})"
        return "no such file or folder"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "link loop"
        return f"unreadable ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
        return None
    kind = "FIFO" if stat.S_ISFIFO(info.st_mode) else "socket" if stat.S_ISSOCK(info.st_mode) else "device"
    return f"not a regular file ({kind})"


def _walk(root: Path, skipped: list[Skipped]) -> list[Path]:
    """The files under `root`, sorted; hidden entries (.git, .DS_Store) are never articles. Linked
    files are read, linked folders are not followed (a loop could never end)."""
    found: list[Path] = []

    def unreadable(exc: OSError) -> None:
        skipped.append(Skipped(valid_text(str(exc.filename)), f"unreadable folder ({exc.strerror or exc})"))

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in [*files, *dirs]:
            path = Path(folder) / name
            if name.startswith("."):
                continue
            if name in dirs:
                if path.is_symlink():
                    skipped.append(Skipped(valid_text(str(path)), "link to a folder (not followed)"))
                continue
            problem = _not_readable(path)
            if problem is None and path.is_dir():  # a link to a folder that os.walk lists as a file
                problem = "link to a folder (not followed)"
            if problem:
                skipped.append(Skipped(valid_text(str(path)), problem))
            else:
                found.append(path)
    return sorted(found)


def require_articles(ingested: Ingested, paths) -> list[Article]:
    if not ingested.articles:
        names = ", ".join(str(p) for p in paths) or "(no paths)"
        detail = "; ".join(f"{s.path}: {s.reason}" for s in ingested.skipped[:5])
        raise NoArticles(
            f"no usable articles in {names}"
            + (f" ({detail})" if detail else "")
            + f". Give {FORMATS} files with some text."
        )
    return ingested.articles


def read_file(path: str | Path, *, article_id: str | None = None, max_document_bytes: int | None = None) -> Article:
    """Read one file into an Article, or raise SkipFile saying why not. Text files may be Limits.text_mb,
    documents (PDF, DOCX, EPUB) `max_document_bytes` (Settings.max_file_mb unless told)."""
    path = Path(path)
    if path.suffix.lower() not in SUPPORTED:
        raise SkipFile(f"unsupported file type '{path.suffix or '(none)'}' (use {FORMATS})")
    try:
        size = path.stat().st_size
        document = path.suffix.lower() in documents.SUFFIXES
        limit = (max_document_bytes or MAX_DOCUMENT_BYTES) if document else MAX_BYTES
        if size > limit:
            hint = " (Settings.max_file_mb, --max-file-mb)" if document else ""
            raise SkipFile(f"too large ({_human(size)}; the limit is {_human(limit)}{hint})")
        raw = path.read_bytes()
    except OSError as exc:
        raise SkipFile(f"unreadable ({exc.strerror or exc})") from exc
    return parse(raw, name=path.name, article_id=article_id or _slug(path.stem), source=str(path))


def _human(size: float) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 1024:.1f} KiB"


def parse(raw: bytes, *, name: str, article_id: str, source: str) -> Article:
    """Bytes of a supported file -> Article. The content decides the format: a PDF named .txt is
    read as a PDF, and binary data is never read as text; the name only tells Markdown from text."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED:
        raise SkipFile(f"unsupported file type '{suffix or '(none)'}' (use {FORMATS})")
    kind = sniff(raw)
    named = documents.SUFFIXES.get(suffix)
    if kind in documents.KINDS:
        return _from_document(raw, kind, article_id=article_id, source=source)
    if kind is not None:  # the content says what the name does not
        raise SkipFile(f"a {kind}, not an article (named {suffix}); save it as {FORMATS}")
    if named is not None:
        raise SkipFile(f"not a {named}, although named {suffix} (damaged, or misnamed?)")
    text = decode(raw)
    meta: dict = {}
    markdown = suffix in MARKDOWN or suffix in HTML
    if suffix in HTML:
        text, meta = _page_main_text(text)
    elif text.startswith("---"):
        text, meta = _split_front_matter(text, source)
        markdown = markdown or bool(meta)
    # Web articles saved as .txt are often Markdown; '#' headings give them away.
    markdown = markdown or bool(re.search(r"^#{1,6}\s+\S", text, re.MULTILINE))
    body, heading_title = _clean(text, markdown=markdown)
    title = _meta_str(meta, "title") or heading_title
    if not title:
        body, title = _title_from_first_line(body)
    return _article(
        article_id,
        title,
        body,
        source,
        date=_meta_str(meta, "date"),
        url=_meta_str(meta, "url") or _meta_str(meta, "source") or _meta_str(meta, "link"),
        description=_meta_str(meta, "description"),
        author=_meta_str(meta, "author"),
    )


def _from_document(raw: bytes, kind: str, *, article_id: str, source: str) -> Article:
    try:
        doc = documents.read_document(raw, kind)
    except UnusableFile as exc:
        raise SkipFile(str(exc)) from exc
    body, title = doc.text, doc.title
    if doc.markdown:
        body, heading_title = _clean(body, markdown=True)
        title = title or heading_title
    return _article(article_id, title, body, source, date=doc.date, author=doc.author, pages=doc.pages, url=doc.url)


def _article(article_id: str, title: str | None, body: str, source: str, **known) -> Article:
    """The Article, once its text is known to hold words; a missing title is its first sentence."""
    if not re.search(r"[^\W\d_]{2}", body):
        raise SkipFile("no readable text")
    return Article(id=article_id, title=title or _title_from_first_sentence(body), text=body, source=source, **known)


# Formats recognized by their first bytes, whatever the file is called.
_MAGIC = (
    (b"%PDF-", "PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Microsoft Office document (old format)"),
    (b"{\\rtf", "RTF document"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x7fELF", "program"),
    (b"MZ", None),  # a Windows program only if the PE header follows; "MZ" also starts words
)


def sniff(raw: bytes) -> str | None:
    """What a file is by its content, when that is not text: "PDF document", "Word document
    (.docx)", ...; None for anything that may be text."""
    head = raw[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            if kind is None:
                return "Windows program" if b"PE\x00\x00" in raw[:1024] else None
            return kind
    if head.startswith(b"PK\x03\x04"):  # a zip: which kind, by the names inside
        if b"mimetypeapplication/epub+zip" in raw[:200]:
            return "EPUB e-book"
        for marker, kind in (
            (b"word/", "Word document (.docx)"),
            (b"ppt/", "PowerPoint document (.pptx)"),
            (b"xl/", "Excel workbook (.xlsx)"),
            (b"opendocument", "OpenDocument file"),
        ):
            if marker in raw[:65536]:
                return kind
        return "zip archive"
    return None


def decode(raw: bytes) -> str:
    """Bytes -> str: BOMs, UTF-8, then a detected legacy encoding. Binary data is refused."""
    if not raw.strip():
        raise SkipFile("empty file")
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if raw.startswith(bom):
            try:
                return _check_text(raw.decode(codec))
            except UnicodeDecodeError as exc:
                raise SkipFile(f"invalid {codec} text") from exc
    if b"\x00" in raw[:8192]:
        utf16 = _utf16_without_bom(raw)
        if utf16 is not None:
            return _check_text(utf16)
        raise SkipFile("binary file, not text")
    try:
        return _check_text(raw.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # The detector's ranking is unsure between single-byte code pages; Windows-1252 is by far
    # the most common legacy encoding of web text, so it wins unless it reads clearly worse.
    matches = list(from_bytes(raw))
    best = min(matches, key=lambda m: m.chaos) if matches else None
    western = next((m for m in matches if m.encoding in ("cp1252", "latin_1", "iso8859_15")), None)
    if western is not None and (best is None or western.chaos <= best.chaos + 0.01):
        best = western
    text = str(best) if best is not None else raw.decode("cp1252", errors="replace")
    return _check_text(text)


def _utf16_without_bom(raw: bytes) -> str | None:
    """Text saved as UTF-16 without a byte-order mark: every other byte of ASCII-range text is a
    NUL, on the odd side for little-endian and the even side for big-endian."""
    sample = raw[:8192]
    if len(sample) < 4 or len(raw) % 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, codec in ((odd, "utf-16-le"), (even, "utf-16-be")):
        if zeros.count(0) > 0.6 * len(zeros):
            try:
                return raw.decode(codec)
            except UnicodeDecodeError:
                return None
    return None


def _check_text(text: str) -> str:
    sample = text[:4096]
    control = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f")
    if sample and control / len(sample) > 0.05:
        raise SkipFile("binary file, not text")
    return text


def _split_front_matter(text: str, source: str = "") -> tuple[str, dict]:
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n(---|\.\.\.)[ \t]*(\r?\n|$)", text, re.DOTALL)
    if not match:
        return text, {}
    import yaml

    try:
        meta = yaml.safe_load(match.group(1))
    except RecursionError:
        raise SkipFile("front matter nested too deeply to read") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        log.warning("%s: front matter is not valid YAML%s; reading it as text", source or "an article", line)
        return text, {}
    return text[match.end() :], meta if isinstance(meta, dict) else {}


def _page_main_text(html: str) -> tuple[str, dict]:
    """A web page's main text as Markdown (trafilatura: navigation, ads and footers left out) and
    the metadata its markup states; its visible text when no main text is found."""
    import trafilatura

    try:
        text = trafilatura.extract(html, output_format="markdown", include_comments=False, include_tables=True)
    except (RecursionError, ValueError):  # markup nested too deep for lxml's tree
        text = None
    if not (text or "").strip():
        # trafilatura found no main text (deeply nested markup defeats it): the page's visible
        # text, tag by tag, is better than nothing; no text at all is the real reason to skip.
        text = _visible_text(html)
        if not re.search(r"[^\W\d_]{2}", text):
            raise SkipFile("no text in the HTML page")
        return text, {"title": _html_title(html)}
    # Only dates the page states in its markup; a guess from a footer's copyright year misleads.
    meta = trafilatura.extract_metadata(html, date_config={"extensive_search": False, "original_date": True})
    fields = ("title", "date", "url", "description", "author")
    return text, {k: getattr(meta, k, None) for k in fields} if meta is not None else {}


class _TextOnly(HTMLParser):
    """Visible text of any markup, however deep: no tree is built."""

    SKIP = {"script", "style", "template", "noscript", "head"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in self.SKIP:
            self.hidden += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag) -> None:
        if tag in self.SKIP:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data) -> None:
        if not self.hidden:
            self.parts.append(data)


def _visible_text(html: str) -> str:
    parser = _TextOnly()
    try:
        parser.feed(html)
        parser.close()
        raw = "".join(parser.parts)
    except (AssertionError, ValueError):  # the standard parser gives up on some broken markup ("<![")
        raw = unescape(re.sub(r"<[^>]*>", "\n\n", re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", "", html)))
    paragraphs = (" ".join(p.split()) for p in raw.split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def _html_title(html: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", html, re.IGNORECASE | re.DOTALL)
    return " ".join(unescape(match.group(1)).split()) or None if match else None


def _meta_str(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (dict, list)):
        return None
    value = " ".join(str(value).split())
    return value or None


def _clean(text: str, *, markdown: bool) -> tuple[str, str | None]:
    """Normalize to light Markdown: '#' headings, plain inline text, no boilerplate lines.

    Returns the body and a title taken from a leading level-1 heading, if any.
    """
    lines = normalize(text).split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if len(stripped) < 120 and _BOILERPLATE.match(stripped):
            continue
        if markdown:
            if re.fullmatch(r"\s*([-*_]\s*){3,}", line):
                continue  # horizontal rule
            if i + 1 < len(lines) and stripped and re.fullmatch(r"=+|-+", lines[i + 1].strip()):
                stripped, line = "# " + stripped, "# " + stripped  # setext heading
            elif re.fullmatch(r"=+|-+", stripped) and out and out[-1].startswith("#"):
                continue
            line = _inline_markdown(line)
            stripped = line.strip()
        line = _BULLET.sub("• ", line)
        line = _NUMBERED.sub(lambda m: f"{m.group(1)}. ", line)
        out.append(line.strip() if not stripped.startswith("```") else stripped)
    if not markdown:
        out = _mark_plain_headings(out)
    body = normalize("\n".join(out))
    first = body.split("\n", 1)
    heading = HEADING.match(first[0]) if first[0] else None
    if heading and len(heading.group(1)) == 1:
        return normalize(first[1] if len(first) > 1 else ""), heading.group(2).strip()
    return body, None


def _inline_markdown(line: str) -> str:
    line = re.sub(r"!\[([^\]]*)\]\([^)]*\)", "", line)  # images
    line = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)  # links keep their text
    line = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", line)
    line = re.sub(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])", r"\1", line)
    line = re.sub(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])", r"\1", line)
    line = re.sub(r"`([^`\n]+)`", r"\1", line)
    return line


def _is_title_like(line: str) -> bool:
    return (
        0 < len(line) <= 150
        and len(line.split()) <= 25
        and not line.startswith(("#", "•"))
        and not re.search(r"[.,;:]$", line)
        and bool(re.match(r"[\"'“‘(]?[^\W_]", line))
    )


def _mark_plain_headings(lines: list[str]) -> list[str]:
    """In plain text, a short title-like line followed by a longer paragraph is a heading."""
    out = list(lines)
    for i, line in enumerate(lines):
        if i == 0 or not _is_title_like(line) or len(line.split()) > 12:
            continue
        following = next((nxt for nxt in lines[i + 1 :] if nxt.strip()), "")
        if len(following) > max(80, 2 * len(line)) and not following.startswith("#"):
            out[i] = "## " + line
    return out


def _title_from_first_line(body: str) -> tuple[str, str | None]:
    first, _, rest = body.partition("\n")
    first = first.strip()
    if _is_title_like(first) and rest.strip() and not HEADING.match(first):
        return normalize(rest), first
    return body, None


def _title_from_first_sentence(body: str, limit: int = 90) -> str:
    spans = sentence_spans(body)
    sentence = body[spans[0][0] : spans[0][1]] if spans else body
    sentence = HEADING.sub(r"\2", sentence).strip()
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0].rstrip(",;:—-– ")
    return cut + "…"


def _slug(value: str) -> str:
    value = re.sub(r"[^\w\-./]+", "-", value.strip()).strip("-./")
    return value or "article"


def _unique(article_id: str, seen: set[str]) -> str:
    candidate, n = article_id, 2
    while candidate in seen:
        candidate, n = f"{article_id}-{n}", n + 1
    return candidate
