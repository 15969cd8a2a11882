// pybind11 layer of the CUDA k-NN tile kernels: device pointers and the stream as Python ints.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "cuda/bindings_cuda.h"
#include "cuda/knn_cuda.h"

namespace py = pybind11;

namespace medsyn {

void register_knn_cuda(py::module_& m) {
  m.def(
      "sq_distance_tile",
      [](std::uintptr_t a, int64_t a_rows, std::uintptr_t b, int64_t b_rows, int64_t dim, std::uintptr_t a_norms,
         std::uintptr_t b_norms, std::uintptr_t out, std::uintptr_t stream) {
        py::gil_scoped_release release;
        cuda::sq_distance_tile(reinterpret_cast<const float*>(a), a_rows, reinterpret_cast<const float*>(b), b_rows,
                               dim, reinterpret_cast<const float*>(a_norms), reinterpret_cast<const float*>(b_norms),
                               reinterpret_cast<float*>(out), reinterpret_cast<void*>(stream));
      },
      py::arg("a"), py::arg("a_rows"), py::arg("b"), py::arg("b_rows"), py::arg("dim"), py::arg("a_norms"),
      py::arg("b_norms"), py::arg("out"), py::arg("stream"),
      "out [a_rows, b_rows] float32 = a_norms[i] + b_norms[j] - 2 a_i.b_j for centred float32 rows (device pointers).");
  m.def(
      "topk_merge",
      [](std::uintptr_t tile, int64_t rows, int64_t cols, int64_t ld, int64_t col_offset, int64_t row_offset,
         int64_t self_offset, std::uintptr_t cand_values, std::uintptr_t cand_indices, int64_t keep,
         std::uintptr_t stream) {
        py::gil_scoped_release release;
        cuda::topk_merge(reinterpret_cast<const float*>(tile), rows, cols, ld, col_offset, row_offset, self_offset,
                         reinterpret_cast<float*>(cand_values), reinterpret_cast<int64_t*>(cand_indices), keep,
                         reinterpret_cast<void*>(stream));
      },
      py::arg("tile"), py::arg("rows"), py::arg("cols"), py::arg("ld"), py::arg("col_offset"), py::arg("row_offset"),
      py::arg("self_offset"), py::arg("cand_values"), py::arg("cand_indices"), py::arg("keep"), py::arg("stream"),
      "Merge a float32 distance tile into running top-keep candidates (float32 / int64 device pointers).");
}

}  // namespace medsyn
