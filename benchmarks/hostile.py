"""Hostile inputs, made here, and what each costs: `python -m benchmarks hostile [--out FILE]`.

Every case is added to a fresh library in a fresh process (`articleqa add`'s path: the real
model, files read in worker processes), from files written here and links served by a loopback
server started here. Measured per case: the wall time until the library answers, and the peak
resident memory above the process's baseline (the library open, before the add), counting its
worker processes. The tests make the same inputs (tests/ingest/test_isolated.py)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# -- the inputs ---------------------------------------------------------------------------------


def tiny_text_pdf(pages: int = 3000, lines: int = 400) -> bytes:
    """A PDF of `pages` pages, each `lines` lines of 2-point text (one content stream shared by
    every page, so the file stays small while every page is as slow to read as the first)."""
    words = "the quick brown fox jumps over the lazy dog and keeps running far away "
    ops = ["BT /F1 2 Tf"]
    for i in range(lines):
        ops.append(f"1 0 0 1 20 {780 - i * 1.9:.1f} Tm ({words * 2}) Tj")
    ops.append("ET")
    stream = "\n".join(ops).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (5 + i) for i in range(pages)) + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 3 0 R >> >> >>"
    )
    objects += [page] * pages
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def zip_bomb(kind: str, size: int = 2**30) -> bytes:
    """A DOCX or EPUB whose markup part expands to `size` bytes of spaces (a few MB packed)."""
    part = "word/document.xml" if kind == "docx" else "EPUB/chapter1.xhtml"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        if kind == "epub":
            z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("[Content_Types].xml" if kind == "docx" else "META-INF/container.xml", "<x/>")
        with z.open(part, "w", force_zip64=True) as f:
            block = b" " * 2**20
            for _ in range(size // len(block)):
                f.write(block)
    return out.getvalue()


def deep_front_matter(depth: int = 200_000) -> bytes:
    return b"---\ntitle: " + b"[" * depth + b"\n---\n# Deep\n\nSome words here.\n"


def gzip_gzip_bomb(size: int = 2**30) -> bytes:
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(2**20)
    once = b"".join(inner.compress(block) for _ in range(size // len(block))) + inner.flush()
    outer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return outer.compress(once) + outer.flush()


GOOD = "# Hedgehogs\n\nHedgehogs hibernate from November to March, when their body cools to five degrees.\n"


class Hostile(BaseHTTPRequestHandler):
    """Links that misbehave: headers a byte a second, slow redirects, bombs."""

    delay = 1.0  # seconds per header byte
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the standard library's name
        path = self.path
        try:
            if path == "/slow-headers":
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"a" * 600:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(Hostile.delay)
            elif path.startswith("/redirect/"):  # /redirect/SECONDS/HOPS-LEFT
                delay, left = map(float, path.split("/")[2:4])
                time.sleep(delay)
                target = f"/redirect/{delay:g}/{left - 1:g}" if left > 1 else "/good"
                self._send(302, "text/plain", b"", location=target)
            elif path == "/good":
                self._send(
                    200,
                    "text/html",
                    b"<html><body><article><h1>Good</h1><p>" + GOOD.encode() + b"</p></article></body></html>",
                )
            elif path == "/gzip-gzip":
                self._send(200, "text/html", _cached("gzip-gzip", gzip_gzip_bomb), encoding="gzip, gzip")
            elif path == "/tiny.pdf":
                self._send(200, "application/pdf", _cached("pdf", tiny_text_pdf))
            else:
                self._send(404, "text/plain", b"nothing here")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _send(self, status, kind, body, location=None, encoding=None):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


_made: dict[str, bytes] = {}


def _cached(key, make):
    if key not in _made:
        _made[key] = make()
    return _made[key]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up on a hostile link is the point, not an error


def serve_hostile() -> tuple[ThreadingHTTPServer, str]:
    """The hostile site on 127.0.0.1 (any free port), and its base address."""
    server = _Server(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# -- measuring ----------------------------------------------------------------------------------

CASES = {
    "docx-bomb": "a 1 GiB document.xml in a DOCX",
    "epub-bomb": "a 1 GiB chapter in an EPUB",
    "deep-front-matter": "front matter nested 200,000 brackets deep",
    "tiny-text-pdf": "a 3,000-page PDF of 2-point text, a good file beside it",
    "cancel-pdf": "the same PDF, cancelled 2 s into its reading",
    "slow-headers": "a link whose headers come a byte a second",
    "slow-redirects": "6 redirects, 8 s each",
    "gzip-gzip": "a link sent as gzip, gzip (1 GiB of zeros)",
    "tiny-text-pdf-link": "the 3,000-page PDF as a link",
    "nat64-link": "a link to 64:ff9b::a9fe:a9fe (the cloud metadata address through NAT64)",
    "flipped-byte": "a flipped byte in a library's postings, then every file checked (info --verify)",
    "cut-short": "a library's token vectors cut 10 bytes short, then opened",
    "manifest-not-utf8": "a manifest with bytes that are not UTF-8, then opened",
    "newer-format": "a library written by a newer articleqa (manifest format + 1), then opened",
}
_DAMAGED = ("flipped-byte", "cut-short", "manifest-not-utf8", "newer-format")


def _tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return total


def run_case(name: str, folder: Path, base: str) -> dict:
    """In this process: open a fresh library, add the case's input, measure."""
    from articleqa import Library, Settings
    from articleqa.errors import ArticleQAError, Stopped
    from articleqa.runtime import stopping

    files = folder / "files"
    files.mkdir()
    sources: list[str] = []
    if name in ("docx-bomb", "epub-bomb"):
        kind = name.split("-")[0]
        (files / f"bomb.{kind}").write_bytes(zip_bomb(kind))
        sources = [str(files / f"bomb.{kind}")]
    elif name == "deep-front-matter":
        (files / "deep.md").write_bytes(deep_front_matter())
        sources = [str(files / "deep.md")]
    elif name in ("tiny-text-pdf", "cancel-pdf"):
        (files / "tiny.pdf").write_bytes(tiny_text_pdf())
        (files / "good.md").write_text(GOOD, encoding="utf-8")
        sources = [str(files / "tiny.pdf"), str(files / "good.md")]
    elif name == "slow-headers":
        sources = [f"{base}/slow-headers"]
    elif name == "slow-redirects":
        sources = [f"{base}/redirect/8/6"]
    elif name == "nat64-link":
        sources = ["http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"]
    elif name in _DAMAGED:
        (files / "good.md").write_text(GOOD, encoding="utf-8")
        Library.at(folder / "index", Settings()).add(str(files / "good.md"))
        _damage(name, folder / "index")
        from articleqa.library import Library as _L

        start = time.monotonic()
        try:
            if name == "flipped-byte":
                files_read, problems = _L.load(folder / "index").verify()
                outcome = f"{len(problems)} of {files_read} files damaged: {problems[0]}"
            else:
                _L.load(folder / "index").ask("When do hedgehogs hibernate?")
                outcome = "opened and answered"
        except ArticleQAError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        return {
            "case": name,
            "input": CASES[name],
            "seconds": round(time.monotonic() - start, 2),
            "memory_mb_above_baseline": None,
            "outcome": outcome,
            "skipped": [],
            "articles": None,
        }
    lib = Library.at(folder / "index", Settings(allow_private_urls=name != "nat64-link"))
    lib.embedder.encode(["the model loaded before the baseline"])  # what any add would load
    import gc

    from articleqa.runtime import malloc

    gc.collect()
    malloc.give_back()  # what making the input left behind goes first
    time.sleep(0.5)
    baseline = _tree_rss(os.getpid())
    peak = [baseline]
    done = threading.Event()

    def watch():
        while not done.wait(0.02):
            peak[0] = max(peak[0], _tree_rss(os.getpid()))

    threading.Thread(target=watch, daemon=True).start()
    cancel_at = time.monotonic() + 2.0 if name == "cancel-pdf" else None

    def check():
        if cancel_at is not None and time.monotonic() > cancel_at:
            raise Stopped("cancelled")

    start = time.monotonic()
    try:
        with stopping.stop_points(check):
            lib.add(*sources)
        outcome = "added"
    except ArticleQAError as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - start
    done.set()
    shown = [s.path.removeprefix(base) if s.path.startswith(base) else Path(s.path).name for s in lib.skipped]
    skipped = [f"{name}: {s.reason}" for name, s in zip(shown, lib.skipped)]
    return {
        "case": name,
        "input": CASES[name],
        "seconds": round(seconds, 2),
        "memory_mb_above_baseline": round((peak[0] - baseline) / 2**20, 1),
        "outcome": outcome,
        "skipped": skipped,
        "articles": len(lib.articles()),
    }


