"""A corpus of bad inputs, made at test time: each file is indexed or named with its reason, and
the good files beside them are always indexed."""

from __future__ import annotations

import os
import zlib

import pytest

from articleqa.library import Library

GOOD = "Otters hold hands while they sleep so that they do not drift apart in the current."


def make_corpus(root):
    """name -> bytes (or a callable that makes the entry itself)."""
    png = b"\x89PNG\r\n\x1a\n" + zlib.compress(os.urandom(2000))
    files = {
        "good.md": f"# Otters\n\n{GOOD}\n".encode(),
        "good-latin1.txt": "Crème brûlée\n\nCaramelize the sugar until it turns amber and smells of toffee.".encode(
            "latin-1"
        ),
        "good-utf16.txt": f"Sea otters\n\n{GOOD}".encode("utf-16"),
        "good-utf16-nobom.txt": f"River otters\n\n{GOOD}".encode("utf-16-le"),
        "good-shift-jis.txt": "カワウソ\n\nカワウソは眠るとき手をつなぎます。川で流されないようにするためです。".encode(
            "shift_jis"
        ),
        "good-broken.html": b"<html><body><p>Otters <b>hold hands <i>while they sleep</p><div>so they do not drift",
        "good-nested.html": ("<div>" * 400 + f"<p>{GOOD}</p>" + "</div>" * 400).encode(),
        "good-bad-yaml.md": f"---\ntitle: [unclosed\n---\n\n{GOOD}\n".encode(),
        "good odd name (1) ümlaut.md": f"# Odd name\n\n{GOOD}\n".encode(),
        os.fsdecode(b"good-\xff-bytes.md"): f"# Bytes\n\n{GOOD}\n".encode(),
        "binary.txt": png,
        "pdf-named.txt": b"%PDF-1.3\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + os.urandom(3000),
        "empty.md": b"",
        "whitespace.txt": b"  \n\t\n   \n",
        "nul-bytes.txt": b"Otters\x00\x00\x00 sleep\x00" * 200,
        "no-text.html": b"<html><body>" + b"<div></div>" * 50 + b"</body></html>",
        "numbers.txt": b"1 2 3 4 5 6 7 8 9 10\n11 12 13\n",
        "picture.jpg": b"\xff\xd8\xff\xe0" + os.urandom(100),
        # front matter nested 200,000 brackets deep: Python's recursion limit, inside YAML
        "deep-front-matter.md": b"---\ntitle: " + b"[" * 200_000 + b"\n---\n\n" + GOOD.encode(),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    with open(root / "huge.txt", "wb") as f:  # 50 MB, sparse: refused by its size, never read
        f.truncate(50 * 1024 * 1024)
    (root / "dangling.md").symlink_to(root / "missing.md")
    (root / "loop.md").symlink_to(root / "loop.md")
    os.mkfifo(root / "fifo.txt")
    return {n for n in files if n.startswith("good")}


def test_every_bad_input_is_named_with_its_reason_and_every_good_one_indexed(tmp_path, fake_settings, fake_embedder):
    root = tmp_path / "corpus"
    root.mkdir()
    good = make_corpus(root)
    lib = Library.at(tmp_path / "idx", fake_settings, embedder=fake_embedder)
    lib.sync([root])
    indexed = {os.path.basename(a.source) for a in lib.articles()}
    skipped = {os.path.basename(s.path): s.reason for s in lib.skipped}
    expected_good = {os.fsencode(n).decode("utf-8", "backslashreplace") for n in good}
    assert indexed == expected_good
    everything = {os.fsencode(p.name).decode("utf-8", "backslashreplace") for p in root.iterdir()}
    assert indexed | set(skipped) == everything  # nothing silently ignored
    assert all(reason.strip() for reason in skipped.values())
    assert skipped["binary.txt"].startswith("a PNG image, not an article (named .txt)")
    assert skipped["pdf-named.txt"].startswith("damaged PDF document (")  # read as the PDF it is
    assert skipped["empty.md"] == skipped["whitespace.txt"] == "empty file"
    assert skipped["huge.txt"].startswith("too large")
    assert skipped["fifo.txt"] == "not a regular file (FIFO)"
    assert skipped["loop.md"] == "link loop" and skipped["dangling.md"].startswith("broken link")
    assert skipped["picture.jpg"].startswith("unsupported file type")
    assert skipped["deep-front-matter.md"] == "front matter nested too deeply to read"
    texts = " ".join(a.text for a in lib.articles())
    assert "カワウソ" in texts and "Crème brûlée" in {a.title for a in lib.articles()}


@pytest.mark.parametrize("name", ["nul-bytes.txt", "no-text.html", "numbers.txt"])
def test_text_without_words_is_refused_with_a_reason(tmp_path, fake_settings, fake_embedder, name):
    root = tmp_path / "corpus"
    root.mkdir()
    make_corpus(root)
    lib = Library.at(tmp_path / "idx", fake_settings, embedder=fake_embedder)
    lib.sync([root])
    reasons = {os.path.basename(s.path): s.reason for s in lib.skipped}
    assert reasons[name] in {"binary file, not text", "no text in the HTML page", "no readable text"}
