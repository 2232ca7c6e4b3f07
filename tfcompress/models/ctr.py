"""CTR ranking models built from a :class:`~tfcompress.data.FeatureSpec`.

Both are tf_keras functional models with one named ``Input`` per feature (int32 ids of shape ``()``,
float32 numbers of shape ``()``) and one output, the click **logit** (shape ``(None, 1)``, named
``logit``). The teacher is a DCN-v2 (embeddings, a stack of :class:`~tfcompress.models.layers.Cross`
layers in parallel with a deep MLP); the student is the same shape, narrow and shallow.

Example:
    >>> from tfcompress.data import make_ecommerce
    >>> spec = make_ecommerce(events=1000, seed=0).spec
    >>> teacher, student = ctr_teacher(spec), ctr_student(spec)
    >>> teacher.count_params() > 20 * student.count_params()
    True
"""
import math

from .._keras import keras
from ..errors import TFCompressError
from .layers import Cross

#: the student's id tables of at least this many ids are compressed for the phone (its ``embedding`` kind)
COMPRESS_MIN_VOCAB = 50_000
STUDENT_TABLES = "qr"
#: a compressed (quotient-remainder) student table keeps up to this many remainder rows, at most a quarter of its
#: ids: at 10^7 shop events sqrt(ids) rows (501 for 250,001 users) left the int8 student at 0.8453 test AUC, 16,384
#: at 0.8523, 99.6% of the teacher's (benchmarks/scale.py, benchmarks/student_tables.py; docs/scale/student_tables.md)
COMPRESSED_ROWS = 16_384
_KIND_WORDS = {"qr": "quotient-remainder", "hash": "hashed", "mixed": "mixed-dimension", "lowrank": "low-rank"}


def ctr_teacher(spec, *, embedding_dim=64, cross_layers=3, hidden=(1024, 512, 256), name="ctr_teacher"):
    """A large DCN-v2 CTR model: wide embeddings, ``cross_layers`` full-rank crosses and a deep MLP."""
    return dcn(spec, embedding_dim=embedding_dim, cross_layers=cross_layers, hidden=hidden, name=name)


def ctr_student(spec, *, embedding_dim=8, cross_layers=1, hidden=(64, 32), name="ctr_student",
                embedding=STUDENT_TABLES, compress_min_vocab=COMPRESS_MIN_VOCAB, compressed_rows=COMPRESSED_ROWS):
    """A small CTR model of the teacher's shape: narrow embeddings, one cross, a small MLP; its id tables of
    ``compress_min_vocab`` ids or more are ``embedding`` tables (quotient-remainder by default, of
    :func:`compressed_buckets` rows; ``"full"`` keeps them whole), so a million-id teacher still gives a
    phone-sized student."""
    return dcn(spec, embedding_dim=embedding_dim, cross_layers=cross_layers, hidden=hidden, name=name,
               embedding=embedding, compress_min_vocab=compress_min_vocab, compressed_rows=compressed_rows)


