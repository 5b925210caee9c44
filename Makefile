# Quick start:  make run   (install, generate the sample city, materialise every asset, print the action areas)
#               make test  (install, run the whole test suite)
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
# Use the machine's CA certificates (company proxies, mirrors).
export UV_NATIVE_TLS := 1
export UV_SYSTEM_CERTS := 1
# The city: a folder name in config/ or a path to a city folder (README: Your own city). `make run CITY=berlin`.
CITY ?= dortmund
# the scale of the generated sample city (make sample / make run); 1 is the city's size
SCALE ?= 1
export SOCIAL_MONITOR_CITY := $(CITY)
CITY_NAME := $(notdir $(abspath $(CITY)))
# Each city has its own data folder and Dagster home, so two cities never share a warehouse or a run history.
export SOCIAL_MONITOR_DATA_DIR ?= $(CURDIR)/data/$(CITY_NAME)
DATA := $(SOCIAL_MONITOR_DATA_DIR)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home/$(CITY_NAME)
DAGSTER := $(BIN)/dagster
MODULE := -m orchestration.definitions

.PHONY: help install sample prepare run materialize cycle report-cycle rebuild rekey ingest build-marts action-areas dev test lint docs docs-serve exports report screenshots graph-screenshot benchmark clean mss-compare mss-compare-run

help:
	@echo "Every target runs the city folder config/dortmund/ unless CITY=<folder name in config/ or path> names another"
	@echo "(make run CITY=berlin SCALE=0.1); SCALE is the sample generator's scale (default 1)."
	@echo "make run          install, generate the sample city, materialise every asset for every cycle"
	@echo "make test         install and run the whole test suite"
	@echo "make cycle CYCLE=2025  (re)load one report cycle's deliveries, then rebuild marts, classification, publication"
	@echo "make report-cycle CYCLE=2018  write one report cycle's report (HTML, and PDF where chromium is installed) alone"
	@echo "make rebuild      rebuild every dbt table from scratch (after changing a model), classification, publication"
	@echo "make rekey        full reload under a new SOCIAL_MONITOR_PSEUDONYM_KEY: empty the raw tables, reload every cycle"
	@echo "make mss-compare SCALE=1  Berlin's MSS from the Berlin sample's person-level data against the published classes"
	@echo "                  (own data folder data/berlin-mss-<SCALE>; writes docs/berlin-mss-agreement.md)"
	@echo "make benchmark    the pipeline against DuckDB doing the same work, a two-column script and pandas (W1-W4, nightly; about 30 minutes, ~40 GB of disk)"
	@echo "make dev          open the Dagster UI (dagster dev) on http://127.0.0.1:3000"
	@echo "make sample       (re)generate the sample city's deliveries into data/<city>/landing"
	@echo "make action-areas print the action areas per report cycle from the published file"
	@echo "make docs         regenerate docs/indicators.md and the published file's dbt sources from their definitions"
	@echo "make docs-serve   dbt docs of the published file (every table and column, German) on http://127.0.0.1:8080"
	@echo "make report       the German report per report cycle (self-contained HTML with maps, and a PDF where chromium is installed)"
	@echo "make screenshots  screenshots (and PDF=1 a PDF) of the report in headless chromium into docs/"
	@echo "make graph-screenshot  docs/dagster-graph.png of the asset graph (with make dev running)"
	@echo "make exports      Parquet and Excel of the published marts per report cycle (data/<city>/published/exports/)"
	@echo "make lint         ruff"
	@echo "make clean        remove the city's data folder (with dbt's target folder) and Dagster home"

# The project's own files install everything: uv (pinned) in .tools, the locked environment in .venv.
$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# --compile-bytecode: the installed packages' bytecode is written once, here. Python otherwise compiles them
# again in every process wherever it may not write it (PYTHONDONTWRITEBYTECODE, a read-only environment): on
# the benchmark's machine that was 4 s of every Dagster start and 2 s of every dbt start (docs/benchmark-notes.md).
# The Makefile is a prerequisite because this recipe is the installation: a changed recipe installs again.
$(VENV)/.installed: pyproject.toml uv.lock Makefile | $(TOOLS)/bin/uv
	$(TOOLS)/bin/uv sync --frozen --extra dev --python $(PYTHON) --compile-bytecode
	touch $@

install: $(VENV)/.installed

