"""Run a ``.tflite`` model on the LiteRT interpreter, by input name, with int8 I/O handled for you.

Example:
    >>> import tfcompress
    >>> from tfcompress import keras
    >>> x = keras.Input((), name="price")
    >>> m = keras.Model({"price": x}, keras.layers.Dense(1, name="logit")(keras.layers.Reshape((1,))(x)))
    >>> import tempfile, os
    >>> path = tfcompress.export.to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float32")
    >>> TFLiteModel(path).predict({"price": [1.0, 2.0]}).shape
    (2, 1)
"""
import os

import numpy as np

from .. import tflite_file
from ..errors import TFCompressError
from .calibration import check_inputs


def sidecar_path(path):
    """The path of the JSON sidecar of the ``.tflite`` file ``path`` (``NAME.json`` beside it).

    Example:
        >>> sidecar_path("tflite_export/student.tflite").replace(os.sep, "/")
        'tflite_export/student.json'
    """
    root, _ = os.path.splitext(os.fspath(path))
    return root + ".json"


def sidecar_vocabulary(path):
    """``{input: {"size": rows, "oov": id or None}}`` from the sidecar of ``path``: its ``vocabulary``
    (written by ``to_tflite``), else its ``feature_spec``'s categorical features (id 0 = unknown); numeric
    features the model fills itself (a ``fill`` in the spec) get ``{"fills_missing": True}``; ``{}``
    without a sidecar.

    Example:
        >>> sidecar_vocabulary("no/such.tflite")
        {}
    """
    import json

    try:
        with open(sidecar_path(path)) as f:
            side = json.load(f)
    except (OSError, ValueError):
        return {}
    spec = (side.get("feature_spec") or {}).get("features") or []
    out = {f["name"]: {"size": int(f["vocab_size"]), "oov": 0} for f in spec
           if isinstance(f, dict) and f.get("kind") == "categorical" and f.get("vocab_size")}
    out.update({f["name"]: {"fills_missing": True} for f in spec
                if isinstance(f, dict) and f.get("kind") == "numeric" and "fill" in f})
    for name, entry in (side.get("vocabulary") or {}).items():
        out[name] = {**entry, "oov": entry.get("oov") if entry.get("oov") is not None else out.get(name, {}).get("oov")}
    return out


