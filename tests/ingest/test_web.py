"""Web links: fetched from a real HTTP server on 127.0.0.1 that each test module starts and stops."""

from __future__ import annotations

import functools
import gzip
import threading
import zlib
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import servers
from articleqa import Library
from articleqa.errors import UnusableFile
from articleqa.ingest.web import check_address, read_url, url_id
from conftest import DATA

DOCS = DATA / "documents"
PAGE = """<!doctype html><html><head><title>Hedgehog hibernation</title>
<meta name="author" content="Maja Lindgren"><meta property="article:published_time" content="2024-10-02">
</head><body><nav>Home | About | Shop</nav><article><h1>Hedgehog hibernation</h1>
<p>Hedgehogs hibernate from November to March when their body temperature drops to about five
degrees Celsius. A hedgehog that wakes in midwinter loses weight quickly and may need help.</p>
<p>{extra}</p></article><footer>Copyright 2024 Garden Notes</footer></body></html>"""


class Site(BaseHTTPRequestHandler):
    extra = "Leave a shallow dish of water out, never milk."
    # /slow answers only once this is set (when the module's server stops): later than any client
    # timeout, however slow the machine, and no test waits for it.
    release = threading.Event()

    def do_GET(self):  # noqa: N802 - the standard library's name
        path = self.path
        if path == "/hedgehogs":
            self.send(200, "text/html; charset=utf-8", PAGE.format(extra=Site.extra).encode())
        elif path == "/paper.pdf":
            self.send(200, "application/pdf", (DOCS / "paper.pdf").read_bytes())
        elif path == "/moved":
            self.send(302, "text/plain", b"", location="/hedgehogs")
        elif path.startswith("/loop"):
            self.send(302, "text/plain", b"", location=f"/loop{len(path)}")
        elif path == "/big":
            self.send(200, "text/html", b"<p>" + b"x" * (3 * 1024 * 1024) + b"</p>")
        elif path == "/huge-page":  # over the 10 MiB a text file may be, under a link's 50 MiB
            self.send(200, "text/html", b"<p>" + b"word " * (11 * 1024 * 1024 // 5) + b"</p>")
        elif path == "/gzipped":
            self.send(200, "text/html", gzip.compress(PAGE.format(extra=Site.extra).encode()), encoding="gzip")
        elif path == "/gzip-gzip":  # 1 GiB of zeros behind two layers of gzip: a few kilobytes
            self.send(200, "text/html", Site.double_bomb(), encoding="gzip, gzip")
        elif path == "/gzip-bomb":  # 64 MiB inflated, over a link's 50 MiB
            self.send(200, "text/html", gzip.compress(b"<p>" + b" " * (64 * 2**20)), encoding="gzip")
        elif path == "/slow":
            Site.release.wait(120)
            self.send(200, "text/html", b"<p>late</p>")
        elif path == "/photo":
            self.send(200, "image/png", b"\x89PNG\r\n\x1a\n" + bytes(100))
        else:
            self.send(404, "text/plain", b"nothing here")

    @staticmethod
    @functools.cache
    def double_bomb() -> bytes:
        inner = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = bytes(2**20)
        once = b"".join(inner.compress(block) for _ in range(1024)) + inner.flush()
        return gzip.compress(once)

    def send(self, status, kind, body, location=None, encoding=None):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="module")
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Site.release.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        Site.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_page_is_read_for_its_main_text_and_keeps_its_address(site):
    article = read_url(f"{site}/hedgehogs", allow_private=True)
    assert article.title == "Hedgehog hibernation"
    assert article.source == article.url == article.link == f"{site}/hedgehogs"
    assert "five degrees Celsius" in article.text
    assert "Home | About" not in article.text and "Copyright" not in article.text
    assert article.author == "Maja Lindgren" and article.date == "2024-10-02"
    assert article.fetched and article.fetched.endswith("+00:00")
    assert article.id == url_id(f"{site}/hedgehogs") == "127.0.0.1/hedgehogs"


def test_a_pdf_link_is_read_as_a_pdf_with_its_pages(site):
    article = read_url(f"{site}/paper.pdf", allow_private=True)
    assert article.title.startswith("Plant-Derived Exosomes") and len(article.pages) == 2


def test_loopback_and_private_addresses_are_refused_unless_allowed(site):
    with pytest.raises(UnusableFile, match=r"private or local address \(127\.0\.0\.1\).*--allow-private-urls"):
        read_url(f"{site}/hedgehogs")
    for url in ("http://10.1.2.3/", "http://192.168.0.1/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/"):
        with pytest.raises(UnusableFile, match="private or local address"):
            check_address(url)
    for url in (
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
        "http://[64:ff9b:1::a00:1]/",  # local-use NAT64 of 10.0.0.1
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
        "http://[::169.254.169.254]/",  # IPv4-compatible
        "http://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
    ):  # Python calls these global: the IPv4 address inside is what counts
        with pytest.raises(UnusableFile, match=r"private or local address \(.*, which carries"):
            check_address(url)
    for url in ("http://[::ffff:169.254.169.254]/", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"):
        with pytest.raises(UnusableFile, match="private or local address"):  # IPv4-mapped, Teredo
            check_address(url)
    # public IPv4 behind the same forms is allowed (the literal addresses resolve to themselves)
    assert check_address("http://[2002:808:808::1]/") == "2002:808:808::1"
    assert check_address("http://[64:ff9b::808:808]/") == "64:ff9b::808:808"
    for url in ("file:///etc/passwd", "ftp://example.org/a.txt", "javascript:alert(1)"):
        with pytest.raises(UnusableFile, match="only http and https"):
            check_address(url)


def test_a_gzipped_page_is_read(site):
    assert read_url(f"{site}/gzipped", allow_private=True).title == "Hedgehog hibernation"


def test_redirects_are_followed_a_few_times_and_each_is_checked(site):
    assert read_url(f"{site}/moved", allow_private=True).title == "Hedgehog hibernation"
    with pytest.raises(UnusableFile, match="more than 5 redirects"):
        read_url(f"{site}/loop", allow_private=True)


@pytest.mark.parametrize(
    ("path", "limits", "reason"),
    [
        ("/big", {"max_bytes": 1024 * 1024}, "too large"),
        ("/huge-page", {}, r"too large for a page of text \(11\.0 MiB; the limit is 10 MiB\)"),
        ("/gzip-gzip", {}, r"refused: the server encoded the page as 'gzip, gzip'"),
        ("/gzip-bomb", {}, r"too large \(more than 50 MiB\)"),
        ("/slow", {"timeout": 1.0}, "no answer within 1 s"),
        ("/nothing", {}, "the server answered 404 Not Found"),
        ("/photo", {}, "image/png, not an article"),
    ],
)
def test_bad_links_are_refused_with_the_reason(site, path, limits, reason):
    with pytest.raises(UnusableFile, match=reason):
        read_url(f"{site}{path}", allow_private=True, **limits)


def test_a_link_added_again_updates_the_article_when_the_page_changed(site, tmp_path, fake_settings, fake_embedder):
    lib = Library.at(tmp_path / "idx", replace(fake_settings, allow_private_urls=True), embedder=fake_embedder)
    url = f"{site}/hedgehogs"
    assert lib.add(url).added == ("127.0.0.1/hedgehogs",)
    assert lib.add(url).unchanged == ("127.0.0.1/hedgehogs",)
    Site.extra = "A hedgehog house with dry leaves helps it through the winter."
    try:
        change = lib.add(url)
    finally:
        Site.extra = "Leave a shallow dish of water out, never milk."
    assert change.replaced == ("127.0.0.1/hedgehogs",)
    assert "dry leaves" in lib.article("127.0.0.1/hedgehogs").text
    assert len(lib.articles()) == 1


def test_a_library_refuses_private_links_by_default_with_what_to_do(site, tmp_path, fake_settings, fake_embedder):
    lib = Library.at(tmp_path / "idx", fake_settings, embedder=fake_embedder)
    with pytest.raises(UnusableFile, match="allow_private_urls=True"):
        lib.add(f"{site}/hedgehogs")
    assert lib.articles() == []


@pytest.mark.slow
def test_the_add_command_fetches_a_link_into_a_library(site, tmp_path, capsys):
    from articleqa.cli import main

    index = tmp_path / "idx"
    assert main(["add", f"{site}/hedgehogs", "--index-dir", str(index), "--allow-private-urls"]) == 0
    assert "added 1" in capsys.readouterr().out
    assert main(["ask", "When do hedgehogs hibernate?", "--index-dir", str(index)]) == 0
    out = capsys.readouterr().out
    assert "November to March" in out and f"{site}/hedgehogs" in out
    assert main(["add", f"{site}/hedgehogs", "--index-dir", str(index)]) == 2  # private: refused
    assert "--allow-private-urls" in capsys.readouterr().err


@pytest.mark.slow
def test_the_ui_adds_from_a_link_and_says_why_when_it_cannot(site, tmp_path, fake_settings, fake_embedder):
    from gradio_client import Client

    from articleqa.ui import server as ui

    lib = Library.at(tmp_path / "idx", fake_settings, embedder=fake_embedder)
    app = servers.launch(ui.build_app(lib))
    try:
        visitor = Client(app.local_url, verbose=False)
        value, status, *_ = visitor.predict(f"{site}/hedgehogs", api_name="/add_link")
        assert "private or local address" in status and value != ""  # the link stays in the box
        lib.settings = replace(lib.settings, allow_private_urls=True)  # what serve --allow-private-urls does
        value, status, table, *_ = visitor.predict(f"{site}/hedgehogs", api_name="/add_link")
        assert "✓ added “Hedgehog hibernation”" in status and "Hedgehog hibernation" in table and value == ""
        _, status, *_ = visitor.predict("not a link", api_name="/add_link")
        assert "starts with http:// or https://" in status
    finally:
        app.close()


def test_the_request_goes_to_the_address_that_was_checked(site, monkeypatch):
    # "rebind.invalid" resolves nowhere: if the fetch looked the name up again after the check
    # (where DNS rebinding would swap in another address), it would fail.
    from articleqa.ingest import web

    port = site.rsplit(":", 1)[1]
    checked = []
    monkeypatch.setattr(web, "check_address", lambda url, allow_private=False: checked.append(url) or "127.0.0.1")
    article = read_url(f"http://rebind.invalid:{port}/hedgehogs")
    assert article.title == "Hedgehog hibernation" and article.url == f"http://rebind.invalid:{port}/hedgehogs"
    assert checked == [f"http://rebind.invalid:{port}/hedgehogs"]
    target, pinned = web._pinned("https://example.org:8443/a?b=1", "2001:db8::1")
    assert target == "https://[2001:db8::1]:8443/a?b=1"
    assert pinned == {"headers": {"Host": "example.org:8443"}, "extensions": {"sni_hostname": "example.org"}}
