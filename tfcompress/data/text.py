"""Text -> int32 token ids with a WordPiece vocabulary, outside the model (so TFLite takes plain ids).

keras-nlp (Keras 3) is used here **only** for tokenization: :func:`learn_vocabulary` runs its
``compute_word_piece_vocabulary`` on the training texts and :func:`make_tokenizer` builds its
``WordPieceTokenizer(sequence_length=...)``, which :func:`text_dataset` maps over a ``tf.data`` pipeline.
The tf_keras models (:mod:`tfcompress.models.text`) therefore take an int32 ``token_ids`` input
``[batch, sequence_length]``, with 0 = ``[PAD]`` and 1 = ``[UNK]``.

:func:`save_vocabulary` writes the tokenizer beside the model as a folder holding ``vocab.txt`` (one
WordPiece token per line, the format every WordPiece implementation reads) and ``tokenizer.json`` (the
settings: sequence length, lower-casing, accent stripping), atomically; :func:`load_tokenizer` rebuilds the
exact same tokenizer, so the app reproduces the training ids.

keras_nlp is imported lazily (first call), after tfcompress has chosen tf_keras; Keras 3 and tf_keras
coexist in one process (``tests/test_text.py`` checks it).

Example:
    >>> texts = ["lovely soft dress", "awful fit, too small", "soft top fits well", "small dress"]
    >>> tok = make_tokenizer(learn_vocabulary(texts, vocab_size=60), sequence_length=40)
    >>> ids = tokenize(texts[:1], tok)
    >>> ids.shape, ids.dtype.name, int(ids[0, -1])
    ((1, 40), 'int32', 0)
"""
import json
import os

import numpy as np

from .._io import atomic_path
from ..errors import TFCompressError

PAD, UNK = "[PAD]", "[UNK]"
RESERVED_TOKENS = (PAD, UNK)
VOCAB_FILE, CONFIG_FILE = "vocab.txt", "tokenizer.json"
INPUT_NAME = "token_ids"


def _keras_nlp():
    from .. import _keras  # noqa: F401  (tf_keras is chosen before keras_nlp imports TensorFlow/Keras 3)
    try:
        import keras_nlp
    except ImportError as e:  # pragma: no cover - installed with tfcompress
        raise TFCompressError(f"text tokenization needs keras-nlp ({e}): pip install keras-nlp") from None
    return keras_nlp


def check_texts(texts, what="texts"):
    """Return ``texts`` as a list of non-empty strings; a clear error for None, non-strings or blanks.

    Example:
        >>> check_texts(("a b", "c"))
        ['a b', 'c']
    """
    if isinstance(texts, str):
        raise TFCompressError(f"{what} is one string: pass a list of strings, e.g. [{texts[:30]!r}]")
    try:
        texts = list(texts)
    except TypeError:
        raise TFCompressError(f"{what} must be a list of strings, got {type(texts).__name__}") from None
    if not texts:
        raise TFCompressError(f"{what} is empty: pass at least one text")
    for i, t in enumerate(texts):
        if isinstance(t, bytes):
            t = t.decode("utf-8", errors="replace")
            texts[i] = t
        if not isinstance(t, str):
            raise TFCompressError(f"{what}[{i}] is {type(t).__name__} {t!r}, not a string: drop or fill "
                                  "missing texts first (load_reviews drops them)")
        if not t.strip():
            raise TFCompressError(f"{what}[{i}] is empty or blank: drop empty texts before tokenizing")
    return texts


def check_labels(labels, n, num_classes=None, what="labels"):
    """Return ``labels`` as an int32 array of length ``n`` with values in ``[0, num_classes)``.

    Example:
        >>> check_labels([0, 2, 1], 3, num_classes=3).tolist()
        [0, 2, 1]
    """
    arr = np.asarray(labels)
    if arr.ndim != 1 or len(arr) != n:
        raise TFCompressError(f"{what} have shape {arr.shape} but there are {n} texts/rows: pass one label each")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all() and (arr == np.round(arr)).all():
            arr = arr.astype(np.int64)
        else:
            raise TFCompressError(f"{what} have dtype {arr.dtype}: pass integer class ids 0..num_classes-1 "
                                  "(TextData.labels are)")
    if arr.size and arr.min() < 0:
        raise TFCompressError(f"{what} contain {int(arr.min())} < 0: class ids start at 0")
    if num_classes is not None and arr.size and arr.max() >= num_classes:
        raise TFCompressError(f"{what} contain class {int(arr.max())} outside the declared {num_classes} classes "
                              f"0..{num_classes - 1}: fix the labels or num_classes")
    return arr.astype(np.int32)


