"""A server's memory goes back to the system after bursts (runtime/malloc.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, sys
from articleqa.runtime.malloc import large_blocks_apart
if sys.argv[1] == "apart":
    large_blocks_apart()
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(16 << 20))  # glibc then keeps blocks under 16 MB in its heap
block = libc.malloc(8 << 20)
ctypes.memset(block, 1, 8 << 20)
keep = libc.malloc(64)  # a small block after it, so freeing it cannot shrink the heap's top
before = rss()
libc.free(block)
print(before - rss())
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_a_large_freed_block_goes_back_to_the_system():
    def freed(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, timeout=120
        )
        return int(out.stdout)

    assert freed("apart") >= 7  # MiB: its own mapping, unmapped when freed
    assert freed("default") <= 1  # glibc's default: it stays in the heap, resident


ARENAS = r"""
import ctypes, os, sys, tempfile, threading
from articleqa.runtime.malloc import share_arenas
if sys.argv[1] == "shared":
    share_arenas(2)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
start, allocated, go = threading.Barrier(8), threading.Barrier(9), threading.Event()
def work():
    start.wait()  # all at once, so each finds the others' arenas busy
    blocks = [libc.malloc(200) for _ in range(20000)]
    allocated.wait()
    go.wait()
    for b in blocks:
        libc.free(b)
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
allocated.wait()  # every thread has its blocks: the arenas they took are all there to count
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = tempfile.mktemp()
f = libc.fopen(path.encode(), b"w"); libc.malloc_info(0, f); libc.fclose(f)
go.set()
for t in threads:
    t.join()
print(open(path).read().count("<heap nr="))
os.remove(path)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_threads_share_a_few_malloc_arenas():
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}

    def arenas(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, check=True, env=env, timeout=120
        )
        return int(out.stdout)

    assert arenas("shared") <= 2
    assert arenas("default") > 2  # glibc's default: a new arena for a thread that finds them busy
