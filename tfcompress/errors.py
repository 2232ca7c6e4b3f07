"""The one exception type tfcompress raises for bad input.

Every check of user input raises :class:`TFCompressError` with a one-line message that names the bad
thing and says what to do. The CLI turns it into that line on stderr and exit code 2.

Example:
    >>> from tfcompress.errors import TFCompressError
    >>> try:
    ...     raise TFCompressError("sparsity 1.5 is outside [0, 1): pass a fraction such as 0.5")
    ... except ValueError as e:
    ...     print(e)
    sparsity 1.5 is outside [0, 1): pass a fraction such as 0.5
"""


class TFCompressError(ValueError):
    """Bad input or an unmet precondition, with a message a user can act on."""


class WriteError(TFCompressError):
    """A file could not be written (a full disk, a quota, a read-only folder, a permission): the message
    names the path and the space left there. ``tfcompress run`` still writes the report of the stages that
    finished before it."""


def check(condition, message):
    """Raise :class:`TFCompressError` with ``message`` unless ``condition`` holds.

    Example:
        >>> check(0 <= 0.5 < 1, "sparsity out of range")
    """
    if not condition:
        raise TFCompressError(message)


def check_fraction(name, value, *, low=0.0, high=1.0, include_high=False):
    """Check that ``value`` is a number in ``[low, high)`` (or ``[low, high]``); return it as float.

    Example:
        >>> check_fraction("sparsity", 0.5)
        0.5
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TFCompressError(f"{name} must be a number, got {value!r}") from None
    ok = low <= v <= high if include_high else low <= v < high
    if not ok:
        close = "]" if include_high else ")"
        raise TFCompressError(f"{name} = {value!r} is outside [{low:g}, {high:g}{close}")
    return v


MAX_SEED = 2**32 - 1


def check_seed(seed, name="seed"):
    """Check that ``seed`` is a whole number in ``[0, 2**32 - 1]`` (what NumPy takes); return it.

    Example:
        >>> check_seed(-1)
        Traceback (most recent call last):
        ...
        tfcompress.errors.TFCompressError: seed = -1 is outside [0, 4294967295]: pass a whole number such as 0
    """
    check(isinstance(seed, int) and not isinstance(seed, bool),
          f"{name} = {seed!r} must be a whole number in [0, {MAX_SEED}]")
    check(0 <= seed <= MAX_SEED, f"{name} = {seed!r} is outside [0, {MAX_SEED}]: pass a whole number such as 0")
    return seed
