"""The index folder on disk: the manifest naming the live segments, published atomically; the
writers' lock; and the clean-up of whatever an interrupted write left behind.

    index/
      manifest.json          the current state: live segments, deleted keys, what built it
      segments/<name>/       immutable segments (segment.py)
      deleted-<gen>.npy      keys of deleted passages still inside live segments
      codebook-<hash>.faiss  token-vector codebooks the segments name
      .lock, .writer         the writers' lock, and who holds it

A write adds new files only, then replaces manifest.json in one rename: a reader sees the old
state or the new one, and a crash at any moment leaves one of them. Nothing is ever renamed
over a folder, so the index folder keeps its permissions.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from articleqa.errors import IndexBusy, IndexCorrupt, rebuild_command

MANIFEST = "manifest.json"
SEGMENTS = "segments"
LOCK = ".lock"
WRITER = ".writer"
_TMP = ".tmp-"
LEGACY_FILES = (
    "articles.jsonl",
    "chunks.jsonl",
    "vectors.faiss",
    "sentences.npy",
    "tokens.npy",
    "token_scales.npy",
    "token_offsets.npy",
)


class RowFile:
    """A .npy file whose rows are read on demand with pread, not memory-mapped.

    A question reads a hundred candidates' rows at random. Through a memory map every page touched
    stays resident in the process, and the kernel maps the cached pages around each fault too: a
    server's memory grew by 360 MB of token codes in 200 questions at 100k passages. Reading the
    rows leaves nothing behind. The open descriptor outlives the file's name, like a mapping.
    """

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as fh:
            fmt = np.lib.format
            version = fmt.read_magic(fh)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(fh)
            self._offset = fh.tell()
        self.path = Path(path)
        if fortran or not shape:
            raise ValueError(f"{path}: not a C-ordered array of rows")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self._row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        self._fd = os.open(path, os.O_RDONLY)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self._read(0, len(self))
        return whole if dtype is None else whole.astype(dtype)

    def _read(self, start: int, stop: int) -> np.ndarray:
        size = (stop - start) * self._row_bytes
        data = os.pread(self._fd, size, self._offset + start * self._row_bytes) if size else b""
        if len(data) != size:
            index = self.path.parents[2] if len(self.path.parents) > 2 else self.path.parent
            raise IndexCorrupt(
                f"{self.path} ends early ({len(data)} of {size} bytes read): the index is damaged; "
                f"check it with `articleqa info --verify`, then {rebuild_command(index)}"
            )
        return np.frombuffer(data, self.dtype).reshape((stop - start, *self.shape[1:]))

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._read(start, max(start, stop))
            key = np.arange(start, stop, step)
        rows = np.asarray(key, dtype=np.int64).reshape(-1)
        if not len(rows):
            return np.zeros((0, *self.shape[1:]), self.dtype)
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"row {int(rows.max())} of {len(self)}")
        # One read per run of consecutive rows (a passage's word pieces are one run).
        breaks = np.nonzero(np.diff(rows) != 1)[0] + 1
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [len(rows)]])
        parts = [self._read(int(rows[a]), int(rows[b - 1]) + 1) for a, b in zip(starts, ends)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def read_manifest(folder: Path) -> dict | None:
    """The published manifest, or None where there is none."""
    path = Path(folder) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexCorrupt(f"{path} is unreadable ({exc}): check its permissions") from exc
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise IndexCorrupt(f"{path} is damaged (not UTF-8 text: {where}): {rebuild_command()}") from exc
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise IndexCorrupt(f"{path} is damaged ({exc}): {rebuild_command()}") from exc
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"{path} is not a manifest: {rebuild_command()}")
    return manifest


def stamp(folder: Path) -> tuple | None:
    """What changes whenever a new manifest is published (a cheap check for readers)."""
    try:
        st = os.stat(Path(folder) / MANIFEST)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def publish(folder: Path, manifest: dict) -> None:
    """Replace manifest.json in one atomic rename, durably."""
    folder = Path(folder)
    tmp = folder / f"{_TMP}{MANIFEST}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        crash_point("manifest-written")
        os.replace(tmp, folder / MANIFEST)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_dir(folder: Path, name: str) -> Path:
    return Path(folder) / SEGMENTS / name


def new_segment(folder: Path, generation: int) -> tuple[Path, str]:
    """A fresh temporary path to write a segment into, and the name it will take."""
    name = f"{generation:06d}-{uuid.uuid4().hex[:8]}"
    (Path(folder) / SEGMENTS).mkdir(parents=True, exist_ok=True)
    return Path(folder) / SEGMENTS / f"{_TMP}{name}", name


def finish_segment(tmp: Path, name: str) -> Path:
    """Move a completely written segment to its name (still unseen until a manifest names it)."""
    final = tmp.parent / name
    os.rename(tmp, final)
    fsync_dir(tmp.parent)
    crash_point("segment-written")
    return final


def save_deleted(folder: Path, generation: int, keys: np.ndarray) -> str | None:
    if not len(keys):
        return None
    name = f"deleted-{generation:06d}.npy"
    tmp = Path(folder) / f"{_TMP}{name}"
    with open(tmp, "wb") as fh:
        np.save(fh, np.unique(np.asarray(keys, dtype=np.int64)), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, Path(folder) / name)
    return name


def load_deleted(folder: Path, name: str | None) -> np.ndarray:
    if not name:
        return np.zeros(0, np.int64)
    return np.load(Path(folder) / name, allow_pickle=False)


@contextmanager
def write_lock(folder: Path, *, timeout: float = 600.0) -> Iterator[None]:
    """Hold the index's write lock (a file lock the system releases when the process dies).

    A second writer waits up to `timeout` seconds, then fails naming who holds the lock.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise IndexBusy(
            f"{folder} is being changed by another process ({_holder(folder)}) and it did not finish within "
            f"{timeout:.0f} s: try again when it is done"
        ) from None
    try:
        (folder / WRITER).write_text(f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}\n")
        yield
    finally:
        lock.release()


