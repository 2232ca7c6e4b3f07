"""The resident set by phase of a run: which call inside which stage reaches the peak.

    python benchmarks/memory_phases.py SHARDS OUT [--steps 150] [--stages teacher,baseline,distill]

Runs ``tfcompress run --data SHARDS`` in this process with every ``fit`` cut to one epoch of ``--steps``
steps, while a thread samples the resident set every 50 ms. A phase is the stage under way (``after-X``: the
stage after ``X`` ended) and the call inside it (Keras's ``fit``, ``evaluate``, ``predict``, ``save``, the
TFLite converter's ``convert``, a ``.tflite`` file's ``tflite-predict``); the table gives each phase's highest
resident set in MB, in the order the phases began. The figures in ``docs/scale/release_memory.md`` came
from it.
"""
import argparse
import functools
import threading
import time


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 2**20


class PhaseSampler:
    """The highest resident set seen in each phase (a stack of names), sampled in a daemon thread."""

    def __init__(self, interval=0.05):
        self.stack, self.peaks = ["import"], {}
        threading.Thread(target=self._sample, args=(interval,), daemon=True).start()

    def _sample(self, interval):
        while True:
            phase = "/".join(self.stack)
            self.peaks[phase] = max(self.peaks.get(phase, 0), _rss_mb())
            time.sleep(interval)

    def wrap(self, owner, name, steps=None, label=None):
        """Record calls of ``owner.name`` as a phase (named ``label``, default ``name``); with ``steps``, cut
        fits to one epoch of that many."""
        call = getattr(owner, name)

        @functools.wraps(call)
        def recorded(*args, **kwargs):
            if steps:
                kwargs.update(steps_per_epoch=min(kwargs.get("steps_per_epoch") or steps, steps), epochs=1)
                kwargs.pop("initial_epoch", None)
            self.stack.append(label or name)
            try:
                return call(*args, **kwargs)
            finally:
                self.stack.pop()

        setattr(owner, name, recorded)

    def wrap_converters(self, converter_class):
        """Record the ``convert`` of every converter ``converter_class.from_saved_model`` makes (how the
        export converts) as the phase ``convert``."""
        make = converter_class.from_saved_model

        @functools.wraps(make)
        def made(*args, **kwargs):
            converter = make(*args, **kwargs)
            self.wrap(converter, "convert")
            return converter

        converter_class.from_saved_model = staticmethod(made)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("shards", help="a shard folder (tfcompress data make)")
    p.add_argument("out", help="folder for the run")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--stages", default="teacher,baseline,distill")
    a = p.parse_args(argv)
    sampler = PhaseSampler()
    from tfcompress import keras, tf
    from tfcompress.export import TFLiteModel
    from tfcompress.pipeline import RunConfig, run

    sampler.wrap(keras.Model, "fit", steps=a.steps)
    for name in ("evaluate", "predict", "save"):
        sampler.wrap(keras.Model, name)
    sampler.wrap(tf.saved_model, "save")  # the stages' SavedModels
    sampler.wrap_converters(tf.lite.TFLiteConverter)  # the exports' conversions
    sampler.wrap(TFLiteModel, "predict", label="tflite-predict")  # scoring the .tflite files
    cfg = RunConfig(data=a.shards, out=f"{a.out}/run", savedmodels_dir=f"{a.out}/sm", tflite_dir=f"{a.out}/tfl",
                    overwrite=True, resume=False, stages=a.stages.split(","))

    def next_phase(name, message, started):  # a stage ended: the next one is under way
        sampler.stack[:] = [f"after-{name}"]

    sampler.stack[:] = ["data"]
    run(cfg, progress=next_phase)
    time.sleep(0.2)
    print("| phase | peak RSS MB |\n| --- | ---: |")
    for phase, mb in list(sampler.peaks.items()):
        print(f"| {phase} | {mb:,} |")


if __name__ == "__main__":
    main()
