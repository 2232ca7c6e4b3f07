"""A pretrained Keras 3 text encoder from a local checkpoint folder: tokenize, embed, measure.

:func:`load_encoder` reads a Hugging Face model folder or a keras-hub preset folder with keras-hub, which
picks the backbone and tokenizer classes (BERT, DistilBERT, RoBERTa, ...). The tokenizer follows the
checkpoint: uncased checkpoints are lowercased with accents stripped. :class:`PretrainedEncoder` embeds
texts as the mean of the last hidden states over non-padding tokens (how all-MiniLM and other
sentence-transformers pool; their pooler weights are untrained). Keras 3 is imported only when a folder
is loaded, never next to tf_keras models in one graph.

Example:
    >>> load_encoder("/nonexistent")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tfcompress.errors.TFCompressError: teacher '/nonexistent' is not a folder: give a Hugging Face model folder (...
"""
import os
import time

import numpy as np

from ..errors import TFCompressError, check
from . import checkpoint
from .forward import pooled_model, run_batched

_TOKENIZE_CHUNK = 4096


class PretrainedEncoder:
    """A keras-hub backbone + its preprocessor (tokenizer and packer to ``sequence_length`` ids).

    Example (with a checkpoint folder on disk)::

        enc = load_encoder("path/to/minilm-l6", sequence_length=128)
        enc.embed(["I love this phone"]).shape      # (1, 384)
    """

    def __init__(self, backbone, preprocessor, *, path, sequence_length, fingerprint=None, name=None):
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.path = os.fspath(path)
        self.sequence_length = int(sequence_length)
        self.name = name or os.path.basename(os.path.normpath(self.path))
        self._fingerprint = fingerprint
        self._pooled = None

    @property
    def tokenizer(self):
        return self.preprocessor.tokenizer

    @property
    def pad_id(self):
        return int(self.tokenizer.pad_token_id)

    def tokenize(self, texts):
        """Token ids ``np.int32 [n, sequence_length]``: start token, the text's tokens (cut), end, padding."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.sequence_length), np.int32)
        parts = [np.asarray(self.preprocessor(texts[i:i + _TOKENIZE_CHUNK])["token_ids"], np.int32)
                 for i in range(0, len(texts), _TOKENIZE_CHUNK)]
        return np.concatenate(parts)

    def pooled_model(self):
        """The Keras 3 model ``token_ids -> mean-pooled embedding`` (built once)."""
        if self._pooled is None:
            self._pooled = pooled_model(self.backbone, self.pad_id)
        return self._pooled

    def embed_ids(self, ids, batch_size=32, progress=None):
        """Mean-pooled embeddings ``float32 [n, hidden]`` of token ids from :meth:`tokenize`."""
        if len(ids) == 0:
            return np.zeros((0, self.hidden_size), np.float32)
        model = self.pooled_model()
        return run_batched(model.predict_on_batch, np.asarray(ids, np.int32), self.pad_id, batch_size, progress)

    def embed(self, texts, batch_size=32, progress=None):
        """Mean-pooled embeddings ``float32 [n, hidden]`` of ``texts``; ``progress(done, total)`` per batch."""
        check(isinstance(batch_size, int) and batch_size >= 1, f"batch_size = {batch_size!r} must be >= 1")
        return self.embed_ids(self.tokenize(texts), batch_size, progress)

    @property
    def vocabulary(self):
        """The tokenizer's tokens in id order."""
        return list(self.tokenizer.get_vocabulary())

    @property
    def token_embeddings(self):
        """The token embedding table, ``np.float32 [vocabulary, hidden]``."""
        return np.asarray(self.backbone.token_embedding.embeddings, np.float32)

    @property
    def hidden_size(self):
        return int(self.backbone.hidden_dim)

    @property
    def num_layers(self):
        return int(self.backbone.num_layers)

    @property
    def params(self):
        return int(self.backbone.count_params())

    @property
    def weight_bytes(self):
        """Bytes of the weights as float32."""
        return float(4 * self.params)

    @property
    def fingerprint(self):
        """sha256 (hex) of the folder's ``config.json`` and weight files (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = checkpoint.fingerprint(self.path)
        return self._fingerprint

    def latency_ms(self, batch_size, runs=10):
        """``{"p50", "p90"}`` milliseconds of the Keras 3 forward pass (embedding only) on ``batch_size``
        sequences of ``sequence_length`` tokens (no padding), after one warm-up call."""
        check(isinstance(runs, int) and runs >= 1, f"runs = {runs!r} must be >= 1")
        ids = latency_ids(len(self.vocabulary), batch_size, self.sequence_length, self.tokenizer)
        model = self.pooled_model()
        model.predict_on_batch(ids)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model.predict_on_batch(ids)
            times.append((time.perf_counter() - start) * 1000.0)
        return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90)),
                "batch_size": batch_size, "sequence_length": self.sequence_length}

    def __repr__(self):
        return (f"PretrainedEncoder({self.name!r}, layers={self.num_layers}, hidden={self.hidden_size}, "
                f"params={self.params:,}, sequence_length={self.sequence_length})")


def latency_ids(vocabulary_size, batch_size, sequence_length, tokenizer):
    """A fixed batch of token ids with no padding: start token, ordinary tokens, end token."""
    check(isinstance(batch_size, int) and batch_size >= 1, f"batch_size = {batch_size!r} must be >= 1")
    rng = np.random.default_rng(0)
    low = min(1000, vocabulary_size // 2)
    ids = rng.integers(low, vocabulary_size, size=(batch_size, sequence_length)).astype(np.int32)
    ids[:, 0], ids[:, -1] = tokenizer.start_token_id, tokenizer.end_token_id
    return ids


def check_texts(texts):
    """``texts`` as a list of strings; one-line error for a lone string or a non-string row.

    Example:
        >>> check_texts(("a", "b"))
        ['a', 'b']
    """
    if isinstance(texts, str):
        raise TFCompressError("texts must be a list of strings, got one string: wrap it in a list")
    texts = list(texts)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    check(bad is None, f"texts must be strings, got {type(bad).__name__} {bad!r}: convert or drop that row")
    return texts


def load_encoder(path, sequence_length=128):
    """Load a :class:`PretrainedEncoder` from a local Hugging Face model folder or keras-hub preset folder.

    One-line :class:`TFCompressError` for a folder keras-hub cannot load (naming the missing file) or
    an architecture it has no converter for.

    Example:
        >>> import tempfile
        >>> load_encoder(tempfile.mkdtemp())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: ...
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    check(isinstance(sequence_length, int) and sequence_length >= 8,
          f"sequence_length = {sequence_length!r} must be a whole number >= 8")
    checkpoint.check_folder(path)
    backbone, preprocessor = _from_preset(path, sequence_length)
    limit = getattr(backbone, "max_sequence_length", None)
    check(limit is None or sequence_length <= limit,
          f"sequence_length = {sequence_length} is more than teacher {path!r} takes ({limit}): pass <= {limit}")
    for key, value in checkpoint.text_options(path).items():
        if hasattr(preprocessor.tokenizer, key):
            setattr(preprocessor.tokenizer, key, value)
    return PretrainedEncoder(backbone, preprocessor, path=path, sequence_length=sequence_length)


def _from_preset(path, sequence_length):
    """keras-hub's backbone and text preprocessor for ``path``; keras-hub's errors as one line."""
    try:
        import keras_hub

        backbone = keras_hub.models.Backbone.from_preset(path)
        preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            path, sequence_length=sequence_length)
    except ModuleNotFoundError as e:
        raise TFCompressError(f"reading teacher {path!r} needs the {e.name} package: pip install {e.name}") \
            from None
    except (ValueError, KeyError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TFCompressError(f"keras-hub cannot load teacher {path!r}: {first}") from None
    return backbone, preprocessor
