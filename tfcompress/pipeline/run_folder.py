"""A run folder is one unit: a run id, a ``run.json`` manifest, a lock, and one run's artifacts.

``run.json`` (in the report folder, ``--out``) names the run (``run_id``), its config hash and config, the
folders it writes (``--out``, ``--savedmodels``, ``--tflite-dir``), the stages finished with the results
they recorded, and every artifact with its sha256. It is written after each stage (``"finished": false``)
and completed last, after the report. A lock file (``.tfcompress.lock``, created with ``O_EXCL``, holding
pid, host and start time) in each folder stops a second run on the same folders while the first lives.

Example:
    >>> import os, tempfile
    >>> from tfcompress.pipeline import RunConfig
    >>> d = tempfile.mkdtemp()
    >>> cfg = RunConfig(quick=True, out=d, savedmodels_dir=d, tflite_dir=d).validate()
    >>> folder = RunFolder(cfg)
    >>> with folder.locked():
    ...     os.path.isfile(os.path.join(d, LOCK_NAME))
    True
    >>> len(config_hash(cfg)), os.path.exists(os.path.join(d, LOCK_NAME))
    (16, False)
"""
import contextlib
import datetime
import json
import os
import secrets
import shutil
import socket

from .._io import ensure_dir, write_bytes, write_json
from ..errors import TFCompressError
from .run_manifest import (EXTRAS, FOLDERS, MANIFEST, array_extras, artifact_path, checksum, config_difference,
                           config_hash, hashed_config, read_manifest, result_row)

LOCK_NAME = ".tfcompress.lock"


def new_run_id():
    """A fresh run id: UTC time and a short random suffix, e.g. ``20261201-224500-3fa2c1``.

    Example:
        >>> len(new_run_id())
        22
    """
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)

