# Two commands do everything on a fresh machine: `make reproduce` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PROFILE ?= default
SET     ?=
STAMP   := $(VENV)/.siu-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# the smoke profile's executed notebooks, whose outputs nbval compares (make nbval-outputs)
NBVAL_DIR := tests/nbval

# The pinned CPU code path of siu_lib.cpu, for every process a target starts (notebook kernels
# included): AVX2 kernels in PyTorch, MKL and oneDNN on any x86-64 CPU (siu_lib.cpu also runs
# PyTorch on two threads). A variable already set in the environment wins; SIU_CPU_PATH=native
# turns the pin off (faster, not reproducible).
export SIU_CPU_PATH ?= avx2
ifneq ($(SIU_CPU_PATH),native)
export ATEN_CPU_CAPABILITY ?= avx2
export MKL_CBWR ?= AVX2
export ONEDNN_MAX_CPU_ISA ?= AVX2
endif

.PHONY: install reproduce nbval-outputs test bench seeds sweep lab clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run every notebook in order through papermill (PROFILE=default|smoke|llava-7b|llava-13b), skipping those whose
## inputs are unchanged (FORCE=1 reruns all, ONLY=05,10 runs just those); SET="world_seed=11 ..." overrides profile fields
## for one run, whose results go to a folder of their own (siu_lib/chain.py).
reproduce: $(STAMP)
	$(BIN)/python -m siu_lib.chain --profile $(PROFILE) --set "$(SET)" $(if $(FORCE),--force) $(if $(ONLY),--only $(ONLY))

## Store the smoke profile's executed notebooks as the outputs nbval compares with.
nbval-outputs: $(STAMP)
	$(BIN)/python -m siu_lib.chain --profile smoke
	$(BIN)/python -m siu_lib.chain --store-nbval $(NBVAL_DIR)

## Unit + integration tests, then nbval (strict) on every notebook under the smoke profile.
test: $(STAMP)
	$(BIN)/python -m pytest -q tests
	SIU_PROGRESS=off $(BIN)/python -m pytest -q --nbval -p no:cacheprovider $(NBVAL_DIR)/*.ipynb

## Speed and memory benchmarks (writes data/bench/*.csv), then what SIU costs on the LLaVA-1.5-7B
## architecture (full depth on a GPU, reduced depth on a CPU: data/bench/paper_scale_<device>.csv).
bench: $(STAMP)
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_paper_scale.py

## Pre-training seed spread of the tiny model's knowledge and SIU's targets, with each seed's
## never-seen reference (about 10 min per checkpoint not yet cached, two per seed; writes
## data/results/$(PROFILE)/seed_spread.csv).
seeds: $(STAMP)
	$(BIN)/python scripts/seed_spread.py --profile $(PROFILE)

## SIU's selection sweep around the embedded unlearning default, and the rule that picks it
## (about 12 min on 2 cores for the default profile; writes data/results/$(PROFILE)/siu_sweep.csv
## and the trade-off figure).
sweep: $(STAMP)
	$(BIN)/python scripts/siu_sweep.py --profile $(PROFILE) --set "$(SET)"

## JupyterLab on the notebooks, in the project's environment (smoke profile unless PROFILE is given).
lab: $(STAMP)
	SIU_PROFILE=$(if $(filter command line,$(origin PROFILE)),$(PROFILE),smoke) SIU_SET="$(SET)" $(BIN)/jupyter lab notebooks

clean:
	rm -rf data/mmubench data/cache data/checkpoints data/chain
