"""Coverage-guided fuzzing (atheris) of parsing one file, across formats and document readers.

    python tests/ingest/fuzz_parse.py --seeds DIR                   # write the seed inputs to DIR
    python tests/ingest/fuzz_parse.py CORPUS DIR -runs=500000 -seed=17   # one of the benchmark's two jobs
                                                                     # (-seed=18 the other; docs/reliability.md)
    python tests/ingest/fuzz_parse.py -max_total_time=30            # a short bounded run (tests/ingest/test_fuzz.py)

The first byte picks what the rest is: a .md, .txt or .html file; a whole PDF, DOCX or EPUB file;
or the markup inside a DOCX (document.xml, styles.xml, core.xml) or an EPUB (a chapter, the
package file) packed here into a well-formed archive, so mutations reach the readers' logic
instead of stopping at a broken zip checksum. A file may be refused (UnusableFile, with its
reason); any other exception is a crash, and atheris stops with the input.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    # The readers' own libraries too, so coverage guides mutations through their logic.
    import docx  # noqa: F401
    import ebooklib.epub  # noqa: F401
    import trafilatura  # noqa: F401

    from articleqa.errors import UnusableFile
    from articleqa.ingest.files import parse

from fuzz_inputs import MODES, write_seeds  # noqa: E402 - not instrumented: only packs the inputs

logging.getLogger("articleqa").setLevel(logging.ERROR)  # a broken front matter is warned about


def one_input(data: bytes) -> None:
    if not data:
        return
    name, make = MODES[data[0] % len(MODES)]
    try:
        article = parse(make(data[1:]), name=name, article_id="fuzz", source="fuzz")
    except UnusableFile:
        return
    article.text.encode("utf-8")  # whatever was read can be saved
    assert article.title is not None and article.text.strip()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        write_seeds(Path(sys.argv[2]))
        sys.exit(0)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
