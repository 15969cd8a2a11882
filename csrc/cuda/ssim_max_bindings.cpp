// pybind11 layer of the CUDA SSIM-max scan: raw device pointers and the stream as Python ints.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <vector>

#include "cuda/bindings_cuda.h"
#include "cuda/ssim_max_cuda.h"

namespace py = pybind11;

namespace medsyn {

void register_ssim_cuda(py::module_& m) {
  m.def(
      "ssim_max",
      [](std::uintptr_t synthetic, int64_t n_synthetic, std::uintptr_t real, int64_t n_real, int64_t channels,
         int64_t height, int64_t width, const std::vector<double>& weights, double covariance_scale, double c1,
         double c2, int64_t top_k, std::uintptr_t top_values, std::uintptr_t top_indices, std::uintptr_t stream) {
        py::gil_scoped_release release;
        cuda::ssim_max_scan(reinterpret_cast<const float*>(synthetic), n_synthetic, reinterpret_cast<const float*>(real),
                            n_real, channels, height, width, weights, covariance_scale, c1, c2, top_k,
                            reinterpret_cast<double*>(top_values), reinterpret_cast<int64_t*>(top_indices),
                            reinterpret_cast<void*>(stream));
      },
      py::arg("synthetic"), py::arg("n_synthetic"), py::arg("real"), py::arg("n_real"), py::arg("channels"),
      py::arg("height"), py::arg("width"), py::arg("weights"), py::arg("covariance_scale"), py::arg("c1"),
      py::arg("c2"), py::arg("top_k"), py::arg("top_values"), py::arg("top_indices"), py::arg("stream"),
      "SSIM-max scan on device memory. synthetic [Ns,C,H,W] and real [Nr,C,H,W]: contiguous float32 device "
      "pointers; writes top_values float64 [Ns,top_k] and top_indices int64 [Ns,top_k] (device pointers), "
      "enqueued on `stream` (0 = legacy default stream).");
}

}  // namespace medsyn