def learn_vocabulary(texts, vocab_size=8000, *, lowercase=True, strip_accents=True):
    """Learn a WordPiece vocabulary (a list of tokens, ``[PAD]`` = 0, ``[UNK]`` = 1) from training texts.

    Uses ``keras_nlp.tokenizers.compute_word_piece_vocabulary``. The result may be shorter than
    ``vocab_size`` on a small corpus. Learn it on the training split only.

    Example:
        >>> v = learn_vocabulary(["red dress", "blue dress"], vocab_size=40)
        >>> v[:2], "d" in v
        (['[PAD]', '[UNK]'], True)
    """
    texts = check_texts(texts)
    vocab_size = int(vocab_size)
    if vocab_size < len(RESERVED_TOKENS) + 2:
        raise TFCompressError(f"vocab_size = {vocab_size} is too small: use at least {len(RESERVED_TOKENS) + 2}")
    from .._keras import tf

    ds = tf.data.Dataset.from_tensor_slices(texts).batch(1024)
    vocab = _keras_nlp().tokenizers.compute_word_piece_vocabulary(
        ds, vocabulary_size=vocab_size, lowercase=lowercase, strip_accents=strip_accents,
        reserved_tokens=list(RESERVED_TOKENS))
    vocab = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in vocab]
    # Odd Unicode spaces in real text can come out as tokens; they cannot be stored one per line in vocab.txt
    # (and the tokenizer splits on whitespace anyway), so they are dropped and map to [UNK].
    return [v for v in vocab if v and not any(c.isspace() for c in v)]


def _check_vocabulary(vocabulary):
    vocab = list(vocabulary)
    if len(vocab) < 3:
        raise TFCompressError(f"vocabulary has {len(vocab)} tokens: learn one with learn_vocabulary(texts)")
    if vocab[0] != PAD or UNK not in vocab:
        raise TFCompressError(f"vocabulary must start with {PAD!r} (id 0) and hold {UNK!r}, it starts with "
                              f"{vocab[:2]}: learn it with learn_vocabulary(texts)")
    bad = [t for t in vocab if not isinstance(t, str) or not t or any(c.isspace() for c in t)]
    if bad:
        raise TFCompressError(f"vocabulary has {len(bad)} empty or whitespace tokens, e.g. {bad[0]!r}")
    if len(set(vocab)) != len(vocab):
        raise TFCompressError("vocabulary has duplicate tokens: learn it with learn_vocabulary(texts)")
    return vocab


def make_tokenizer(vocabulary, sequence_length=128, *, lowercase=True, strip_accents=True):
    """A ``keras_nlp.tokenizers.WordPieceTokenizer`` giving int32 ids ``[batch, sequence_length]``
    (truncated, padded with 0). Use the same ``lowercase``/``strip_accents`` as :func:`learn_vocabulary`.

    Example:
        >>> tok = make_tokenizer(["[PAD]", "[UNK]", "red", "dress"], sequence_length=4)
        >>> np.asarray(tok(["red dress hat"])).tolist()
        [[2, 3, 1, 0]]
    """
    vocab = _check_vocabulary(vocabulary)
    sequence_length = int(sequence_length)
    if sequence_length < 1:
        raise TFCompressError(f"sequence_length = {sequence_length} must be >= 1")
    return _keras_nlp().tokenizers.WordPieceTokenizer(
        vocabulary=vocab, sequence_length=sequence_length, lowercase=bool(lowercase),
        strip_accents=bool(strip_accents), oov_token=UNK, dtype="int32")


def vocabulary_tokenizer(vocabulary, sequence_length=128, *, lowercase=True, strip_accents=None, what="the teacher"):
    """A WordPiece tokenizer over a pretrained checkpoint's vocabulary (``vocabulary``: its tokens in id
    order, as in BERT's ``vocab.txt``: ``[PAD]`` = 0, ``[UNK]`` somewhere), so a student reads the
    teacher's ids; ``strip_accents`` (None) follows ``lowercase``, as in a BERT checkpoint's own tokenizer.

    Example:
        >>> tok = vocabulary_tokenizer(["[PAD]", "[CLS]", "[UNK]", "cafe", "red"], 4)
        >>> tokenize(["Café RED hat"], tok).tolist()
        [[3, 4, 2, 0]]
    """
    vocab = [str(t) for t in vocabulary]
    if not vocab or vocab[0] != PAD or UNK not in vocab:
        raise TFCompressError(f"{what}'s vocabulary is not a WordPiece vocabulary with {PAD!r} at id 0 and an "
                              f"{UNK!r} token (it starts with {vocab[:3]}): use the student's own vocabulary "
                              "(student_vocab='own')")
    strip = lowercase if strip_accents is None else strip_accents
    return make_tokenizer(vocab, sequence_length, lowercase=bool(lowercase), strip_accents=bool(strip))


def tokenize(texts, tokenizer):
    """Token ids of ``texts`` as an int32 NumPy array ``[len(texts), sequence_length]``.

    Example:
        >>> tokenize(["red"], make_tokenizer(["[PAD]", "[UNK]", "red"], 3)).tolist()
        [[2, 0, 0]]
    """
    texts = check_texts(texts)
    _check_tokenizer(tokenizer)
    out = [np.asarray(tokenizer(texts[i:i + 4096])) for i in range(0, len(texts), 4096)]
    return np.concatenate(out).astype(np.int32)


