"""What a local checkpoint folder holds, checked before keras-hub reads it (no TensorFlow import here).

Two formats are read: a Hugging Face model folder (``config.json`` with a ``model_type``, the weights in
``model.safetensors``, the tokenizer files of its architecture) and a keras-hub preset folder
(``metadata.json``, ``config.json``, ``model.weights.h5``, ``tokenizer.json``, as ``save_to_preset``
writes). :func:`check_folder` names the first missing file in one line; :func:`fingerprint` is the
sha256 of ``config.json`` and the weight files, streamed.

Example:
    >>> import json, os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> is_model_folder(d)
    False
    >>> _ = open(os.path.join(d, "config.json"), "w").write(json.dumps({"model_type": "bert"}))
    >>> _ = open(os.path.join(d, "model.safetensors"), "wb").write(b"")
    >>> _ = open(os.path.join(d, "vocab.txt"), "w").write("[PAD]")
    >>> is_model_folder(d)
    True
    >>> check_folder(d)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tfcompress.errors.TFCompressError: teacher '...' has no tokenizer_config.json: ...
"""
import hashlib
import json
import os

from .._io import hash_file
from ..errors import TFCompressError

HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
OTHER_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")
PRESET_WEIGHTS = ("model.weights.h5", "model.weights.json")
#: model_type -> the tokenizer files keras-hub's converter reads for it
TOKENIZER_FILES = {
    "bert": ("vocab.txt", "tokenizer_config.json"),
    "distilbert": ("vocab.txt", "tokenizer_config.json"),
    "roberta": ("vocab.json", "merges.txt"),
    "xlm-roberta": ("sentencepiece.bpe.model",),
    "albert": ("spiece.model",),
}
_TOKENIZER_ANY = ("vocab.txt", "tokenizer.json", "vocab.json", "sentencepiece.bpe.model", "spiece.model")
_WHAT = ("give a Hugging Face model folder (config.json, model.safetensors, vocab.txt, tokenizer_config.json) "
         "or a keras-hub preset folder (save_to_preset)")


def _has(path, name):
    return os.path.isfile(os.path.join(path, name))


def _config(path):
    """``config.json`` as a dict, or None when absent or not a JSON object."""
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def folder_format(path):
    """``"keras-hub"`` (a preset folder), ``"hugging-face"`` (a model folder) or None, from its files.

    Example:
        >>> folder_format("/nonexistent") is None
        True
    """
    path = os.fspath(path)
    if not os.path.isdir(path) or not _has(path, "config.json"):
        return None
    if _has(path, "metadata.json"):
        return "keras-hub"
    config = _config(path)
    if config is not None and "model_type" in config:
        return "hugging-face"
    return None


def is_model_folder(path):
    """True when ``path`` is a folder keras-hub can load a text encoder from: a Hugging Face model folder
    (``config.json`` + weights + a tokenizer file) or a keras-hub preset (``metadata.json`` + ``config.json``).
    Cheap: reads file names and ``config.json`` only.

    Example:
        >>> is_model_folder("/nonexistent")
        False
    """
    kind = folder_format(path)
    if kind != "hugging-face":
        return kind == "keras-hub"
    path = os.fspath(path)
    weights = any(_has(path, f) for f in HF_WEIGHTS + OTHER_WEIGHTS)
    return weights and any(_has(path, f) for f in _TOKENIZER_ANY)


