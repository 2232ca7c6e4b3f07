"""Pretrained teachers: a Keras 3 / keras-hub text encoder from a local checkpoint folder, and a head.

* :func:`is_model_folder`, :func:`load_encoder` → :class:`PretrainedEncoder` (``tokenize``, ``embed``
  (mean-pooled), ``vocabulary``, ``token_embeddings``, ``params``, ``weight_bytes``, ``fingerprint``,
  ``latency_ms``) — a Hugging Face model folder (BERT, DistilBERT, RoBERTa...) or a keras-hub preset.
* :class:`PretrainedTeacher` — ``PretrainedTeacher.fit(encoder, texts, labels, num_classes, head="probe")``
  (or ``"top:N"``, ``"full"``), then ``logits``, ``embeddings``, ``predict_classes``.
* :class:`TeacherOutputCache` — the teacher's outputs on disk, so reruns do not pay the teacher again.

Keras 3 is imported only inside functions: importing this package imports neither TensorFlow nor Keras,
and the teacher's graph never holds tf_keras layers (students get NumPy arrays).

Example:
    >>> import tfcompress.pretrained as pretrained
    >>> pretrained.is_model_folder("/nonexistent")
    False
"""
from .cache import CacheKey, TeacherOutputCache, cache_key, texts_sha256
from .checkpoint import is_model_folder
from .encoder import PretrainedEncoder, load_encoder
from .heads import fit_probe, parse_head
from .teacher import PretrainedTeacher, frozen_embeddings

__all__ = ["is_model_folder", "load_encoder", "PretrainedEncoder", "PretrainedTeacher", "TeacherOutputCache",
           "CacheKey", "cache_key", "texts_sha256", "fit_probe", "parse_head", "frozen_embeddings"]
