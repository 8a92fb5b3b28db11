"""What the parse fuzzer (fuzz_parse.py) feeds the readers: the first byte picks a format, the
rest is the file or the markup packed here into a well-formed DOCX or EPUB. Kept apart from the
harness so tests can replay the inputs it found without atheris instrumenting their imports."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

DOCUMENTS = Path(__file__).resolve().parents[1] / "data" / "documents"
SEP = b"\x00\x00"  # between the parts of a packed input

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DOCX_PARTS = {
    "word/document.xml": (
        f"<?xml version='1.0' encoding='UTF-8'?><w:document {_W}><w:body>"
        "<w:p><w:pPr><w:pStyle w:val='Title'/></w:pPr><w:r><w:t>Field notes</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:pStyle w:val='Heading1'/></w:pPr><w:r><w:t>Method</w:t></w:r></w:p>"
        "<w:p><w:r><w:t>The samples were kept at four degrees.</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:pStyle w:val='ListBullet'/></w:pPr><w:r><w:t>one litre</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>dose</w:t></w:r></w:p></w:tc>"
        "<w:tc><w:p><w:r><w:t>2 ml</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
        "</w:body></w:document>"
    ),
    "word/styles.xml": (
        f"<?xml version='1.0' encoding='UTF-8'?><w:styles {_W}>"
        "<w:style w:type='paragraph' w:styleId='Title'><w:name w:val='Title'/></w:style>"
        "<w:style w:type='paragraph' w:styleId='Heading1'><w:name w:val='heading 1'/></w:style>"
        "<w:style w:type='paragraph' w:styleId='ListBullet'><w:name w:val='List Bullet'/></w:style>"
        "</w:styles>"
    ),
    "docProps/core.xml": (
        "<?xml version='1.0' encoding='UTF-8'?><cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<dc:title>Field notes</dc:title><dc:creator>A. Author</dc:creator>"
        "<dcterms:created xsi:type='dcterms:W3CDTF'>2024-03-01T00:00:00Z</dcterms:created>"
        "</cp:coreProperties>"
    ),
}
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
DOCX_FIXED = {
    "[Content_Types].xml": (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<Types xmlns='http://schemas.openxmlformats.org/package/2006/content-types'>"
        "<Default Extension='rels' ContentType='application/vnd.openxmlformats-package.relationships+xml'/>"
        "<Default Extension='xml' ContentType='application/xml'/>"
        "<Override PartName='/word/document.xml' "
        "ContentType='application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml'/>"
        "<Override PartName='/word/styles.xml' "
        "ContentType='application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml'/>"
        "<Override PartName='/docProps/core.xml' "
        "ContentType='application/vnd.openxmlformats-package.core-properties+xml'/></Types>"
    ),
    "_rels/.rels": (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<Relationships xmlns='http://schemas.openxmlformats.org/package/2006/relationships'>"
        f"<Relationship Id='rId1' Type='{_REL}/officeDocument' Target='word/document.xml'/>"
        "<Relationship Id='rId2' Type='http://schemas.openxmlformats.org/package/2006/relationships/"
        "metadata/core-properties' Target='docProps/core.xml'/></Relationships>"
    ),
    "word/_rels/document.xml.rels": (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<Relationships xmlns='http://schemas.openxmlformats.org/package/2006/relationships'>"
        f"<Relationship Id='rId1' Type='{_REL}/styles' Target='styles.xml'/></Relationships>"
    ),
}
EPUB_PARTS = {
    "EPUB/chapter1.xhtml": (
        "<?xml version='1.0' encoding='utf-8'?><html xmlns='http://www.w3.org/1999/xhtml'><head>"
        "<title>One</title></head><body><h1>Storage</h1><p>Keep the serum cold.</p>"
        "<ul><li>four degrees</li></ul><h2>Use</h2><p>Apply twice a day.</p></body></html>"
    ),
    "EPUB/content.opf": (
        "<?xml version='1.0' encoding='utf-8'?><package xmlns='http://www.idpf.org/2007/opf' version='3.0' "
        "unique-identifier='id'><metadata xmlns:dc='http://purl.org/dc/elements/1.1/'>"
        "<dc:identifier id='id'>fuzz</dc:identifier><dc:title>Handbook</dc:title>"
        "<dc:creator>B. Writer</dc:creator><dc:date>2024-05-02</dc:date><dc:language>en</dc:language>"
        "</metadata><manifest><item id='c1' href='chapter1.xhtml' media-type='application/xhtml+xml'/>"
        "</manifest><spine><itemref idref='c1'/></spine></package>"
    ),
}
EPUB_FIXED = {
    "META-INF/container.xml": (
        "<?xml version='1.0'?><container version='1.0' xmlns='urn:oasis:names:tc:opendocument:xmlns:container'>"
        "<rootfiles><rootfile full-path='EPUB/content.opf' media-type='application/oebps-package+xml'/>"
        "</rootfiles></container>"
    ),
}


def _pack(data: bytes, parts: dict[str, str], fixed: dict[str, str], first: tuple[str, str] | None) -> bytes:
    pieces = data.split(SEP)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        if first:
            z.writestr(*first)
        for name, text in fixed.items():
            z.writestr(name, text)
        for i, (name, text) in enumerate(parts.items()):
            z.writestr(name, pieces[i] if i < len(pieces) else text.encode())
    return out.getvalue()


def docx(data: bytes) -> bytes:
    return _pack(data, DOCX_PARTS, DOCX_FIXED, None)


def epub(data: bytes) -> bytes:
    return _pack(data, EPUB_PARTS, EPUB_FIXED, ("mimetype", "application/epub+zip"))


# mode byte -> (file name, how the rest becomes the file)
MODES = (
    ("a.md", bytes),
    ("a.txt", bytes),
    ("a.html", bytes),
    ("a.pdf", bytes),
    ("a.docx", bytes),
    ("a.epub", bytes),
    ("a.docx", docx),
    ("a.epub", epub),
)


def write_seeds(folder: Path) -> None:
    """One valid input per mode: the fixtures' documents whole, and the packed templates' parts."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = {
        "md": b"\x00---\ntitle: Notes\n---\n# Notes\n\nThe dough takes 750 g of water.\n\n- one\n- two\n",
        "txt": b"\x01Field notes\n\nThe crew of three trained for months. It launched in 1969.\n",
        "html": b"\x02<html><head><title>T</title></head><body><article><h1>T</h1><p>Words here.</p>"
        b"<table><tr><td>a</td><td>1</td></tr></table></article></body></html>",
        "docx-xml": b"\x06" + SEP.join(text.encode() for text in DOCX_PARTS.values()),
        "epub-xml": b"\x07" + SEP.join(text.encode() for text in EPUB_PARTS.values()),
    }
    for name in ("paper.pdf", "report.pdf", "webpage.pdf"):
        seeds[name] = b"\x03" + (DOCUMENTS / name).read_bytes()
    seeds["handbook.epub"] = b"\x05" + (DOCUMENTS / "handbook.epub").read_bytes()
    seeds["minimal.docx"] = b"\x04" + docx(seeds["docx-xml"][1:])
    for name, data in seeds.items():
        (folder / name).write_bytes(data)
