#pragma once
// Registration convention of the CPU module medsyn._kernels (one function per kernel family):
//   csrc/cpu/<family>.h/.cpp          the kernel: torch- and Python-free C++ over raw pointers. CMake globs
//                                     csrc/cpu/*.cpp (except *_bindings.cpp) into the static library
//                                     medsyn_cpu, which the standalone C++ tests (csrc/tests, ctest,
//                                     ASan/UBSan) link WITHOUT pybind11 or Python.
//   csrc/cpu/<family>_bindings.cpp    defines `void register_<family>(pybind11::module_&)`: numpy in/out,
//                                     GIL released around the kernel. Globbed into the Python module only.
//   here + csrc/bindings.cpp          one declaration and one call `medsyn::register_<family>(m);` per family.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

namespace medsyn {
void register_ssim(pybind11::module_& m);  // csrc/cpu/ssim_max_bindings.cpp
void register_neighbors(pybind11::module_& m);  // csrc/cpu/neighbors_bindings.cpp
void register_relu_max_pool(pybind11::module_& m);  // csrc/cpu/relu_max_pool_bindings.cpp
void register_conv_pool_backward(pybind11::module_& m);  // csrc/cpu/conv_pool_backward_bindings.cpp
void register_direct_conv(pybind11::module_& m);  // csrc/cpu/direct_conv_bindings.cpp
}  // namespace medsyn