def check_folder(path):
    """Check that keras-hub can load ``path``; return its format. One-line :class:`TFCompressError` naming
    the first missing file, or the architecture keras-hub has no converter for.

    Example:
        >>> check_folder("/nonexistent")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: teacher '/nonexistent' is not a folder: give a Hugging Face model folder (...
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise TFCompressError(f"teacher {path!r} is not a folder: {_WHAT}")
    _missing(path, "config.json")
    kind = folder_format(path)
    if kind == "keras-hub":
        _missing(path, PRESET_WEIGHTS, "the folder is not a complete keras-hub preset: save it again with "
                                       "backbone.save_to_preset(FOLDER)")
        _missing(path, "tokenizer.json", "save the tokenizer too: tokenizer.save_to_preset(FOLDER)")
        return kind
    config = _config(path)
    if config is None or "model_type" not in config:
        raise TFCompressError(f"teacher {path!r}: config.json has no model_type and the folder has no "
                              f"metadata.json: {_WHAT}")
    _check_hugging_face(path, config["model_type"])
    return kind


def _check_hugging_face(path, model_type):
    if model_type not in TOKENIZER_FILES:
        raise TFCompressError(
            f"teacher {path!r} is a {model_type!r} checkpoint: tfcompress reads text encoders keras-hub converts "
            f"({', '.join(sorted(TOKENIZER_FILES))}); give one of those")
    if not any(_has(path, f) for f in HF_WEIGHTS):
        other = [f for f in OTHER_WEIGHTS if _has(path, f)]
        hint = (f"it has {other[0]}, which keras-hub cannot read: convert it to safetensors" if other
                else "add the weights")
        raise TFCompressError(f"teacher {path!r} has no model.safetensors: {hint}")
    for name in TOKENIZER_FILES[model_type]:
        _missing(path, name, f"keras-hub's {model_type} tokenizer reads it; copy it from the checkpoint's source")
    if "tokenizer_config.json" in TOKENIZER_FILES[model_type]:
        check = tokenizer_config(path)
        if "do_lower_case" not in check:
            raise TFCompressError(f"teacher {path!r}: tokenizer_config.json has no do_lower_case: add "
                                  '"do_lower_case": true (uncased checkpoint) or false (cased)')


def _missing(path, names, hint=_WHAT):
    names = (names,) if isinstance(names, str) else names
    if not any(_has(path, n) for n in names):
        raise TFCompressError(f"teacher {path!r} has no {' or '.join(names)}: {hint}")


def tokenizer_config(path):
    """``tokenizer_config.json`` of a Hugging Face folder as a dict ({} when absent or unreadable).

    Example:
        >>> tokenizer_config("/nonexistent")
        {}
    """
    try:
        with open(os.path.join(os.fspath(path), "tokenizer_config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def text_options(path):
    """``{"lowercase", "strip_accents"}`` a Hugging Face folder's tokenizer applies, or {} for a preset
    (keras-hub saved them in ``tokenizer.json``). Unset ``strip_accents`` follows ``do_lower_case``, as in
    Hugging Face's BERT tokenizer: uncased checkpoints strip accents.

    Example:
        >>> text_options("/nonexistent")
        {}
    """
    config = tokenizer_config(path)
    if folder_format(path) != "hugging-face" or "do_lower_case" not in config:
        return {}
    lowercase = bool(config["do_lower_case"])
    strip = config.get("strip_accents")
    return {"lowercase": lowercase, "strip_accents": lowercase if strip is None else bool(strip)}


def weight_files(path):
    """The weight files of a checkpoint folder, sorted (shards included).

    Example:
        >>> weight_files("/nonexistent")
        []
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        return []
    names = sorted(os.listdir(path))
    exact = [n for n in names if n in HF_WEIGHTS + PRESET_WEIGHTS]
    shards = [n for n in names if n.endswith((".safetensors", ".weights.h5")) and n not in exact]
    return [os.path.join(path, n) for n in exact + shards]


def fingerprint(path):
    """The sha256 (hex) of ``config.json`` and the weight files, streamed in 1 MiB blocks.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = open(os.path.join(d, "config.json"), "w").write("{}")
        >>> len(fingerprint(d))
        64
    """
    digest = hashlib.sha256()
    for file in [os.path.join(os.fspath(path), "config.json")] + weight_files(path):
        digest.update(os.path.basename(file).encode() + b"\0")
        hash_file(digest, file)
    return digest.hexdigest()
