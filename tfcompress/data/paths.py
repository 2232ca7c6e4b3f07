"""Where the real public datasets live on this machine.

tfcompress never downloads by itself except through TensorFlow Datasets (TFDS), which needs internet.
Loaders look for local files first, in this order:

1. an explicit ``path`` argument (it must exist);
2. the folder in the environment variable ``TFCOMPRESS_DATA``;
3. ``../shared/data`` next to the repository that holds the ``tfcompress`` package;
4. ``/work/shared/data``;
5. for Fashion-MNIST also ``/usr/share/datasets/fashion-mnist/`` (Debian package ``dataset-fashion-mnist``).

Example:
    >>> sorted(DATASETS)
    ['fashion_mnist', 'movielens-small', 'reviews']
    >>> "ml-latest-small.zip" in missing_data_message("movielens-small")
    True
"""
import os

from ..errors import TFCompressError

ENV_VAR = "TFCOMPRESS_DATA"

#: dataset name -> (folder under the shared data dir, the files that folder should hold, TFDS name or None)
DATASETS = {
    "movielens-small": ("movielens-small", ("ml-latest-small.zip",), "movielens/latest-small-ratings"),
    "fashion_mnist": (
        "fashion_mnist",
        ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        "fashion_mnist",
    ),
    "reviews": ("reviews", ("Womens Clothing E-Commerce Reviews.csv.zip",), None),
}

_ALIASES = {
    "movielens": "movielens-small", "movielens_small": "movielens-small", "ml-latest-small": "movielens-small",
    "fashion-mnist": "fashion_mnist", "fashionmnist": "fashion_mnist",
    "review": "reviews", "clothing-reviews": "reviews",
}

_EXTRA_DIRS = {"fashion_mnist": ("/usr/share/datasets/fashion-mnist",)}


def _repo_root():
    # .../<repo>/tfcompress/data/paths.py -> .../<repo>
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _canonical(name):
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise TFCompressError(f"unknown dataset {name!r}: use one of {sorted(DATASETS)}")
    return key


def shared_data_dir():
    """The first existing shared data folder (``$TFCOMPRESS_DATA``, ``<repo>/../shared/data``,
    ``/work/shared/data``), or None.

    Example:
        >>> d = shared_data_dir()
        >>> d is None or os.path.isdir(d)
        True
    """
    candidates = [
        os.environ.get(ENV_VAR),
        os.path.join(os.path.dirname(_repo_root()), "shared", "data"),
        "/work/shared/data",
    ]
    for c in candidates:
        if c and os.path.isdir(c):
            return os.path.abspath(c)
    return None


def find_dataset(name, path=None):
    """A local file or folder for dataset ``name`` ("movielens-small", "fashion_mnist", "reviews"), or None.

    An explicit ``path`` wins and must exist (else :class:`TFCompressError`). Without it, the dataset's
    folder under :func:`shared_data_dir` is used, and for Fashion-MNIST also
    ``/usr/share/datasets/fashion-mnist/``. None means "not on this machine".

    Example:
        >>> p = find_dataset("movielens-small")
        >>> p is None or os.path.exists(p)
        True
    """
    key = _canonical(name)
    if path is not None:
        path = os.path.expanduser(os.fspath(path))
        if not os.path.exists(path):
            raise TFCompressError(
                f"{key} path {path!r} does not exist: pass an existing file or folder, or path=None to search "
                f"the shared data folder")
        return path
    folder, files, _ = DATASETS[key]
    dirs = []
    base = shared_data_dir()
    if base is not None:
        dirs.append(os.path.join(base, folder))
    dirs.extend(_EXTRA_DIRS.get(key, ()))
    for d in dirs:
        if os.path.isdir(d) and any(os.path.exists(os.path.join(d, f)) for f in files):
            return d
    return None


def missing_data_message(name):
    """A one-line message saying where to put the files of dataset ``name`` (or that TFDS needs internet).

    Example:
        >>> "TensorFlow Datasets" in missing_data_message("fashion_mnist")
        True
    """
    key = _canonical(name)
    folder, files, tfds_name = DATASETS[key]
    where = f"${ENV_VAR}/{folder}/ (or <repo>/../shared/data/{folder}/, or /work/shared/data/{folder}/)"
    msg = f"{key} data not found: put {', '.join(repr(f) for f in files)} in {where}, or pass path=..."
    if key == "fashion_mnist":
        msg += " (apt-get install dataset-fashion-mnist also works: /usr/share/datasets/fashion-mnist/)"
    if tfds_name:
        msg += f"; the TensorFlow Datasets fallback {tfds_name!r} needs internet (or a prepared TFDS cache)"
    else:
        msg += "; there is no stock TensorFlow Datasets dataset for this CSV, so it must be a local file"
    return msg


def tfds_load(name, **kwargs):
    """Load dataset ``name`` through TensorFlow Datasets; any failure becomes one clear TFCompressError.

    Used only as the last resort when no local files exist (TFDS downloads need internet).

    Example:
        >>> try:
        ...     tfds_load("reviews")
        ... except TFCompressError as e:
        ...     "no stock TensorFlow Datasets" in str(e)
        True
    """
    key = _canonical(name)
    tfds_name = DATASETS[key][2]
    if tfds_name is None:
        raise TFCompressError(missing_data_message(key))
    try:
        from .. import _keras  # noqa: F401  (choose tf_keras before TFDS imports TensorFlow)
        import tensorflow_datasets as tfds

        return tfds.load(tfds_name, **kwargs)
    except Exception as e:  # no internet, no TFDS, broken cache...
        said = str(e).splitlines()[0][:160] if str(e) else ""
        raise TFCompressError(f"{missing_data_message(key)} (TFDS said: {type(e).__name__}: {said})") from None
