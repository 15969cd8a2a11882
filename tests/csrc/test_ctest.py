"""Builds the standalone C++ tests (csrc/tests, no Python/pybind11) with ASan + UBSan and runs them
through ctest, so `make test` exercises the CPU kernels under the sanitizers (as `make ctest` does), both
tuned for this machine and portable (no -march=native: the code path of machines without AVX-512)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="2", ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "native",
    # ON: -march=native, i.e. the AVX-512 SSIM kernel on this machine; OFF: the portable kernels that
    # machines without AVX-512 run.
    ["ON", "OFF"],
)
def test_cpp_kernels_pass_ctest_under_sanitizers(tmp_path_factory, native):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake not found on PATH")
    sibling = Path(cmake).with_name("ctest")  # the ctest that belongs to this cmake
    ctest = str(sibling) if sibling.exists() else shutil.which("ctest")
    build = tmp_path_factory.mktemp("ctest-build")
    configure = [
        cmake, "-S", str(ROOT), "-B", str(build), "-DMEDSYN_BUILD_TESTS=ON", "-DMEDSYN_SANITIZE=ON",
        f"-DMEDSYN_NATIVE={native}",
    ]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    for command in (configure, [cmake, "--build", str(build), "--parallel", "2"]):
        done = _run(command, ROOT)
        output = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{output}"
    cache = (build / "CMakeCache.txt").read_text()
    assert "MEDSYN_SANITIZE:BOOL=ON" in cache and f"MEDSYN_NATIVE:BOOL={native}" in cache
    done = _run([ctest, "--test-dir", str(build), "--output-on-failure"], ROOT)
    assert done.returncode == 0, f"ctest failed:\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    assert "100% tests passed" in done.stdout
