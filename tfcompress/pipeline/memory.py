"""Hand the memory a finished stage freed back to the operating system, so that it does not sit in the
process under the next stage's peak.

TensorFlow's CPU tensors, tf.data's buffers and NumPy's small arrays come from the C allocator (glibc's
``malloc`` on Linux), which keeps freed pages for reuse instead of returning them; over a long run of
stages (a 21M-parameter teacher's training, then four students) they pile up. :func:`release_freed_memory`
collects Python's garbage, then asks the allocators to give their free pages back: glibc's ``malloc_trim``
(every arena) and, once pyarrow is loaded, its memory pool's ``release_unused``.

TensorFlow's oneDNN kernels (on by default on x86) would otherwise take every tensor of 256 KB+ from a pool
of their own that never shrinks, so the teacher's training stays resident under every later stage;
``import tfcompress`` sets ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`` (unless you set it), which sends those
tensors to the C allocator too (the 10^7-event run's highest phase, 150 steps a fit: 1,724 → 1,529 MB, at
the same training speed; ``docs/scale/release_memory.md``).
"""
import ctypes
import ctypes.util
import functools
import gc
import sys

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