def _check_tokenizer(tokenizer):
    if not hasattr(tokenizer, "get_vocabulary") or getattr(tokenizer, "sequence_length", None) is None:
        raise TFCompressError(f"tokenizer must be a WordPieceTokenizer with a sequence_length (from "
                              f"make_tokenizer or load_tokenizer), got {type(tokenizer).__name__}")


def text_dataset(texts, labels, tokenizer, batch_size=64, *, num_classes=None, shuffle=False, seed=0):
    """A ``tf.data.Dataset`` of ``({"token_ids": int32 [b, L]}, int32 labels [b])``, tokenized in the
    pipeline (``labels=None`` gives features only).

    Example:
        >>> tok = make_tokenizer(["[PAD]", "[UNK]", "red", "blue"], 4)
        >>> x, y = next(iter(text_dataset(["red", "blue"], [0, 1], tok, batch_size=2)))
        >>> x["token_ids"].shape.as_list(), y.numpy().tolist()
        ([2, 4], [0, 1])
    """
    from .._keras import tf
    from .datasets import array_dataset

    texts = check_texts(texts)
    _check_tokenizer(tokenizer)
    y = None if labels is None else check_labels(labels, len(texts), num_classes)

    def encode(t):
        ids = tf.cast(tokenizer(t), tf.int32)
        return {INPUT_NAME: tf.ensure_shape(ids, [None, tokenizer.sequence_length])}

    return array_dataset(texts, y, batch_size=batch_size, transform=encode, shuffle=shuffle, seed=seed)


def save_vocabulary(tokenizer, path):
    """Write ``tokenizer`` to folder ``path`` (``vocab.txt`` + ``tokenizer.json``) atomically; return ``path``.

    Example:
        >>> import tempfile
        >>> tok = make_tokenizer(["[PAD]", "[UNK]", "red"], 3)
        >>> p = save_vocabulary(tok, os.path.join(tempfile.mkdtemp(), "tokenizer"))
        >>> sorted(os.listdir(p))
        ['tokenizer.json', 'vocab.txt']
    """
    _check_tokenizer(tokenizer)
    vocab = _check_vocabulary(tokenizer.get_vocabulary())
    config = {"format": "wordpiece", "vocab_file": VOCAB_FILE, "vocab_size": len(vocab),
              "sequence_length": int(tokenizer.sequence_length), "lowercase": bool(tokenizer.lowercase),
              "strip_accents": bool(tokenizer.strip_accents), "pad_id": 0, "unk_token": UNK,
              "unk_id": vocab.index(UNK), "input_name": INPUT_NAME, "dtype": "int32"}
    path = os.fspath(path)
    with atomic_path(path, is_dir=True) as tmp:
        with open(os.path.join(tmp, VOCAB_FILE), "w", encoding="utf-8") as f:
            f.write("\n".join(vocab) + "\n")
        with open(os.path.join(tmp, CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o755)
    return path


def load_tokenizer(path, sequence_length=None):
    """The tokenizer saved by :func:`save_vocabulary` (a folder, or a bare ``vocab.txt`` with
    ``sequence_length`` given). ``sequence_length`` overrides the saved one.

    Example:
        >>> import tempfile
        >>> tok = make_tokenizer(["[PAD]", "[UNK]", "red"], 3)
        >>> p = save_vocabulary(tok, os.path.join(tempfile.mkdtemp(), "tokenizer"))
        >>> np.asarray(load_tokenizer(p)(["red"])).tolist()
        [[2, 0, 0]]
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        vocab_path, config_path = os.path.join(path, VOCAB_FILE), os.path.join(path, CONFIG_FILE)
    else:
        vocab_path, config_path = path, None
    if not os.path.isfile(vocab_path):
        raise TFCompressError(f"no tokenizer vocabulary at {vocab_path!r}: save one with save_vocabulary(tok, path)")
    config = {}
    if config_path is not None and os.path.isfile(config_path):
        try:
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
        except (OSError, ValueError) as e:
            raise TFCompressError(f"tokenizer settings {config_path!r} are unreadable ({e}): save again") from None
    elif config_path is not None:
        raise TFCompressError(f"{config_path!r} is missing: save the tokenizer with save_vocabulary(tok, path)")
    with open(vocab_path, encoding="utf-8") as f:
        vocab = [line.rstrip("\n") for line in f if line.rstrip("\n")]
    if config.get("vocab_size") not in (None, len(vocab)):
        raise TFCompressError(f"{vocab_path!r} has {len(vocab)} tokens but {config_path!r} says "
                              f"{config['vocab_size']}: the files do not belong together, save again")
    length = sequence_length if sequence_length is not None else config.get("sequence_length")
    if length is None:
        raise TFCompressError(f"{vocab_path!r} has no saved settings: pass sequence_length=")
    return make_tokenizer(vocab, length, lowercase=config.get("lowercase", True),
                          strip_accents=config.get("strip_accents", True))
