"""Build medsyn with its compiled kernels.

CMake (with Ninja) builds the pybind11 modules from ``csrc/``: ``medsyn._kernels`` (C++/OpenMP, always)
and ``medsyn._kernels_cuda`` (only when nvcc is found). A failed build fails the install: the kernels
are part of the product, not an optional speed-up.
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        import pybind11

        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        config = [
            "cmake",
            str(ROOT),
            "-G",
            "Ninja",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DMEDSYN_BUILD_PYTHON=ON",
            f"-DMEDSYN_OUTPUT_DIR={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
        ]
        config += [a for a in os.environ.get("MEDSYN_CMAKE_ARGS", "").split() if a]
        subprocess.run(config, cwd=build_dir, check=True)
        subprocess.run(["cmake", "--build", ".", "--parallel", "2"], cwd=build_dir, check=True)


setup(
    ext_modules=[CMakeExtension("medsyn._kernels")],
    cmdclass={"build_ext": CMakeBuild},
)
