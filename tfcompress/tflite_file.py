"""Reading ``.tflite`` files: the LiteRT interpreter, its operators, constant tensors and GATHER tables.

The only module of tfcompress that touches TensorFlow's or LiteRT's private names (each use is marked
``# private:``); every other module reads a ``.tflite`` file through these functions.

Example:
    >>> import os, tempfile
    >>> import tfcompress
    >>> from tfcompress import keras
    >>> m = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
    >>> path = tfcompress.export.to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float32")
    >>> op_counts(path)
    {'FULLY_CONNECTED': 1}
    >>> [t["shape"] for t in weights(path)]
    [(2, 3)]
"""
import collections
import os

import numpy as np

from .errors import TFCompressError

#: operators whose input 1 is a weight tensor
WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
#: operators that read a row table: ``{op name: input index of the table}``
TABLE_OPS = {"GATHER": 0, "EMBEDDING_LOOKUP": 1}


def interpreter(path=None, *, content=None, num_threads=1, xnnpack=True):
    """A LiteRT ``Interpreter`` for the ``.tflite`` file at ``path`` or the model bytes ``content``, not
    yet allocated (so only constant tensors hold data). ``xnnpack=False`` runs the builtin kernels only.

    Example:
        >>> interpreter(content=b"not a flatbuffer")
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: the model bytes is not a valid TFLite model (...): re-export it ...
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if (path is None) == (content is None):
        raise TFCompressError("pass either the path of a .tflite file or its bytes as content=, not both")
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise TFCompressError(f"threads must be an integer >= 1, got {num_threads!r}")
    kwargs = {"num_threads": int(num_threads)}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise TFCompressError(f"TFLite file {path!r} does not exist: pass the path of a .tflite file")
        kwargs["model_path"] = path
    else:
        kwargs["model_content"] = bytes(content)
    try:
        return Interpreter(**kwargs)
    except (ValueError, RuntimeError) as e:
        what = path or "the model bytes"
        raise TFCompressError(f"{what} is not a valid TFLite model ({str(e).splitlines()[0]}): "
                              "re-export it with tfcompress.export.to_tflite") from None


def _as_interpreter(source):
    """An interpreter from an interpreter, a path or model bytes."""
    if hasattr(source, "get_tensor_details"):
        return source
    if isinstance(source, (bytes, bytearray)):
        return interpreter(content=source, xnnpack=False)
    return interpreter(source, xnnpack=False)


def ops(source):
    """The operators of a model (an interpreter, a path or model bytes), in execution order: dicts with
    ``index``, ``op_name``, ``inputs`` and ``outputs`` (tensor indices; -1 for an omitted input).

    Example:
        >>> import os, tempfile
        >>> import tfcompress
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
        >>> p = tfcompress.export.to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float32")
        >>> [o["op_name"] for o in ops(p)]
        ['FULLY_CONNECTED']
    """
    return _as_interpreter(source)._get_ops_details()  # private: the only op-level view LiteRT offers


def op_counts(source):
    """``{op_name: count}`` of a model's operators (an interpreter, a path or model bytes).

    Example:
        >>> import os, tempfile
        >>> import tfcompress
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2), keras.layers.Softmax()])
        >>> p = tfcompress.export.to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float32")
        >>> op_counts(p)
        {'FULLY_CONNECTED': 1, 'SOFTMAX': 1}
    """
    return dict(collections.Counter(o["op_name"] for o in ops(source)))


def op_names(content):
    """The set of operator names of a model given as bytes (or a path, or an interpreter).

    Example:
        >>> import tfcompress
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
        >>> op_names(tfcompress.export.convert(m, mode="float32"))
        {'FULLY_CONNECTED'}
    """
    return {o["op_name"] for o in ops(content)}


def constant(interp, index):
    """The values of tensor ``index`` if it is a constant of the (unallocated) interpreter, else None.

    Example:
        >>> import os, tempfile
        >>> import tfcompress
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
        >>> p = tfcompress.export.to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float32")
        >>> it = interpreter(p)
        >>> constant(it, it.get_input_details()[0]["index"]) is None
        True
    """
    if index is None or index < 0:
        return None
    try:
        return interp.get_tensor(int(index))
    except ValueError:
        return None


def _constant_tensor(interp, details, index, producer=None):
    """``{"index", "name", "values", "details"}`` of constant tensor ``index`` (followed back through a
    DEQUANTIZE or DENSIFY op when ``producer`` maps output index -> op), or None."""
    index = int(index)
    while producer and constant(interp, index) is None and index in producer \
            and producer[index]["op_name"] in ("DEQUANTIZE", "DENSIFY"):
        index = int(producer[index]["inputs"][0])
    values = constant(interp, index)
    if values is None or index not in details:
        return None
    return {"index": index, "name": details[index]["name"], "values": values, "details": details[index]}


def weights(source, op_types=WEIGHT_OPS):
    """The weight tensors (input 1) of the ``op_types`` operators of a model, each once: dicts with
    ``op_name``, ``index``, ``name``, ``shape``, ``values`` and ``details`` (the interpreter's tensor
    details: dtype, quantization). Weights stored as float16/int8 behind a DEQUANTIZE (or DENSIFY) op are
    followed back to the constant.

    Example:
        >>> import os, tempfile
        >>> import tfcompress
        >>> from tfcompress import keras
        >>> m = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2), keras.layers.Dense(1)])
        >>> p = tfcompress.export.to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float16")
        >>> [(t["op_name"], t["shape"], t["values"].dtype.name) for t in weights(p)]
        [('FULLY_CONNECTED', (2, 3), 'float16'), ('FULLY_CONNECTED', (1, 2), 'float16')]
    """
    interp = _as_interpreter(source)
    op_list = ops(interp)
    details = {d["index"]: d for d in interp.get_tensor_details()}
    producer = {int(out): op for op in op_list for out in op["outputs"]}
    out, seen = [], set()
    for op in op_list:
        if op["op_name"] not in op_types or len(op["inputs"]) < 2:
            continue
        tensor = _constant_tensor(interp, details, op["inputs"][1], producer)
        if tensor is None or tensor["index"] in seen:
            continue
        seen.add(tensor["index"])
        out.append({"op_name": op["op_name"], "shape": tuple(tensor["values"].shape), **tensor})
    return out


def gather_tables(path):
    """The constant row tables read by GATHER / EMBEDDING_LOOKUP ops of a ``.tflite`` file, each once:
    dicts with ``index``, ``name``, ``shape``, ``dtype`` (a numpy dtype name) and ``nbytes``.

    Example:
        >>> import os, tempfile
        >>> import tfcompress
        >>> from tfcompress import keras
        >>> x = keras.Input((), name="item", dtype="int32")
        >>> m = keras.Model({"item": x}, keras.layers.Embedding(50, 4, name="emb")(x))
        >>> p = tfcompress.export.to_tflite(m, os.path.join(tempfile.mkdtemp(), "m.tflite"), mode="float32")
        >>> [(t["shape"], t["dtype"], t["nbytes"]) for t in gather_tables(p)]
        [((50, 4), 'float32', 800)]
    """
    interp = _as_interpreter(path)
    details = {d["index"]: d for d in interp.get_tensor_details()}
    out, seen = [], set()
    for op in ops(interp):
        if op["op_name"] not in TABLE_OPS:
            continue
        tensor = _constant_tensor(interp, details, op["inputs"][TABLE_OPS[op["op_name"]]])
        if tensor is None or tensor["index"] in seen or not len(tensor["details"]["shape"]):
            continue
        seen.add(tensor["index"])
        dtype = np.dtype(tensor["details"]["dtype"])
        shape = tuple(int(s) for s in tensor["details"]["shape"])
        out.append({"index": tensor["index"], "name": tensor["name"], "shape": shape, "dtype": dtype.name,
                    "nbytes": int(np.prod(shape)) * dtype.itemsize})
    return out


def debugger_input_details(debugger):
    """The input details of the quantized interpreter inside a ``tf.lite.experimental.QuantizationDebugger``
    (the order in which it feeds the debug dataset's lists).

    Example:
        >>> # debugger_input_details(tf.lite.experimental.QuantizationDebugger(converter=c, ...))
    """
    return debugger._quant_interpreter.get_input_details()  # private: the debugger exposes no input order


def set_debugger_options(debugger, options):
    """Give a ``QuantizationDebugger`` new ``QuantizationDebugOptions`` without rebuilding its debug model
    (the public setter would): :meth:`get_nondebug_quantized_model` then reads them, e.g. a denylist.

    Example:
        >>> # set_debugger_options(dbg, tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=[...]))
    """
    debugger._debug_options = options  # private: the setter would recalibrate the debug model
