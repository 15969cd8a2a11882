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

.PHONY: install lock demo test bench ctest cuda-check lint clean

install: $(STAMP)

# Installed without their dependencies: torchattacks pins a newer torch and torchvision (only its code is
# used); lpips: only its shipped LPIPS linear layers are read (medsyn.metrics.lpips), its torchvision cannot load.
NO_DEPS := torchattacks==3.5.1 lpips==0.1.4
# Every direct and transitive dependency at an exact version (`make lock` writes it from requirements.txt).
LOCK := requirements.lock

# $(call install_dependencies,PIP,EXTRA): torch 2.13.0 (CPU) first, alone, then requirements.txt, then NO_DEPS.
define install_dependencies
	$(1) install $(FIND_LINKS) $(2) torch==2.13.0
	$(1) install $(FIND_LINKS) $(2) -r requirements.txt "torch==2.13.0"
	$(1) install --no-deps $(2) $(NO_DEPS)
endef

$(STAMP): requirements.txt $(LOCK) setup.py pyproject.toml CMakeLists.txt $(wildcard csrc/*.* csrc/*/*.*)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(call install_dependencies,$(PIP),--constraint $(LOCK))
	$(PIP) install --no-build-isolation --no-deps -e .
	$(BIN)/python -c "import medsyn._kernels as k; assert k.openmp_max_threads() >= 1"
	@touch $(STAMP)

# Refresh the lock after a change of requirements.txt (or to move to newer releases): resolve requirements.txt
# from scratch in a throw-away venv, without the lock, and freeze it; review `git diff requirements.lock`.
LOCK_VENV := build/lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PY) -m venv $(LOCK_VENV)
	$(call install_dependencies,$(LOCK_VENV)/bin/python -m pip --disable-pip-version-check,)
	{ echo "# requirements.lock: written by \`make lock\` from requirements.txt ($$($(PY) --version), $$(date -u +%F)); do not edit."; \
	  echo "# \`make install\` installs with --constraint requirements.lock; tests/test_requirements_lock.py checks it."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf $(LOCK_VENV)

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
