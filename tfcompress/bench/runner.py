"""A benchmark session over a mix of models: Keras files, SavedModels and ``.tflite`` files side by side.

:func:`load_model` opens any of them behind one small interface (:class:`BenchModel`: input names,
``cast``, ``predict``, a latency ``candidate``). :func:`run_bench` checks that the models take the same
inputs and that the data has them, measures quality on the same rows for every model (with bootstrap
differences against a baseline), size and structure (bytes, gzip, parameters, sparsity, per-layer table,
peak memory of a TFLite interpreter process), and latency interleaved across models for every batch
size / device / thread count / XNNPACK setting, then writes a :class:`~tfcompress.bench.report.Report`
with plots.

Example:
    >>> import os, tempfile
    >>> from tfcompress._keras import keras
    >>> from tfcompress.data import make_ecommerce
    >>> from tfcompress.models import ctr_student
    >>> shop = make_ecommerce(events=2000, seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> ctr_student(shop.spec, embedding_dim=2, hidden=(4,)).save(path)
    >>> result = run_bench([path], data=shop, batches=(1,), runs=5, warmup=1, progress=False)
    >>> sorted(result.models["name"])
    ['m']
"""
import dataclasses
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

from ..errors import TFCompressError

__all__ = ["BenchModel", "BenchResult", "load_model", "load_data", "run_bench", "tflite_peak_memory",
           "check_same_inputs"]

_TFLITE_MAGIC = b"TFL3"


# ---------------------------------------------------------------------------------------------------
# Models


@dataclasses.dataclass
class BenchModel:
    """One model to benchmark: ``kind`` is ``"keras"``, ``"savedmodel"`` or ``"tflite"``.

    ``inputs`` maps input name -> NumPy dtype the model is fed with (floats for quantized TFLite inputs:
    they are quantized on the way in).

    Example:
        >>> # m = load_model("tflite_export/ctr_student_int8.tflite"); m.kind, sorted(m.inputs)
    """

    name: str
    kind: str
    path: str
    obj: object
    inputs: dict

    @property
    def is_tensorflow(self):
        """True for models that run in TensorFlow (Keras, SavedModel), which can use a GPU."""
        return self.kind in ("keras", "savedmodel")

    def cast(self, arrays):
        """The model's inputs taken from ``arrays`` (dict name -> array) and cast to its dtypes."""
        return {name: np.asarray(arrays[name]).astype(dtype, copy=False) for name, dtype in self.inputs.items()}

    def candidate(self):
        """``(kind, obj)`` for :func:`tfcompress.bench.compare_latency`."""
        return self.kind, self.obj

    def predict(self, arrays, batch_size=4096):
        """The model's (first) output on ``arrays`` as a float64 NumPy array with a leading row axis."""
        feed = self.cast(arrays)
        if self.kind == "tflite":
            out = self.obj.predict(feed, batch_size=batch_size)
        elif self.kind == "keras":
            out = self.obj.predict(feed, batch_size=batch_size, verbose=0)
        else:
            fn = self.obj.signatures["serving_default"]
            n = len(next(iter(feed.values())))
            parts = []
            for start in range(0, n, batch_size):
                res = fn(**{k: v[start:start + batch_size] for k, v in feed.items()})
                parts.append(res[sorted(res)[0]].numpy())
            out = np.concatenate(parts)
        if isinstance(out, dict):
            out = out[sorted(out)[0]]
        if isinstance(out, (list, tuple)):
            out = out[0]
        return np.asarray(out, dtype=np.float64)


