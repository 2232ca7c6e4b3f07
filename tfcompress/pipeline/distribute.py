"""Where a run trains (``RunConfig.distribute``): one device, ``mirrored`` (every local GPU, or CPU
replicas when none is visible) or ``multi-worker`` (the workers of ``TF_CONFIG``,
``tf.distribute.MultiWorkerMirroredStrategy``).

:func:`make_distribution` makes the strategy once per process (MultiWorkerMirroredStrategy must exist before
TensorFlow runs any op: :func:`tfcompress.pipeline.run` makes it first). The global batch is the config's
``batch_size`` (each replica takes ``batch_size / replicas`` of it) and the learning rate is the one-device
one, so a distributed run computes what a one-process run does, up to float summation order. In a
multi-worker run the chief (``TF_CONFIG`` task ``chief``, else worker 0) writes the artifacts and the
report; every other worker takes part in every collective and writes into a temporary folder, removed
at the end (:meth:`Distribution.worker_folders`).

Example:
    >>> d = make_distribution(None)
    >>> d.mode, d.replicas, d.is_chief
    ('one device', 1, True)
    >>> d.describe(512)
    'one device: global batch 512, learning rate as configured'
    >>> chief_of({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}})
    (False, 1, 2)
"""
import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass

from ..choices import DISTRIBUTE_MODES
from ..errors import TFCompressError, check

#: how the learning rate follows the replica count (it does not: the global batch does not change)
LR_RULE = "unchanged (the global batch is batch_size whatever the replica count)"
_TF_CONFIG_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
                      '"task": {"type": "worker", "index": 0}}\' (index 0 on the chief, 1, 2, ... on the others)')
ONE_DEVICE = "one device"
#: how long a worker may miss its heartbeats before the others give up on it
HEARTBEAT_TIMEOUT_S = 120
_MADE = {}  # mode -> Distribution: one strategy per process


