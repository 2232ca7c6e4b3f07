"""How much quality a smaller model may lose: a :class:`Tolerance` read from ``"0.5%"`` (relative to the
reference) or ``0.004`` (an absolute drop of the metric), and the one test every choice uses.

``tfcompress run`` uses it where it chooses between candidates (the retrieval export: the compressed student
ships only when its validation quality is within the tolerance of the uncompressed one), ``tfcompress tune``
to pick the smallest or fastest recipe within the tolerance of the teacher.

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
