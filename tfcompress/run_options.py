"""The flags ``tfcompress run`` and ``tfcompress tune`` share, and the one mapping from parsed flags to
:class:`~tfcompress.pipeline.RunConfig` fields (no TensorFlow is imported here: ``--help`` stays fast).

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_own_data_arguments(p)
    >>> config_from_args(p.parse_args(["--label", "Revenue", "--features", "a, b"])).features
    ('a', 'b')
"""
from .bench_command import whole_number
from .choices import DISTRIBUTE_MODES, EXPORT_MODES, RECOVERY_OPTIONS

__all__ = ["add_own_data_arguments", "add_recipe_arguments", "config_from_args", "RUN_FIELDS"]


def add_recipe_arguments(r):
    """The student-recipe and choice flags of ``run`` (``tune`` searches them and writes them to YAML)."""
    c = r.add_argument_group("the student's recipe and the run's choices")
    c.add_argument("--tolerance", metavar="T", help="quality a choice may lose against its reference: '1%%' "
                   "(relative, the default) or 0.004 (an absolute metric drop)")
    c.add_argument("--structured-share", type=float, metavar="F", help="remove this share of the student's "
                   "units by structured pruning before fine-tuning (0 < F < 1)")
    c.add_argument("--lowrank-energy", type=float, metavar="F", help="factorize the student's dense kernels "
                   "keeping this share of spectral energy (0 < F < 1)")
    c.add_argument("--export-mode", choices=EXPORT_MODES, help="the student's file (default int8)")
    c.add_argument("--per-tensor", action="store_true", help="per-tensor int8 weights (some NPUs need them)")
    c.add_argument("--distribute", choices=DISTRIBUTE_MODES, help="train on every local GPU (or CPU replicas): "
                   "mirrored; on the workers of TF_CONFIG: multi-worker (the chief writes the files)")
    c.add_argument("--jit-compile", choices=("auto", "on", "off"), help="XLA-compile the train steps (default "
                   "auto: where it was measured faster)")
    c.add_argument("--recovery", metavar="A,B", help="int8 accuracy recovery at export: any of "
                   + ", ".join(RECOVERY_OPTIONS))


def add_own_data_arguments(r):
    """The flags naming your own data's columns, how to read it, and your teacher (``run`` and ``tune``)."""
    d = r.add_argument_group("your own data and teacher (roles are inferred and printed when not given)")
    for flag, what in (("--label", "the label column"), ("--user", "the user id column"),
                       ("--item", "the item id column"), ("--time", "the time column (dates or epoch seconds)"),
                       ("--text", "the text column")):
        d.add_argument(flag, metavar="COLUMN", help=what)
    d.add_argument("--features", metavar="A,B,...", help="only these feature columns")
    d.add_argument("--drop", metavar="A,B,...", help="leave these columns out")
    d.add_argument("--sep", help="the delimiter of a text table (default: sniffed), e.g. ',' or '\\t'")
    d.add_argument("--no-header", action="store_true", help="the table's first row is data, not column names")
    d.add_argument("--split", choices=("auto", "time", "user", "stratified", "random"),
                   help="how to split train/validation/test (default auto: by time, else by user, else stratified)")
    d.add_argument("--label-threshold", type=float, metavar="X", help="a rating label: positive when >= X")
    d.add_argument("--teacher", metavar="PATH", help="your trained teacher (.keras/.h5, SavedModel folder, "
                   ".tflite): skips the teacher stage; or a Hugging Face / keras-hub checkpoint folder (--task "
                   "text; see --teacher-head, --labelled)")
    d.add_argument("--teacher-output", choices=("logits", "probabilities"),
                   help="what your teacher outputs (default: detected)")
    d.add_argument("--student", metavar="from-teacher:SHARE", help="build the student by structured width "
                   "pruning of your teacher to SHARE of its parameters (e.g. from-teacher:0.25)")
    d.add_argument("--teacher-head", metavar="HEAD", help="a pretrained teacher folder (text): probe (frozen "
                   "encoder + linear head, the default), top:N (fine-tune the top N layers) or full")
    d.add_argument("--labelled", type=whole_number, metavar="N", help="keep N labelled training rows; the "
                   "teacher labels the others, used for distillation only (the transfer set)")
    d.add_argument("--student-vocab", choices=("own", "teacher"), help="text student's vocabulary: own "
                   "(WordPiece learned on the data, the default) or the teacher's")
    d.add_argument("--student-embeddings", choices=("teacher",), help="initialize the text student's token "
                   "embeddings from the teacher's, projected down")
    d.add_argument("--teacher-cache", metavar="DIR", help="folder for cached teacher outputs (default "
                   "~/.cache/tfcompress)")


#: ``tfcompress run`` / ``tune`` flags → RunConfig fields (flags left unset keep the config's value)
RUN_FIELDS = {"task": "task", "data": "data", "events": "events", "seed": "seed", "out": "out",
               "savedmodels": "savedmodels_dir", "tflite_dir": "tflite_dir", "label": "label", "user": "user",
               "item": "item", "time": "time", "text": "text", "sep": "sep", "split": "split",
               "label_threshold": "label_threshold", "teacher": "teacher_model",
               "teacher_output": "teacher_output", "student": "student_init", "tolerance": "tolerance",
               "structured_share": "structured_share", "lowrank_energy": "lowrank_energy",
               "export_mode": "export_mode", "teacher_head": "teacher_head", "labelled": "labelled",
               "student_vocab": "student_vocab", "student_embeddings": "student_embeddings",
               "teacher_cache": "teacher_cache", "distribute": "distribute"}
LIST_FIELDS = {"stages": "stages", "features": "features", "drop": "drop", "recovery": "recovery"}
SWITCHES = {"quick": ("quick", True), "verbose": ("verbose", True), "no_header": ("header", False),
             "resume": ("resume", True), "overwrite": ("overwrite", True), "per_tensor": ("per_channel", False)}


def config_from_args(args):
    """The :class:`~tfcompress.pipeline.RunConfig` of parsed arguments: the defaults (quick ones with
    ``--quick``), then ``--config``'s YAML, then every flag given (flags a command lacks are skipped).

    Example:
        >>> import argparse
        >>> config_from_args(argparse.Namespace(quick=True, config=None, seed=3, per_tensor=True)).seed
        3
    """
    from .pipeline import RunConfig

    given = lambda flag: getattr(args, flag, None)  # noqa: E731  (None: not given, or not this command's)
    overrides = {field: given(flag) for flag, field in RUN_FIELDS.items() if given(flag) is not None}
    overrides.update({field: tuple(s.strip() for s in given(flag).split(",") if s.strip())
                      for flag, field in LIST_FIELDS.items() if given(flag) is not None})
    overrides.update({field: value for flag, (field, value) in SWITCHES.items() if given(flag)})
    if given("jit_compile") is not None:
        overrides["jit_compile"] = {"auto": None, "on": True, "off": False}[args.jit_compile]
    if overrides.get("sep") == "\\t":
        overrides["sep"] = "\t"
    base = RunConfig.quick_defaults() if given("quick") else RunConfig()
    if given("config"):
        base = RunConfig.from_yaml(args.config, base=base)
    return RunConfig.from_dict(overrides, base=base)