@dataclass
class Distribution:
    """The run's strategy and what the report says of it: ``mode``, ``replicas`` (in sync, over all
    workers), ``workers``, ``is_chief`` (this process writes the artifacts), ``index`` (this worker's) and
    ``note`` (e.g. that no GPU was visible)."""

    mode: str
    strategy: object = None
    replicas: int = 1
    workers: int = 1
    is_chief: bool = True
    index: int = 0
    note: str = ""

    def scope(self):
        """The strategy's scope (models built and compiled inside it), or a no-op for one device."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def per_replica(self, batch):
        """The per-replica share of the global batch ``batch`` (a float when it does not divide evenly).

        Example:
            >>> Distribution("mirrored", replicas=3).per_replica(512)
            170.67
        """
        share = batch / self.replicas
        return int(share) if share == int(share) else round(share, 2)

    def describe(self, batch):
        """The progress line (and the report's): strategy, replicas, global and per-replica batch, the
        learning-rate rule.

        Example:
            >>> Distribution("multi-worker", replicas=2, workers=2).describe(512)[:62]
            'multi-worker: 2 replicas on 2 workers; global batch 512 = 2 x '
        """
        if self.mode == ONE_DEVICE:
            return f"one device: global batch {batch}, learning rate as configured"
        where = f" on {self.workers} workers" if self.workers > 1 else ""
        text = (f"{self.mode}: {self.replicas} replica{'s' if self.replicas > 1 else ''}{where}; global batch "
                f"{batch} = {self.replicas} x {self.per_replica(batch)} per replica; learning rate {LR_RULE}")
        return text + (f"; {self.note}" if self.note else "")

    def figures(self, batch):
        """What ``report.json`` keeps of the distribution (plain values).

        Example:
            >>> make_distribution(None).figures(256)["per_replica_batch"]
            256
        """
        return {"mode": self.mode, "strategy": type(self.strategy).__name__ if self.strategy is not None else None,
                "replicas": self.replicas, "workers": self.workers, "global_batch": batch,
                "per_replica_batch": self.per_replica(batch), "learning_rate": LR_RULE, "note": self.note}

    def barrier(self):
        """Wait until every worker gets here (an all-reduce of one number); a no-op on one worker. The chief
        calls it after its report, the others after their share of the report's collectives, so no worker
        leaves while another still needs it."""
        if self.workers > 1:
            from .._keras import tf

            self.strategy.reduce("SUM", self.strategy.run(lambda: tf.constant(1.0)), axis=None)

    @contextlib.contextmanager
    def lost_chief(self):
        """On a worker that is not the chief: the collective errors of a chief that stopped (its own
        one-line error, a crash) become one line saying so."""
        from .._keras import tf

        try:
            yield
        except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError) as e:
            first = str(e).strip().splitlines()[0][:160]
            raise TFCompressError(f"worker {self.index}: the other workers stopped ({first}): see the chief's "
                                  "(worker 0's) error, fix it and start every worker again") from None

    @contextlib.contextmanager
    def worker_folders(self, config):
        """Yield ``config`` itself on the chief; on another worker a copy whose ``out``, ``savedmodels_dir``
        and ``tflite_dir`` lie in a temporary folder, removed when the block ends (it writes nothing in
        the user's folders)."""
        if self.is_chief:
            yield config
            return
        scratch = tempfile.mkdtemp(prefix=f"tfcompress-worker{self.index}-")
        try:
            yield dataclasses.replace(config, **{k: os.path.join(scratch, k) for k in
                                                 ("out", "savedmodels_dir", "tflite_dir")})
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def make_distribution(mode):
    """The :class:`Distribution` of ``mode`` (None, ``"mirrored"`` or ``"multi-worker"``; a config's
    ``distribute``), made once per process and reused. One clear error for a bad mode, a missing or bad
    ``TF_CONFIG``, or a multi-worker strategy asked for after TensorFlow started running ops.

    Example:
        >>> d = make_distribution(None)
        >>> d.strategy is None, d.is_chief
        (True, True)
    """
    check(mode is None or mode in DISTRIBUTE_MODES,
          f"distribute = {mode!r} must be one of {list(DISTRIBUTE_MODES)} or left out (one device)")
    if mode is None:
        return Distribution(ONE_DEVICE)
    if mode not in _MADE:
        _MADE[mode] = _mirrored() if mode == "mirrored" else _multi_worker()
    return _MADE[mode]


def _mirrored():
    from .._keras import tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        strategy = tf.distribute.MirroredStrategy()
        return Distribution("mirrored", strategy, strategy.num_replicas_in_sync,
                            note=f"{len(gpus)} local GPU{'s' if len(gpus) > 1 else ''}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:  # possible only before TensorFlow initialises
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    except RuntimeError:
        pass
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) >= 2:
        note = f"no GPU visible: {len(devices)} CPU replicas"
    else:
        note = ("no GPU visible and TensorFlow already initialised with one CPU device: 1 replica "
                "(make the strategy before any TensorFlow op for 2 CPU replicas)")
    strategy = tf.distribute.MirroredStrategy(devices)
    return Distribution("mirrored", strategy, strategy.num_replicas_in_sync, note=note)


def _multi_worker():
    tf_config = read_tf_config()
    is_chief, index, workers = chief_of(tf_config)
    from .._keras import tf

    try:
        _patient_heartbeats(tf_config)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
        raise TFCompressError(f"--distribute multi-worker must start before TensorFlow runs any op ({e}): run it "
                              "in a fresh process, calling tfcompress.pipeline.run first") from None
    except (ValueError, KeyError) as e:
        raise TFCompressError(f"TF_CONFIG does not describe a cluster MultiWorkerMirroredStrategy can use ({e}); "
                              f"set {_TF_CONFIG_EXAMPLE}") from None
    return Distribution("multi-worker", strategy, strategy.num_replicas_in_sync, workers, is_chief, index,
                        note="" if is_chief else f"worker {index}: writes nothing (the chief writes the report)")


def _patient_heartbeats(tf_config):
    """Configure TensorFlow's coordination service as MultiWorkerMirroredStrategy would, but with
    :data:`HEARTBEAT_TIMEOUT_S` instead of its 10 s: on a loaded machine a starved worker misses 10 s of
    heartbeats and the run fails (a worker that exits or crashes closes its sockets and is seen at once).
    TensorFlow has no public name for this: where its private one is missing the default stays."""
    try:
        from tensorflow.core.protobuf import coordination_config_pb2
        from tensorflow.python.eager import context
    except ImportError:  # pragma: no cover - another TensorFlow layout
        return
    jobs = [j for j in ("chief", "worker") if tf_config["cluster"].get(j)]
    if context.context().coordination_service is not None or tf_config["task"]["type"] not in jobs:
        return
    leader = f"/job:{jobs[0]}/replica:0/task:0"
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=leader, heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_S * 1000,
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=j, num_tasks=len(tf_config["cluster"][j]))
                          for j in jobs])


def read_tf_config(environ=None):
    """The ``TF_CONFIG`` of ``environ`` (default ``os.environ``) as a dict: one line naming what to set when
    it is missing or not a cluster.

    Example:
        >>> read_tf_config({})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: --distribute multi-worker needs TF_CONFIG in every worker's ...
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG")
    check(bool(text and text.strip()), f"--distribute multi-worker needs TF_CONFIG in every worker's environment: "
                                       f"set {_TF_CONFIG_EXAMPLE}")
    try:
        tf_config = json.loads(text)
    except ValueError as e:
        raise TFCompressError(f"TF_CONFIG is not valid JSON ({e}): set {_TF_CONFIG_EXAMPLE}") from None
    chief_of(tf_config)
    return tf_config


def chief_of(tf_config):
    """``(is_chief, worker index, workers)`` for a parsed ``TF_CONFIG``: the chief is task ``chief`` when
    the cluster has one, else worker 0; one line when the cluster or the task is missing.

    Example:
        >>> chief_of({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}})
        (False, 1, 2)
    """
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    jobs = cluster if isinstance(cluster, dict) else {}
    check(jobs.get("worker") or jobs.get("chief"),
          f"TF_CONFIG has no cluster of workers (\"cluster\": {{\"worker\": [...]}}): set {_TF_CONFIG_EXAMPLE}")
    check(isinstance(task, dict) and task.get("type") in jobs and isinstance(task.get("index"), int)
          and 0 <= task["index"] < len(jobs[task["type"]]),
          f"TF_CONFIG's task {task!r} is not one of its cluster's: set {_TF_CONFIG_EXAMPLE}")
    workers = sum(len(jobs.get(k) or []) for k in ("chief", "worker"))
    is_chief = task["type"] == "chief" or ("chief" not in jobs and task["index"] == 0)
    return is_chief, task["index"], workers