def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunFolder:
    """The folders of one run (``config.out``, ``savedmodels_dir``, ``tflite_dir``): its id, lock and
    manifest. :func:`tfcompress.pipeline.run` uses it; ``prepare`` decides fresh/resume/refuse.

    Example:
        >>> from tfcompress.pipeline import RunConfig
        >>> RunFolder(RunConfig(quick=True, out="runs/x").validate()).manifest_path.replace(os.sep, "/")
        'runs/x/run.json'
    """

    def __init__(self, config, run_id=None):
        self.config = config
        self.run_id = run_id or new_run_id()
        self.hash = config_hash(config)
        self.folders = {k: os.path.abspath(getattr(config, k)) for k in FOLDERS}
        self.manifest_path = os.path.join(config.out, MANIFEST)
        self.manifest = None

    # --- the lock ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self):
        """Hold the lock of every folder of the run (one clear error when another live run holds one)."""
        taken = []
        try:
            for folder in sorted(set(self.folders.values())):
                ensure_dir(folder)
                taken.append(self._lock(os.path.join(folder, LOCK_NAME)))
            yield self
        finally:
            for path in taken:
                with contextlib.suppress(OSError):
                    os.remove(path)

    def _lock(self, path):
        info = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": self.run_id,
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._clear_stale(path)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(info, f)
            return path
        raise TFCompressError(f"cannot take the lock {path!r}: remove it if no tfcompress run is writing there")

    @staticmethod
    def _clear_stale(path):
        try:
            with open(path) as f:
                other = json.load(f)
        except (OSError, ValueError):
            other = {}
        pid, host = other.get("pid"), other.get("host")
        if isinstance(pid, int) and host == socket.gethostname() and not _pid_alive(pid):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)  # the process that held it is gone
            return
        folder = os.path.dirname(path)
        raise TFCompressError(f"another tfcompress run (pid {pid} on {host}, started {other.get('started')}) "
                              f"is writing {folder!r}: wait for it, or choose other folders "
                              f"(remove {path!r} if that process is gone)")

    # --- deciding what to do with what is there --------------------------------------------------------
    def prepare(self, resume=None, overwrite=False):
        """Look at the folders: return the manifest of an unfinished run of the same config to resume
        (or None to start fresh). Refuses (one line) a folder holding another or a finished run unless
        ``overwrite``, which moves the old run's files aside into ``FOLDER/.previous-RUNID/``."""
        self._remove_stale_temporaries()
        old = read_manifest(self.config.out) if not overwrite else self._read_for_overwrite()
        legacy = old is None and os.path.isfile(os.path.join(self.config.out, "report.json"))
        if overwrite:
            self._move_aside(old, legacy)
            old = None
        elif legacy:
            raise TFCompressError(f"{self.config.out!r} holds the report of another run (no run.json): pass "
                                  f"--overwrite to move it aside, or choose another --out")
        if old is None:
            if resume:
                raise TFCompressError(f"nothing to resume in {self.config.out!r}: it holds no unfinished run; "
                                      f"run without --resume")
            return None
        return self._resumable(old, resume)

    def _remove_stale_temporaries(self):
        """Remove the temporary files and folders a killed writer left (``.NAME.XXXX.tmp``, see
        :func:`tfcompress._io.atomic_path`): this run holds the folders' locks, so no writer owns them."""
        for folder in set(self.folders.values()):
            for name in os.listdir(folder):
                if name.startswith(".") and name.endswith(".tmp"):
                    path = os.path.join(folder, name)
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        with contextlib.suppress(OSError):
                            os.remove(path)

    def _read_for_overwrite(self):
        try:
            return read_manifest(self.config.out)
        except TFCompressError:
            return {"run_id": "unreadable", "artifacts": [], "folders": self.folders}

    def _resumable(self, old, resume):
        rid, out = old["run_id"], self.config.out
        if old.get("finished"):
            raise TFCompressError(f"{out!r} holds the finished run {rid}: pass --overwrite to replace it "
                                  f"(moved aside into .previous-{rid}/), or choose another --out")
        if old.get("config_hash") != self.hash:
            raise TFCompressError(f"{out!r} holds the unfinished run {rid} of another config "
                                  f"({config_difference(old.get('config') or {}, hashed_config(self.config))}): "
                                  f"rerun with its options to resume it, or pass --overwrite")
        if resume is False:
            raise TFCompressError(f"{out!r} holds the unfinished run {rid} of this config: pass --resume to "
                                  f"continue it or --overwrite to start again")
        self.run_id = rid
        return old

    def _move_aside(self, old, legacy):
        if old is None and not legacy:
            return
        rid = old["run_id"] if old else "unknown-" + new_run_id()
        moves = [(artifact_path(old, a), old["folders"][a["folder"]])
                 for a in (old or {}).get("artifacts", []) if not a["name"].startswith(EXTRAS)]
        moves += [(os.path.join(self.config.out, n), self.config.out) for n in os.listdir(self.config.out)
                  if n.startswith(("report.", "pareto", MANIFEST, EXTRAS))]
        for path, folder in moves:
            if os.path.lexists(path):
                target = ensure_dir(os.path.join(folder, f".previous-{rid}"))
                dest = os.path.join(target, os.path.basename(path))
                if os.path.isdir(dest):
                    shutil.rmtree(dest)
                os.replace(path, dest)

    # --- writing the manifest ------------------------------------------------------------------------
    def start(self, resumed=None, kept=()):
        """Begin this run's manifest (in memory; written after the first stage); ``resumed`` is the old
        manifest and ``kept`` the stages of it this run keeps."""
        keep = [s for s in (resumed or {}).get("stages", []) if s["name"] in kept]
        started = (resumed or {}).get("started") or datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds")
        self.manifest = {"run_id": self.run_id, "config_hash": self.hash, "config": hashed_config(self.config),
                         "folders": self.folders, "started": started, "finished": False,
                         "stages_finished": [s["name"] for s in keep], "stages": keep,
                         "artifacts": [a for a in (resumed or {}).get("artifacts", []) if a.get("stage") in kept]}
        if keep:
            self._write()

    def stage_finished(self, stage_name, results):
        """Record a finished stage, its results (rows) and their artifacts (stamping ``.tflite`` sidecars
        with the run id); rewrite ``run.json``."""
        rows = [result_row(r) for r in results]
        for r, row in zip(results, rows):
            for path in self._artifact_paths(r):
                self._add_artifact(stage_name, path)
            arrays = array_extras(r)
            if arrays:
                row["arrays"] = self._save_arrays(stage_name, r, arrays)
        self.manifest["stages"].append({"name": stage_name, "results": rows})
        self.manifest["stages_finished"].append(stage_name)
        self._write()

    def _save_arrays(self, stage_name, result, arrays):
        import io

        import numpy as np

        name = f"{EXTRAS}/{result.name}_{result.format}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path = os.path.join(self.folders["out"], name)
        write_bytes(path, buffer.getvalue())
        self._add_artifact(stage_name, path, folder="out", name=name)
        return name

    def finish(self, report_paths):
        """Add the report files, mark the run finished and write ``run.json`` a last time."""
        self.manifest["reports"] = sorted(os.path.basename(p) for p in report_paths)
        self.manifest["finished"] = True
        self.manifest["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self._write()

    def _artifact_paths(self, result):
        if not result.path or not os.path.exists(result.path):
            return []
        paths = [result.path]
        if result.format == "tflite":
            from ..export import sidecar_path

            side = sidecar_path(result.path)
            if os.path.isfile(side):
                self._stamp(side)
                paths.append(side)
                with open(side) as f:
                    paths += [p for p in (json.load(f).get("assets") or {}).values() if os.path.isfile(p)]
        return paths

    def _stamp(self, side):
        with open(side) as f:
            data = json.load(f)
        if data.get("run_id") != self.run_id or data.get("run_dir") != self.folders["out"]:
            data["run_id"], data["run_dir"] = self.run_id, self.folders["out"]
            write_json(side, data)

    def _add_artifact(self, stage_name, path, folder=None, name=None):
        full = os.path.abspath(path)
        folder = folder or next((k for k in FOLDERS if os.path.dirname(full) == self.folders[k]), None)
        if folder is None:
            return
        entry = {"stage": stage_name, "folder": folder, "name": name or os.path.basename(full),
                 "sha256": checksum(full)}
        self.manifest["artifacts"] = [a for a in self.manifest["artifacts"]
                                      if (a["folder"], a["name"]) != (folder, entry["name"])] + [entry]

    def _write(self):
        write_json(self.manifest_path, self.manifest)
