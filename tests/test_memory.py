"""release_freed_memory gives the C allocator's free pages back: measured on the process's resident set."""
import ctypes
import ctypes.util
import os
import sys

import pytest

from tfcompress._allocators import malloc_trim
from tfcompress.pipeline.memory import release_freed_memory

glibc = pytest.mark.skipif(malloc_trim() is None, reason="no glibc malloc_trim on this platform")


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

    monkeypatch.setattr(memory, "malloc_trim", lambda: None)
    assert memory.release_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_the_pipeline_releases_after_each_stage(monkeypatch):
    from tfcompress.pipeline import RunConfig, pipeline

    calls = []
    monkeypatch.setattr(pipeline, "release_freed_memory", lambda: calls.append(1))
    pipe = pipeline.Pipeline(RunConfig(quick=True, stages=("baseline",), verbose=False))
    pipe.run_all()
    assert len(calls) == 2  # after the data, after the one stage


_TENSORS = """
import os
import tfcompress
from tfcompress import tf
from tfcompress.pipeline.memory import release_freed_memory
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
tf.matmul(tf.ones([64, 64]), tf.ones([64, 64]))  # kernels loaded before the baseline
tensors = [tf.random.uniform([512, 1024]) for _ in range(50)]  # 100 MB in 2 MB tensors
held = rss()
del tensors
release_freed_memory()  # as the pipeline does after each stage
print(os.environ.get("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "unset"), held - rss())
"""


@glibc
def test_tensorflows_freed_tensors_leave_the_resident_set():
    import subprocess

    inherited = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"}

    def run(**env):  # -> (the setting the child ran with, MB of freed tensors that left it)
        out = subprocess.run([sys.executable, "-c", _TENSORS], capture_output=True, text=True, timeout=300,
                             env={**inherited, "TF_CPP_MIN_LOG_LEVEL": "3", **env})
        assert out.returncode == 0, out.stderr[-2000:]
        setting, returned = out.stdout.split()[-2:]
        return setting, float(returned)

    setting, pooled = run(TF_ONEDNN_USE_SYSTEM_ALLOCATOR="0")
    assert setting == "0", "import tfcompress overrode the user's TF_ONEDNN_USE_SYSTEM_ALLOCATOR"
    if pooled > 80:
        pytest.skip(f"{pooled:.0f} MB left without the setting: this TensorFlow has no oneDNN pool to bypass")
    setting, returned = run()
    assert setting == "1", f"import tfcompress left TF_ONEDNN_USE_SYSTEM_ALLOCATOR {setting} ({returned:.0f} MB left)"
    assert returned > 80, f"after import tfcompress only {returned:.0f} MB of 100 MB of freed tensors left the process"


_ARENAS = """
import ctypes, os, sys, tempfile, threading
if sys.argv[1] == "tfcompress":
    import tfcompress
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
together = threading.Barrier(12)
def work():  # a thread's first malloc takes an arena of its own while glibc's limit allows (all alive at once:
    block = libc.malloc(1000)  # an ended thread's arena goes to the next thread)
    together.wait()
    libc.free(block)
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
libc.fopen.restype, libc.fopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fclose.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
path = os.path.join(tempfile.mkdtemp(), "info.xml")
fp = libc.fopen(path.encode(), b"w"); libc.malloc_info(0, fp); libc.fclose(fp)
print(open(path).read().count("<heap nr="))
"""


@glibc
def test_import_caps_glibcs_arenas_unless_you_set_them():
    import subprocess

    inherited = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}

    def arenas(first, **env):
        out = subprocess.run([sys.executable, "-c", _ARENAS, first], capture_output=True, text=True,
                             timeout=120, env={**inherited, **env})
        assert out.returncode == 0, out.stderr[-2000:]
        return int(out.stdout.split()[-1])

    from tfcompress._allocators import MALLOC_ARENAS

    uncapped = arenas("plain")
    if uncapped <= MALLOC_ARENAS:
        pytest.skip(f"glibc made only {uncapped} arenas for 12 threads here: nothing to cap")
    assert arenas("tfcompress") <= MALLOC_ARENAS
    assert arenas("tfcompress", MALLOC_ARENA_MAX="6") > MALLOC_ARENAS, "import tfcompress overrode MALLOC_ARENA_MAX"
