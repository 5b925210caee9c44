"""Cut one Steckbrief out of a report into a page of its own (for a screenshot or to send one area).

``python -m social_monitor.report.single_profile REPORT.html AREA_ID OUT.html``: keeps the report's
head (styles), the hatch definitions and the header, and the one ``<article id="steckbrief-<id>">``. An
AREA_ID of the form ``karte-<indicator id>`` cuts out that indicator's maps instead (for a screenshot of a map).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def single_profile(report_html: str, area_id: str) -> str:
    if area_id.startswith("karte-"):
        match = re.search(rf'<article class="indicator-maps" id="{re.escape(area_id)}".*?</article>', report_html,
                          flags=re.S)
    else:
        match = re.search(rf'<article class="steckbrief" id="steckbrief-{re.escape(area_id)}".*?</article>',
                          report_html, flags=re.S)
    if match is None:
        raise ValueError(f"no Steckbrief or map {area_id} in the report")
    head, _, _ = report_html.partition("<main>")
    return f"{head}<main>{match.group(0)}</main></body></html>\n"


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    report, area_id, out = args
    Path(out).write_text(single_profile(Path(report).read_text(encoding="utf-8"), area_id), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
