"""The second quantization backend: the LiteRT Quantizer (``ai-edge-quantizer``) on a float32 ``.tflite``.

Post-training quantization inside the TFLite converter is being retired in favour of this tool; it also has
recipes the converter lacks: int4 weights, blockwise weights, and selective quantization by op-name regex.

=====================  =========================================================================
recipe                 what it does
=====================  =========================================================================
``int8_weights``       int8 weights (per channel), float compute (weight-only)
``int4_weights``       int4 weights (per channel), float compute (weight-only)
``int8_dynamic``       int8 weights, activations quantized on the fly (dynamic range)
``int4_blockwise``     int4 weights in blocks of 32 along the input dim, dynamic activations
``int8_blockwise``     int8 weights in blocks of 32, dynamic activations
=====================  =========================================================================

``layers_regex`` limits the recipe to ops whose output tensor name matches (e.g. ``"dense_0|logit"``);
other ops stay float.

Example:
    >>> import os, tempfile
    >>> from tfcompress import keras
    >>> from tfcompress.export import to_tflite, TFLiteModel
    >>> m = keras.Sequential([keras.Input((64,), name="x"), keras.layers.Dense(32), keras.layers.Dense(1)])
    >>> d = tempfile.mkdtemp()
    >>> f32 = to_tflite(m, os.path.join(d, "m.tflite"), mode="float32")
    >>> out = quantize_with_litert(f32, recipe="int4_blockwise", out_path=os.path.join(d, "m_int4.tflite"))
    >>> TFLiteModel(out).predict({"x": [[0.0] * 64]}).shape
    (1, 1)
"""
import contextlib
import io
import json
import os

from .._io import write_bytes, write_json
from ..errors import TFCompressError
from .tflite import sidecar_path
from .tflite_model import TFLiteModel

RECIPES = {
    # name: (kind, num_bits, granularity)
    "int8_weights": ("weight_only", 8, "CHANNELWISE"),
    "int4_weights": ("weight_only", 4, "CHANNELWISE"),
    "int8_dynamic": ("dynamic", 8, "CHANNELWISE"),
    "int4_blockwise": ("dynamic", 4, "BLOCKWISE_32"),
    "int8_blockwise": ("dynamic", 8, "BLOCKWISE_32"),
}


def _recipe(recipe, layers_regex):
    from ai_edge_quantizer import qtyping, recipe_manager

    if recipe not in RECIPES:
        raise TFCompressError(f"LiteRT recipe {recipe!r} is not one of {sorted(RECIPES)}")
    kind, bits, gran = RECIPES[recipe]
    rm = recipe_manager.RecipeManager()
    add = rm.add_weight_only_config if kind == "weight_only" else rm.add_dynamic_config
    add(regex=layers_regex or ".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=bits,
        granularity=getattr(qtyping.QuantGranularity, gran))
    return rm.get_quantization_recipe()


def quantize_with_litert(float_tflite_path, recipe="int8_weights", *, layers_regex=None, out_path=None):
    """Quantize a float32 ``.tflite`` with the LiteRT Quantizer; writes ``out_path`` (default
    ``NAME_RECIPE.tflite`` beside the input) and a JSON sidecar; returns the path.

    Example:
        >>> # quantize_with_litert("tflite_export/student_float32.tflite", "int4_weights")  (module example)
    """
    src = os.fspath(float_tflite_path)
    if not os.path.isfile(src):
        raise TFCompressError(f"no float TFLite file at {src!r}: export one with to_tflite(mode='float32')")
    if out_path is None:
        root, _ = os.path.splitext(src)
        out_path = f"{root}_{recipe}.tflite"
    out_path = os.fspath(out_path)
    rp = _recipe(recipe, layers_regex)
    blob = _quantize(src, rp, recipe)
    write_bytes(out_path, blob)
    try:
        tfl = TFLiteModel(out_path)
    except TFCompressError:
        os.remove(out_path)
        raise
    sidecar = {"name": os.path.splitext(os.path.basename(out_path))[0], "mode": f"litert:{recipe}",
               "backend": "ai_edge_quantizer", "source_tflite": os.path.basename(src),
               "layers_regex": layers_regex, "recipe": _jsonable_recipe(rp), "size_bytes": len(blob),
               "inputs": tfl.signature()["inputs"], "outputs": tfl.signature()["outputs"]}
    write_json(sidecar_path(out_path), {**sidecar, **_inherited(src)})
    return out_path


def _quantize(src, rp, recipe):
    """The quantized model bytes of the file ``src`` under recipe ``rp`` (named ``recipe``)."""
    from ai_edge_quantizer import quantizer

    try:
        q = quantizer.Quantizer(src, rp)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a size report
            result = q.quantize()
    except Exception as e:  # the quantizer raises ValueError/RuntimeError with long texts
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ""
        if "not divisible by block size" in first:
            hint = ("; blockwise recipes need every quantized weight's input dim divisible by 32: use "
                    "'int4_weights' (per channel) or limit the recipe with layers_regex")
        raise TFCompressError(f"the LiteRT Quantizer failed on {os.path.basename(src)} with recipe "
                              f"{recipe!r}: {first}{hint}") from None
    if result.quantized_model is None:
        raise TFCompressError(f"the LiteRT Quantizer produced no model for recipe {recipe!r}")
    return bytes(result.quantized_model)


def _inherited(src):
    """What the quantized file's sidecar keeps of the float file's sidecar (source model, objective, ...)."""
    if not os.path.exists(sidecar_path(src)):
        return {}
    with open(sidecar_path(src)) as f:
        src_side = json.load(f)
    return {key: src_side[key] for key in ("source_model", "objective", "task", "keras_inputs", "versions")
            if key in src_side}


def _jsonable_recipe(rp):
    return json.loads(json.dumps(rp, default=lambda o: getattr(o, "value", str(o))))
