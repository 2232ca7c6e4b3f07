"""Hand the memory a finished stage freed back to the operating system, so that it does not sit in the
process under the next stage's peak.

TensorFlow's CPU tensors, tf.data's buffers and NumPy's small arrays come from the C allocator (glibc's
``malloc`` on Linux), which keeps freed pages for reuse instead of returning them; over a long run of
stages (a 21M-parameter teacher's training, then four students) they pile up. :func:`release_freed_memory`
collects Python's garbage, then asks the allocators to give their free pages back: glibc's ``malloc_trim``
(every arena) and, once pyarrow is loaded, its memory pool's ``release_unused``.

``import tfcompress`` has already set the allocators up to keep less (:mod:`tfcompress._allocators`):
oneDNN's large tensors from the C allocator rather than oneDNN's pool that never shrinks, and glibc's
arenas capped at two (with the export's ``buffer_offset``, the 10^7-event run's peak: 1,882 → 1,589 MB;
``docs/scale/release_memory.md``).
"""
import gc
import sys

from .._allocators import malloc_trim


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
    trim = malloc_trim()
    if trim is None:
        return False
    trim(0)  # returns 1 when some memory was released, 0 when there was none to release
    return True

