"""Build medsyn with its compiled kernels.

CMake (with Ninja) builds the pybind11 modules from ``csrc/``: ``medsyn._kernels`` (C++/OpenMP, always)
and ``medsyn._kernels_cuda`` (when nvcc is found; set ``MEDSYN_CUDA=OFF`` to skip it). A failed build
fails the install: the kernels are part of the product, not an optional speed-up.
Extra CMake arguments: ``MEDSYN_CMAKE_ARGS="-DMEDSYN_NATIVE=OFF ..."``.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CUDA_MODE = os.environ.get("MEDSYN_CUDA", "AUTO").upper()
# Same rule as CMake's check_language(CUDA): build the CUDA module when nvcc is on PATH or CUDACXX is set.
WITH_CUDA = CUDA_MODE == "ON" or (CUDA_MODE == "AUTO" and bool(shutil.which("nvcc") or os.environ.get("CUDACXX")))


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    """One CMake configure + build produces every module; each extension then only checks its file."""

    _built_dirs: set = set()

    def build_extension(self, ext: Extension) -> None:
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        if out_dir not in self._built_dirs:
            build_dir = Path(self.build_temp).resolve() / "cmake"
            build_dir.mkdir(parents=True, exist_ok=True)
            config = [
                "cmake",
                str(ROOT),
                "-G",
                "Ninja",
                "-DCMAKE_BUILD_TYPE=Release",
                "-DMEDSYN_BUILD_PYTHON=ON",
                f"-DMEDSYN_CUDA={'ON' if WITH_CUDA else 'OFF'}",
                f"-DMEDSYN_OUTPUT_DIR={out_dir}",
                f"-DPython_EXECUTABLE={sys.executable}",
                f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            ]
            config += [a for a in os.environ.get("MEDSYN_CMAKE_ARGS", "").split() if a]
            subprocess.run(config, cwd=build_dir, check=True)
            subprocess.run(["cmake", "--build", ".", "--parallel", "2"], cwd=build_dir, check=True)
            self._built_dirs.add(out_dir)
        if not Path(self.get_ext_fullpath(ext.name)).exists():
            raise RuntimeError(f"CMake did not produce {ext.name} in {out_dir}")


extensions = [CMakeExtension("medsyn._kernels")]
if WITH_CUDA:
    extensions.append(CMakeExtension("medsyn._kernels_cuda"))

setup(
    ext_modules=extensions,
    cmdclass={"build_ext": CMakeBuild},
)
