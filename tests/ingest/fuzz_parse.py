"""Coverage-guided fuzzing (atheris) of parsing one file, across formats.

    python tests/ingest/fuzz_parse.py -runs=1000000        # the benchmark run (docs/reliability.md)
    python tests/ingest/fuzz_parse.py -max_total_time=30   # a short bounded run (tests/ingest/test_fuzz.py)

The first byte picks the format (.md, .txt, .html); the rest is the file. A file may be refused
(UnusableFile, with its reason); any other exception is a crash, and atheris stops with the input.
"""

from __future__ import annotations

import logging
import sys

import atheris

with atheris.instrument_imports():
    from articleqa.errors import UnusableFile
    from articleqa.ingest.files import parse

NAMES = ("a.md", "a.txt", "a.html")
logging.getLogger("articleqa").setLevel(logging.ERROR)  # a broken front matter is warned about


def one_input(data: bytes) -> None:
    if not data:
        return
    name = NAMES[data[0] % len(NAMES)]
    try:
        article = parse(data[1:], name=name, article_id="fuzz", source="fuzz")
    except UnusableFile:
        return
    article.text.encode("utf-8")  # whatever was read can be saved
    assert article.title is not None and article.text.strip()


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
