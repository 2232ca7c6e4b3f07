"""Every bad input is one line (issue 15): the CLI prints ``tfcompress: error: ...`` alone on stderr and exits
with 2; the Python API raises one ``TFCompressError`` whose message is one line. One table, one case a row:
``(case, argv or callable, regex the line must match)``. Nothing here trains: runs fail at validation."""
import errno
import json
import re

import numpy as np
import pandas as pd
import pytest

from tfcompress import TFCompressError, keras
from tfcompress.cli import main


def _tiny_model():
    price = keras.Input((), name="price")
    item = keras.Input((), name="item", dtype="int32")
    x = keras.layers.Concatenate()([keras.layers.Reshape((1,))(price), keras.layers.Embedding(50, 4)(item)])
    return keras.Model({"price": price, "item": item}, keras.layers.Dense(1, name="logit")(x))


def _rows(n=200):
    rng = np.random.RandomState(0)
    return {"price": rng.uniform(0, 10, n).astype("float32"), "item": rng.randint(0, 50, n).astype("int32")}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The files the cases read: a tiny .tflite model, bad CSVs, damaged reports, a valid report folder."""
    from tfcompress.bench import Report
    from tfcompress.export import to_tflite

    d = tmp_path_factory.mktemp("bad_input")
    paths = {"tflite": str(to_tflite(_tiny_model(), d / "m.tflite", mode="int8", representative=_rows()))}
    for name, text in (("text_csv", "price,item,label\n1.5,3,1\n2.5,abc,0\n"),
                       ("nan_csv", "price,item,label\n1.5,3,1\n2.5,,0\n")):
        paths[name] = str(d / f"{name}.csv")
        with open(paths[name], "w") as f:
            f.write(text)
    for name, content in (("corrupt", "{not json"), ("non_dict", json.dumps({"stages": [1, {"name": "a"}]})),
                          ("valid", json.dumps(Report([{"name": "a", "size_bytes": 10, "auc": 0.7}]).to_dict()))):
        (d / name).mkdir()
        (d / name / "report.json").write_text(content)
    paths.update({k: str(d / k) for k in ("corrupt", "non_dict", "valid")})
    paths["root"] = str(d)
    return paths


def _disk_full(monkeypatch):
    """The atomic writer's ``open`` fails as on a full disk."""
    import tfcompress._io as io

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io, "open", full, raising=False)


def _qat_on_a_custom_layer():
    from tfcompress.quantize import quantize_aware

    class Plain(keras.layers.Layer):  # an __init__ argument and no get_config(): tfmot cannot rebuild it
        def __init__(self, k):
            super().__init__(name="plain")
            self.k = k

        def call(self, x):
            return x * self.k

    i = keras.Input((4,))
    quantize_aware(keras.Model(i, keras.layers.Dense(1)(Plain(3.0)(keras.layers.Dense(3)(i)))))


def _distil_from_itself():
    from tfcompress.distill import Distiller

    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    Distiller(student, student)


def _predict(path, **changes):
    from tfcompress.export import TFLiteModel

    TFLiteModel(path).predict({**_rows(4), **changes})


def _bench_data(path):
    from tfcompress.bench import BenchModel, check_data_fits, load_data

    check_data_fits([BenchModel("m", "keras", "m.keras", None, {"price": "float32", "item": "int32"})],
                    load_data(path))


def _run_config(**fields):
    from tfcompress.pipeline import RunConfig

    RunConfig.quick_defaults(**fields).validate()


def _load_report(path):
    from tfcompress.pipeline import load_report

    load_report(path)


def _report_from_dict():
    from tfcompress.bench import Report

    Report.from_dict({"stages": [{"name": "a"}, "b"]})