def _holder(folder: Path) -> str:
    try:
        return (folder / WRITER).read_text().strip()
    except OSError:
        return "unknown"


def only_leftovers(folder: Path) -> bool:
    """True if the folder holds nothing but what a first write leaves when it dies before its
    first manifest (the lock, unfinished segments, temporary files): an empty index, not a damaged
    one. Its first successful write collects them."""
    for path in Path(folder).iterdir():
        name = path.name
        if name in (LOCK, WRITER) or name.startswith((_TMP, "deleted-", "codebook-")):
            continue
        if name == SEGMENTS and path.is_dir():
            continue
        return False
    return True


def collect_garbage(folder: Path, manifest: dict) -> list[str]:
    """Remove what the manifest does not name: unfinished or replaced segments, old deletion
    lists, unused codebooks, temporary files. Call only while holding the write lock."""
    folder = Path(folder)
    live = {s["name"] for s in manifest.get("segments", [])}
    keep_files = {MANIFEST, LOCK, WRITER, manifest.get("deleted") or ""}
    keep_files |= {s.get("codebook") or "" for s in manifest.get("segments", [])}
    keep_files.add((manifest.get("tokens") or {}).get("codebook") or "")
    removed = []
    segments = folder / SEGMENTS
    if segments.is_dir():
        for path in segments.iterdir():
            if path.name not in live:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                removed.append(f"{SEGMENTS}/{path.name}")
    for path in folder.iterdir():
        name = path.name
        if path.is_file() and name not in keep_files:
            if name.startswith(_TMP) or name.startswith("deleted-") or name.startswith("codebook-"):
                path.unlink(missing_ok=True)
                removed.append(name)
    # Format 3 kept whole-index files at the top (a migration or rebuild leaves them behind), and
    # saved by renaming whole folders, whose leftovers sit beside the index.
    for name in LEGACY_FILES:
        if (folder / name).is_file():
            (folder / name).unlink(missing_ok=True)
            removed.append(name)
    if (folder / "bm25").is_dir():
        shutil.rmtree(folder / "bm25", ignore_errors=True)
        removed.append("bm25")
    for path in folder.parent.glob(f".{folder.name}.tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    for path in folder.parent.glob(f".{folder.name}.old-*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(str(path))
    return removed


def crash_point(name: str) -> None:
    """Die here, as kill -9 would, when ARTICLEQA_CRASH_AT names this point (crash tests only)."""
    wanted = os.environ.get("ARTICLEQA_CRASH_AT")
    if wanted and wanted == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
