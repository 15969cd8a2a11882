// pybind11 entry point of medsyn._kernels_cuda (see bindings_cuda.h for the convention).
#include <cuda_runtime.h>

#include "cuda/bindings_cuda.h"

PYBIND11_MODULE(_kernels_cuda, m) {
  m.doc() = "medsyn CUDA kernels: device pointers (int) + a CUDA stream (int) in, results written in place.";
  m.def("device_count", []() {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
  }, "Number of CUDA devices the runtime sees (0 without a GPU or driver).");
  medsyn::register_ssim_cuda(m);
  medsyn::register_knn_cuda(m);
}
