#!/usr/bin/env bash
# Render the report in a real headless browser (Debian's chromium) and save two screenshots:
#   docs/report-overview.png  the top of the report (Übersicht, Aktionsräume)
#   docs/report-profile.png   one Steckbrief (the profile of one area of the action-area level, with its trend chart)
#   docs/report-map.png       the maps of one indicator on every map level (MAP_INDICATOR, default sgb2_rate)
# and, with PDF=1, the whole report as PDF beside the HTML (chromium --print-to-pdf).
#
# Usage: scripts/screenshots.sh [REPORT_HTML] [AREA_ID]
#   REPORT_HTML    default: the newest data/<city>/published/report/bericht_<cycle>.html of `make run`
#                  (CITY, default dortmund; write it with `make run` or `make report`)
#   AREA_ID        default: 37 (a Sozialraum of the Dortmund sample)
# Installs chromium with apt-get if it is missing (needs root; takes a minute).
set -euo pipefail
cd "$(dirname "$0")/.."

city="$(basename "${CITY:-dortmund}")"
report="${1:-$(ls "${SOCIAL_MONITOR_DATA_DIR:-data/$city}"/published/report/bericht_*.html 2>/dev/null | sort | tail -n 1)}"
area_id="${2:-37}"
if [[ -z "$report" || ! -f "$report" ]]; then
  echo "no report found; run: make run (or make report)" >&2
  exit 1
fi

browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]]; then
  echo "chromium not found: installing Debian's chromium (apt-get)" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  browser="$(command -v chromium)"
fi

profile_dir="$(mktemp -d)"
work_dir="$(mktemp -d)"
trap 'rm -rf "$profile_dir" "$work_dir"' EXIT
absolute="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"

# one Steckbrief as a page of its own: the report's head and styles, that article only (no script needed)
.venv/bin/python -m social_monitor.report.single_profile "$absolute" "$area_id" "$work_dir/steckbrief.html"
.venv/bin/python -m social_monitor.report.single_profile "$absolute" "karte-${MAP_INDICATOR:-sgb2_rate}" "$work_dir/karte.html"

shoot() {  # url output width height
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile_dir" \
    --screenshot="$2" --window-size="$3,$4" "$1" 2>/dev/null
}
mkdir -p docs
shoot "file://$absolute" docs/report-overview.png 1280 1600
shoot "file://$work_dir/steckbrief.html" docs/report-profile.png 1280 3750
shoot "file://$work_dir/karte.html" docs/report-map.png 1280 900
echo "docs/report-overview.png, docs/report-profile.png, docs/report-map.png from $report (Steckbrief $area_id)"

if [[ "${PDF:-0}" == "1" ]]; then
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile_dir" --no-pdf-header-footer \
    --print-to-pdf="${report%.html}.pdf" "file://$absolute" 2>/dev/null
  echo "${report%.html}.pdf"
fi
