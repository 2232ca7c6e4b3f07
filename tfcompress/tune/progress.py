"""The search's progress bar (tqdm, on stderr): trials done, the best recipe so far within the tolerance,
and the time left of the budget.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> with SearchProgress(3, None, 0, stream=out) as bar:
    ...     bar.update(1, {"number": 0, "size_bytes": 2048, "p50_us": 12.5}, 4.0)
    >>> "1/3" in out.getvalue() and "best=#0 2.0 KB" in out.getvalue()
    True
"""
import sys


class SearchProgress:
    """A tqdm bar of ``total`` trials (None: open-ended), starting at ``done``, with a time budget of
    ``seconds`` (None: none); ``enabled=False`` shows nothing."""

    def __init__(self, total, seconds, done, *, enabled=True, stream=None):
        self.total, self.seconds, self.done, self.enabled = total, seconds, done, enabled
        self.stream = stream or sys.stderr
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, desc="tune", unit="trial", file=self.stream,
                            dynamic_ncols=True)
        return self

    def update(self, done, best, elapsed):
        """Show ``done`` trials, ``best`` (the chosen-so-far trial's figures, or None) and the time left."""
        if self.bar is None:
            return
        self.bar.update(done - self.done)
        self.done = done
        post = {"best": "none within tolerance" if best is None else
                f"#{best['number']} {_kb(best['size_bytes'])} {best['p50_us']:.0f}us"}
        if self.seconds is not None:
            post["left"] = f"{max(0.0, self.seconds - elapsed):.0f}s"
        self.bar.set_postfix(post, refresh=True)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


def _kb(n):
    return f"{n / 1024:.1f} KB"
