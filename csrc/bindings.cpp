// pybind11 entry point of medsyn._kernels. Each kernel family registers its own functions
// (declared in csrc/bindings.h, defined in csrc/cpu/<family>_bindings.cpp; see the convention there)
// so that kernels stay independent files.
#include <omp.h>

#include "bindings.h"

PYBIND11_MODULE(_kernels, m) {
  m.doc() = "medsyn CPU kernels (C++17, OpenMP). Torch-agnostic: numpy buffers in, numpy buffers out.";
  m.def("openmp_max_threads", []() { return omp_get_max_threads(); },
        "Number of OpenMP threads the kernels will use (OMP_NUM_THREADS or the core count).");
  medsyn::register_ssim(m);
  medsyn::register_neighbors(m);
  medsyn::register_relu_max_pool(m);
  medsyn::register_conv_pool_backward(m);
  medsyn::register_direct_conv(m);
}
