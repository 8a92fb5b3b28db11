"""A server's memory goes back to the system after bursts (memory.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, sys
from articleqa.memory import large_blocks_apart
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
        out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
        return int(out.stdout)

    assert freed("apart") >= 7  # MiB: its own mapping, unmapped when freed
    assert freed("default") <= 1  # glibc's default: it stays in the heap, resident
