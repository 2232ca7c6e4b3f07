"""Atomic writes: nothing half-written on disk.

Files are written to a temporary name in the same folder and renamed into place; folders likewise.

Example:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> with atomic_path(os.path.join(d, "a.txt")) as tmp:
    ...     _ = open(tmp, "w").write("hi")
    >>> open(os.path.join(d, "a.txt")).read()
    'hi'
"""
import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile

from .errors import TFCompressError, WriteError


def ensure_dir(path, what="output folder"):
    """Create folder ``path`` (and parents); a clear error if it is a file or cannot be made."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise TFCompressError(f"{what} {path!r} is a file, not a folder: choose another path")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise TFCompressError(f"cannot create {what} {path!r}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise TFCompressError(f"{what} {path!r} is not writable: choose another path")
    return path


@contextlib.contextmanager
def atomic_path(path, *, is_dir=False):
    """Yield a temporary path beside ``path``; on success rename it to ``path``, else remove it."""
    path = os.fspath(path)
    parent = ensure_dir(os.path.dirname(os.path.abspath(path)))
    base = os.path.basename(path)
    if is_dir:
        tmp = tempfile.mkdtemp(prefix=f".{base}.", suffix=".tmp", dir=parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=parent)
        os.close(fd)
    try:
        yield tmp
        # mkstemp/mkdtemp create private (0600/0700) entries; give the result the usual permissions.
        os.chmod(tmp, (0o777 if is_dir else 0o666) & ~_umask())
        if is_dir and os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno in _WRITE_ERRORS:
            raise WriteError(write_failed(path, e)) from None
        raise


#: errno values of a full disk, a quota, a read-only file system or a permission refusal
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM)


def write_failed(path, error):
    """One line for an ``OSError`` while writing ``path``: the reason, the path and the space left there.

    Example:
        >>> import errno
        >>> write_failed("/", OSError(errno.ENOSPC, "No space left on device"))  # doctest: +ELLIPSIS
        "cannot write '/': No space left on device (... free on '/'): free some space or choose another folder"
    """
    folder = os.path.dirname(os.path.abspath(path)) or os.sep
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        free = f"{shutil.disk_usage(folder).free / 1e9:.2f} GB"
    except OSError:
        free = "unknown space"
    return (f"cannot write {os.fspath(path)!r}: {error.strerror or error} ({free} free on {folder!r}): "
            "free some space or choose another folder")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path, data):
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return path


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically (NaN written as null)."""
    return write_text(path, json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def _jsonable(obj):
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def hash_file(digest, path, block=1 << 20):
    """Feed the bytes of the file ``path`` into ``digest`` (a :mod:`hashlib` object) in ``block``-byte reads,
    so a large file is never held in memory; returns ``digest``.

    Example:
        >>> import hashlib, tempfile
        >>> path = write_text(os.path.join(tempfile.mkdtemp(), "a.txt"), "abc")
        >>> hash_file(hashlib.sha256(), path).hexdigest() == hashlib.sha256(b"abc").hexdigest()
        True
    """
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            digest.update(chunk)
    return digest


def path_sha256(path):
    """The sha256 (hex) of a file, or of a folder (its files' relative paths and contents, in sorted order).

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = write_text(os.path.join(d, "a"), "x")
        >>> path_sha256(d) == path_sha256(d) and len(path_sha256(os.path.join(d, "a")))
        64
    """
    if not os.path.isdir(path):
        return hash_file(hashlib.sha256(), path).hexdigest()
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            digest.update(hash_file(hashlib.sha256(), full).hexdigest().encode())
    return digest.hexdigest()

