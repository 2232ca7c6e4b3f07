"""How much quality a smaller model may lose: a :class:`Tolerance` read from ``"0.5%"`` (relative to the
reference) or ``0.004`` (an absolute drop of the metric), and the one test every choice uses.

``tfcompress run`` uses it where it chooses between candidates (:func:`choose_within`; the retrieval export:
the smallest student file ships whose validation quality is within the tolerance of the best candidate's),
``tfcompress tune`` to pick the smallest or fastest recipe within the tolerance of the teacher.

Example:
    >>> t = Tolerance.parse("1%")
    >>> t.within(0.792, 0.800), t.within(0.791, 0.800)
    (True, False)
    >>> Tolerance.parse(0.02).within(0.30, 0.28, higher_is_better=False)
    True
    >>> str(t), str(Tolerance.parse("0.004"))
    ('1%', '0.004')
"""
from dataclasses import dataclass

from .errors import TFCompressError

DEFAULT = "1%"


@dataclass(frozen=True)
class Tolerance:
    """A quality drop allowed against a reference: ``relative`` (a fraction of the reference) or absolute."""

    amount: float
    relative: bool = True

    @classmethod
    def parse(cls, value):
        """``"0.5%"`` → relative 0.005; a plain number (or ``"0.004"``) → an absolute drop; a Tolerance as is.
        Anything else is a one-line error saying what is allowed."""
        if isinstance(value, Tolerance):
            return value
        bad = (f"tolerance {value!r} must be a percentage such as '0.5%' (relative to the reference) or a "
               "number >= 0 such as 0.004 (an absolute drop of the metric)")
        if isinstance(value, bool) or value is None:
            raise TFCompressError(bad)
        text = str(value).strip()
        relative = text.endswith("%")
        try:
            amount = float(text[:-1] if relative else text)
        except ValueError:
            raise TFCompressError(bad) from None
        if not (amount >= 0) or amount == float("inf") or (relative and amount >= 100):
            raise TFCompressError(bad)
        return cls(amount / 100 if relative else amount, relative)

    def allowed_drop(self, reference):
        """The largest drop of the metric allowed below (or above, when lower is better) ``reference``."""
        return abs(float(reference)) * self.amount if self.relative else self.amount

    def within(self, value, reference, *, higher_is_better=True):
        """Whether ``value`` is no worse than ``reference`` by more than the tolerance."""
        drop = (float(reference) - float(value)) if higher_is_better else (float(value) - float(reference))
        return drop <= self.allowed_drop(reference) + 1e-12

    def __str__(self):
        return f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"


def choose_within(candidates, tolerance, metric="metric", *, higher_is_better=True):
    """Which of ``candidates`` (dicts: ``name``, ``validation`` (the metric on the validation split; None
    when there is none), ``bytes``; the preferred first on ties) to ship: the smallest file whose validation
    quality is within ``tolerance`` (a :class:`Tolerance`, ``"1%"`` or ``0.004``) of the best candidate's.
    Without validation figures, the first. Returns a JSON-able dict: ``shipped``, ``reference`` (the best),
    ``tolerance``, ``metric``, ``candidates`` (each with ``within``) and ``reason`` (one sentence).

    Example:
        >>> c = [dict(name="distilled", validation=0.301, bytes=310_000),
        ...      dict(name="compressed", validation=0.212, bytes=100_000)]
        >>> choose_within(c, "1%", "ndcg@10")["reason"]
        'compressed: NDCG@10 0.2120 vs 0.3010 of distilled, outside 1% — shipped distilled, 3.1x larger'
        >>> c[1]["validation"] = 0.299
        >>> choose_within(c, "1%")["shipped"]
        'compressed'
    """
    tol = Tolerance.parse(tolerance)
    rows = [dict(c) for c in candidates]
    out = {"metric": metric, "tolerance": str(tol), "candidates": rows}
    if any(c["validation"] is None for c in rows):
        return {**out, "shipped": rows[0]["name"], "reference": None,
                "reason": f"no validation split to compare on: shipped {rows[0]['name']}, the least lossy"}
    sign = 1 if higher_is_better else -1
    best = max(rows, key=lambda c: sign * c["validation"])
    for c in rows:
        c["within"] = tol.within(c["validation"], best["validation"], higher_is_better=higher_is_better)
    shipped = min((c for c in rows if c["within"]), key=lambda c: (c["bytes"], -sign * c["validation"]))
    return {**out, "shipped": shipped["name"], "reference": best["name"],
            "reason": _reason(rows, shipped, best, tol, metric.upper())}


def _reason(rows, shipped, best, tol, label):
    """One sentence: why ``shipped`` (the smallest within ``tol`` of ``best``) and not a smaller file."""
    smaller = [c for c in rows if c["bytes"] < shipped["bytes"]]
    if smaller:
        c = min(smaller, key=lambda c: c["bytes"])
        return (f"{c['name']}: {label} {c['validation']:.4f} vs {best['validation']:.4f} of {best['name']}, "
                f"outside {tol} — shipped {shipped['name']}, {shipped['bytes'] / c['bytes']:.1f}x larger")
    if len(rows) == 1:
        return f"shipped {shipped['name']}, the only candidate ({label} {shipped['validation']:.4f})"
    if shipped is best:
        return f"shipped {shipped['name']}: the best {label} ({best['validation']:.4f}), and no other file is smaller"
    return (f"shipped {shipped['name']}: {label} {shipped['validation']:.4f}, within {tol} of "
            f"{best['validation']:.4f} of {best['name']}, in a file {best['bytes'] / shipped['bytes']:.1f}x smaller")
