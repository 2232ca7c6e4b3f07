"""A comparison table of compression stages, saved as Markdown, CSV, JSON and a self-contained HTML page.

Each row is one stage (teacher, student, pruned, int8, ...) with whatever columns were measured.
Markdown and HTML show friendly numbers (sizes in KB/MB, microseconds with one decimal, AUC with four);
CSV and JSON keep the raw values.

The plots it embeds come from :mod:`tfcompress.bench.plots`.

Example:
    >>> import tempfile
    >>> from tfcompress.bench.report import Report
    >>> r = Report([{"name": "teacher", "size_bytes": 2_000_000, "auc": 0.81234},
    ...             {"name": "int8", "size_bytes": 400_000, "auc": 0.80871}], title="demo")
    >>> print(r.to_markdown().splitlines()[2])
    | name | size_bytes | auc |
    >>> paths = r.save(tempfile.mkdtemp())
    >>> sorted(paths)
    ['csv', 'html', 'json', 'md']
"""
import base64
import html
import math
import os

import numpy as np
import pandas as pd

from .._io import ensure_dir, write_json, write_text
from ..errors import TFCompressError
from .plots import pareto_plot

__all__ = ["Report", "format_value", "markdown_to_html"]


# ---------------------------------------------------------------------------------------------------
# Number formatting


def _human_bytes(n):
    n = float(n)
    for unit, size in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def _is_missing(value):
    if value is None or value is pd.NA:
        return True
    try:
        return bool(isinstance(value, (float, np.floating)) and math.isnan(value))
    except TypeError:
        return False


_METRIC_WORDS = {"acc", "hit", "rate", "rmse", "sparsity", "diff", "lo", "hi", "delta", "mean"}


def format_value(column, value):
    """Format one table cell for humans, choosing the format from the column name.

    ``*_vs_*`` (a ratio) -> ``0.1234x``, ``*bytes*`` -> KB/MB, ``*_us`` -> one decimal, ``*auc*`` / ``*ndcg*`` / ``*logloss*`` etc. -> four
    decimals, other floats -> four significant digits, missing -> ``-``.

    Example:
        >>> format_value("size_bytes", 1_572_864), format_value("p50_us", 12.345), format_value("auc", 0.5)
        ('1.50 MB', '12.3', '0.5000')
    """
    if _is_missing(value):
        return "-"
    name = str(column).lower()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        if "_vs_" in name:
            return f"{float(value):.4f}x"
        if "bytes" in name:
            return _human_bytes(value)
        if name.endswith("_us") or name.endswith("_ms"):
            return f"{float(value):.1f}"
        if isinstance(value, (int, np.integer)):
            return f"{int(value):,}"
        if set(name.replace("@", "_").split("_")) & _METRIC_WORDS or any(
                key in name for key in ("auc", "ndcg", "loss", "recall", "accuracy")):
            return f"{float(value):.4f}"
        if "per_s" in name:
            return f"{float(value):,.0f}"
        return f"{float(value):.4g}"
    return str(value)


def _cells(frame):
    """The frame as a list of rows of formatted strings (header first)."""
    header = [str(c) for c in frame.columns]
    body = [[format_value(c, v) for c, v in zip(frame.columns, row)]
            for row in frame.itertuples(index=False, name=None)]
    return header, body


def _inline_html(text):
    """Escaped text with ``**bold**`` and ```code``` spans."""
    out = []
    for i, part in enumerate(str(text).split("`")):
        if i % 2:
            out.append(f"<code>{html.escape(part)}</code>")
        else:
            bits = html.escape(part).split("**")
            out.append("".join(f"<b>{b}</b>" if j % 2 else b for j, b in enumerate(bits)))
    return "".join(out)