def compressed_buckets(vocab_size, rows=COMPRESSED_ROWS):
    """Remainder rows of a compressed id table: ``rows``, but at most a quarter of the ids and at least sqrt(ids).

    Example:
        >>> compressed_buckets(250_001), compressed_buckets(20_000), compressed_buckets(250_001, rows=100)
        (16384, 5000, 501)
    """
    return max(math.ceil(math.sqrt(vocab_size)), min(int(rows), int(vocab_size) // 4))


def student_table_note(spec, embedding=STUDENT_TABLES, compress_min_vocab=COMPRESS_MIN_VOCAB,
                       compressed_rows=COMPRESSED_ROWS, **_):
    """One line on the student's compressed id tables, or ``""`` when every table stays whole.

    Example:
        >>> from tfcompress.data import Feature, FeatureSpec
        >>> student_table_note(FeatureSpec([Feature("user_id", "categorical", 80_001)]))[:62]
        "the student's user_id table (80,001 ids) is quotient-remainder"
    """
    spec = spec.to_feature_spec() if hasattr(spec, "to_feature_spec") else spec
    big = [f for f in spec.categorical if embedding != "full" and f.vocab_size >= compress_min_vocab]
    if not big:
        return ""
    names = ", ".join(f"{f.name} table ({f.vocab_size:,} ids)" for f in big)
    rows = ""
    if embedding == "qr" and compressed_rows:
        sizes = [(compressed_buckets(f.vocab_size, compressed_rows), f.vocab_size) for f in big]
        rows = " (" + " and ".join(f"{m:,} + {math.ceil(v / m):,} rows" for m, v in sizes) + ")"
    return (f"the student's {names} {'is' if len(big) == 1 else 'are'} {_KIND_WORDS.get(embedding, embedding)}"
            f"{rows}: id tables of {compress_min_vocab:,}+ ids are compressed for the phone")


def embedding_width(vocab_size, embedding_dim):
    """Embedding width for a vocabulary: ``embedding_dim`` for large ones, about 6·vocab^¼ for small."""
    return int(max(2, min(embedding_dim, round(6 * vocab_size ** 0.25))))


def dcn(spec, *, embedding_dim, cross_layers, hidden, name, embedding="full", compress_min_vocab=None,
        compressed_rows=None):
    """Build a DCN-v2 (parallel cross + deep) model from ``spec`` (see the module docstring): a
    :class:`~tfcompress.data.FeatureSpec` or a :class:`~tfcompress.data.Schema`, whose numeric statistics
    put :class:`~tfcompress.models.NumericNormalization` inside the model (raw numbers in). The output is
    one logit (binary), one value (regression) or ``num_classes`` logits (multiclass). Id tables of
    ``compress_min_vocab`` ids or more are of kind ``embedding`` (see :func:`~tfcompress.models.make_embedding`);
    ``compressed_rows`` sets a quotient-remainder table's rows (:func:`compressed_buckets`; None: sqrt(ids))."""
    from .embeddings import make_embedding

    from .preprocessing import preprocessed_inputs

    raw_inputs, tensors = preprocessed_inputs(spec, column=True)
    spec = spec.to_feature_spec() if hasattr(spec, "to_feature_spec") else spec
    if embedding_dim < 1 or cross_layers < 0 or any(int(h) < 1 for h in hidden):
        raise TFCompressError(
            f"bad model size: embedding_dim={embedding_dim}, cross_layers={cross_layers}, hidden={hidden}")
    if compressed_rows is not None and (isinstance(compressed_rows, bool) or not isinstance(compressed_rows, int)
                                        or compressed_rows < 1):
        raise TFCompressError(f"compressed_rows={compressed_rows!r} must be a whole number of rows >= 1, "
                              f"e.g. 16384, or null for sqrt(ids) rows")
    inputs, parts = raw_inputs, []
    for f in spec.features:
        if f.kind == "categorical" and embedding != "full" and f.vocab_size >= (compress_min_vocab or 0):
            width = embedding_width(f.vocab_size, embedding_dim)
            qr_rows = embedding == "qr" and compressed_rows
            buckets = compressed_buckets(f.vocab_size, compressed_rows) if qr_rows else None
            table = make_embedding(embedding, f.vocab_size, width, name=f"emb_{f.name}", num_buckets=buckets)
            parts.append(table(tensors[f.name]))
        elif f.kind == "categorical":
            emb = keras.layers.Embedding(f.vocab_size, embedding_width(f.vocab_size, embedding_dim),
                                         name=f"emb_{f.name}")
            parts.append(emb(tensors[f.name]))
        elif tensors[f.name] is raw_inputs[f.name]:
            parts.append(keras.layers.Reshape((1,), name=f"num_{f.name}")(tensors[f.name]))
        else:  # normalized inside the model, already a (batch, 1) column
            parts.append(tensors[f.name])
    x0 = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    x = x0
    for i in range(cross_layers):
        x = Cross(name=f"cross_{i}")([x0, x])
    deep = x0
    for i, units in enumerate(hidden):
        deep = keras.layers.Dense(int(units), activation="relu", name=f"dense_{i}")(deep)
    top = keras.layers.Concatenate(name="cross_deep")([x, deep]) if cross_layers else deep
    units = spec.num_classes if spec.objective == "multiclass" else 1
    logit = keras.layers.Dense(units, name="logit")(top)
    return keras.Model(inputs, logit, name=name)
