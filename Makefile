# Two commands do all set-up on a fresh machine (Python 3.11 + pip):
#   make run    create .venv, install everything, run the main job on embedded defaults
#   make test   create the same .venv if missing, run the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.alloop-installed
CAMPAIGN ?= runs/quickstart.alloop
CONFIG ?= configs/quickstart.yaml

.PHONY: run test test-slow dft-env lint bench-surrogate bench-surrogate-curve bench-surrogate-pretrain bench-surrogate-diagnostics bench-surrogate-defaults bench-oracles-search bench-oracles-accuracy bench-loop bench-loop-shipped bench-mf bench-mf-live bench-lowfi bench-throughput bench-throughput-shipped bench-oracles-sites bench-oracles-sites-steps bench-site-attention bench-oracles-heldout bench-oracles-fresh bench-oracles-rules bench-threads gpu-wheels bench-scheduler bench-dask-profile bench-dask-contention

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	# torch first: the CPU build on disk; a later ranged requirement then pulls nothing more
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[mlip,dist,dev]"
	touch $(STAMP)

run: $(STAMP)
	@mkdir -p runs
	$(BIN)/alloop run $(CONFIG) --campaign $(CAMPAIGN)
	$(BIN)/alloop dashboard $(CAMPAIGN) --once

test: $(STAMP)
	$(BIN)/python -m pytest -q

# GPAW (the `dft` extra) builds from source against Debian's libxc/OpenBLAS/FFTW
DFT_STAMP := $(VENV)/.alloop-dft
$(DFT_STAMP): $(STAMP) configs/gpaw-siteconfig.py
	@dpkg -s libxc-dev libopenblas-dev libfftw3-dev >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq libxc-dev libopenblas-dev libfftw3-dev)
	GPAW_CONFIG=$(CURDIR)/configs/gpaw-siteconfig.py CC=g++ $(BIN)/python -m pip install --quiet -e ".[dft]"
	touch $(DFT_STAMP)

dft-env: $(DFT_STAMP)

