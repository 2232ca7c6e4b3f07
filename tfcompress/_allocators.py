"""How the process's allocators keep freed memory, set at ``import tfcompress`` (before TensorFlow starts).

* TensorFlow's oneDNN kernels (on by default on x86) take every tensor of 256 KB+ from a pool of their own
  that never shrinks; ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR=1`` (set unless you set it) sends them to the C
  allocator, which hands freed memory back. TensorFlow reads it once, at its first large allocation.
* glibc's ``malloc`` gives each thread that contends for it an arena of its own, up to 8 per core, and
  every arena keeps its own freed pages: tf.data's, pyarrow's and TensorFlow's threads each hold a
  high-water mark. :func:`limit_malloc_arenas` caps them at :data:`MALLOC_ARENAS` (glibc's
  ``M_ARENA_MAX``) unless ``MALLOC_ARENA_MAX`` is set in the environment (glibc then uses yours).

Figures in ``docs/scale/release_memory.md``; :func:`tfcompress.pipeline.memory.release_freed_memory`
returns what a finished stage freed.

Example:
    >>> malloc_trim() is None or callable(malloc_trim())
    True
"""
import ctypes
import ctypes.util
import functools
import os
import sys

#: glibc arenas the process may use (its default: 8 per core); fewer arenas, fewer separate free lists
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def return_freed_tensors():
    """Have oneDNN's CPU allocator take large tensors from the C allocator, unless
    ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR`` is set already."""
    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")


def limit_malloc_arenas(arenas=MALLOC_ARENAS):
    """Cap glibc's arenas at ``arenas`` (arenas made later count; those already made stay); ``True`` when
    set, ``False`` where ``MALLOC_ARENA_MAX`` is in the environment or there is no glibc.

    Example:
        >>> limit_malloc_arenas() in (True, False)
        True
    """
    libc = glibc()
    if "MALLOC_ARENA_MAX" in os.environ or getattr(libc, "mallopt", None) is None:
        return False
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return libc.mallopt(_M_ARENA_MAX, int(arenas)) == 1


@functools.lru_cache(maxsize=1)
def glibc():
    """The C library as a ``ctypes.CDLL`` on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def malloc_trim():
    """glibc's ``malloc_trim`` (``trim(0)`` returns every arena's free pages), or None (musl, macOS)."""
    trim = getattr(glibc(), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim
