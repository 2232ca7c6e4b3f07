"""The top-K retrieval file: query features in, ``item_ids`` and ``scores`` of the top K catalogue items out.

:func:`export_retrieval_tflite` converts :func:`tfcompress.models.retrieval_topk_model` (a two-tower model's
query tower plus the catalogue's candidate vectors, brute force: one MATMUL + TOPK_V2) with
:func:`~tfcompress.export.to_tflite`; in int8 its ``rewrite=`` is :func:`requantize_candidates`, which gives
the stored candidate matrix one scale instead of the converter's one scale per row.

Example:
    >>> import os, tempfile
    >>> from tfcompress.data import make_ecommerce
    >>> from tfcompress.export import TFLiteModel
    >>> from tfcompress.models import item_catalog, retrieval_student
    >>> data = make_ecommerce(events=1000, seed=0)
    >>> student = retrieval_student(data.spec)
    >>> path = export_retrieval_tflite(student, item_catalog(data.events, data.spec), data.spec, k=5,
    ...                                path=os.path.join(tempfile.mkdtemp(), "top5.tflite"))
    >>> TFLiteModel(path).output_names
    ['item_ids', 'scores']
"""
import os

import numpy as np

from .._io import write_bytes, write_json
from ..errors import TFCompressError
from ..models.topk import DEFAULT_MAX_ITEMS, retrieval_topk_model
from .parity import objective_argument
from .tflite import read_sidecar, sidecar_path, to_tflite


def export_retrieval_tflite(model, items, spec, k=10, path=None, *, mode="float32", representative=None,
                            max_items=DEFAULT_MAX_ITEMS, candidate_scales="tensor", objective="ranking",
                            metadata=None, task=None, **kwargs):
    """Write a TFLite retrieval model: query features in, ``item_ids`` and ``scores`` of the top ``k`` out.

    ``items`` is the catalogue (a DataFrame with ``item_id`` and the item features, see
    :func:`tfcompress.models.item_catalog`; or an array of item ids when the candidate tower takes only
    ``item_id``). Their embeddings are computed once and stored in the file; scoring is one FULLY_CONNECTED
    and one TOPK_V2. ``mode`` and other keyword arguments as in :func:`~tfcompress.export.to_tflite`
    (``int8`` needs ``representative`` query features; the candidate matrix then is int8 too). Returns the
    path.

    ``candidate_scales`` (``int8`` only): the converter quantizes the candidate matrix per row (it is the
    FULLY_CONNECTED weight; one float32 scale + one int64 zero point = 12 bytes per item, 3/4 of the
    matrix itself at d=16). ``"tensor"`` (default) rewrites it with one symmetric scale, quantized from the
    float embeddings: the rows are unit vectors, so one scale loses little (see
    ``tests/test_retrieval.py``) and the file is ``N · d`` bytes plus the query tower. ``"row"`` keeps
    the converter's per-row scales. Consecutive item ids (dense ids, ``item_catalog``) store no id table.

    Where brute force stops being fine: the file holds ``N · d`` values (4 bytes each in float32, 1 in
    int8) plus 4 bytes of item id per item if the ids are not consecutive, and every query scores all ``N``
    items. Measured with ``benchmarks/recsys_table.py`` (LiteRT, 1 thread, d=16, batch 1, shared 2-core CPU):
    10k items: 0.64 MB float32 / 0.16 MB int8 (0.28 MB with per-row scales), p50 35–58 / 25–30 µs;
    100k items: 6.4 MB / 1.6 MB (2.8 MB), p50 0.5–1.2 / 0.23–0.26 ms. Size, not latency, is the limit on
    a phone app. Above ``max_items`` (default 200,000) this refuses with :class:`TFCompressError`: use a
    server-side or ANN index (ScaNN) or pre-filter the catalogue. The catalogue's embeddings are the bulk of
    the file, so the item tower's table compression does not shrink it: a smaller ``output_dim`` and
    ``mode="int8"`` do.

    ``objective`` (default ``"ranking"``: raw scores) is recorded in the sidecar and used by the parity
    gate; ``task=`` is its deprecated alias.

    Example:
        >>> # path = export_retrieval_tflite(student, item_catalog(events, spec), spec, k=10,
        >>> #                                path="retrieval.tflite", mode="int8", representative=queries)
        >>> # TFLiteModel(path).predict({"user_id": [3], "hour": [9], ...})["item_ids"]
    """
    objective = objective_argument(objective, task, "export_retrieval_tflite")
    if candidate_scales not in ("tensor", "row"):
        raise TFCompressError(f"candidate_scales={candidate_scales!r} must be 'tensor' or 'row'")
    topk = retrieval_topk_model(model, items, spec, k=k, max_items=max_items)
    rewrite = None
    if mode == "int8" and candidate_scales == "tensor":
        values = topk.get_layer("topk").candidates.numpy()
        rewrite = lambda blob: requantize_candidates(blob, values)  # noqa: E731
        metadata = {**(metadata or {}), "candidate_scales": "tensor"}
    return to_tflite(topk, path, mode=mode, representative=representative, name=topk.name, objective=objective,
                     metadata=metadata, rewrite=rewrite, **kwargs)


