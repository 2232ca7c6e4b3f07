"""What a model costs to ship and hold: file size, gzip size, parameters, sparsity (whole model and per
layer), and the peak memory of a process that runs a ``.tflite`` file.

Example:
    >>> import os, tempfile
    >>> from tfcompress import keras
    >>> from tfcompress.bench import load_model, measure_footprint
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)]).save(path)
    >>> frame, layers = measure_footprint([load_model(path)])
    >>> frame[["name", "format", "params", "sparsity"]].values.tolist(), layers["shape"].tolist()
    ([['m', 'keras', 8, 0.0]], ['3x2'])
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

from ..errors import TFCompressError
from . import size

__all__ = ["measure_footprint", "tflite_peak_memory"]


def measure_footprint(models, *, memory_inputs=None, threads=1):
    """Size and structure of each :class:`~tfcompress.bench.BenchModel`: ``(frame, layers)``.

    ``frame`` has one row per model: ``name``, ``format``, ``size_bytes``, ``gzip_bytes``, ``params``,
    ``sparsity`` (exact zeros over all kernels), for ``.tflite`` files ``peak_rss_bytes`` and
    ``interpreter_rss_bytes`` (see :func:`tflite_peak_memory`, measured on ``memory_inputs``, a dict
    name -> rows, with ``threads`` interpreter threads, when given), and the absolute ``path``.
    ``layers`` is the per-layer sparsity table of every model (column ``model`` first; shapes as
    ``"3x2"``), empty when no model has layers to count.
    """
    rows, layer_frames = [], []
    for m in models:
        row = {"name": m.name, "format": m.kind}
        size_row, layers = _size_row(m)
        row.update(size_row)
        if layers is not None and len(layers):
            layer_frames.append(layers.assign(model=m.name)[["model"] + list(layers.columns)])
        if m.kind == "tflite" and memory_inputs is not None:
            peak, grown = tflite_peak_memory(m.path, m.cast(memory_inputs), threads)
            row["peak_rss_bytes"], row["interpreter_rss_bytes"] = peak, grown
        row["path"] = os.path.abspath(m.path)
        rows.append(row)
    layers = pd.concat(layer_frames, ignore_index=True) if layer_frames else pd.DataFrame()
    if not layers.empty:
        layers["shape"] = layers["shape"].map(lambda s: "x".join(str(v) for v in s))
    return pd.DataFrame(rows), layers


def _size_row(m):
    row = {"size_bytes": size.file_bytes(m.path), "gzip_bytes": size.gzip_bytes(m.path)}
    layers = None
    if m.kind == "keras":
        row["params"] = size.count_params(m.obj)
        layers = size.keras_layer_sparsity(m.obj)
    elif m.kind == "tflite":
        row["params"] = size.tflite_params(m.path)
        layers = size.tflite_layer_sparsity(m.path)
    else:
        variables = getattr(m.obj, "model_variables", None) or getattr(m.obj, "variables", None) or []
        row["params"] = int(sum(int(np.prod(v.shape)) for v in variables)) or None
    if layers is not None:
        params = layers["params"].sum()
        row["sparsity"] = float(layers["zeros"].sum() / params) if params else 0.0
    return row, layers


_MEMORY_SCRIPT = r"""
import json, resource, sys
import numpy as np
def hwm():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
from ai_edge_litert.interpreter import Interpreter
data = dict(np.load(sys.argv[2]))
before = hwm()
it = Interpreter(model_path=sys.argv[1], num_threads=int(sys.argv[3]))
sigs = it.get_signature_list()
details = it.get_signature_runner(next(iter(sigs))).get_input_details() if sigs else {
    d["name"]: d for d in it.get_input_details()}
for name, d in details.items():
    it.resize_tensor_input(d["index"], data[name].shape, strict=False)
it.allocate_tensors()
for name, d in details.items():
    x, dtype = data[name], np.dtype(d["dtype"])
    scale, zp = d["quantization"]
    if dtype in (np.int8, np.uint8, np.int16) and scale and np.issubdtype(x.dtype, np.floating):
        info = np.iinfo(dtype)
        x = np.clip(np.round(x / scale + zp), info.min, info.max)
    it.set_tensor(d["index"], x.astype(dtype))
for _ in range(3):
    it.invoke()
print(json.dumps({"peak": hwm(), "before": before}))
"""


def tflite_peak_memory(path, inputs, threads=1, timeout=300):
    """Peak resident memory (bytes) of a fresh process that loads ``path`` and runs it on ``inputs``.

    Returns ``(peak_bytes, model_bytes)``: the process high-water mark (Python, NumPy and LiteRT
    included) and how much it grew from just before the interpreter was created to the end.

    Example:
        >>> import numpy as np
        >>> tflite_peak_memory("missing.tflite", {"x": np.ones((1, 4), "float32")})
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: measuring the memory of 'missing.tflite' failed: ...
    """
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "inputs.npz")
        np.savez(npz, **{k: np.asarray(v) for k, v in inputs.items()})
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        proc = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, os.fspath(path), npz, str(threads)],
                              capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1][:160]
        raise TFCompressError(f"measuring the memory of {path!r} failed: {last}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(figures["peak"]), int(figures["peak"] - figures["before"])
