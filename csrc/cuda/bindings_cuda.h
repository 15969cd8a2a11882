#pragma once
// Registration convention of the CUDA module medsyn._kernels_cuda (mirrors csrc/bindings.h):
//   csrc/cuda/<family>.cu              device kernels + host launchers over DEVICE pointers and a stream
//                                      (no pybind11, no torch); CMake globs csrc/cuda/*.cu into medsyn_cuda.
//   csrc/cuda/<family>_cuda.h          the launchers' declarations (no CUDA headers needed: stream as void*).
//   csrc/cuda/<family>_bindings.cpp    defines `void register_<family>_cuda(pybind11::module_&)`; pointers and
//                                      the stream arrive as Python ints (tensor.data_ptr(),
//                                      torch.cuda.current_stream().cuda_stream). CMake globs csrc/cuda/*.cpp
//                                      into the module (compiled by the C++ compiler, not nvcc).
//   here + csrc/cuda/bindings_cuda.cpp one declaration and one call `medsyn::register_<family>_cuda(m);`.
#include <pybind11/pybind11.h>

namespace medsyn {
void register_ssim_cuda(pybind11::module_& m);  // csrc/cuda/ssim_max_bindings.cpp
void register_knn_cuda(pybind11::module_& m);  // csrc/cuda/knn_bindings.cpp
}  // namespace medsyn
