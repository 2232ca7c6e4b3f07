"""A pretrained teacher for text classification: a :class:`PretrainedEncoder` and a head.

``PretrainedTeacher.fit(encoder, texts, labels, num_classes, head=...)``:

* ``"probe"``: the encoder frozen; its mean-pooled embeddings (cached per text set) feed a logistic
  regression (:func:`~tfcompress.pretrained.heads.fit_probe`). Cheap: one forward pass per text.
* ``"top:N"`` / ``"full"``: the top N transformer layers (or all) fine-tuned with the head, which starts
  from the probe (:mod:`~tfcompress.pretrained.finetune`). Expensive; the fine-tuned weights are cached.

With a :class:`~tfcompress.pretrained.cache.TeacherOutputCache`, embeddings, fine-tuned weights and
fine-tuned logits are read back instead of computed, so reruns and other student seeds do not pay the
teacher again. Everything here is Keras 3; the students (tf_keras) get NumPy arrays only.

Example:
    >>> PretrainedTeacher.fit(None, ["a"], [0], 2, head="top:x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tfcompress.errors.TFCompressError: teacher head = 'top:x' must be probe, top:N (...) or full, e.g. top:2
"""
import hashlib

import numpy as np

from ..errors import check, check_seed
from . import finetune
from .cache import CacheKey, cache_key, fetch, texts_sha256
from .encoder import PretrainedEncoder, check_texts
from .forward import run_batched
from .heads import check_labels, choose_l2, fit_probe, parse_head

PROBE_STEPS = 300


def frozen_embeddings(encoder, texts, cache=None, batch_size=32, progress=None):
    """The encoder's own mean-pooled embeddings of ``texts``, through ``cache`` when given."""
    key = cache_key(encoder, texts, head="frozen", seed=None, what="embeddings") if cache is not None else None
    return fetch(cache, key, lambda: encoder.embed(texts, batch_size=batch_size, progress=progress))