test-slow: $(DFT_STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "slow or dft or mlip"

lint: $(STAMP)
	$(BIN)/ruff check loop surrogate oracles store tests benchmarks && MYPY=$(BIN)/mypy .ci/typecheck

# Benchmarks: not CI; each writes benchmarks/results/*.{json,md}
bench-surrogate: $(STAMP)     ## AdsMT vs trees on the FG stand-in, ~41 min on one core
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/surrogate/run.py

bench-surrogate-curve: $(STAMP)     ## learning curve 25..1,000 labels, 5 seeds, shipped surrogate vs trees (+ held-out molecules), ~2 h on 2 cores; resumes
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/surrogate/learning_curve.py --workers 2

bench-surrogate-diagnostics: $(STAMP)     ## where the small-data error comes from: the prior on other inputs, a GP, the scaling form's halves (seeds 10-14), ~10 min
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/surrogate/small_n_diagnostics.py

bench-surrogate-pretrain: $(STAMP)     ## lever (d): pretrain on MLIP labels of half the molecules, fine-tune on 25..200 DFT labels of the rest, vs shipped and trees; 3 seeds, one process; resumes
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/surrogate/pretrain_curve.py

bench-surrogate-defaults: $(STAMP)     ## one training round (500, 2,000 labels, 2 threads): shipped vs previous surrogate default
	$(BIN)/python benchmarks/surrogate/defaults.py

bench-oracles-search: $(STAMP)     ## adaptive vs dense placement search (EMT, 50 pairs), ~11 min
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/oracles/search_efficiency.py

bench-oracles-accuracy: $(STAMP)   ## full MLIP labels vs FG DFT (14 pairs x 2 models), ~40 min
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/oracles/label_accuracy.py

bench-oracles-heldout: $(STAMP)     ## the search-efficiency measurement on held-out facets (fcc110, fcc211), ~20 min
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/oracles/search_heldout.py

bench-oracles-fresh: $(STAMP)     ## the same on a fresh held-out set (hcp, bcc, steps, alloys x *C *CH *NH *NO *CN), shipped defaults
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/oracles/search_fresh.py

bench-oracles-rules: $(STAMP)     ## stopping rules replayed on recorded 40-placement walks of the fresh and held-out sets (EMT), ~10 min
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/oracles/search_traces.py --set fresh
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/oracles/search_traces.py --set heldout
	$(BIN)/python benchmarks/oracles/search_traces.py --score fresh heldout

bench-oracles-sites: $(STAMP)     ## surrogate site scores vs default site order in the search (EMT, held-out pairs), ~15 min
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/oracles/site_scores.py

bench-site-attention: $(STAMP)     ## site-supervised attention: top-k binding atoms and GMAE MAE on held-out steps/alloys (EMT), ~1-2 h on a busy machine
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/oracles/site_attention.py

bench-oracles-sites-steps: $(STAMP)     ## the search steered by (site-supervised) scores on held-out steps/alloys; after bench-site-attention (reuses its fits)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/oracles/site_scores.py --pool sites

# no OMP_NUM_THREADS here: training's thread count is part of what it measures; needs idle cores
bench-throughput: $(STAMP)     ## executors on a real SevenNet-MF-0 campaign (12 labels), ~20 min on 2 free cores
	$(BIN)/python benchmarks/loop/campaign_throughput.py --max-load 0.5

bench-throughput-shipped: $(STAMP)     ## the same with the oracle's shipped search (minutes per label): process-2, inprocess-1, dask-2 in that order, each written when done; ~70 min on 2 free cores
	$(BIN)/python benchmarks/loop/campaign_throughput.py --max-load 0.5 --label-kind shipped --executors process-2 inprocess-1 dask-2

bench-scheduler: $(STAMP)     ## 10,000 tiny jobs through the engine, the store and a Dask LocalCluster of 8 workers, one killed; ~16 min on 2 free cores
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/loop/scheduler_scale.py

bench-dask-profile: $(STAMP)     ## one MLIP label in-process vs in a Dask worker (threads, allocator, profiler, page faults, phases) in six places, ~15 min
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/loop/dask_label_profile.py

bench-dask-contention: $(STAMP)     ## a force call in 2 Dask workers (the executor's config, the profiler-only one) vs 2 worker processes, both cores busy, ~6 min
	$(BIN)/python benchmarks/loop/dask_contention.py

# no OMP_NUM_THREADS here either: the thread count is what it measures; starts 2 CPU burners itself
bench-threads: $(STAMP)     ## one training round on idle vs busy cores by thread choice (default, 1, 2), ~14 min on 2 free cores
	$(BIN)/python benchmarks/loop/threads.py --max-load 0.5

bench-loop: $(STAMP)     ## active learning vs random vs trees on FG replay, ~90 min on 2 cores
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/loop/run.py

bench-loop-shipped: $(STAMP)     ## EI and trees on FG replay with the shipped surrogate (to 450 labels, 3 seeds), ~21 min on 2 cores
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/loop/run.py --surrogate shipped --agents ei trees_lcb --checkpoints 200 400 --workers 2 --no-overhead --stem loop_al_shipped_400

bench-lowfi: $(STAMP)     ## SevenNet-MF-0 companion of the FG table (needs ../shared/data/fg), ~30 min + relaxations
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/multifidelity/lowfi_table.py

bench-mf: $(STAMP)     ## multi-fidelity: supervised check, the docs' campaigns (5 seeds) on the FG MF replay and on the relaxed-pattern pool (hours on 2 cores; stored runs are reused)
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/multifidelity/supervised.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/multifidelity/campaigns.py --workers 2
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/multifidelity/campaigns.py --workers 2 --pool relaxed

bench-mf-live: $(DFT_STAMP)     ## the live multi-fidelity path (configs/mf-live.yaml: SevenNet-MF-0 + GPAW), timed, ~5 CPU-minutes
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/multifidelity/live.py

# wheels the GPU machine's image lacks (Python 3.12), for benchmarks/gpu/check.sh (carry .whl)
GPU_WHEELS = ase==3.29.0 rdkit==2026.9.1 lmdb==1.7.3 SQLAlchemy==2.1.9 alembic==1.20.1 \
	Mako==1.4.3 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 \
	typing-inspection==0.4.5 typing_extensions==4.16.0
gpu-wheels:     ## download into .whl/ what benchmarks/gpu/check.sh needs on the GPU machine
	python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)
