"""What every benchmark shares: the machine it ran on, percentiles, memory, folder sizes, recall."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import faiss
    import sentence_transformers
    import torch

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "faiss": faiss.__version__,
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else 0.0


def memory_mib() -> dict[str, float]:
    """This process's resident memory in MiB: all of it (`rss`), its peak, and the part that is
    its own (`anon`) rather than pages of index files mapped into it (`file`, page cache that
    the system can drop and re-read)."""
    fields = {"VmRSS": "rss", "VmHWM": "peak", "RssAnon": "anon", "RssFile": "file"}
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in fields:
            out[fields[key]] = round(int(line.split()[1]) / 1024, 1)
    return out


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB."""
    m = memory_mib()
    return m["rss"], m["peak"]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row of `exact` (true neighbours) that `found` holds too."""
    hits = [len(set(f.tolist()) & set(e.tolist())) / max(len(e), 1) for f, e in zip(found, exact)]
    return float(np.mean(hits)) if hits else 0.0


def pyplot():
    """matplotlib's pyplot drawing to files only (no display here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write(results: dict, out: str | Path | None) -> None:
    """The results as JSON on stdout, and in `out` when given."""
    if out:
        Path(out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, ensure_ascii=False))


def api_call(http, base: str, api: str, data: list) -> tuple[bool, str]:
    """One call of a named endpoint of the chat UI through Gradio's plain HTTP API (POST, then
    read its event stream), with an httpx client: (completed, the result or the error)."""
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