SEED = r"seed = {} is outside \[0, 4294967295\]: pass a whole number such as 0"
ARG_SEED = r"argument --seed: {} is outside \[0, 4294967295\]: pass a whole number such as 0"
CASES = [  # (case, argv (with {key} for a file of the fixture) or callable(files), regex of the one line)
    ("run --seed -1", ["run", "--quick", "--seed", "-1"], ARG_SEED.format(-1)),
    ("run --seed 2**32", ["run", "--quick", "--seed", "4294967296"], ARG_SEED.format(4294967296)),
    ("bench --seed -1", ["bench", "{tflite}", "--seed", "-1"], ARG_SEED.format(-1)),
    ("run --stages export", ["run", "--quick", "--stages", "export"],
     r"stage 'export' needs a trained model \(a teacher or a student\): add 'teacher' \(or 'distill' or "
     r"'baseline'\) to --stages"),
    ("report: corrupt report.json", ["report", "{corrupt}"],
     r"report\.json' is not valid JSON at line 1 column 2: it is damaged; rerun the command that wrote it"),
    ("report: a stage row not a dict", ["report", "{non_dict}"],
     r"report 'stages'\[0\] is 1 \(int\), not a dict: each row must map column names to values"),
    ("report: disk full", ["report", "{valid}"],
     r"cannot write '.*valid/\w+\.\w+': No space left on device \(\d+\.\d\d GB free on '.*valid'\): free some space"),
    ("bench --xnnpack maybe", ["bench", "{tflite}", "--xnnpack", "maybe"],
     r"xnnpack must be a comma-separated list of on/off: on, off or on,off, got 'maybe'"),
    ("bench --batch abc", ["bench", "{tflite}", "--batch", "abc"],
     r"batch sizes must be a comma-separated list of whole numbers like 1,32, got 'abc'"),
    ("bench --threads 1,x", ["bench", "{tflite}", "--threads", "1,x"],
     r"threads must be a comma-separated list of whole numbers like 1,2,4, got '1,x'"),
    ("bench --data: text in an id column", ["bench", "{tflite}", "--data", "{text_csv}", "--no-progress"],
     r"data column 'item' holds 'abc' \(row 1\), not a number: the models take numbers there"),
    ("bench --data: NaN ids", ["bench", "{tflite}", "--data", "{nan_csv}", "--no-progress"],
     r"data column 'item' holds NaN \(empty\) ids in 1 row\(s\), first row 1: the models take whole-number ids"),
    ("RunConfig(seed=-1)", lambda f: _run_config(seed=-1), SEED.format(-1)),
    ("RunConfig(seed='x')", lambda f: _run_config(seed="x"), r"seed = 'x' must be a whole number in \[0, 4294967295\]"),
    ("load_report: corrupt", lambda f: _load_report(f["corrupt"]), r"is not valid JSON at line 1 column 2"),
    ("Report.from_dict: a row not a dict", lambda f: _report_from_dict(),
     r"report 'stages'\[1\] is 'b' \(str\), not a dict"),
    ("check_data_fits: text ids", lambda f: _bench_data(f["text_csv"]), r"data column 'item' holds 'abc' \(row 1\)"),
    ("check_data_fits: NaN ids", lambda f: _bench_data(f["nan_csv"]), r"data column 'item' holds NaN \(empty\) ids"),
    ("QAT on a custom layer", lambda f: _qat_on_a_custom_layer(),
     r"tfmot could not apply QAT \(plain scheme\) to model '.*': .*custom layer\(s\) \['plain \(Plain\)'\] "
     r"cannot be rebuilt: give each a get_config\(\) .* quantize_scope, or give them a QuantizeConfig"),
    ("Distiller(student, student)", lambda f: _distil_from_itself(),
     r"teacher is the student itself \(the same model object '.*'\): distil from a separately trained teacher"),
    ("TFLiteModel.predict: string ids", lambda f: _predict(f["tflite"], item=np.array(["shoe", "a", "b", "c"])),
     r"input 'item' holds text \(e\.g\. 'shoe'\); the model takes int32"),
    ("TFLiteModel.predict: ids beyond the vocabulary",
     lambda f: _predict(f["tflite"], item=np.array([1, 999, 2, 3], "int32")),
     r"input 'item' has 1 id\(s\) outside the vocabulary \[0, 50\)"),
]


@pytest.mark.parametrize("case,call,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(case, call, pattern, files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # runs would make runs/, savedmodels/, tflite_export/ here
    if "disk full" in case:
        _disk_full(monkeypatch)
    if callable(call):
        with pytest.raises(TFCompressError) as caught:
            call(files)
        line = str(caught.value)
        assert "\n" not in line, line
        assert re.search(pattern, line), line
        return
    code = main([a.format(**files) for a in call])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    assert re.match(r"tfcompress( \w+)?: error: ", err[0]) and re.search(pattern, err[0]), err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a bad input left folders behind"


def test_a_report_folder_is_untouched_by_a_full_disk(files, monkeypatch, capsys):
    before = sorted(p.name for p in __import__("pathlib").Path(files["valid"]).iterdir())
    _disk_full(monkeypatch)
    assert main(["report", files["valid"]]) == 2
    assert sorted(p.name for p in __import__("pathlib").Path(files["valid"]).iterdir()) == before  # no temp files
    assert pd.read_json(files["valid"] + "/report.json", typ="series")["stages"]  # the old report is intact