def markdown_to_html(lines):
    """HTML for a small, safe subset of Markdown: ``#`` headings, ``-`` bullet lists, paragraphs,
    ``**bold**`` and ```code```. Every character of the text is escaped; nothing else is interpreted.

    Example:
        >>> print(markdown_to_html(["### Parity", "", "- a < b", "- **c**"]))
        <h3>Parity</h3>
        <ul><li>a &lt; b</li><li><b>c</b></li></ul>
    """
    lines = str(lines).splitlines() if isinstance(lines, str) else [str(line) for line in lines]
    parts, items = [], []
    for line in lines + [""]:
        stripped = line.strip()
        if stripped.startswith(("- ", "* ")):
            items.append(f"<li>{_inline_html(stripped[2:])}</li>")
            continue
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
            items = []
        level = len(stripped) - len(stripped.lstrip("#"))
        if 1 <= level <= 6 and stripped[level:level + 1] == " ":
            parts.append(f"<h{level}>{_inline_html(stripped[level + 1:].strip())}</h{level}>")
        elif stripped:
            parts.append(f"<p>{_inline_html(stripped)}</p>")
    return "\n".join(parts)


def _ratio_name(column, baseline):
    return f"{column[:-len('_bytes')] if column.endswith('_bytes') else column}_vs_{baseline}"


# ---------------------------------------------------------------------------------------------------
# Report


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;font-size:14px}.wide{overflow-x:auto}"
        "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}"
        "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
        "figure{margin:1.5em 0}img{max-width:100%}")


def _as_frame(rows, what):
    """A fresh DataFrame from a DataFrame or a list of dicts; a clear error naming ``what`` otherwise."""
    if isinstance(rows, pd.DataFrame):
        return rows.reset_index(drop=True).copy()
    if isinstance(rows, (list, tuple)):
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
        if bad is None:
            return pd.DataFrame(list(rows))
        raise TFCompressError(f"{what}[{bad}] is {repr(rows[bad])[:60]} ({type(rows[bad]).__name__}), not a "
                              "dict: each row must map column names to values")
    raise TFCompressError(f"{what} must be a list of dicts or a DataFrame, got {type(rows).__name__}")


class Report:
    """One table of compression stages with Markdown / CSV / JSON / HTML output and embedded plots.

    Args:
        rows: a list of dicts (one per stage) or a DataFrame.
        title: heading for the report.
        meta: free-form run information (seed, data, machine, ...) kept in JSON and shown in HTML.

    Example:
        >>> r = Report([{"name": "int8", "size_bytes": 1536, "p50_us": 41.27}], title="t")
        >>> "1.50 KB" in r.to_markdown() and "41.3" in r.to_markdown()
        True
    """

    def __init__(self, rows, title="tfcompress report", meta=None):
        frame = _as_frame(rows, "rows")
        if meta is not None and not isinstance(meta, dict):
            raise TFCompressError(f"meta must be a dict or None, got {type(meta).__name__}")
        self.frame = frame
        self.title = str(title)
        self.meta = dict(meta or {})
        self.plots = []  # list of (caption, PNG bytes)
        self.tables = {}  # extra tables shown after the main one: title -> DataFrame
        self.sections = []  # Markdown lines of each section shown after the tables (Markdown and HTML)

    def add_section(self, lines):
        """Add a section, given as Markdown lines (``#`` headings, ``-`` bullets), shown after the tables
        in Markdown and, through :func:`markdown_to_html`, in HTML. Returns self.

        Example:
            >>> r = Report([{"name": "a"}]).add_section(["### Verdict", "", "- all good"])
            >>> "<h3>Verdict</h3>" in r.to_html() and r.to_markdown().endswith("- all good\\n")
            True
        """
        if isinstance(lines, str):
            lines = lines.splitlines()
        lines = [str(line) for line in lines]
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            self.sections.append(lines)
        return self

    def add_ratios(self, baseline, columns=("size_bytes", "auc"), label="name"):
        """Add ``<column>_vs_<baseline>`` columns (the row's value / the ``baseline`` row's), each right
        after its column; ``size_bytes`` gives ``size_vs_<baseline>``. Columns the table lacks are skipped.
        Returns self.

        Example:
            >>> r = Report([{"name": "teacher", "size_bytes": 1000, "auc": 0.8},
            ...             {"name": "int8", "size_bytes": 100, "auc": 0.78}]).add_ratios("teacher")
            >>> r.frame["size_vs_teacher"].tolist(), round(float(r.frame["auc_vs_teacher"].iloc[1]), 3)
            ([1.0, 0.1], 0.975)
        """
        if label not in self.frame.columns or not (self.frame[label].astype(str) == str(baseline)).any():
            raise TFCompressError(f"no row named {baseline!r} in column {label!r}: pass the name of a row "
                                  f"(rows: {self.frame.get(label, pd.Series(dtype=object)).tolist()})")
        base = self.frame[self.frame[label].astype(str) == str(baseline)].iloc[0]
        for column in [c for c in columns if c in self.frame.columns]:
            values = pd.to_numeric(self.frame[column], errors="coerce")
            ratio = values / float(base[column]) if pd.notna(base[column]) and base[column] else np.nan
            name = _ratio_name(column, baseline)
            if name in self.frame.columns:
                self.frame = self.frame.drop(columns=[name])
            self.frame.insert(self.frame.columns.get_loc(column) + 1, name, ratio)
        return self

    def add_table(self, title, rows):
        """Add a further table (list of dicts or DataFrame) shown after the main one. Returns self.

        It is rendered in Markdown and HTML under its own heading, kept in JSON under ``"tables"`` and
        saved as ``<basename>_<slug>.csv``.

        Example:
            >>> r = Report([{"name": "a"}]).add_table("latency", [{"name": "a", "p50_us": 3.0}])
            >>> "### latency" in r.to_markdown()
            True
        """
        self.tables[str(title)] = _as_frame(rows, f"table {title!r}: rows")
        return self

    @classmethod
    def from_dict(cls, d):
        """Rebuild a report from :meth:`to_dict` output (e.g. a run folder's ``report.json``).

        Example:
            >>> r = Report([{"name": "a", "auc": 0.7}], title="t").add_table("x", [{"v": 1}])
            >>> Report.from_dict(r.to_dict()).tables["x"]["v"].tolist()
            [1]
        """
        if not isinstance(d, dict) or not isinstance(d.get("stages"), list):
            raise TFCompressError("a report dict needs a 'stages' list: pass the content of a report.json")
        report = cls(_as_frame(d["stages"], "report 'stages'"), title=d.get("title", "tfcompress report"), meta=d.get("meta") or {})
        for title, rows in (d.get("tables") or {}).items():
            report.add_table(title, rows)
        return report

    def add_plot(self, png, caption=""):
        """Embed a plot in the HTML: PNG bytes or the path of a PNG file. Returns self."""
        if isinstance(png, (str, os.PathLike)):
            with open(png, "rb") as f:
                png = f.read()
        if not isinstance(png, (bytes, bytearray)) or not bytes(png).startswith(b"\x89PNG"):
            raise TFCompressError("add_plot needs PNG bytes or the path of a .png file")
        self.plots.append((str(caption), bytes(png)))
        return self

    def _default_plots(self):
        """The added plots, or a size/AUC Pareto plot when the table has those columns."""
        if self.plots:
            return self.plots
        if {"size_bytes", "auc"} <= set(self.frame.columns) and self.frame[["size_bytes", "auc"]].notna().all(axis=1).any():
            label = "name" if "name" in self.frame.columns else self.frame.columns[0]
            return [("AUC vs size", pareto_plot(self.frame, label=label))]
        return []

    # --- text formats -------------------------------------------------------------------------

    def to_markdown(self):
        """The table as Markdown (a title line, then a pipe table), numbers formatted for reading."""
        header, body = _cells(self.frame)

        def line(cells):
            return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

        align = ["---" if i == 0 else "---:" for i in range(len(header))]
        lines = [f"## {self.title}", "", line(header), "| " + " | ".join(align) + " |"]
        lines += [line(row) for row in body]
        for title, frame in self.tables.items():
            header, body = _cells(frame)
            align = ["---" if i == 0 else "---:" for i in range(len(header))]
            lines += ["", f"### {title}", "", line(header), "| " + " | ".join(align) + " |"]
            lines += [line(row) for row in body]
        for section in self.sections:
            lines += [""] + section
        return "\n".join(lines) + "\n"

    def _records(self, frame=None):
        frame = self.frame if frame is None else frame
        frame = frame.astype(object).where(frame.notna(), None)
        return frame.to_dict(orient="records")

    def to_dict(self):
        """``{"title", "meta", "stages": [row dicts]}`` with raw values (plus ``"tables"`` when added)."""
        d = {"title": self.title, "meta": self.meta, "stages": self._records()}
        if self.tables:
            d["tables"] = {title: self._records(frame) for title, frame in self.tables.items()}
        return d

    def to_csv(self, path):
        """Write the raw table as CSV (atomically); returns ``path``."""
        return write_text(path, self.frame.to_csv(index=False))

    def to_json(self, path):
        """Write ``{"title", "meta", "stages"}`` as JSON, NaN as null (atomically); returns ``path``."""
        return write_json(path, self.to_dict())

    # --- HTML ---------------------------------------------------------------------------------

    def _table_html(self, frame=None):
        header, body = _cells(self.frame if frame is None else frame)
        head = "".join(f"<th>{html.escape(c)}</th>" for c in header)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in body)
        return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'

    def _body_html(self, plots):
        parts = [f"<h2>{html.escape(self.title)}</h2>", self._table_html()]
        for title, frame in self.tables.items():
            parts += [f"<h3>{html.escape(title)}</h3>", self._table_html(frame)]
        parts += [f"<section>{markdown_to_html(section)}</section>" for section in self.sections]
        for caption, png in plots:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
                         f'{data}"><figcaption>{html.escape(caption)}</figcaption></figure>')
        if self.meta:
            items = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>"
                            for k, v in self.meta.items())
            parts.append(f"<ul>{items}</ul>")
        return "\n".join(parts)

    def to_html(self, path=None):
        """A self-contained HTML page (table + base64 PNG plots); written atomically when ``path`` is given.

        Returns ``path`` when writing, else the HTML text.
        """
        page = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>"
                f"{html.escape(self.title)}</title><style>{_CSS}</style></head><body>\n"
                f"{self._body_html(self._default_plots())}\n</body></html>\n")
        return page if path is None else write_text(path, page)

    def _repr_html_(self):
        return self._body_html(self.plots)

    def _repr_markdown_(self):
        return self.to_markdown()

    def __repr__(self):
        return f"Report(title={self.title!r}, stages={len(self.frame)}, columns={list(self.frame.columns)})"

    def save(self, folder, basename="report"):
        """Write ``<basename>.md/.csv/.json/.html`` into ``folder`` atomically; returns a dict kind -> path.

        Example:
            >>> import tempfile
            >>> sorted(Report([{"name": "a", "auc": 0.7}]).save(tempfile.mkdtemp()))
            ['csv', 'html', 'json', 'md']
        """
        folder = ensure_dir(folder, "report folder")
        path = lambda ext: os.path.join(folder, f"{basename}.{ext}")  # noqa: E731
        paths = {"md": write_text(path("md"), self.to_markdown()),
                 "csv": self.to_csv(path("csv")),
                 "json": self.to_json(path("json")),
                 "html": self.to_html(path("html"))}
        for title, frame in self.tables.items():
            slug = "".join(c if c.isalnum() else "_" for c in title.lower()).strip("_") or "table"
            paths[f"csv_{slug}"] = write_text(os.path.join(folder, f"{basename}_{slug}.csv"),
                                              frame.to_csv(index=False))
        return paths
