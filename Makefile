# Two commands do everything on a fresh machine: `make reproduce` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PROFILE ?= default
STAMP   := $(VENV)/.siu-installed
EXEC_DIR := notebooks/executed/$(PROFILE)
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

# The pinned CPU code path of siu_lib.cpu, for every process a target starts (notebook kernels
# included): AVX2 kernels in PyTorch, MKL and oneDNN on any x86-64 CPU. A variable already set
# in the environment wins; SIU_CPU_PATH=native turns the pin off (faster, not reproducible).
export SIU_CPU_PATH ?= avx2
ifneq ($(SIU_CPU_PATH),native)
export ATEN_CPU_CAPABILITY ?= avx2
export MKL_CBWR ?= AVX2
export ONEDNN_MAX_CPU_ISA ?= AVX2
endif

.PHONY: install reproduce test bench seeds lab clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run every notebook in order through papermill (PROFILE=default|smoke).
reproduce: $(STAMP)
	mkdir -p $(EXEC_DIR)
	@set -e; for nb in $(NOTEBOOKS); do \
	  echo "== $$nb (profile $(PROFILE))"; \
	  SIU_PROFILE=$(PROFILE) $(BIN)/papermill --kernel python3 --cwd notebooks $$nb $(EXEC_DIR)/$$(basename $$nb) -p PROFILE $(PROFILE); \
	done

## Unit + integration tests, then nbval on every notebook under the smoke profile.
test: $(STAMP)
	$(BIN)/python -m pytest -q tests
	SIU_PROFILE=smoke $(BIN)/python -m pytest -q --nbval-lax -p no:cacheprovider $(NOTEBOOKS)

## Speed and memory benchmarks (writes data/bench/*.csv).
bench: $(STAMP)
	$(BIN)/python scripts/bench.py

## Pre-training seed spread of the tiny model's knowledge and SIU's targets, with each seed's
## never-seen reference (about 10 min per checkpoint not yet cached, two per seed; writes
## data/results/$(PROFILE)/seed_spread.csv).
seeds: $(STAMP)
	$(BIN)/python scripts/seed_spread.py --profile $(PROFILE)

## JupyterLab on the notebooks, in the project's environment (smoke profile unless PROFILE is given).
lab: $(STAMP)
	SIU_PROFILE=$(if $(filter command line,$(origin PROFILE)),$(PROFILE),smoke) $(BIN)/jupyter lab notebooks

clean:
	rm -rf notebooks/executed data/mmubench data/cache data/checkpoints
