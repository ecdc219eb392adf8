# inspector: returns-bench inspection station.
# `make run` and `make test` each create or update .venv themselves.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
THREADS ?= $(shell nproc 2>/dev/null || echo 2)
export INSPECTOR_THREADS ?= $(THREADS)
PYTEST_ARGS ?=

.PHONY: venv system-deps run test test-all lint bench bench-grading soak model pretrain bench-neu bench-transfer bench-anomaly clean help

help:
	@echo "make run    - start the station (API + operator page) on its embedded defaults"
	@echo "make test   - install what is needed and run the test suite"
	@echo "make lint   - ruff, mypy and the import layers (lint-imports)"
	@echo "make bench  - benchmarks, written to bench/results.json"
	@echo "make bench-grading - item-level verdicts of the served model, written to bench/grading.json"
	@echo "make bench-anomaly - anomaly models (PatchCore, PaDiM) vs the detector on unknown damage -> bench/anomaly.json"
	@echo "make soak   - one station under 4 clients and the live view for 20 minutes, written to bench/soak.json"
	@echo "make model  - train the default model on the synthetic bench (stages; run again to continue a stopped run)"
	@echo "make pretrain - train the defect-features checkpoint that fine-tuning starts from"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (first time: a few minutes)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2> >(grep -v 'is ignored: it is neither' >&2)
	@touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests and the bench use, installed when missing: chromium (the operator page is tested
# in it, driven by Playwright; Playwright's own browser download is not used), postgresql (the API tests
# also run on a real server they start in a temporary folder) and poppler-utils (pdftoppm rasterises the PDF
# labels whose bar codes the tests decode). Without root or sudo, or offline, it says so
# and the tests that need them skip; SYSTEM_DEPS_STRICT=1 (CI) fails instead.
SYSTEM_DEPS_STRICT ?=
system-deps:
	@missing() { \
	  command -v chromium >/dev/null 2>&1 || [ -n "$$INSPECTOR_CHROMIUM" ] || echo chromium; \
	  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || echo postgresql; \
	  command -v pdftoppm >/dev/null 2>&1 || echo poppler-utils; \
	}; \
	want=$$(missing); \
	if [ -n "$$want" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
	  if [ "$$SUDO" != none ]; then echo "installing" $$want "(Debian packages)"; \
	    $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends $$want >/dev/null; fi; \
	  left=$$(missing); \
	  if [ -n "$$left" ]; then echo "could not install" $$left "(root or sudo, and the network, are needed):" \
	    "the tests that need it skip"; [ -z "$(SYSTEM_DEPS_STRICT)" ] || exit 1; fi; \
	fi

run: venv
	$(BIN)/inspector serve

test: venv system-deps
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: venv system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache

bench: venv system-deps
	@# first the operator page in Chromium: item at rest -> recommendation on screen -> bench/station_latency.json,
	@# which the main run then copies into bench/results.json (so both come from this run)
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$INSPECTOR_CHROMIUM" ]; then \
	  INSPECTOR_STATION_LATENCY=1 $(BIN)/python -m pytest -q tests/station/test_browser.py -k rest_to_recommendation; \
	else echo "no Chromium (apt-get install chromium): the operator-page latency is not measured in this run"; fi
	$(BIN)/python -m inspector.bench

# Item-level verdicts of the served model and the default station configuration on held-out renders (never trained
# on): grade confusion, misses, review share, money left on the table, calibration -> bench/grading.json (with a
# history of every run) and bench/grading-reliability.png. The items are rendered once into bench/work/.
GRADING_ITEMS ?= 1000
GRADING_ARGS ?=
bench-grading: venv
	$(BIN)/inspector evaluate --items --count $(GRADING_ITEMS) --cache bench/work/grading-items --workers 2 \
	  --out bench/grading.json --plot bench/grading-reliability.png --records bench/work/grading-records.jsonl \
	  $(GRADING_ARGS)

# The soak: one `inspector serve` on its embedded defaults (synthetic camera, trigger, live view, the active model) on
# a temporary data folder, SOAK_CLIENTS API clients without pause and one live-view viewer for SOAK_MINUTES; per
# window of SOAK_WINDOW_S: requests, errors, POST p50/p99, RSS, descriptors, threads, database and image folder size,
# and whether the last window is within 10% of the second -> bench/soak.json. Not part of `make test`; fails only on
# errors or a lost inspection, not on a figure that grows.
SOAK_MINUTES ?= 20
SOAK_CLIENTS ?= 4
SOAK_WINDOW_S ?= 300
soak: venv
	$(BIN)/python -m inspector.bench.soak --minutes $(SOAK_MINUTES) --clients $(SOAK_CLIENTS) \
	  --window-s $(SOAK_WINDOW_S) --out bench/soak.json

# The shipped model: the stages of models/recipes/default-model.plan.yaml, each from the version before it and on
# the seed-1 training render at its own size (crops, then whole frames, at 640x480; the same at the camera's 1280x960),
# then evaluation on the seed-2 test render at the last stage's size, ONNX export, promotion. It prints the plan with
# each stage's budget (137 min of training in all, plus about a minute of final validation per stage) and an estimate
# of the renders still to make, and at the end the measured total. Resumable: the stages done are kept in
# models/.make-model.json, and `make model` again continues with the first stage not done (a stage stopped mid-way
# starts over). MODEL_ARGS: --restart (start over), --until STAGE (stop after it), --minutes STAGE=MIN, --name NAME.
MODEL_ARGS ?=
model: venv
	$(BIN)/python -m inspector.training.default_model $(MODEL_ARGS)

# The general defect-features checkpoint that fine-tuning starts from (--init pretrain): the synthetic bench
# plus any labelled datasets given in PRETRAIN_ADD (space-separated data.yaml paths; their test splits are left out).
PRETRAIN_MINUTES ?= 35
PRETRAIN_ADD ?=
pretrain: venv
	$(BIN)/python -m inspector.training.pretrain --minutes $(PRETRAIN_MINUTES) $(foreach d,$(PRETRAIN_ADD),--add $(d))

# Anomaly models from good items only: PatchCore, PaDiM, the painted-damage classifier and PatchCore+painted on
# held-out renders (clean, known damage, burns, sticker
# residue), AUROC, AUPRO, unknown damage caught at <= 5% false alarms vs the detector alone, and the promoted
# model at its own thresholds (the false-alarm rate it really runs at) -> bench/anomaly.json.
# The renders are kept in bench/work/anomaly/ (training reuses them); about 15 minutes on 2 cores.
ANOMALY_TRAIN ?= 160
ANOMALY_VAL ?= 96
ANOMALY_TEST ?= 96
bench-anomaly: venv
	$(BIN)/python -m inspector.training.anomaly --train $(ANOMALY_TRAIN) --val $(ANOMALY_VAL) --test $(ANOMALY_TEST) \
	  --workers 2 --threads 2 --bench bench/anomaly.json

# NEU-DET: our recipe vs plain ultralytics defaults vs the recipe train picks by itself (auto) -> bench/neu-det.json.
NEU_SRC ?= ../shared/datasets/neu-det
NEU_MINUTES ?= 30
bench-neu: venv
	$(BIN)/python -m inspector.training.bench_neu --src $(NEU_SRC) --minutes $(NEU_MINUTES) --out bench/neu-det.json

# Small-data transfer: scratch vs our weights vs auto on 10/25/100% of NEU-DET's train split -> bench/transfer.json.
TRANSFER_MINUTES ?= 30
bench-transfer: venv
	$(BIN)/python -m inspector.training.bench_transfer --src $(NEU_SRC) --minutes $(TRANSFER_MINUTES) --out bench/transfer.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
