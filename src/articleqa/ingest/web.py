"""Web links -> Article: fetch a page and read it as the file it is (HTML, PDF, text, ...).

A shared server must not become a way into its own network: only http and https, every address
a name resolves to (at every redirect) must be public unless private ones are allowed, and time,
size and redirects are bounded."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import time
from dataclasses import dataclass, replace
from urllib.parse import urljoin, urlsplit

from articleqa.__about__ import __version__
from articleqa.errors import UnusableFile
from articleqa.runtime.stopping import checkpoint
from articleqa.schema import Article
from articleqa.settings import Limits

MAX_BYTES = Limits().link_bytes
TIMEOUT = Limits().link_seconds  # for the whole fetch, however slowly the server sends
MAX_REDIRECTS = Limits().redirects
PRIVATE_HINT = "allow it with Settings(allow_private_urls=True) or --allow-private-urls"
# What the server says it sends -> the name ingest.parse reads it by (the content still decides).
_TYPES = {
    "text/html": ".html",
    "application/xhtml+xml": ".html",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/epub+zip": ".epub",
}


@dataclass(frozen=True)
class Fetched:
    """A page as the server sent it."""

    url: str  # after redirects
    data: bytes
    content_type: str
    fetched: str  # when, ISO 8601 in UTC


def is_url(value) -> bool:
    return isinstance(value, str) and re.match(r"https?://", value.strip(), re.IGNORECASE) is not None


def read_url(url: str, *, allow_private: bool = False, max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT) -> Article:
    """Fetch `url` and read it into an Article whose source and link are the URL; re-reading the
    same URL gives the same id, so adding it again updates the article when the page changed."""
    url = url.strip()
    return read_fetched(url, fetch(url, allow_private=allow_private, max_bytes=max_bytes, timeout=timeout))


def read_fetched(url: str, page: Fetched) -> Article:
    """A fetched page -> Article, read as the file it is (the content type, else the path, names it)."""
    from articleqa.ingest.files import SkipFile, parse

    url = url.strip()
    suffix = _TYPES.get(page.content_type)
    if suffix is None:
        path_suffix = re.search(r"\.(md|txt|html?|pdf|docx|epub)$", urlsplit(page.url).path, re.IGNORECASE)
        if path_suffix is None:
            raise UnusableFile(f"{url}: the server sent {page.content_type or 'no content type'}, not an article")
        suffix = "." + path_suffix.group(1).lower()
    text_limit = Limits().text_bytes
    if suffix not in (".pdf", ".docx", ".epub") and len(page.data) > text_limit:  # as for a text file
        raise UnusableFile(
            f"{url}: too large for a page of text ({len(page.data) / 2**20:.1f} MiB; "
            f"the limit is {text_limit // 2**20} MiB)"
        )
    try:
        article = parse(page.data, name="page" + suffix, article_id=url_id(url), source=url)
    except SkipFile as exc:
        raise UnusableFile(f"{url}: {exc}") from exc
    return replace(article, url=url, fetched=page.fetched)


def url_id(url: str) -> str:
    """A stable article id for a URL: host and path, as a file path would be."""
    parts = urlsplit(url.strip())
    base = (parts.hostname or "") + parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
    return re.sub(r"[^\w\-./]+", "-", base).strip("-./")[:200] or "page"


def fetch(url: str, *, allow_private: bool = False, max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT) -> Fetched:
    """GET `url`, following at most MAX_REDIRECTS redirects, each checked like the first."""
    import httpx

    deadline = time.monotonic() + timeout
    headers = {
        "User-Agent": f"articleqa/{__version__}",
        "Accept": "text/html,application/pdf;q=0.9,*/*;q=0.5",
        "Accept-Encoding": "gzip, deflate",
    }
    with httpx.Client(timeout=httpx.Timeout(min(timeout, 10.0)), follow_redirects=False, headers=headers) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            address = check_address(current, allow_private=allow_private)
            target, pinned = _pinned(current, address)
            try:
                with client.stream("GET", target, **pinned) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        if not location:
                            raise UnusableFile(f"{url}: a redirect without a destination")
                        current = urljoin(current, location)
                        continue
                    if response.status_code >= 400:
                        raise UnusableFile(
                            f"{url}: the server answered {response.status_code} {response.reason_phrase}"
                        )
                    data = _read(response, url, max_bytes, deadline, timeout)
                    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            except httpx.TimeoutException as exc:
                raise UnusableFile(f"{url}: no answer within {timeout:.0f} s") from exc
            except httpx.HTTPError as exc:
                raise UnusableFile(f"{url}: could not fetch it ({exc})") from exc
            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
            return Fetched(url=current, data=data, content_type=kind, fetched=now)
    raise UnusableFile(f"{url}: more than {MAX_REDIRECTS} redirects")


def _read(response, url: str, max_bytes: int, deadline: float, timeout: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise UnusableFile(f"{url}: too large ({int(declared) / 2**20:.1f} MiB; the limit is {max_bytes // 2**20} MiB)")
    inflate = _inflater(url, response.headers.get("content-encoding", ""))
    chunks, size = [], 0
    for raw in response.iter_raw():  # decoded here, never more than the limit at a time
        checkpoint()
        for chunk in inflate(raw, max_bytes - size + 1):
            size += len(chunk)
            if size > max_bytes:
                raise UnusableFile(f"{url}: too large (more than {max_bytes // 2**20} MiB)")
            chunks.append(chunk)
        if time.monotonic() > deadline:
            raise UnusableFile(f"{url}: not fully sent within {timeout:.0f} s")
    return b"".join(chunks)


def _inflater(url: str, encoding: str):
    """How to decode the body: as sent, or gzip/deflate inflated a bounded piece at a time (1 KB of
    gzip can inflate to a gigabyte). Encodings applied twice or more ("gzip, gzip") and others are
    refused: only a bomb needs them."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return lambda raw, room: [raw] if raw else []
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise UnusableFile(f"{url}: refused: the server encoded the page as {encoding.strip()!r}")
    import zlib

    state = {"inflater": zlib.decompressobj(47 if codings[0] != "deflate" else zlib.MAX_WBITS)}

    def inflate(raw: bytes, room: int):
        inflater = state["inflater"]
        data = raw
        while data:
            try:
                piece = inflater.decompress(data, max(1, room))
            except zlib.error:
                if codings[0] == "deflate" and not state.get("tried_raw"):  # servers send raw deflate too
                    state.update(inflater=zlib.decompressobj(-zlib.MAX_WBITS), tried_raw=True)
                    inflater = state["inflater"]
                    continue
                raise UnusableFile(f"{url}: the {codings[0]} data is damaged") from None
            if piece:
                yield piece
                room -= len(piece)
            data = inflater.unconsumed_tail
            if room <= 0:
                return

    return inflate


