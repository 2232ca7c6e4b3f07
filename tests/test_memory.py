"""release_freed_memory gives the C allocator's free pages back: measured on the process's resident set."""
import ctypes
import ctypes.util
import os
import sys

import pytest

from tfcompress.pipeline.memory import _malloc_trim, release_freed_memory

glibc = pytest.mark.skipif(_malloc_trim() is None, reason="no glibc malloc_trim on this platform")


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@glibc
def test_freed_heap_blocks_leave_the_resident_set():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(4096) for _ in range(40_000)]  # ~160 MB of small heap blocks
    for b in blocks:
        ctypes.memset(b, 1, 4096)  # touched, so resident
    before_free = _rss_mb()
    for b in blocks[:-1]:  # the last block pins the heap's top: glibc cannot shrink it on free alone
        libc.free(b)
    kept = _rss_mb()
    assert release_freed_memory() is True
    after = _rss_mb()
    libc.free(blocks[-1])
    assert kept - before_free > -40, "free alone already returned most pages; the test measures nothing"
    assert kept - after > 100, f"RSS {kept:.0f} MB -> {after:.0f} MB after release_freed_memory"


def test_without_glibc_it_only_collects(monkeypatch):
    from tfcompress.pipeline import memory

    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.release_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_the_pipeline_releases_after_each_stage(monkeypatch):
    from tfcompress.pipeline import RunConfig, pipeline

    calls = []
    monkeypatch.setattr(pipeline, "release_freed_memory", lambda: calls.append(1))
    pipe = pipeline.Pipeline(RunConfig(quick=True, stages=("baseline",), verbose=False))
    pipe.run_all()
    assert len(calls) == 2  # after the data, after the one stage


_FRAGMENTS = """
import ctypes, ctypes.util, os, sys
from tfcompress.pipeline.memory import map_large_blocks
if sys.argv[1] == "fixed":
    assert map_large_blocks() is True
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
libc.free(libc.malloc(16 << 20))  # a freed big mapping: glibc's dynamic threshold rises to 16 MB
blocks = [libc.malloc(2 << 20) for _ in range(50)]  # 100 MB in 2 MB tensors' worth of blocks
for b in blocks:
    ctypes.memset(b, 1, 2 << 20)
pin = libc.malloc(2 << 20)  # a live block above them (a small one could land in a hole below)
before = rss()
for b in blocks:
    libc.free(b)
print(before - rss())
"""


@glibc
def test_large_blocks_mapped_alone_leave_the_resident_set_when_freed():
    import subprocess

    def returned_mb(mode):
        out = subprocess.run([sys.executable, "-c", _FRAGMENTS, mode], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return float(out.stdout.split()[-1])

    dynamic, fixed = returned_mb("dynamic"), returned_mb("fixed")
    assert dynamic < 20, f"glibc's dynamic threshold returned {dynamic:.0f} MB: the test measures nothing"
    assert fixed > 80, f"with map_large_blocks only {fixed:.0f} MB of 100 MB went back to the OS"


def test_the_pipeline_maps_large_blocks_alone(monkeypatch):
    from tfcompress.pipeline import RunConfig, pipeline

    calls = []
    monkeypatch.setattr(pipeline, "map_large_blocks", lambda: calls.append(1))
    pipeline.Pipeline(RunConfig(quick=True, stages=("baseline",), verbose=False))
    assert calls == [1]