class PretrainedTeacher:
    """A fitted teacher: ``logits``, ``embeddings``, ``predict_classes`` of texts (see the module)."""

    def __init__(self, encoder, head, num_classes, *, seed=0, spec=None, probe=None, model=None, cache=None,
                 history=None, l2=None):
        self.encoder, self.head, self.num_classes, self.seed = encoder, head, num_classes, seed
        self.spec = spec or head
        self.probe, self.model, self.cache = probe, model, cache
        self.history = history or []
        self.l2 = l2  # the probe's L2 strength

    @classmethod
    def fit(cls, encoder, texts, labels, num_classes, *, head="probe", val=None, epochs=None, seed=0, cache=None,
            batch_size=32, progress=None, learning_rate=None, l2=None):
        """Fit a head on ``encoder`` for ``texts`` / ``labels``. ``val``: ``(texts, labels)``: the probe's L2
        strength is chosen on it (else on a fifth of the texts; or pass ``l2``), fine-tuning keeps its best
        epoch. ``epochs``: probe: full-batch steps (default 300); top:N / full: passes (default 2).
        ``progress(done, total)``: texts embedded, then fine-tuning steps. Fine-tuning seeds Keras 3
        (``keras.utils.set_random_seed(seed)``, which also seeds NumPy's and TensorFlow's global RNGs)."""
        kind, top = parse_head(head)
        texts = check_texts(texts)
        y = check_labels(labels, len(texts), num_classes)
        check_seed(seed)
        check(isinstance(batch_size, int) and batch_size >= 1, f"batch_size = {batch_size!r} must be >= 1")
        check(epochs is None or (isinstance(epochs, int) and epochs >= 1), f"epochs = {epochs!r} must be >= 1")
        if val is not None:
            check(isinstance(val, (tuple, list)) and len(val) == 2, "val must be (texts, labels)")
            val = (check_texts(val[0]), check_labels(val[1], len(val[0]), num_classes))
        args = dict(val=val, seed=seed, cache=cache, batch_size=batch_size, progress=progress, l2=l2)
        if kind == "probe":
            return cls._fit_probe(encoder, texts, y, num_classes, steps=epochs or PROBE_STEPS, **args)
        return cls._fit_tuned(encoder, texts, y, num_classes, head=head, kind=kind, top=top,
                              epochs=epochs or finetune.DEFAULT_EPOCHS,
                              learning_rate=learning_rate or finetune.default_learning_rate(kind), **args)

    @classmethod
    def _probe_weights(cls, encoder, texts, y, num_classes, *, val, cache, batch_size, progress, steps, l2, seed):
        """``(W, b)`` of the linear probe on the frozen embeddings and the L2 strength used."""
        x = frozen_embeddings(encoder, texts, cache, batch_size, progress)
        v = None if val is None else (frozen_embeddings(encoder, val[0], cache, batch_size, progress), val[1])
        l2 = choose_l2(x, y, num_classes, val=v, steps=steps, seed=seed) if l2 is None else l2
        return fit_probe(x, y, num_classes, steps=steps, l2=l2), l2

    @classmethod
    def _fit_probe(cls, encoder, texts, y, num_classes, *, steps, **args):
        probe, l2 = cls._probe_weights(encoder, texts, y, num_classes, steps=steps, **args)
        spec = f"probe|classes={num_classes}|steps={steps}|l2={l2:g}|train={texts_sha256(texts, y)}"
        return cls(encoder, "probe", num_classes, seed=args["seed"], spec=spec, probe=probe, cache=args["cache"], l2=l2)

    @classmethod
    def _fit_tuned(cls, encoder, texts, y, num_classes, *, head, kind, top, epochs, learning_rate, **args):
        import keras as keras3

        val, cache, seed = args["val"], args["cache"], args["seed"]
        spec = (f"{head}|classes={num_classes}|epochs={epochs}|lr={learning_rate:g}|batch={args['batch_size']}"
                f"|train={texts_sha256(texts, y)}|val={texts_sha256(*val) if val else None}")
        key = CacheKey(encoder.fingerprint, texts_sha256(texts, y), spec, encoder.sequence_length, seed,
                       "weights", encoder.name, len(texts))
        cached = cache.get(key) if cache is not None else None
        keras3.utils.set_random_seed(seed)
        backbone = finetune.clone_backbone(encoder.backbone)
        finetune.freeze(backbone, kind, top)
        init = (np.zeros((encoder.hidden_size, num_classes)), np.zeros(num_classes)) if cached is not None else \
            cls._probe_weights(encoder, texts, y, num_classes, steps=PROBE_STEPS, **args)[0]
        model = finetune.classifier(backbone, encoder.pad_id, init)
        history = []
        if cached is not None:
            finetune.set_flat_weights(model, cached)
        else:
            vids = None if val is None else (encoder.tokenize(val[0]), val[1])
            history = finetune.train(model, encoder.tokenize(texts), y, pad_id=encoder.pad_id, epochs=epochs,
                                     batch_size=args["batch_size"], learning_rate=learning_rate, seed=seed,
                                     val=vids, progress=args["progress"])
            if cache is not None:
                cache.put(key, finetune.flat_weights(model))
        tuned = PretrainedEncoder(backbone, encoder.preprocessor, path=encoder.path, name=encoder.name,
                                  sequence_length=encoder.sequence_length,
                                  fingerprint=hashlib.sha256(f"{encoder.fingerprint}|{key.digest()}".encode())
                                  .hexdigest())
        return cls(tuned, head, num_classes, seed=seed, spec=spec, model=model, cache=cache, history=history)

    def _key(self, texts, what):
        if self.cache is None:
            return None
        frozen = self.model is None
        return cache_key(self.encoder, texts, head="frozen" if frozen and what == "embeddings" else self.spec,
                         seed=None if frozen else self.seed, what=what)

    def embeddings(self, texts, batch_size=64, progress=None):
        """Mean-pooled embeddings ``float32 [n, hidden]`` of the teacher's encoder (after fine-tuning)."""
        texts = check_texts(texts)
        return fetch(self.cache, self._key(texts, "embeddings"),
                     lambda: self.encoder.embed(texts, batch_size=batch_size, progress=progress))

    def logits(self, texts, batch_size=64, progress=None):
        """Logits ``float32 [n, num_classes]`` of ``texts``."""
        texts = check_texts(texts)
        if self.model is None:
            W, b = self.probe
            return (self.embeddings(texts, batch_size, progress) @ W + b).astype(np.float32)
        return fetch(self.cache, self._key(texts, "logits"), lambda: run_batched(
            self.model.predict_on_batch, self.encoder.tokenize(texts), self.encoder.pad_id, batch_size, progress)
            if texts else np.zeros((0, self.num_classes), np.float32))

    def predict_classes(self, texts, batch_size=64):
        """The class with the largest logit, ``int64 [n]``."""
        return self.logits(texts, batch_size).argmax(axis=1)

    @property
    def params(self):
        """Weights of the encoder and the head."""
        if self.model is not None:
            return int(self.model.count_params())
        return self.encoder.params + int(self.probe[0].size + self.probe[1].size)

    @property
    def weight_bytes(self):
        """Bytes of all weights as float32."""
        return float(4 * self.params)

    def describe(self):
        """One line: checkpoint, layers, hidden size, parameters, head."""
        e = self.encoder
        return (f"{e.name}: {e.num_layers} layers, hidden {e.hidden_size}, {self.params / 1e6:.2f}M params, "
                f"head {self.head}, {self.num_classes} classes")

    def __repr__(self):
        return f"PretrainedTeacher({self.describe()!r})"