def _unique_name(path, taken):
    base = os.path.basename(os.path.normpath(os.fspath(path)))
    for ext in (".tflite", ".keras", ".h5"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    name, i = base, 2
    while name in taken:
        name, i = f"{base}#{i}", i + 1
    return name


def load_model(path, name=None):
    """Open a ``.tflite`` file, a SavedModel folder or a Keras ``.keras``/``.h5`` file as a :class:`BenchModel`.

    Anything else (a missing path, a text file, a folder without ``saved_model.pb``) is a
    :class:`~tfcompress.errors.TFCompressError` naming the path.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "notes.tflite")
        >>> _ = open(p, "w").write("hello")
        >>> load_model(p)
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: ...notes.tflite' is not a TFLite model (no TFL3 header): ...
    """
    path = os.fspath(path)
    name = name or _unique_name(path, ())
    what = "pass a .tflite file, a SavedModel folder or a .keras/.h5 file"
    if not os.path.exists(path):
        raise TFCompressError(f"model {path!r} does not exist: {what}")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise TFCompressError(f"{path!r} is a folder but not a SavedModel (no saved_model.pb): {what}")
        return _load_savedmodel(path, name)
    with open(path, "rb") as f:
        head = f.read(8)
    if path.endswith(".tflite") or head[4:8] == _TFLITE_MAGIC:
        if head[4:8] != _TFLITE_MAGIC:
            raise TFCompressError(f"{path!r} is not a TFLite model (no TFL3 header): {what}")
        from ..export import TFLiteModel

        model = TFLiteModel(path)
        inputs = {}
        for n, d in model.inputs.items():
            dtype = np.dtype(d["dtype"])
            if dtype in (np.int8, np.uint8, np.int16) and d["quantization"][0]:
                dtype = np.dtype(np.float32)  # quantized on the way in by TFLiteModel / the latency runner
            inputs[n] = dtype
        return BenchModel(name, "tflite", path, model, inputs)
    if path.endswith((".keras", ".h5")):
        return _load_keras(path, name)
    raise TFCompressError(f"{path!r} is not a model file: {what}")


def _load_keras(path, name):
    from .._keras import keras
    from ..models.layers import custom_objects

    try:
        with keras.utils.custom_object_scope(custom_objects()):
            model = keras.models.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001  (any reader failure means: not a readable Keras file)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise TFCompressError(f"{path!r} is not a readable Keras model ({first}): save it with "
                              "model.save('model.keras')") from None
    if not getattr(model, "inputs", None):
        raise TFCompressError(f"Keras model {path!r} has no defined inputs: build it with keras.Input")
    inputs = {n: np.dtype(t.dtype.as_numpy_dtype) for n, t in zip(model.input_names, model.inputs)}
    return BenchModel(name, "keras", path, model, inputs)


def _load_savedmodel(path, name):
    from .._keras import tf
    from .latency import _serving_function

    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise TFCompressError(f"{path!r} is not a readable SavedModel ({first})") from None
    fn, _ = _serving_function(loaded)
    inputs = {n: np.dtype(s.dtype.as_numpy_dtype) for n, s in fn.structured_input_signature[1].items()}
    return BenchModel(name, "savedmodel", path, loaded, inputs)


def check_same_inputs(models):
    """Raise a :class:`~tfcompress.errors.TFCompressError` naming the inputs that differ between models.

    Example:
        >>> a = BenchModel("a", "keras", "a", None, {"x": np.float32, "y": np.float32})
        >>> b = BenchModel("b", "keras", "b", None, {"x": np.float32})
        >>> check_same_inputs([a, b])
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: models take different inputs: b lacks ['y'] (a takes ['x', 'y']); compare models with the same signature
    """
    first = models[0]
    for other in models[1:]:
        lacks = sorted(set(first.inputs) - set(other.inputs))
        extra = sorted(set(other.inputs) - set(first.inputs))
        if lacks or extra:
            parts = []
            if lacks:
                parts.append(f"{other.name} lacks {lacks}")
            if extra:
                parts.append(f"{other.name} has extra {extra}")
            raise TFCompressError(f"models take different inputs: {', '.join(parts)} ({first.name} takes "
                                  f"{sorted(first.inputs)}); compare models with the same signature")


# ---------------------------------------------------------------------------------------------------
# Data


@dataclasses.dataclass
class BenchData:
    """Evaluation rows: ``arrays`` (dict column -> array, every column of the frame), ``labels`` or None,
    ``task`` ("binary", "multiclass", "regression" or None) and a ``description``."""

    frame: pd.DataFrame
    arrays: dict
    labels: object
    task: object
    description: str

    def sample(self, n, seed=0):
        """``n`` real rows (drawn with a fixed seed) as a dict column -> array."""
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self.frame), size=n, replace=len(self.frame) < n)
        return {k: v[idx] for k, v in self.arrays.items()}


def _frame_arrays(frame):
    arrays = {}
    for col in frame.columns:
        values = frame[col].to_numpy()
        if np.issubdtype(values.dtype, np.integer):
            arrays[col] = values.astype(np.int32)
        elif np.issubdtype(values.dtype, np.floating) or values.dtype == bool:
            arrays[col] = values.astype(np.float32)
    return arrays