# The Dagster instance settings (one run at a time, no telemetry) come from config/dagster.yaml. A dagster.yaml
# that make did not write (your own, e.g. with Postgres storage) is left alone, with a note of what to add.
DAGSTER_YAML_MARK := \# written by make from config/dagster.yaml
$(DAGSTER_HOME)/dagster.yaml: config/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	@if [ ! -e $@ ] || grep -qxF '$(DAGSTER_YAML_MARK)' $@ || printf 'telemetry:\n  enabled: false\n' | cmp -s - $@; then \
		cp config/dagster.yaml $@ && echo "$@: written from config/dagster.yaml"; \
	else \
		echo "$@ is your own: not replaced; add the settings of config/dagster.yaml to it (concurrency: runs: max_concurrent_runs: 1)" >&2; \
	fi

# The instance's run storage is created once, before any run: two runs started together on a new Dagster home
# would otherwise both create it (found in CI: "alembic_version has more than one head").
DAGSTER_INSTANCE := $(DAGSTER_HOME)/.storage-created
$(DAGSTER_INSTANCE): $(DAGSTER_HOME)/dagster.yaml | $(VENV)/.installed
	$(DAGSTER) instance migrate >/dev/null
	touch $@

# dagster-dbt prepares dbt's manifest (dbt parse, with the run's vars and profile, so runs parse only what
# changed) when it is missing or stale; it is never committed.
prepare: install
	$(BIN)/python -c "import orchestration.dbt_project"

# The marker names the scale: `make run SCALE=1` after `make run SCALE=0.1` generates the city again at scale 1
# (the same file names: every delivery is overwritten, and the next run reloads the changed ones).
SAMPLE_MARKER := $(DATA)/landing/.sample-city-scale-$(SCALE)
$(SAMPLE_MARKER): | $(VENV)/.installed
	rm -f $(DATA)/landing/.sample-city*
	$(BIN)/social-monitor generate --out $(DATA)/landing --scale $(SCALE)
	touch $@

sample: install
	rm -f $(SAMPLE_MARKER)
	$(MAKE) $(SAMPLE_MARKER)

CYCLES = $(shell $(BIN)/python -c "from social_monitor.settings import load_settings; c = load_settings().config().report_cycles; print(f'{c[0]}...{c[-1]}')")

ingest: install prepare $(DAGSTER_INSTANCE)
	$(DAGSTER) asset materialize $(MODULE) --select 'group:raw' --partition-range $(CYCLES)

build-marts: install prepare $(DAGSTER_INSTANCE)
	$(DAGSTER) job execute $(MODULE) -j build_marts

action-areas: install
	$(BIN)/social-monitor action-areas

# One Dagster run of every asset over every report cycle (raw partitions, dbt, classification, publication).
materialize: install prepare $(DAGSTER_INSTANCE)
	$(DAGSTER) asset materialize $(MODULE) --select '*' --partition-range $(CYCLES)

# One cycle's report alone (the other cycles' reports are left as they are), from the published file: its HTML and,
# where chromium is installed, its PDF (social_monitor/report/pdf.py; without chromium the older PDF is removed).
report-cycle: install prepare $(DAGSTER_INSTANCE)
	@test -n "$(CYCLE)" || { echo "usage: make report-cycle CYCLE=<published report cycle>"; exit 2; }
	$(DAGSTER) asset materialize $(MODULE) --select report/bericht \
		--config-json '{"ops": {"report__bericht": {"config": {"cycles": [$(CYCLE)]}}}}'

# The nightly case: one (new or corrected) report cycle, then everything downstream.
cycle: install prepare $(DAGSTER_INSTANCE)
	@test -n "$(CYCLE)" || { echo "usage: make cycle CYCLE=<report cycle in config/$(CITY_NAME)/city.yml>"; exit 2; }
	@$(BIN)/python -c "import sys; from social_monitor.settings import load_settings; c = load_settings().config().report_cycles; \
	sys.exit(0 if $(CYCLE) in c else f'report cycle $(CYCLE) is not in the configuration ({load_settings().config_path}): {list(c)}; add it to report_cycles first')"
	$(DAGSTER) asset materialize $(MODULE) --select '*' --partition $(CYCLE)

# After a change of a dbt model's SQL: every dbt table from scratch (int_base_area_counts is incremental).
rebuild: install prepare $(DAGSTER_INSTANCE)
	$(DAGSTER) job execute $(MODULE) -j build_marts -c config/full_refresh.yaml

# A new pseudonym key (SOCIAL_MONITOR_PSEUDONYM_KEY): the loader refuses a delivery under a key other than
# the warehouse's, so every cycle is reloaded. `social-monitor rekey` checks that the landing folder holds
# every configured cycle's deliveries and empties the raw tables and the delivery log in one transaction;
# the normal materialisation then reloads every cycle under the new key and rebuilds everything downstream.
rekey: install prepare $(DAGSTER_INSTANCE)
	$(BIN)/social-monitor rekey --yes
	$(DAGSTER) asset materialize $(MODULE) --select '*' --partition-range $(CYCLES)

