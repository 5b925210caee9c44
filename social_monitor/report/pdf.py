"""The report as PDF beside its HTML, printed by a headless Chromium (Debian's ``chromium``) where one is installed.

Chromium rather than a Python HTML-to-PDF library: the report's inline SVG maps, soft hyphens and print styles are
rendered as a browser renders them, and the PDF is the page the screenshots show.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


PDF_MODES = ("auto", "yes", "no")
# the PDF mode of every path that writes the report when none is given (`social-monitor report` without --pdf,
# the Dagster asset report/bericht): auto by default; "no" where the PDFs are not wanted (a test's sample city)
PDF_ENV = "SOCIAL_MONITOR_REPORT_PDF"


def pdf_mode(env: Mapping[str, str]) -> str:
    """The PDF mode set in ``env`` (``$SOCIAL_MONITOR_REPORT_PDF``), default auto; a wrong one is an error naming
    the variable."""
    mode = env.get(PDF_ENV) or "auto"
    if mode not in PDF_MODES:
        raise ValueError(f"{PDF_ENV}={mode!r}: one of {', '.join(PDF_MODES)}")
    return mode


@dataclass
class PdfOutcome:
    """What :func:`pdfs_beside` did: the PDFs printed, the stale PDFs removed (no chromium, or ``no``), and the
    message saying why none was printed (empty when every PDF was printed)."""

    printed: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    message: str = ""


def pdfs_beside(htmls: list[Path], mode: str = "auto", on_pdf: Callable[[Path, float], None] | None = None,
                browser: str | None = None) -> PdfOutcome:
    """The PDF of every report in ``htmls``, printed beside it: the one place every path that writes a report's HTML
    (`social-monitor report`, `make report`, the Dagster asset report/bericht, `make report-cycle`) gets its PDF.
    ``mode`` ``auto`` prints where chromium is installed, ``yes`` requires it, ``no`` prints none. A report whose
    PDF is not printed loses the PDF it had (written from an earlier HTML), so no PDF older than its HTML remains.
    ``on_pdf(path, seconds)`` is called after each PDF (printing takes 20-30 s per report cycle)."""
    if mode not in PDF_MODES:
        raise ValueError(f"PDF mode {mode!r}: one of {', '.join(PDF_MODES)}")
    outcome = PdfOutcome()
    browser = None if mode == "no" else (browser or find_browser())
    if browser is None:
        if mode == "yes":
            raise RuntimeError(MISSING.replace("; the HTML reports are written", ""))
        for html in htmls:
            stale = Path(html).with_suffix(".pdf")
            if stale.exists():
                stale.unlink()
                outcome.removed.append(stale)
        removed = f"; removed the older PDF(s) {', '.join(p.name for p in outcome.removed)}" if outcome.removed else ""
        if mode == "auto":
            outcome.message = MISSING + removed
        elif removed:
            outcome.message = "no PDF (switched off)" + removed
        return outcome
    for html in htmls:
        started = time.perf_counter()
        outcome.printed.append(print_pdf(html, browser))
        if on_pdf is not None:
            on_pdf(outcome.printed[-1], time.perf_counter() - started)
    return outcome