def _damage(name: str, index: Path) -> None:
    segment = next((index / "segments").iterdir())
    if name == "flipped-byte":
        postings = next(p for p in segment.iterdir() if "postings" in p.name)
        data = bytearray(postings.read_bytes())
        data[-1] ^= 0xFF  # in the numbers, not the header: the index opens, and answers may change
        postings.write_bytes(bytes(data))
    elif name == "cut-short":
        tokens = next(p for p in segment.iterdir() if p.name.startswith("tokens"))
        tokens.write_bytes(tokens.read_bytes()[:-10])
    elif name == "manifest-not-utf8":
        manifest = index / "manifest.json"
        manifest.write_bytes(manifest.read_bytes().replace(b'"', b'\xff"', 1))
    else:
        manifest = index / "manifest.json"
        data = json.loads(manifest.read_text(encoding="utf-8"))
        data["format"] = data.get("format", 4) + 1
        manifest.write_text(json.dumps(data), encoding="utf-8")


def run(out: str | None = None, cases: list[str] | None = None) -> list[dict]:
    """Every case in a fresh process of its own; prints and returns the rows."""
    import tempfile

    server, base = serve_hostile()
    _cached("gzip-gzip", gzip_gzip_bomb)  # made before its case is timed
    rows = []
    try:
        for name in cases or list(CASES):
            with tempfile.TemporaryDirectory() as tmp:
                code = (
                    "import json, sys; from pathlib import Path; from benchmarks import hostile; "
                    f"print('ROW' + json.dumps(hostile.run_case({name!r}, Path({tmp!r}), {base!r})))"
                )
                env = {**os.environ, "HF_HUB_OFFLINE": "1"}
                proc = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
                )
                line = next((x for x in proc.stdout.splitlines() if x.startswith("ROW")), None)
                row = json.loads(line[3:]) if line else {"case": name, "error": proc.stderr[-2000:]}
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        server.shutdown()
        server.server_close()
    if out:
        Path(out).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return rows


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks hostile", description=__doc__.split("\n\n")[0])
    p.add_argument("--case", action="append", choices=list(CASES), help="only these cases (repeatable)")
    p.add_argument("--out", metavar="FILE", help="write the rows as JSON")
    args = p.parse_args(argv)
    rows = run(args.out, args.case)
    return 0 if all("error" not in row for row in rows) else 1
