"""A screenshot of a run folder's ``report.html`` as a browser shows it, taken with headless Chromium.

It checks by eye what the HTML report holds (the table with its ratio-to-teacher columns, the summary,
distillation and parity sections, the Pareto plot with readable labels). Chromium is not a dependency of
tfcompress: the script says so in one line (exit 2) when no browser is installed.

    python -m tfcompress.cli run --quick --out /tmp/run --savedmodels /tmp/sm --tflite-dir /tmp/tfl
    python benchmarks/report_screenshot.py /tmp/run /tmp/report.png            # 1280 x 2000 pixels
    python benchmarks/report_screenshot.py /tmp/run /tmp/report.png --height 3000
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chromium-headless-shell")


def find_browser():
    """The path of the first Chromium-like browser on ``PATH``, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(html_path, png_path, width=1280, height=2000, browser=None, timeout=120):
    """Render ``html_path`` headless into ``png_path`` (``width`` x ``height`` pixels); returns ``png_path``."""
    browser = browser or find_browser()
    if browser is None:
        raise RuntimeError(f"no headless browser found (tried {', '.join(BROWSERS)}): install one, e.g. "
                           "apt-get install chromium")
    png_path = os.path.abspath(png_path)
    with tempfile.TemporaryDirectory() as profile:  # a throwaway profile: no state shared with a real browser
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png_path}", "file://" + os.path.abspath(html_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not os.path.isfile(png_path):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{browser} exited {proc.returncode} without a screenshot: {tail[0]}")
    return png_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run folder (holding report.html) or the path of an .html file")
    parser.add_argument("out", help="the PNG file to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args(argv)
    page = args.run_dir if args.run_dir.endswith(".html") else os.path.join(args.run_dir, "report.html")
    if not os.path.isfile(page):
        print(f"error: {page!r} does not exist: pass a run folder written by `tfcompress run` or `report`",
              file=sys.stderr)
        return 2
    try:
        print(screenshot(page, args.out, args.width, args.height))
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
