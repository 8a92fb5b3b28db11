"""Measures PDF text extraction of the candidate libraries on the fixture PDFs (docs/formats.md):

    pip install pypdf pdfminer.six   # pypdfium2 is a dependency already
    python tests/data/documents/compare_pdf_readers.py

Quality is how much of the true text comes out in the right order (difflib's ratio over the words,
and the words of the true text that are missing); speed is the mean of 20 reads."""

from __future__ import annotations

import difflib
import json
import re
import time
from pathlib import Path

HERE = Path(__file__).parent


def pypdf_text(path):
    import pypdf

    return "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)


def pypdf_layout(path):
    import pypdf

    return "\n".join(page.extract_text(extraction_mode="layout") for page in pypdf.PdfReader(path).pages)


def pdfium_text(path):
    import pypdfium2 as pdfium

    return "\n".join(page.get_textpage().get_text_range() for page in pdfium.PdfDocument(path))


def pdfminer_text(path):
    from pdfminer.high_level import extract_text

    return extract_text(path)


def articleqa_text(path):
    from articleqa.ingest.files import read_file

    article = read_file(path)
    return f"{article.title}\n\n{article.text}"  # the title is kept apart, as the article's title


READERS = {
    "pypdf": pypdf_text,
    "pypdf (layout mode)": pypdf_layout,
    "pypdfium2": pdfium_text,
    "pdfminer.six": pdfminer_text,
    "articleqa (pypdfium2 + layout clean-up)": articleqa_text,
}


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def main() -> None:
    truth = json.loads((HERE / "truth.json").read_text())
    print("| file | reader | ms per read | words in order | true words missing | extra words |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, text in truth.items():
        expected = words(text)
        for reader, read in READERS.items():
            try:
                read(str(HERE / name))
            except ImportError:
                continue
            start = time.perf_counter()
            for _ in range(20):
                got = read(str(HERE / name))
            ms = (time.perf_counter() - start) * 1000 / 20
            found = words(got)
            match = difflib.SequenceMatcher(None, expected, found, autojunk=False)
            kept = sum(block.size for block in match.get_matching_blocks())
            print(
                f"| {name} | {reader} | {ms:.1f} | {match.ratio():.3f} | {len(expected) - kept} | {len(found) - kept} |"
            )


if __name__ == "__main__":
    main()