def _task_of(labels):
    values = np.unique(labels)
    if np.all(np.isin(values, (0, 1))):
        return "binary"
    if np.issubdtype(labels.dtype, np.integer) or np.all(values == np.round(values)):
        return "multiclass"
    return "regression"


def load_data(data="builtin", *, events=20_000, seed=0, label=None, max_rows=None):
    """Evaluation rows for a benchmark: ``"builtin"`` (the synthetic shop's test split), an
    :class:`~tfcompress.data.EcommerceData`, a DataFrame, or the path of a ``.csv`` / ``.parquet`` file.

    ``label`` names the label column (default ``click`` or ``label`` when present; without one, quality
    is not measured).

    Example:
        >>> d = load_data("builtin", events=2000)
        >>> d.task, "user_id" in d.arrays
        ('binary', True)
    """
    spec = None
    if isinstance(data, str) and data == "builtin":
        from ..data import make_ecommerce

        data = make_ecommerce(events, seed)
    if hasattr(data, "split") and hasattr(data, "spec"):
        spec = data.spec
        frame = data.split()[2]
        description = f"built-in synthetic shop ({len(data.events):,} events, seed {data.seed}), test split"
    elif isinstance(data, pd.DataFrame):
        frame, description = data.reset_index(drop=True), f"DataFrame ({len(data):,} rows)"
    elif isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if not os.path.isfile(path):
            raise TFCompressError(f"data file {path!r} does not exist: pass builtin, a .csv or a .parquet file")
        try:
            if path.endswith(".parquet"):
                frame = pd.read_parquet(path)
            elif path.endswith(".csv"):
                frame = pd.read_csv(path)
            else:
                raise TFCompressError(f"data file {path!r} is neither .csv nor .parquet: convert it first")
        except TFCompressError:
            raise
        except Exception as e:  # noqa: BLE001
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise TFCompressError(f"cannot read data file {path!r} ({first})") from None
        description = f"{os.path.basename(path)} ({len(frame):,} rows)"
    else:
        raise TFCompressError(f"data must be 'builtin', a DataFrame or a .csv/.parquet path, got "
                              f"{type(data).__name__}")
    if len(frame) == 0:
        raise TFCompressError("the data has no rows: pass a file with at least one row")
    if max_rows and len(frame) > max_rows:
        frame = frame.iloc[:max_rows].reset_index(drop=True)
    if label is None:
        label = spec.label if spec is not None else next((c for c in ("click", "label") if c in frame.columns), None)
    elif label not in frame.columns:
        raise TFCompressError(f"label column {label!r} is not in the data (columns: {list(frame.columns)})")
    labels = task = None
    if label is not None and label in frame.columns:
        labels = frame[label].to_numpy()
        task = spec.task if spec is not None else _task_of(labels)
        labels = labels.astype(np.int32 if task == "multiclass" else np.float64)
    arrays = _frame_arrays(frame.drop(columns=[label]) if label in frame.columns else frame)
    return BenchData(frame, arrays, labels, task, description)


def check_data_fits(models, data):
    """Raise a :class:`~tfcompress.errors.TFCompressError` naming the model inputs the data lacks."""
    needed = sorted(set().union(*(m.inputs for m in models)))
    missing = [n for n in needed if n not in data.arrays]
    if missing:
        have = sorted(data.arrays)
        raise TFCompressError(f"the data lacks columns {missing} that the models take as inputs "
                              f"(it has {have}): pass data with these columns")
    for m in models:
        for name, vocab in _vocab_sizes(m).items():
            values = data.arrays.get(name)
            if values is not None and len(values) and (values.min() < 0 or values.max() >= vocab):
                raise TFCompressError(f"data column {name!r} has ids in [{values.min()}, {values.max()}] but model "
                                      f"{m.name} knows [0, {vocab}): use the data the model was trained on "
                                      "(for the built-in shop: the same --events and --seed)")


def _vocab_sizes(m):
    """name -> vocabulary size of categorical inputs, from a .tflite sidecar's feature_spec or Keras embeddings."""
    if m.kind == "tflite":
        sidecar = os.path.splitext(m.path)[0] + ".json"
        try:
            with open(sidecar) as f:
                spec = json.load(f).get("feature_spec") or {}
        except (OSError, ValueError):
            return {}
        return {f["name"]: int(f["vocab_size"]) for f in spec.get("features", [])
                if f.get("kind") == "categorical" and f.get("vocab_size")}
    return {}


