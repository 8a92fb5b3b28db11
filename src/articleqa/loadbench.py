"""`articleqa bench --load`: `articleqa serve` under load, on loopback.

A fresh server (its own ARTICLEQA_HOME, the built-in library) gets, at the same time: `clients`
threads asking questions through the HTTP API one after another, one uploading articles, and one
abusing the API with oversized and wrongly typed inputs. Reported: errors and latency for the
normal clients, how fast the abusive requests were refused, and the server's memory before,
at its peak and after 35 quiet seconds (the server gives freed memory back every 30).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def _call(http, base: str, api: str, data: list) -> tuple[bool, str]:
    """One call through Gradio's HTTP API: (completed, message or result)."""
    r = http.post(f"{base}/gradio_api/call/{api}", json={"data": data})
    if r.status_code != 200:
        return False, f"HTTP {r.status_code}"
    event = r.json()["event_id"]
    kind, payload = None, ""
    with http.stream("GET", f"{base}/gradio_api/call/{api}/{event}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
                break
    return kind == "complete", payload


def run(
    questions: list[str], *, clients: int = 50, seconds: float = 30.0, quiet: float = 35.0, upload: bool = True
) -> dict:
    # The server's home (a copy of the model's ONNX export, 90 MB and more, the index, the
    # uploads and Gradio's own temporary files) goes when the run ends, however it ends.
    with tempfile.TemporaryDirectory(prefix="articleqa-load-", ignore_cleanup_errors=True) as home:
        return _run(home, questions, clients=clients, seconds=seconds, quiet=quiet, upload=upload)


def _run(home: str, questions: list[str], *, clients: int, seconds: float, quiet: float, upload: bool) -> dict:
    import httpx

    from .settings import data_home

    if (data_home() / "models").is_dir():  # the ONNX copy of the model, as on a machine in use
        shutil.copytree(data_home() / "models", Path(home) / "models")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "ARTICLEQA_HOME": home,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(Path(home) / "gradio"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "articleqa", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=120) as http:
            for _ in range(600):
                try:
                    if http.get(base + "/").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            _call(http, base, "ask", [questions[0], 5, "hybrid", []])  # warm
        baseline = _rss_mib(server.pid)
        stop = time.monotonic() + seconds
        normal: list[float] = []
        errors: list[str] = []
        abusive: list[tuple[str, float, bool]] = []
        uploads: list[tuple[float, bool]] = []
        peak = [baseline]

        def asker(n: int) -> None:
            with httpx.Client(timeout=120) as http:
                i = n
                while time.monotonic() < stop:
                    q = questions[i % len(questions)]
                    i += clients
                    start = time.perf_counter()
                    try:
                        ok, msg = _call(http, base, "ask", [q, 5, "hybrid", []])
                    except httpx.HTTPError as exc:
                        ok, msg = False, str(exc)
                    normal.append(time.perf_counter() - start)
                    if not ok:
                        errors.append(msg[:200])

        def abuser() -> None:
            cases = [
                ("5M-character history", ["Why?", 5, "hybrid", ["x" * 5_000_000]]),
                ("100k-turn history", ["and then?", 5, "hybrid", ["What are exosomes?"] * 100_000]),
                ("1 MB question", ["why " * 250_000, 5, "hybrid", []]),
                ("history=123", ["Why?", 5, "hybrid", 123]),
                ("k=10**9", ["Why?", 10**9, "hybrid", []]),
            ]
            with httpx.Client(timeout=120) as http:
                i = 0
                while time.monotonic() < stop:
                    name, data = cases[i % len(cases)]
                    i += 1
                    start = time.perf_counter()
                    try:
                        ok, _ = _call(http, base, "ask", data)
                    except httpx.HTTPError:
                        ok = False
                    abusive.append((name, time.perf_counter() - start, ok))

        def uploader() -> None:
            from gradio_client import Client, handle_file

            folder = Path(home) / "to-upload"
            folder.mkdir()
            client = Client(base + "/", verbose=False)
            n = 0
            while time.monotonic() < stop:
                n += 1
                path = folder / f"load-{n}.md"
                path.write_text(f"# Load test {n}\n\n" + " ".join(f"Otter fact {i} of upload {n}." for i in range(300)))
                start = time.perf_counter()
                try:
                    client.predict([handle_file(str(path))], api_name="/upload")
                    uploads.append((time.perf_counter() - start, True))
                except Exception:  # noqa: BLE001 - counted, reported
                    uploads.append((time.perf_counter() - start, False))

        def watch() -> None:
            while time.monotonic() < stop + 5:
                peak[0] = max(peak[0], _rss_mib(server.pid))
                time.sleep(0.25)

        threads = [threading.Thread(target=asker, args=(n,)) for n in range(clients)]
        threads += [threading.Thread(target=abuser), threading.Thread(target=watch)]
        threads += [threading.Thread(target=uploader)] if upload else []
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(quiet)
        after = _rss_mib(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    ordered = sorted(normal)

    def pct(values, q):
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1) if values else None

    return {
        "clients": clients,
        "seconds": seconds,
        "normal": {
            "asks": len(normal),
            "errors": len(errors),
            "p50_ms": pct(ordered, 0.5),
            "p95_ms": pct(ordered, 0.95),
        },
        "error_samples": errors[:5],
        "abusive": {
            name: {
                "requests": sum(n == name for n, _, _ in abusive),
                "refused": sum(n == name and not ok for n, _, ok in abusive),
                "p50_ms": pct(sorted(d for n, d, _ in abusive if n == name), 0.5),
                "max_ms": pct(sorted(d for n, d, _ in abusive if n == name), 1.0),
            }
            for name in dict.fromkeys(n for n, _, _ in abusive)
        },
        "uploads": {"done": sum(ok for _, ok in uploads), "failed": sum(not ok for _, ok in uploads)},
        "rss_mib": {"baseline": round(baseline), "peak": round(peak[0]), "after_quiet": round(after)},
    }


if __name__ == "__main__":
    print(json.dumps(run(["What are exosomes?", "Are exosomes safe?"], clients=5, seconds=5, quiet=1)))
