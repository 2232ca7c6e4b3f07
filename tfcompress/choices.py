"""The names a run's recipe may choose from, in one place for the config, the CLI and ``tfcompress tune``
(importing this module imports no TensorFlow, so ``--help`` stays fast).

Example:
    >>> "int8-fallback" in EXPORT_MODES, "bias-correction" in RECOVERY_OPTIONS
    (True, True)
"""

#: the student's file: full int8, int8 with greedy float fallback of the most sensitive layers, 16-bit
#: activations with int8 weights, dynamic range, float16, LiteRT int4 weights (int8 activations)
EXPORT_MODES = ("int8", "int8-fallback", "int16x8", "dynamic", "float16", "int4-weights")
#: int8 accuracy recovery at export: bias correction of quantized layers, percentile or MSE activation
#: ranges for calibration, per-layer sensitivity driving mixed int8/16x8/float
RECOVERY_OPTIONS = ("bias-correction", "percentile", "mse", "mixed")
#: what a pretrained teacher's head may be
TEACHER_HEADS = "probe, top:N (fine-tune the top N layers) or full"
#: how a run spreads its training over devices: every local GPU (or CPU replicas), or the workers of
#: ``TF_CONFIG`` (tf.distribute.MultiWorkerMirroredStrategy)
DISTRIBUTE_MODES = ("mirrored", "multi-worker")