# ---------------------------------------------------------------------------------------------------
# Quality


def _probabilities(task, out):
    out = np.asarray(out, np.float64)
    if task == "binary":
        out = out.reshape(len(out), -1)[:, 0]
        if out.min() < 0 or out.max() > 1:  # logits
            out = 1.0 / (1.0 + np.exp(-out))
        return np.clip(out, 1e-7, 1 - 1e-7)
    if task == "multiclass":
        out = out.reshape(len(out), -1)
        if out.min() < 0 or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
            z = np.exp(out - out.max(axis=1, keepdims=True))
            out = z / z.sum(axis=1, keepdims=True)
        return out
    return out.reshape(len(out), -1)[:, 0]


def _error_line(e):
    """The informative line of a (possibly multi-line TensorFlow) exception message."""
    import re

    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return ((named or lines or [type(e).__name__])[0])[:200]


def _predict(m, arrays):
    """``m.predict`` with a failure inside TensorFlow/LiteRT turned into a one-line error naming the model."""
    try:
        return m.predict(arrays)
    except TFCompressError:
        raise
    except Exception as e:  # noqa: BLE001  (TF and LiteRT raise many types; the first line says what)
        first = _error_line(e)
        raise TFCompressError(f"model {m.name} failed on the data ({first}): check that the data matches "
                              "what the model was trained on (ids within its vocabularies, same columns)") from None


def _metric_fns(task):
    from . import metrics

    if task == "binary":
        return {"auc": metrics.auc, "logloss": metrics.logloss}
    if task == "multiclass":
        return {"accuracy": metrics.accuracy, "logloss": metrics.logloss}
    if task == "regression":
        return {"rmse": metrics.rmse}
    return {}


# ---------------------------------------------------------------------------------------------------
# Peak memory of a TFLite interpreter process

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
        >>> # peak, model = tflite_peak_memory("model.tflite", {"x": np.ones((1, 4), "float32")})
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


# ---------------------------------------------------------------------------------------------------
# The session


@dataclasses.dataclass
class BenchResult:
    """What :func:`run_bench` measured: ``models`` (one row per model), ``latency`` (one row per model x
    configuration), ``layers`` (per-layer sparsity), the :class:`Report`, the written ``paths`` and the
    raw ``samples`` (label -> list of µs)."""

    models: pd.DataFrame
    latency: pd.DataFrame
    layers: pd.DataFrame
    report: object
    paths: dict
    samples: dict


def _parse_list(name, values, cast):
    if isinstance(values, str):
        values = [v.strip() for v in values.split(",") if v.strip()]
    try:
        out = [cast(v) for v in values]
    except (TypeError, ValueError):
        raise TFCompressError(f"{name} must be a comma-separated list, got {values!r}") from None
    if not out:
        raise TFCompressError(f"{name} is empty: pass at least one value")
    return out


