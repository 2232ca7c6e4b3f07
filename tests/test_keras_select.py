"""tfcompress selects tf_keras (Keras 2) once, and refuses clearly when Keras 3 was chosen first."""
import subprocess
import sys


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_tfcompress_uses_tf_keras_everywhere():
    from tfcompress._keras import keras, tf

    assert keras.__name__.startswith("tf_keras")
    assert tf.keras.Model is keras.Model  # tfmot and TFRS see the same Keras


def test_importing_tensorflow_first_is_fine_until_keras_is_touched():
    r = _run("import tensorflow as tf\nimport tfcompress\nprint(tf.keras.__name__)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("tf_keras")


def test_keras3_already_chosen_gives_one_clear_error():
    r = _run("import tensorflow as tf\ntf.keras.Model\nimport tfcompress")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: tfcompress needs Keras 2")
    assert "TF_USE_LEGACY_KERAS=1" in last
