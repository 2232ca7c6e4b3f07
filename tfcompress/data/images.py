"""Product images: Fashion-MNIST from its raw IDX files, and a tiny synthetic stand-in for tests.

:func:`load_fashion_mnist` parses the standard ``*-idx3-ubyte.gz`` / ``*-idx1-ubyte.gz`` files with NumPy
(no TensorFlow), checking magic numbers, sizes and counts. :func:`synthetic_images` makes a small,
deterministic, learnable image set when no data is at hand.

Example:
    >>> x, y = synthetic_images(n=100, seed=0)
    >>> x.shape, x.dtype.name, sorted(set(y.tolist())) == list(range(10))
    ((100, 28, 28), 'uint8', True)
    >>> check_images(x).shape
    (100, 28, 28)
"""
import gzip
import os
import zlib

import numpy as np

from ..errors import TFCompressError
from .paths import find_dataset, missing_data_message, tfds_load

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path, *, expect_magic=None):
    """Read one IDX file (gzipped if it ends in ``.gz``) of unsigned bytes into a NumPy array.

    Raises :class:`TFCompressError` naming the file when it is truncated, corrupt or not the expected kind.

    Example:
        >>> import tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "l.gz")
        >>> with gzip.open(p, "wb") as f:
        ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 4, 5, 6]))
        >>> read_idx(p, expect_magic=2049).tolist()
        [4, 5, 6]
    """
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except FileNotFoundError:
        raise TFCompressError(f"IDX file {path!r} not found: {missing_data_message('fashion_mnist')}") from None
    except (EOFError, OSError, zlib.error) as e:
        raise TFCompressError(
            f"IDX file {path!r} is truncated or corrupt ({type(e).__name__}: {e}): download it again") from None
    if len(raw) < 4:
        raise TFCompressError(f"IDX file {path!r} is truncated ({len(raw)} bytes, no header): download it again")
    magic = int.from_bytes(raw[:4], "big")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise TFCompressError(
            f"IDX file {path!r} has magic number {magic}, not an unsigned-byte IDX file: check the file")
    if expect_magic is not None and magic != expect_magic:
        raise TFCompressError(
            f"IDX file {path!r} has magic number {magic}, expected {expect_magic}: images and labels swapped?")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise TFCompressError(f"IDX file {path!r} has a truncated header: download it again")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise TFCompressError(
            f"IDX file {path!r} holds {len(raw) - header} data bytes but its header {dims} says "
            f"{expected - header}: the file is truncated or corrupt, download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_file(folder, stem):
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    raise TFCompressError(f"Fashion-MNIST file {stem}.gz is missing from {folder!r}: "
                          f"{missing_data_message('fashion_mnist')}")


def _read_split(folder, split):
    img_stem, lab_stem = _FILES[split]
    img_path, lab_path = _find_file(folder, img_stem), _find_file(folder, lab_stem)
    x = read_idx(img_path, expect_magic=IMAGES_MAGIC)
    y = read_idx(lab_path, expect_magic=LABELS_MAGIC)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        raise TFCompressError(f"{img_path!r} holds images of shape {x.shape[1:]}, expected (28, 28)")
    if y.ndim != 1 or len(y) != len(x):
        raise TFCompressError(f"{lab_path!r} has {len(y)} labels but {img_path!r} has {len(x)} images")
    if y.size and y.max() >= len(FASHION_MNIST_CLASSES):
        raise TFCompressError(f"{lab_path!r} has label {int(y.max())} outside 0..9: check the file")
    return x, y.astype(np.int64)


def load_fashion_mnist(path=None, *, use_tfds=True):
    """Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``: uint8 ``[N, 28, 28]`` and int64 labels 0..9.

    ``path`` is a folder with the four IDX ``.gz`` files; by default the shared data folder and
    ``/usr/share/datasets/fashion-mnist/`` are searched, then TFDS ``fashion_mnist`` (needs internet).
    Class names are in :data:`FASHION_MNIST_CLASSES`.

    Example:
        >>> (x, y), (xt, yt) = load_fashion_mnist()  # doctest: +SKIP
        >>> x.shape, xt.shape  # doctest: +SKIP
        ((60000, 28, 28), (10000, 28, 28))
    """
    folder = find_dataset("fashion_mnist", path)
    if folder is not None:
        if os.path.isfile(folder):
            folder = os.path.dirname(folder)
        return _read_split(folder, "train"), _read_split(folder, "test")
    if not use_tfds:
        raise TFCompressError(missing_data_message("fashion_mnist"))
    splits = tfds_load("fashion_mnist", split=["train", "test"], batch_size=-1, as_supervised=True)
    import tensorflow_datasets as tfds

    out = []
    for x, y in tfds.as_numpy(splits):
        out.append((np.asarray(x, np.uint8).reshape(-1, 28, 28), np.asarray(y, np.int64)))
    return tuple(out)


def _templates(size, classes):
    """Fixed (seed-independent) class templates in [0, 1]: oriented stripes plus a blob on a ring."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / max(size - 1, 1)
    out = np.empty((classes, size, size))
    for k in range(classes):
        theta = np.pi * k / classes
        freq = 2.0 + (k % 3)
        stripes = 0.5 + 0.5 * np.cos(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)))
        phi = 2 * np.pi * k / classes
        cx, cy = 0.5 + 0.28 * np.cos(phi), 0.5 + 0.28 * np.sin(phi)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.12 ** 2))
        t = 0.45 * stripes + 0.8 * blob
        out[k] = t / t.max()
    return out


def synthetic_images(n=512, size=28, classes=10, seed=0):
    """A small deterministic, learnable image set ``(x uint8 [n, size, size], y int64)`` for tests.

    Each class has a fixed pattern (oriented stripes and a bright blob); samples add a shift of up to 2
    pixels, a contrast change and Gaussian noise drawn from ``seed``. Classes are balanced (n // classes each,
    the remainder spread over the first classes). Different seeds give different samples of the same classes.

    Example:
        >>> x1, y1 = synthetic_images(64, seed=3)
        >>> x2, y2 = synthetic_images(64, seed=3)
        >>> bool((x1 == x2).all() and (y1 == y2).all())
        True
    """
    n, size, classes = int(n), int(size), int(classes)
    if n < 1:
        raise TFCompressError(f"synthetic_images n = {n} must be >= 1")
    if size < 8:
        raise TFCompressError(f"synthetic_images size = {size} is too small: use at least 8")
    if classes < 2:
        raise TFCompressError(f"synthetic_images classes = {classes} must be >= 2")
    rng = np.random.default_rng(seed)
    templates = _templates(size, classes)
    y = rng.permutation(np.arange(n) % classes).astype(np.int64)
    x = templates[y]
    shifts = rng.integers(-2, 3, (n, 2))
    x = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(x, shifts)])
    contrast = rng.uniform(0.7, 1.0, (n, 1, 1))
    x = contrast * x + rng.normal(0.0, 0.15, x.shape)
    x = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    return x, y


def check_images(x, size=28):
    """Check a batch of grey images: shape ``[N, size, size]`` (or ``[N, size, size, 1]``), numeric, finite,
    values in [0, 255] (uint8 or float). Returns ``x`` as a NumPy array; raises :class:`TFCompressError`.

    Example:
        >>> check_images(np.zeros((2, 28, 28), np.uint8)).dtype.name
        'uint8'
        >>> try:
        ...     check_images(np.zeros((2, 32, 32)))
        ... except TFCompressError as e:
        ...     print(str(e).split(":")[0])
        images have shape (2, 32, 32)
    """
    arr = np.asarray(x)
    ok_shape = (arr.ndim == 3 and arr.shape[1:] == (size, size)) or (
        arr.ndim == 4 and arr.shape[1:] == (size, size, 1))
    if not ok_shape:
        raise TFCompressError(
            f"images have shape {arr.shape}: expected [N, {size}, {size}] or [N, {size}, {size}, 1] grey images")
    if arr.shape[0] == 0:
        raise TFCompressError("images batch is empty: pass at least one image")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)) \
            or arr.dtype == np.bool_:
        raise TFCompressError(f"images have dtype {arr.dtype}: expected uint8 (0..255) or float pixels")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise TFCompressError("images contain NaN or infinite pixels: clean them first")
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi > 255:
            raise TFCompressError(
                f"image pixels range over [{lo:g}, {hi:g}], outside [0, 255]: pass uint8 or 0..255 / 0..1 floats")
    return arr
