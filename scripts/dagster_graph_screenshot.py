"""Screenshot of the Dagster UI's asset graph (the stages: raw → staging/reference → intermediate → marts →
classification → publish → report) in Debian's headless chromium, driven by Playwright (no browser download).

    make dev                              # in one terminal: the UI on http://127.0.0.1:3000
    make graph-screenshot                 # in another: docs/dagster-graph.png

Usage: python scripts/dagster_graph_screenshot.py [--url URL] [--out PNG] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000/asset-groups", help="the asset graph page")
    parser.add_argument("--out", type=Path, default=Path("docs/dagster-graph.png"), help="the PNG to write")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium",
                        help="the chromium binary (Debian: apt-get install chromium)")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"no chromium at {args.chromium}: apt-get install chromium", file=sys.stderr)
        return 1
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(args.url, wait_until="networkidle", timeout=120_000)
        try:  # the UI greets a new browser profile with a newsletter dialog
            page.get_by_role("button", name="Skip").click(timeout=5_000)
        except Exception:  # noqa: BLE001 - no dialog: nothing to dismiss
            pass
        time.sleep(3)  # the graph lays itself out after the data arrived
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        browser.close()
    print(f"{args.out} from {args.url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