def _on_off(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ValueError(value)


def _size_row(m):
    from . import size

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


def run_bench(models, data="builtin", *, events=20_000, seed=0, label=None, batches=(1, 32),
              threads=(1,), xnnpack=(True,), runs=100, warmup=None, baseline=None, out=None,
              memory=True, bootstrap=200, max_eval_rows=20_000, progress=True, title="tfcompress bench"):
    """Benchmark several models on the same real rows; returns a :class:`BenchResult`.

    Args:
        models: paths (``.tflite``, SavedModel folder, ``.keras``/``.h5``) or :class:`BenchModel` objects.
        data: ``"builtin"``, an ``EcommerceData``, a DataFrame or a ``.csv``/``.parquet`` path.
        batches, threads, xnnpack: the configurations to time (threads/XNNPACK apply to TFLite).
        runs, warmup: timed and warm-up calls per configuration, interleaved across models.
        baseline: the model name (file name without extension) the quality differences refer to;
            default the first model.
        out: folder for report.md/csv/json/html and the plots (None: nothing written).
        memory: measure the peak memory of a TFLite interpreter process per ``.tflite`` model.
        progress: show a tqdm bar on stderr.

    Keras and SavedModel latency is measured on the CPU and on every visible GPU; without a GPU each
    of those models gets a row with device ``GPU`` saying no GPU is visible.
    """
    from . import latency as lat
    from .metrics import bootstrap_diff
    from .report import Report

    if isinstance(models, (str, os.PathLike, BenchModel)):
        models = [models]
    if not models:
        raise TFCompressError("no models given: pass at least one model path")
    batches = _parse_list("batch sizes", batches, int)
    threads = _parse_list("threads", threads, int)
    xnnpack = _parse_list("xnnpack", xnnpack, _on_off)
    if any(b < 1 for b in batches) or any(t < 1 for t in threads):
        raise TFCompressError(f"batch sizes and threads must be >= 1, got {batches} and {threads}")
    warmup = max(2, runs // 10) if warmup is None else warmup
    lat._check_runs(runs, warmup)

    loaded, taken = [], set()
    for m in models:
        if not isinstance(m, BenchModel):
            m = load_model(m, _unique_name(m, taken))
        taken.add(m.name)
        loaded.append(m)
    check_same_inputs(loaded)
    if not isinstance(data, BenchData):
        data = load_data(data, events=events, seed=seed, label=label, max_rows=max_eval_rows)
    check_data_fits(loaded, data)
    names = [m.name for m in loaded]
    baseline = baseline or names[0]
    if baseline not in names:
        raise TFCompressError(f"baseline {baseline!r} is not one of the models {names}: pass one of these names")

    gpus = lat.gpu_devices()
    devices = ["/CPU:0"] + [lat._check_device(g) for g in gpus]
    tf_models = [m for m in loaded if m.is_tensorflow]
    tfl_models = [m for m in loaded if m.kind == "tflite"]
    tf_configs = len(tf_models) * len(devices)
    tfl_configs = len(tfl_models) * len(threads) * len(xnnpack)
    total = len(batches) * (tf_configs + tfl_configs) * runs
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="bench", unit="call", file=sys.stderr, leave=False)

    # --- quality, on the same rows for every model ------------------------------------------------
    model_rows, preds, layer_frames = [], {}, []
    fns = _metric_fns(data.task) if data.labels is not None else {}
    for m in loaded:
        row = {"name": m.name, "format": m.kind}
        size_row, layers = _size_row(m)
        row.update(size_row)
        if layers is not None and len(layers):
            layer_frames.append(layers.assign(model=m.name)[["model"] + list(layers.columns)])
        if fns:
            raw = _predict(m, data.arrays)
            if data.task == "binary" and raw.reshape(len(raw), -1).shape[1] > 1:  # 0/1 labels, C outputs
                data.task, data.labels = "multiclass", data.labels.astype(np.int32)
                fns = _metric_fns(data.task)
            p = _probabilities(data.task, raw)
            preds[m.name] = p
            row.update({k: float(f(data.labels, p)) for k, f in fns.items()})
            row["eval_rows"] = int(len(data.labels))
        if m.kind == "tflite" and memory:
            peak, grown = tflite_peak_memory(m.path, m.cast(data.sample(batches[-1], seed)), threads[0])
            row["peak_rss_bytes"], row["interpreter_rss_bytes"] = peak, grown
        row["path"] = os.path.abspath(m.path)
        model_rows.append(row)
    if fns and len(loaded) > 1:
        for row in model_rows:
            for key, f in fns.items():
                if row["name"] == baseline:
                    continue
                mean, lo, hi = bootstrap_diff(f, data.labels, preds[baseline], preds[row["name"]],
                                              n=bootstrap, seed=seed)
                row.update({f"{key}_diff": mean, f"{key}_diff_lo": lo, f"{key}_diff_hi": hi})

    # --- latency, interleaved ------------------------------------------------------------------------
    latency_rows, samples = [], {}
    tick = bar.update if bar is not None else None
    for batch in batches:
        inputs = data.sample(batch, seed=seed + batch)
        if tf_models:
            for device in devices:
                cands = {m.name: m.candidate() for m in tf_models}
                stats = _compare(lat, tf_models, inputs, cands, runs, warmup, seed, tick, device=device)
                for m in tf_models:
                    latency_rows.append(_latency_row(m, stats[m.name], device=device.strip("/")))
                    samples[f"{m.name} [{device.strip('/')}, b{batch}]"] = stats[m.name].samples_us
            if not gpus:
                for m in tf_models:
                    latency_rows.append({"name": m.name, "format": m.kind, "device": "GPU", "batch": batch,
                                         "note": "no GPU visible to TensorFlow: not measured"})
        for t in threads:
            for x in xnnpack:
                cands = {m.name: m.candidate() for m in tfl_models}
                if not cands:
                    continue
                stats = _compare(lat, tfl_models, inputs, cands, runs, warmup, seed, tick, threads=t, xnnpack=x)
                for m in tfl_models:
                    latency_rows.append(_latency_row(m, stats[m.name], device="CPU", threads=t, xnnpack=x))
                    samples[f"{m.name} [{t}t, xnnpack {'on' if x else 'off'}, b{batch}]"] = stats[m.name].samples_us
    if bar is not None:
        bar.close()

    models_frame = pd.DataFrame(model_rows)
    latency_frame = pd.DataFrame(latency_rows)
    latency_frame = latency_frame.reindex(columns=[c for c in _LATENCY_COLUMNS if c in latency_frame.columns])
    layers_frame = pd.concat(layer_frames, ignore_index=True) if layer_frames else pd.DataFrame()
    if not layers_frame.empty:
        layers_frame["shape"] = layers_frame["shape"].map(lambda s: "x".join(str(v) for v in s))
    headline = _headline(latency_frame, batches[0], threads[0], xnnpack[0])
    models_frame = models_frame.merge(headline, on="name", how="left")
    first = [c for c in _MODEL_COLUMNS if c in models_frame.columns]
    models_frame = models_frame[first + [c for c in models_frame.columns if c not in first and c != "path"]
                                + ["path"]]

    meta = {"data": data.description, "task": data.task or "no labels: quality not measured",
            "baseline": baseline, "runs": runs, "warmup": warmup, "batches": batches, "threads": threads,
            "xnnpack": ["on" if x else "off" for x in xnnpack],
            "gpu": ", ".join(gpus) if gpus else "no GPU visible: Keras/SavedModel latency measured on CPU only",
            "latency": "per call, µs; throughput_p50_per_s = batch / p50, throughput_per_s = batch / mean; "
                       "models interleaved in a shuffled order each round; TensorFlow and TFLite "
                       "models in separate blocks (TF thread pools slow a following TFLite call)",
            "headline": f"p50/p90/p99 columns of the first table: batch {batches[0]}, CPU, TFLite with "
                        f"{threads[0]} thread(s), XNNPACK {'on' if xnnpack[0] else 'off'}",
            "bootstrap": f"{bootstrap} paired resamples of the evaluation rows; *_diff = model - baseline, "
                         "95% interval in *_diff_lo/_hi"}
    report = Report(models_frame.drop(columns=["path"]), title=title, meta=meta)
    report.add_table("latency", latency_frame)
    if not layers_frame.empty:
        report.add_table("layers", layers_frame)
    paths = {}
    if out is not None:
        paths = write_bench_report(report, out, samples=samples, paths_by_model=dict(zip(names, models_frame["path"])))
    return BenchResult(models_frame, latency_frame, layers_frame, report, paths, samples)


_MODEL_COLUMNS = ["name", "format", "size_bytes", "gzip_bytes", "params", "sparsity", "peak_rss_bytes",
                  "interpreter_rss_bytes", "p50_us", "p90_us", "p99_us", "throughput_p50_per_s", "auc", "accuracy",
                  "rmse", "logloss"]
_LATENCY_COLUMNS = ["name", "format", "device", "threads", "xnnpack", "batch", "p50_us", "p90_us", "p99_us",
                    "mean_us", "std_us", "throughput_p50_per_s", "throughput_per_s", "runs", "note"]


def _compare(lat, models, inputs, cands, runs, warmup, seed, tick, device=None, threads=1, xnnpack=True):
    per_model = {m.name: m.cast(inputs) for m in models}
    runners = {}
    for m in models:
        kind, obj = cands[m.name]
        if kind == "keras":
            runners[m.name] = lat._keras_runner(obj, per_model[m.name], device)
        elif kind == "savedmodel":
            runners[m.name] = lat._savedmodel_runner(obj, per_model[m.name], device)
        else:
            runners[m.name] = lat._tflite_runner(m.path, per_model[m.name], threads, xnnpack)
    return lat._measure(runners, runs, warmup, seed=seed, progress=tick)


def _latency_row(m, stats, device, threads=None, xnnpack=None):
    d = stats.to_dict()
    row = {"name": m.name, "format": m.kind, "device": device, "batch": d["batch_size"]}
    if threads is not None:
        row.update({"threads": threads, "xnnpack": "on" if xnnpack else "off"})
    row.update({k: d[k] for k in ("p50_us", "p90_us", "p99_us", "mean_us", "std_us", "throughput_per_s", "runs")})
    # rows/s at the median call: one stalled call (the OS, another process) cannot swing it like the mean
    row["throughput_p50_per_s"] = d["batch_size"] * 1e6 / d["p50_us"] if d["p50_us"] > 0 else None
    return row


def _headline(latency_frame, batch, threads, xnnpack):
    """p50/p90/p99 per model for one configuration: ``batch``, CPU, TFLite with ``threads`` and ``xnnpack``."""
    cols = ["name", "p50_us", "p90_us", "p99_us", "throughput_p50_per_s"]
    if latency_frame.empty or "p50_us" not in latency_frame.columns:
        return pd.DataFrame(columns=cols)
    f = latency_frame[latency_frame["batch"] == batch].dropna(subset=["p50_us"])
    is_tf = f["format"].isin(["keras", "savedmodel"]) & (f["device"] == "CPU:0")
    if "threads" in f.columns:
        is_tfl = (f["format"] == "tflite") & (f["threads"] == threads) & (f["xnnpack"] == ("on" if xnnpack else "off"))
        is_tf = is_tf | is_tfl
    return f[is_tf].drop_duplicates("name")[cols]


def write_bench_report(report, out, samples=None, paths_by_model=None):
    """Write the report files and plots of a bench report into ``out``; returns a dict kind -> path.

    Plots: ``pareto.png`` (size vs quality), ``latency_vs_quality.png``, ``latency.png`` (per-call
    distributions, from ``samples``) and ``sparsity.png`` (per-layer, when there is a layer table).
    Works from a :class:`Report` alone too (as rebuilt from a report.json by ``tfcompress report``).
    """
    from .._io import ensure_dir, write_json
    from .report import latency_plot, pareto_plot, sparsity_plot

    ensure_dir(out, "report folder")
    frame = report.frame
    report.plots = []
    paths = {}
    quality = next((q for q in ("auc", "accuracy") if q in frame.columns and frame[q].notna().any()), None)
    if quality is None and "rmse" in frame.columns and frame["rmse"].notna().any():
        quality = "rmse"
    higher = quality != "rmse"
    label = "name" if "name" in frame.columns else frame.columns[0]
    if quality and "size_bytes" in frame.columns and frame["size_bytes"].notna().any():
        paths["pareto"] = pareto_plot(frame, x="size_bytes", y=quality, label=label, higher_is_better=higher,
                                      path=os.path.join(out, "pareto.png"))
        report.add_plot(paths["pareto"], f"{quality} vs size (log scale); the Pareto front joins the best trade-offs")
    if quality and "p50_us" in frame.columns and frame["p50_us"].notna().any():
        paths["latency_vs_quality"] = pareto_plot(
            frame, x="p50_us", y=quality, label=label, higher_is_better=higher, logx=True,
            path=os.path.join(out, "latency_vs_quality.png"), title=f"{quality} vs headline p50 latency")
        report.add_plot(paths["latency_vs_quality"], f"{quality} vs p50 latency per call (µs)")
    if samples:
        paths["latency"] = latency_plot(samples, path=os.path.join(out, "latency.png"),
                                        title="Latency per call (µs), every configuration")
        report.add_plot(paths["latency"], "latency distributions: box = p25-p75, whiskers 1.5 IQR")
    layers = report.tables.get("layers")
    if layers is not None and not layers.empty and {"layer", "sparsity"} <= set(layers.columns):
        lf = layers.copy()
        if "model" in lf.columns:
            lf["layer"] = lf["model"].astype(str) + ": " + lf["layer"].astype(str) + " " + lf["weight"].astype(str).str[-30:]
        paths["sparsity"] = sparsity_plot(lf, path=os.path.join(out, "sparsity.png"))
        report.add_plot(paths["sparsity"], "fraction of zero weights per layer")
    written = report.save(out)
    full = report.to_dict()
    if paths_by_model:
        for row in full["stages"]:
            if row.get("name") in paths_by_model:
                row["path"] = paths_by_model[row["name"]]
    if samples:
        full["latency_samples_us"] = {k: list(v) for k, v in samples.items()}
    write_json(written["json"], full)
    written.update(paths)
    return written