def quantize_array(x, dtype, scale, zero_point):
    """Float array -> integer array for an input tensor of ``dtype`` with (scale, zero_point).

    Example:
        >>> quantize_array([0.0, 0.5, 9.0], np.int8, 0.05, -3).tolist()
        [-3, 7, 127]
    """
    info = np.iinfo(dtype)
    return np.clip(np.round(np.asarray(x, np.float32) / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize_array(q, scale, zero_point):
    """Integer array -> float array.

    Example:
        >>> dequantize_array(np.array([-3, 7], np.int8), 0.05, -3).tolist()
        [0.0, 0.5]
    """
    return (np.asarray(q, np.float32) - zero_point) * scale


class TFLiteModel:
    """A ``.tflite`` file on the LiteRT interpreter: its signature, tensor details, and ``predict``.

    Inputs are matched by name (the SavedModel signature's names, e.g. ``user_id``); float inputs are
    quantized for int8/int16 input tensors and integer outputs dequantized, so ``predict`` always takes
    and returns the same values as the Keras model.

    Example:
        >>> import os, tempfile
        >>> from tfcompress import keras
        >>> from tfcompress.export import to_tflite
        >>> m = keras.Sequential([keras.Input((2,), name="x"), keras.layers.Dense(1, name="y")])
        >>> tfl = TFLiteModel(to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float32"))
        >>> tfl.input_names, tfl.predict({"x": [[1.0, 2.0]]}).shape
        (['x'], (1, 1))
    """

    def __init__(self, path, *, num_threads=1, xnnpack=True):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise TFCompressError(f"no TFLite file at {self.path!r}")
        self.num_threads = num_threads
        self.interpreter = tflite_file.interpreter(self.path, num_threads=num_threads, xnnpack=xnnpack)
        runner_keys = self.interpreter.get_signature_list()
        if runner_keys:
            key = "serving_default" if "serving_default" in runner_keys else sorted(runner_keys)[0]
            runner = self.interpreter.get_signature_runner(key)
            self.inputs = {n: d for n, d in runner.get_input_details().items()}
            self.outputs = {n: d for n, d in runner.get_output_details().items()}
        else:
            self.inputs = {d["name"]: d for d in self.interpreter.get_input_details()}
            self.outputs = {d["name"]: d for d in self.interpreter.get_output_details()}
        self._batch = None
        self.vocabulary = sidecar_vocabulary(self.path)

    # --- description ---------------------------------------------------------------------------------
    @property
    def input_names(self):
        return sorted(self.inputs)

    @property
    def output_names(self):
        return sorted(self.outputs)

    def signature(self):
        """``{"inputs": {name: (dtype, shape_signature, quantization)}, "outputs": {...}}``."""
        def describe(d):
            return {"dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d.get("shape_signature", d["shape"])],
                    "scale": float(d["quantization"][0]), "zero_point": int(d["quantization"][1])}
        return {"inputs": {n: describe(d) for n, d in sorted(self.inputs.items())},
                "outputs": {n: describe(d) for n, d in sorted(self.outputs.items())}}

    def tensor_details(self):
        """All tensors of the model (name, index, shape, dtype, quantization), as the interpreter lists them."""
        return self.interpreter.get_tensor_details()

    def op_counts(self):
        """``{op_name: count}`` of the model's operators (e.g. ``{"FULLY_CONNECTED": 3, ...}``)."""
        return tflite_file.op_counts(self.interpreter)

    def summary(self, print_fn=print):
        """Print (and return) a table of the inputs, outputs (dtype, shape, quantization) and op counts.

        Example:
            >>> # TFLiteModel("tflite_export/student.tflite").summary()
        """
        sig = self.signature()
        lines = [f"TFLite model {os.path.basename(self.path)} ({os.path.getsize(self.path):,} bytes)",
                 f"{'':2}{'tensor':<24}{'dtype':<9}{'shape':<14}{'scale':>12}{'zero_point':>12}"]
        for kind in ("inputs", "outputs"):
            lines.append(f"{kind}:")
            for n, d in sig[kind].items():
                scale = f"{d['scale']:.4g}" if d["scale"] else "-"
                zp = str(d["zero_point"]) if d["scale"] else "-"
                lines.append(f"  {n:<24}{d['dtype']:<9}{str(d['shape']):<14}{scale:>12}{zp:>12}")
        lines.append("ops:")
        for op, k in sorted(self.op_counts().items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {op:<24}{k:>5}")
        text = "\n".join(lines)
        if print_fn:
            print_fn(text)
        return text

    def __repr__(self):
        ins = ", ".join(f"{n}:{np.dtype(d['dtype']).name}" for n, d in sorted(self.inputs.items()))
        outs = ", ".join(f"{n}:{np.dtype(d['dtype']).name}" for n, d in sorted(self.outputs.items()))
        return f"TFLiteModel({os.path.basename(self.path)!r}, inputs=[{ins}], outputs=[{outs}])"

    # --- running -------------------------------------------------------------------------------------
    def _as_arrays(self, inputs):
        import pandas as pd

        if isinstance(inputs, pd.DataFrame):
            missing = [n for n in self.inputs if n not in inputs.columns]
            if missing:
                raise TFCompressError(f"the DataFrame lacks model inputs {missing}")
            inputs = {n: inputs[n].to_numpy() for n in self.inputs}
        if not isinstance(inputs, dict):
            raise TFCompressError(f"inputs must be a dict name -> array, a DataFrame or a tf.data.Dataset, "
                                  f"got {type(inputs).__name__}")
        missing = [n for n in self.inputs if n not in inputs]
        if missing:
            extra = sorted(str(k) for k in inputs if k not in self.inputs and k != "labels")
            hint = f" and have unexpected {extra}" if extra else ""
            raise TFCompressError(f"inputs lack {missing}{hint}; the model takes {self.input_names}")
        arrays = {n: np.asarray(inputs[n]) for n in self.inputs}
        sizes = {len(a) for a in arrays.values()}
        if len(sizes) != 1:
            raise TFCompressError(f"inputs have different lengths: { {n: len(a) for n, a in arrays.items()} }")
        try:
            return check_inputs(arrays, self.inputs, self.vocabulary)
        except TFCompressError as e:
            name = os.path.splitext(os.path.basename(self.path))[0]
            raise TFCompressError(f"{name} failed on the data: {e}") from None

    def _resize(self, batch):
        if self._batch == batch:
            return
        for d in self.inputs.values():
            shape = list(d.get("shape_signature", d["shape"]))
            shape[0] = batch
            self.interpreter.resize_tensor_input(d["index"], [int(s) if s > 0 else batch for s in shape])
        self.interpreter.allocate_tensors()
        self._batch = batch

    def _set(self, name, x):
        d = self.inputs[name]
        dtype = np.dtype(d["dtype"])
        scale, zp = d["quantization"]
        if dtype in (np.int8, np.uint8, np.int16) and scale:
            x = quantize_array(x, dtype, scale, zp)
        elif x.dtype != dtype:
            x = x.astype(dtype)
        self.interpreter.set_tensor(d["index"], x)

    def _get(self, name):
        d = self.outputs[name]
        out = self.interpreter.get_tensor(d["index"])
        scale, zp = d["quantization"]
        if np.dtype(d["dtype"]) in (np.int8, np.uint8, np.int16) and scale:
            out = dequantize_array(out, scale, zp)
        return np.array(out, copy=True)

    def predict(self, inputs, *, batch_size=1024, output=None):
        """Run on a dict of arrays, a DataFrame or a ``tf.data.Dataset`` of feature dicts (or
        ``(features, label)`` pairs); returns the output (dequantized float) as one array, or a dict when
        the model has several outputs and ``output`` is None."""
        if hasattr(inputs, "as_numpy_iterator"):
            parts = [self.predict(batch[0] if isinstance(batch, tuple) else batch, batch_size=batch_size,
                                  output=output) for batch in inputs.as_numpy_iterator()]
            if parts and isinstance(parts[0], dict):
                return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            return np.concatenate(parts) if parts else np.zeros((0,))
        arrays = self._as_arrays(inputs)
        n = len(next(iter(arrays.values())))
        names = [output] if output else self.output_names
        for name in names:
            if name not in self.outputs:
                raise TFCompressError(f"no output named {name!r}; outputs are {self.output_names}")
        results = {name: [] for name in names}
        for start in range(0, n, batch_size):
            chunk = {k: v[start:start + batch_size] for k, v in arrays.items()}
            self._resize(len(next(iter(chunk.values()))))
            for k, v in chunk.items():
                self._set(k, v)
            self.interpreter.invoke()
            for name in names:
                results[name].append(self._get(name))
        merged = {k: np.concatenate(v) for k, v in results.items()}
        return merged[names[0]] if len(names) == 1 else merged
