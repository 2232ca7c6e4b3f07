"""Hand the memory a finished stage freed back to the operating system, so that it does not sit in the
process under the next stage's peak.

TensorFlow's CPU tensors, tf.data's buffers and NumPy's small arrays come from the C allocator (glibc's
``malloc`` on Linux), which keeps freed pages for reuse instead of returning them; over a long run of
stages (a 21M-parameter teacher's training, then four students) they pile up. :func:`release_freed_memory`
collects Python's garbage, then asks the allocators to give their free pages back: glibc's ``malloc_trim``
(every arena) and, once pyarrow is loaded, its memory pool's ``release_unused``.

glibc also raises its ``mmap`` threshold (up to 32 MB) each time a large block is freed, after which
TensorFlow's tensors of a few MB come from the heap, where they fragment it and stay;
:func:`map_large_blocks` fixes the threshold, so that those blocks are mapped alone and go back to the OS
the moment they are freed (the 10^7-event teacher's build: 1,467 → 1,339 MB; the fits' peaks did not move).
"""
import ctypes
import ctypes.util
import functools
import gc
import sys

#: blocks of at least this many bytes get their own mapping (:func:`map_large_blocks`)
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


def map_large_blocks(threshold=MMAP_THRESHOLD):
    """Have glibc map every allocation of ``threshold`` bytes or more on its own (a fixed ``M_MMAP_THRESHOLD``),
    for the rest of the process; ``True`` when it was set, ``False`` where there is no glibc.

    Example:
        >>> map_large_blocks() in (True, False)
        True
    """
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))


def release_freed_memory():
    """Collect garbage and return the allocators' free pages to the OS; ``True`` when glibc's
    ``malloc_trim`` ran (Linux), ``False`` where there is no glibc (then only the garbage is collected).

    Example:
        >>> release_freed_memory() in (True, False)
        True
    """
    gc.collect()
    arrow = sys.modules.get("pyarrow")
    if arrow is not None and hasattr(arrow.default_memory_pool(), "release_unused"):
        arrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)  # returns 1 when some memory was released, 0 when there was none to release
    return True


@functools.lru_cache(maxsize=1)
def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    trim = getattr(_glibc(), "malloc_trim", None)  # musl and other libcs have no malloc_trim
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim
