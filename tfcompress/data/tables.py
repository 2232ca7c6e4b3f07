"""Any table in: CSV, TSV and Parquet files (delimiter and header sniffed) and splits that fit the data.

:func:`read_table` turns a file or a DataFrame into a DataFrame, with one clear
:class:`~tfcompress.errors.TFCompressError` line for a missing, empty, non-UTF-8 or ragged file.
:func:`split_table` cuts it into train / validation / test the way the data allows: by time when there is
a time column, leave-last-out per user for interactions without time, stratified by label otherwise.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.tsv")
    >>> _ = open(path, "w").write("a lovely dress\\t1\\ntoo small\\t0\\n")
    >>> read_table(path).columns.tolist()
    ['column_1', 'column_2']
"""
import collections
import csv
import gzip
import os
import zipfile

import numpy as np
import pandas as pd

from ..errors import TFCompressError

PARQUET = (".parquet", ".pq")
SPLITS = ("auto", "time", "user", "stratified", "random")
_SAMPLE_BYTES = 64 * 1024

#: what :func:`split_table` returns: three DataFrames and the name of the split used
Split = collections.namedtuple("Split", ["train", "val", "test", "how"])


def read_table(path_or_frame, *, sep=None, header="infer"):
    """A DataFrame from a CSV/TSV file (also ``.gz``/``.zip``), a Parquet file, or a DataFrame (returned
    as is). ``sep=None`` sniffs the delimiter; ``header="infer"`` sniffs whether the first line names the
    columns (``True``/``False`` to say it); columns of a file without header are ``column_1, column_2, ...``.

    Example:
        >>> import pandas as pd
        >>> read_table(pd.DataFrame({"x": [1]})).shape
        (1, 1)
    """
    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame
    path = _check_path(path_or_frame)
    if path.lower().endswith(PARQUET):
        try:
            frame = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises many types
            raise TFCompressError(f"{path}: cannot read it as Parquet ({_first_line(e)})") from None
    else:
        frame = _read_text_table(path, sep, header)
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise TFCompressError(f"{path} has no data rows: give a table with a header line and rows")
    return frame


def _check_path(path):
    try:
        path = os.path.expanduser(os.fspath(path))
    except TypeError:
        raise TFCompressError(f"read_table takes a file path or a pandas DataFrame, not "
                              f"{type(path).__name__}") from None
    if not os.path.exists(path):
        raise TFCompressError(f"data file {path!r} does not exist: check the path")
    if os.path.isdir(path):
        raise TFCompressError(f"data path {path!r} is a folder: give one CSV, TSV or Parquet file")
    if os.path.getsize(path) == 0:
        raise TFCompressError(f"data file {path!r} is empty: give a table with a header line and rows")
    return path


def _raw_sample(path):
    low = path.lower()
    if low.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read(_SAMPLE_BYTES)
    if low.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            if not names:
                raise TFCompressError(f"{path} is an empty zip archive: put one CSV file in it")
            with z.open(names[0]) as f:
                return f.read(_SAMPLE_BYTES)
    with open(path, "rb") as f:
        return f.read(_SAMPLE_BYTES)


def _not_utf8(path, raw, err):
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        source = "UTF-16"
    else:
        try:
            raw.decode("cp1252")
            source = "cp1252 (Windows-1252)"
        except UnicodeDecodeError:
            source = "latin-1"
    return TFCompressError(f"{path} is not UTF-8 text ({err}); it looks like {source}: convert it, e.g. "
                           f"iconv -f {source.split()[0]} -t utf-8 FILE > FILE.utf8.csv")