def requantize_candidates(blob, values):
    """TFLite bytes ``blob`` with its int8 tensor that holds ``values`` (a float ``(N, d)`` constant
    quantized per row by the converter) requantized with one symmetric scale from ``values``.

    The converter gives a FULLY_CONNECTED weight one scale per output row: 12 bytes of quantization
    parameters per row, which for a stored candidate matrix of ``N`` items and ``d`` ≤ 16 dimensions is
    most of the file. Raises :class:`TFCompressError` if no such tensor (or more than one) is found.

    Example:
        >>> # to_tflite(topk, path, mode="int8", ..., rewrite=lambda b: requantize_candidates(b, matrix))
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    values = np.asarray(values, np.float32)
    tfl = schema.ModelT.InitFromPackedBuf(bytes(blob), 0)
    users = {}
    for sg in tfl.subgraphs:
        for t in sg.tensors:
            users.setdefault(t.buffer, []).append(t)
    hits = [t for ts in users.values() for t in ts
            if t.type == schema.TensorType.INT8 and t.quantization is not None and t.quantization.scale is not None
            and list(t.shape) == list(values.shape) and len(t.quantization.scale) == values.shape[0]
            and len(users[t.buffer]) == 1]
    if len(hits) != 1:
        raise TFCompressError(f"the model has {len(hits)} int8 per-row tensors of shape {values.shape} "
                              "to requantize: export with mode='int8' and candidate_scales='row'")
    t = hits[0]
    scale = max(float(np.abs(values).max()), 1e-12) / 127.0
    q = np.clip(np.round(values / scale), -127, 127).astype(np.int8)
    tfl.buffers[t.buffer].data = q.reshape(-1).view(np.uint8)
    t.quantization.scale, t.quantization.zeroPoint, t.quantization.quantizedDimension = [scale], [0], 0
    builder = flatbuffers.Builder(len(blob))
    builder.Finish(tfl.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def requantize_per_tensor(path, values):
    """:func:`requantize_candidates` on the file ``path`` (rewritten in place, its sidecar's ``size_bytes``
    updated); returns the bytes saved. Prefer ``to_tflite(..., rewrite=...)``, which checks parity once
    on the rewritten bytes.

    Example:
        >>> # requantize_per_tensor("retrieval_int8.tflite", candidate_matrix)   # -> 116,712
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        blob = f.read()
    try:
        out = requantize_candidates(blob, values)
    except TFCompressError as e:
        raise TFCompressError(f"{path!r}: {e}") from None
    write_bytes(path, out)
    if os.path.exists(sidecar_path(path)):
        write_json(sidecar_path(path), {**read_sidecar(path), "size_bytes": len(out), "candidate_scales": "tensor"})
    return len(blob) - len(out)
