# medsyn: `make demo` (set-up + quickstart) and `make test` (set-up + tests). Both go through `make install`.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.medsyn-installed
# The CPU torch wheel lies in /opt/wheels on the project's machines; pip's config may not say so in CI.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP := $(BIN)/python -m pip --disable-pip-version-check
OUTPUT_DIR ?= runs/quickstart

.PHONY: install demo test bench ctest cuda-check lint clean

install: $(STAMP)

$(STAMP): requirements.txt setup.py pyproject.toml CMakeLists.txt $(wildcard csrc/*.* csrc/*/*.*)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install $(FIND_LINKS) torch==2.13.0
	$(PIP) install $(FIND_LINKS) -r requirements.txt "torch==2.13.0"
	# torchattacks pins a newer torch and torchvision; take only its code.
	$(PIP) install --no-deps torchattacks==3.5.1
	# lpips: only its shipped LPIPS linear layers are read (medsyn.metrics.lpips); its torchvision cannot load here.
	$(PIP) install --no-deps lpips==0.1.4
	$(PIP) install --no-build-isolation --no-deps -e .
	$(BIN)/python -c "import medsyn._kernels as k; assert k.openmp_max_threads() >= 1"
	@touch $(STAMP)

demo: install
	$(BIN)/python -m monai.bundle run \
		--config_file bundles/medsyn_quickstart/configs/quickstart.yaml \
		--meta_file bundles/medsyn_quickstart/configs/metadata.json \
		--output_dir $(OUTPUT_DIR)

test: install
	$(BIN)/python -m pytest -q tests

bench: install
	$(BIN)/python -m pytest -q benchmarks --benchmark-only

# Standalone C++ tests of the CPU kernels under ASan/UBSan (no Python needed; also run by `make test`).
ctest:
	cmake -S . -B build/ctest -DMEDSYN_BUILD_TESTS=ON -DMEDSYN_SANITIZE=ON
	cmake --build build/ctest --parallel 2
	ctest --test-dir build/ctest --output-on-failure

# Compile and link the CUDA kernels without Python (fails when nvcc is missing).
cuda-check:
	cmake -S . -B build/cuda-check -DMEDSYN_CUDA=ON
	cmake --build build/cuda-check --parallel 2 --target medsyn_cuda

lint: install
	$(BIN)/python -m ruff check medsyn tests benchmarks

clean:
	rm -rf build *.egg-info medsyn/_kernels*.so