def _decoded_sample(path):
    raw = _raw_sample(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if e.start < len(raw) - 4:  # not just a character cut at the end of the sample
            raise _not_utf8(path, raw, f"byte 0x{raw[e.start]:02x} at offset {e.start}") from None
        text = raw[:e.start].decode("utf-8-sig")
    lines = text.splitlines()
    if len(raw) == _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        raise TFCompressError(f"data file {path!r} has no text lines: give a table with rows")
    return raw, lines


def sniff_format(path, *, sep=None, header="infer"):
    """``(sep, header)`` of a text table: the delimiter (``,``, tab, ``;`` or ``|``) and whether its first
    line is a header (it is when a column holds a word above numbers, or csv.Sniffer thinks so).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
        >>> _ = open(path, "w").write("user;item\\n1;2\\n")
        >>> sniff_format(path)
        (';', True)
    """
    _, lines = _decoded_sample(os.fspath(path))
    sample = "\n".join(lines[:200])
    tabs = {ln.count("\t") for ln in lines[:200]}
    if sep is None and (str(path).lower().endswith((".tsv", ".tab")) or (len(tabs) == 1 and 0 not in tabs)):
        sep = "\t"  # tabs in every line, as many each time: commas are more likely inside text
    if sep is None:
        try:
            sep = csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
        except csv.Error:
            sep = "\t" if "\t" in lines[0] else ","
    if header == "infer":
        header = _has_header(lines, sep)
    return sep, bool(header)


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def _has_header(lines, sep):
    rows = list(csv.reader(lines[:50], delimiter=sep))
    if len(rows) < 2:
        return not all(_is_number(v) for v in rows[0] if v != "")
    first, rest = rows[0], rows[1:]
    for j, name in enumerate(first):
        below = [r[j] for r in rest if j < len(r) and r[j] != ""]
        if below and not _is_number(name) and all(_is_number(v) for v in below):
            return True  # a word above numbers
        if name and below and name in below:
            return False  # the first row's value repeats below: it is data
    if all(_is_number(v) for v in first if v != ""):
        return False
    try:
        return csv.Sniffer().has_header("\n".join(lines[:50]))
    except csv.Error:
        return True


def _read_text_table(path, sep, header):
    if header not in ("infer", True, False):
        raise TFCompressError(f"header={header!r}: use 'infer', True or False")
    sep, header = sniff_format(path, sep=sep, header=header)
    kwargs = {"sep": sep, "header": 0 if header else None}
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig", **kwargs)
    except UnicodeDecodeError as e:
        raise _not_utf8(path, _raw_sample(path), f"byte 0x{e.object[e.start]:02x} at offset {e.start} of a "
                                                 f"chunk") from None
    except pd.errors.EmptyDataError:
        raise TFCompressError(f"data file {path!r} has no columns: give a table with a header line and "
                              "rows") from None
    except (pd.errors.ParserError, ValueError) as e:
        raise TFCompressError(f"{path}: cannot read it as a table with sep={sep!r} ({_first_line(e)}); fix "
                              "the ragged lines, or pass sep= / header=False") from None
    if not header:
        frame.columns = [f"column_{i + 1}" for i in range(frame.shape[1])]
    return frame


def _first_line(e):
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def parse_time(values):
    """A column of times as float seconds since 1970 (NaN where unparsable): datetimes, date strings, or
    epoch numbers (milliseconds are recognized by their size).

    Example:
        >>> import pandas as pd
        >>> parse_time(pd.Series(["1970-01-02", None])).tolist()
        [86400.0, nan]
    """
    s = pd.Series(values)
    if pd.api.types.is_bool_dtype(s):
        return pd.Series(np.nan, index=s.index)
    if pd.api.types.is_numeric_dtype(s):
        x = s.astype("float64")
        return x / 1000.0 if np.nanmedian(x.to_numpy()) > 1e11 else x
    if not pd.api.types.is_datetime64_any_dtype(s):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format" on odd strings
            s = pd.to_datetime(s, errors="coerce", utc=True)
    elif s.dt.tz is None:
        s = s.dt.tz_localize("UTC")
    seconds = (s - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return seconds.astype("float64")


def split_table(frame, schema, how="auto", *, seed=0, val=0.1, test=0.1):
    """``Split(train, val, test, how)`` of ``frame``. ``how="auto"``: ``"time"`` when ``schema.time`` is
    set (the latest rows are the test set), else ``"user"`` when ``schema.user`` is set (each user's last
    row is test, the one before validation; users with fewer than 3 rows stay in train), else
    ``"stratified"`` by the label for binary/multiclass objectives, else ``"random"``.

    Example:
        >>> import pandas as pd
        >>> from tfcompress.data import Schema
        >>> df = pd.DataFrame({"x": [i / 2 for i in range(100)], "y": [0, 1] * 50})
        >>> parts = split_table(df, Schema.infer(df, label="y"))
        >>> parts.how, len(parts.train), len(parts.val), len(parts.test)
        ('stratified', 80, 10, 10)
    """
    if how not in SPLITS:
        raise TFCompressError(f"split how={how!r} is not one of {SPLITS}")
    if not (0 <= val < 1 and 0 < test < 1 and val + test < 1):
        raise TFCompressError(f"split fractions val={val}, test={test}: each in [0, 1), their sum below 1")
    if how == "auto":
        stratify = getattr(schema, "objective", None) in ("binary", "multiclass") and schema.label
        how = "time" if schema.time else "user" if schema.user else "stratified" if stratify else "random"
    for role in ("time", "user"):
        if how == role and not getattr(schema, role, None):
            raise TFCompressError(f"split how={how!r} needs a {role} column: name it (Schema.infer({role}=...)) "
                                  "or use how='stratified' or 'random'")
    if len(frame) < 3:
        raise TFCompressError(f"a table of {len(frame)} rows cannot be split into train, val and test")
    part = {"time": _by_time, "user": _by_user, "stratified": _stratified, "random": _stratified}[how]
    codes = part(frame, schema, how, seed, val, test)
    out = [frame[codes == k].reset_index(drop=True) for k in range(3)]
    empty = [n for n, f in zip(("train", "val", "test"), out) if len(f) == 0 and (n != "val" or val > 0)]
    if empty:
        raise TFCompressError(f"the {how} split of {len(frame)} rows leaves {empty} empty: give more rows "
                              "or choose another split (how=)")
    return Split(*out, how)


def _cut(n, val, test):
    """Codes 0/1/2 (train/val/test) for ``n`` ordered positions."""
    n_test, n_val = int(round(n * test)), int(round(n * val))
    codes = np.zeros(n, "int8")
    codes[n - n_test - n_val:n - n_test] = 1
    codes[n - n_test:] = 2
    return codes


def _by_time(frame, schema, how, seed, val, test):
    t = parse_time(frame[schema.time]).to_numpy()
    order = np.argsort(np.where(np.isnan(t), -np.inf, t), kind="stable")
    codes = np.empty(len(frame), "int8")
    codes[order] = _cut(len(frame), val, test)
    return codes


def _by_user(frame, schema, how, seed, val, test):
    users = frame[schema.user].reset_index(drop=True)
    if schema.time:
        t = parse_time(frame[schema.time]).reset_index(drop=True)
        order = np.argsort(t.fillna(-np.inf).to_numpy(), kind="stable")
    else:
        order = np.arange(len(frame))
    ordered = users.iloc[order]
    from_end = ordered.groupby(ordered, sort=False).cumcount(ascending=False).to_numpy()
    size = ordered.map(ordered.value_counts()).to_numpy()
    codes_sorted = np.where((size >= 3) & (from_end == 0), 2, np.where((size >= 3) & (from_end == 1), 1, 0))
    if val == 0:
        codes_sorted = np.where(codes_sorted == 1, 0, codes_sorted)
    codes = np.empty(len(frame), "int8")
    codes[order] = codes_sorted
    return codes


def _stratified(frame, schema, how, seed, val, test):
    rng = np.random.default_rng(seed)
    if how == "stratified" and getattr(schema, "label", None) in frame.columns:
        groups = frame[schema.label].astype(str).to_numpy()
    else:
        groups = np.zeros(len(frame), "int8")
    codes = np.zeros(len(frame), "int8")
    for g in pd.unique(groups):
        idx = np.flatnonzero(groups == g)
        codes[rng.permutation(idx)] = _cut(len(idx), val, test)
    return codes