run: install $(SAMPLE_MARKER)
	$(MAKE) --no-print-directory materialize 2>&1 | grep -E 'RUN_SUCCESS|RUN_FAILURE|STEP_FAILURE|ASSET_CHECK_EVALUATION.*failed|Error' ; test $${PIPESTATUS[0]} -eq 0
	$(BIN)/social-monitor action-areas

dev: install prepare $(DAGSTER_INSTANCE)
	$(DAGSTER) dev -w workspace.yaml -h 127.0.0.1 -p 3000

test: install
	$(BIN)/python -m pytest

# Berlin's MSS reproduced from person-level data (README: Berlin sample): the Berlin sample at SCALE in its own
# data folder and Dagster home, the real pipeline (raw partitions, dbt, the classification; not the
# publication: the classes are computed on the warehouse marts), then the comparison with the published classes
# into docs/berlin-mss-agreement.md. The sample is generated once per scale (delete the folder to regenerate).
# The report cycles are read in the recipe: $(CYCLES) is expanded before the sub-make's city is exported.
MSS_RUN := berlin-mss-$(SCALE)
MSS_ASSETS := not group:raw and not group:publish and not group:report
mss-compare: install
	$(MAKE) --no-print-directory mss-compare-run CITY=berlin SOCIAL_MONITOR_DATA_DIR=$(CURDIR)/data/$(MSS_RUN) \
		DAGSTER_HOME=$(CURDIR)/.dagster_home/$(MSS_RUN)

mss-compare-run: prepare $(DAGSTER_INSTANCE) $(SAMPLE_MARKER)
	@start=$$(date +%s); \
	cycles=$$($(BIN)/python -c "from social_monitor.settings import load_settings; c = load_settings().config().report_cycles; print(f'{c[0]}...{c[-1]}')"); \
	$(DAGSTER) asset materialize $(MODULE) --select 'group:raw' --partition-range $$cycles 2>&1 \
		| grep -E 'RUN_SUCCESS|RUN_FAILURE|STEP_FAILURE|Error'; test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	$(DAGSTER) asset materialize $(MODULE) --select '$(MSS_ASSETS)' 2>&1 \
		| grep -E 'RUN_SUCCESS|RUN_FAILURE|STEP_FAILURE|Error'; test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	seconds=$$(( $$(date +%s) - start )); echo "pipeline: $$seconds s"; \
	$(BIN)/social-monitor mss-compare --scale $(SCALE) --pipeline-seconds $$seconds

# Figures to docs/benchmark.md and docs/benchmark.json; WORKLOADS="W1 W3" for a selection.
WORKLOADS ?= W1 W2 nightly W3 W4
benchmark: install prepare
	$(BIN)/python -m benchmark --workloads $(WORKLOADS)

lint: install
	$(BIN)/ruff check .

docs: install
	$(BIN)/social-monitor catalogue-docs --out docs/indicators.md
	$(BIN)/social-monitor published-docs

# dbt docs of the published file (tables and columns in German); needs data/<city>/published/marts.duckdb (make run)
docs-serve: install
	cd dbt_project && export SOCIAL_MONITOR_PUBLISHED="$$(../$(BIN)/python -c 'from social_monitor.settings import load_settings; print(load_settings().published_path)')" && \
	../$(BIN)/dbt docs generate --target docs --profiles-dir . --target-path target/docs \
		--vars "$$(../$(BIN)/python -c 'from social_monitor.settings import dbt_vars_json; print(dbt_vars_json())')" && \
	../$(BIN)/dbt docs serve --target docs --profiles-dir . --target-path target/docs --host 127.0.0.1 --port 8080 --no-browser

# The Bericht zur sozialen Lage per report cycle (data/<city>/published/report/bericht_<cycle>.html, and its PDF where
# chromium is installed) from the published file
report: install
	$(BIN)/social-monitor report --pdf auto

# Screenshots of the report in Debian's headless chromium (installs it if missing) into docs/; PDF=1 also prints a PDF
screenshots: report
	scripts/screenshots.sh

# Screenshot of the Dagster UI's asset graph into docs/dagster-graph.png (needs `make dev` running, and chromium)
graph-screenshot: install
	$(BIN)/python scripts/dagster_graph_screenshot.py

# Parquet and Excel of the published marts per report cycle (data/<city>/published/exports/<cycle>/)
exports: install
	$(BIN)/social-monitor export

clean:
	rm -rf $(DATA) $(DAGSTER_HOME) dbt_project/target dbt_project/logs