def _pinned(url: str, address: str | None) -> tuple[str, dict]:
    """The request for `url` sent to the checked `address`: the name is not resolved a second time
    (a DNS answer that changed in between, "DNS rebinding", cannot lead elsewhere), while the Host
    header and TLS (server name, certificate) still use the name."""
    if address is None:
        return url, {}
    parts = urlsplit(url)
    ip = f"[{address}]" if ":" in address else address
    netloc = ip + (f":{parts.port}" if parts.port else "")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl(), {
        "headers": {"Host": host},
        "extensions": {"sni_hostname": parts.hostname},
    }


def check_address(url: str, *, allow_private: bool = False) -> str | None:
    """Refuse what is not http(s), and (unless allowed) hosts that are or resolve to loopback,
    private, link-local or otherwise non-public addresses. Returns the checked address to connect
    to (None when private addresses are allowed: then the name is resolved as usual)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise UnusableFile(f"{url}: only http and https links can be added")
    host = parts.hostname
    if not host:
        raise UnusableFile(f"{url}: no host in the link")
    if allow_private:
        return None
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except (OSError, ValueError) as exc:
        raise UnusableFile(f"{url}: cannot find the host {host} ({exc})") from exc
    for address in sorted(addresses):
        ip = ipaddress.ip_address(address.split("%")[0])
        for inner in (ip, *embedded_ipv4(ip)):
            if not inner.is_global or inner.is_multicast:
                shown = f"{ip}, which carries {inner}" if inner is not ip else str(ip)
                raise UnusableFile(f"{url}: {host} is a private or local address ({shown}); {PRIVATE_HINT}")
    return sorted(addresses)[0].split("%")[0]


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def embedded_ipv4(ip) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
    (::a.b.c.d), 6to4 (2002::/16), Teredo (server and client) and NAT64 (64:ff9b::/96 and the
    local-use 64:ff9b:1::/48). `64:ff9b::a9fe:a9fe` reaches 169.254.169.254, the cloud's
    metadata address, though Python calls it global."""
    if ip.version != 6:
        return []
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found += list(ip.teredo)
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1 or any(ip in net for net in _NAT64):
        found.append(low)
    return found
