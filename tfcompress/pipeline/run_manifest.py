"""The ``run.json`` manifest of a run folder: the config hash, checksums, and the check that a folder's
files are still the run its manifest names (:func:`check_run_folder`, used by ``tfcompress report``).

Example:
    >>> import tempfile
    >>> check_run_folder(tempfile.mkdtemp()) is None  # no run.json: nothing to check
    True
"""
import hashlib
import json
import os

from .._io import path_sha256
from ..errors import TFCompressError

MANIFEST = "run.json"
EXTRAS = "run_extras"
FOLDERS = ("out", "savedmodels_dir", "tflite_dir")
#: config keys that do not change what a run computes (left out of the config hash)
UNHASHED = FOLDERS + ("verbose", "resume", "overwrite")


def hashed_config(config):
    """The config values the hash covers (plain JSON values), as a dict."""
    values = {k: v for k, v in config.to_dict().items() if k not in UNHASHED}
    return json.loads(json.dumps(values, sort_keys=True, default=repr))


def config_hash(config):
    """A 16-hex-digit hash of what ``config`` computes (its folders, ``verbose``, ``resume`` and
    ``overwrite`` left out).

    Example:
        >>> from tfcompress.pipeline import RunConfig
        >>> config_hash(RunConfig(out="a")) == config_hash(RunConfig(out="b")) != config_hash(RunConfig(seed=1))
        True
    """
    text = json.dumps(hashed_config(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checksum(path):
    """The sha256 of a file, or of a folder (:func:`tfcompress._io.path_sha256`)."""
    return path_sha256(path)


def read_manifest(run_dir):
    """The ``run.json`` of ``run_dir`` as a dict, or None when there is none; one line when it is corrupt."""
    path = os.path.join(run_dir, MANIFEST)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise TFCompressError(f"{path!r} is not a readable run manifest ({e}): move it away or pass "
                              f"--overwrite") from None
    if not isinstance(manifest, dict) or "run_id" not in manifest:
        raise TFCompressError(f"{path!r} is not a tfcompress run manifest: move it away or pass --overwrite")
    return manifest


def check_run_folder(run_dir):
    """Raise one clear error when the run in ``run_dir`` is unfinished or its artifacts do not match its
    ``run.json`` (missing, changed, or a ``report.json`` of another run). A folder without ``run.json``
    (a ``tfcompress bench`` folder, an older run) passes.

    Example:
        >>> import tempfile
        >>> check_run_folder(tempfile.mkdtemp())
    """
    manifest = read_manifest(run_dir)
    if manifest is None:
        return
    rid = manifest["run_id"]
    if not manifest.get("finished"):
        raise TFCompressError(f"{run_dir!r} holds the unfinished run {rid} (stages finished: "
                              f"{', '.join(manifest.get('stages_finished', [])) or 'none'}): finish it with "
                              f"`tfcompress run --resume` and the same options")
    bad = mismatched_artifacts(manifest)
    if bad:
        raise TFCompressError(f"{run_dir!r} does not match its run.json (run {rid}): {bad[0]}"
                              + (f" and {len(bad) - 1} more" if len(bad) > 1 else "")
                              + ": the folders mix runs; rerun with --overwrite")
    report = os.path.join(run_dir, "report.json")
    try:
        with open(report) as f:
            found = json.load(f).get("run_id")
    except (OSError, ValueError, AttributeError):
        found = None
    if found != rid:
        raise TFCompressError(f"{report!r} is not from run {rid} of its run.json (it says {found}): "
                              f"the folder mixes runs; rerun with --overwrite")


def mismatched_artifacts(manifest, stages=None):
    """Lines naming the artifacts of ``manifest`` (only those of ``stages`` when given) that are missing or
    changed on disk."""
    bad = []
    for art in manifest.get("artifacts", []):
        if stages is not None and art.get("stage") not in stages:
            continue
        path = artifact_path(manifest, art)
        if not os.path.exists(path):
            bad.append(f"{path} is missing")
        elif checksum(path) != art["sha256"]:
            bad.append(f"{path} has changed")
    return bad


def artifact_path(manifest, art):
    """Where an artifact entry of ``manifest`` lies on disk."""
    return os.path.join(manifest["folders"][art["folder"]], art["name"])


def result_row(result):
    """A :class:`~tfcompress.stages.StageResult` as the plain values ``run.json`` keeps (no model)."""
    from ..stages import is_jsonable

    extra = {k: v for k, v in result.extra.items() if is_jsonable(v)}
    return {"name": result.name, "format": result.format, "path": os.path.abspath(result.path) if result.path
            else None, "params": result.params, "sparsity": result.sparsity, "quality": dict(result.quality),
            "extra": extra, "complete": len(extra) + len(array_extras(result)) == len(result.extra)}


def array_extras(result):
    """The extras of ``result`` that are numpy arrays (kept in ``run_extras/NAME_FORMAT.npz``)."""
    import numpy as np

    return {k: v for k, v in result.extra.items() if isinstance(v, np.ndarray)}


def load_arrays(manifest, row):
    """The array extras a result row of ``manifest`` saved (an empty dict when none)."""
    import numpy as np

    if not row.get("arrays"):
        return {}
    with np.load(os.path.join(manifest["folders"]["out"], row["arrays"])) as f:
        return {k: f[k] for k in f.files}


def config_difference(old, new):
    """``seed 0 there, 1 here; ...``: the keys whose values differ between two hashed configs.

    Example:
        >>> config_difference({"seed": 0, "events": 5}, {"seed": 1, "events": 5})
        'seed 0 there, 1 here'
    """
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "; ".join(f"{k} {old.get(k)!r} there, {new.get(k)!r} here" for k in keys) or "another version"


def check_artifact(path):
    """Raise one clear error when the model file ``path`` (given to ``tfcompress bench``) was written by a
    run whose folder no longer agrees: its run folder's ``run.json`` names another run, or lists this file
    with another checksum. Files with no run stamp in their sidecar (or whose run folder is gone) pass.

    Example:
        >>> import tempfile
        >>> check_artifact(os.path.join(tempfile.mkdtemp(), "m.tflite"))  # no sidecar: nothing to check
    """
    side = os.path.splitext(os.fspath(path))[0] + ".json"
    try:
        with open(side) as f:
            stamp = json.load(f)
        rid, run_dir = stamp.get("run_id"), stamp.get("run_dir")
    except (OSError, ValueError, AttributeError):
        return
    manifest = read_manifest(run_dir) if isinstance(run_dir, str) and os.path.isdir(run_dir) else None
    if manifest is None or rid is None:
        return
    if manifest["run_id"] != rid:
        raise TFCompressError(f"{path!r} is from run {rid}, but its run folder {run_dir!r} now holds run "
                              f"{manifest['run_id']}: the folders mix runs; bench the files of one run or rerun "
                              "with --overwrite")
    full = os.path.abspath(path)
    for art in manifest.get("artifacts", []):
        if artifact_path(manifest, art) == full and checksum(full) != art["sha256"]:
            raise TFCompressError(f"{path!r} has changed since run {rid} wrote it (its run.json in {run_dir!r} "
                                  "has another checksum): rerun the export, or bench a file of one run")
