"""The report as PDF beside its HTML, printed by a headless Chromium (Debian's ``chromium``) where one is installed.

Chromium rather than a Python HTML-to-PDF library: the report's inline SVG maps, soft hyphens and print styles are
rendered as a browser renders them, and the PDF is the page the screenshots show.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
MISSING = "no PDF: chromium is not installed (apt-get install chromium); the HTML reports are written"


def find_browser() -> str | None:
    """The first Chromium on PATH, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def print_pdf(html: Path, browser: str, timeout: float = 600) -> Path:
    """Print ``html`` to ``<same name>.pdf`` beside it (A4, the report's print styles, no browser header or footer);
    the PDF appears whole or not at all."""
    html = Path(html).resolve()
    target = html.with_suffix(".pdf")
    partial = target.with_suffix(".pdf.tmp")
    with tempfile.TemporaryDirectory(prefix="social-monitor-chromium-") as profile:
        done = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--no-pdf-header-footer", f"--print-to-pdf={partial}", html.as_uri()],
            capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not partial.exists() or partial.read_bytes()[:5] != b"%PDF-":
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"{html}: {browser} did not print a PDF (exit {done.returncode}): {done.stderr[-500:]}")
    partial.replace(target)
    return target
