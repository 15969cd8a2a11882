// pybind11 layer of the ReLU + 2x2 max-pool kernels: C-contiguous float32 or float64 numpy arrays in (one
// overload per type; no conversion), new arrays out. The GIL is released while the kernel runs.
// std::invalid_argument becomes ValueError in Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "bindings.h"
#include "cpu/relu_max_pool.h"

namespace py = pybind11;

namespace medsyn {
namespace {

using Codes = py::array_t<uint8_t, py::array::c_style>;

template <typename T>
using Array = py::array_t<T, py::array::c_style>;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

template <typename T>
py::tuple forward(const Array<T>& x) {
  require(x.ndim() == 3, "x must be [planes, H, W], got rank " + std::to_string(x.ndim()));
  const int64_t planes = x.shape(0), height = x.shape(1), width = x.shape(2);
  require(height >= 2 && width >= 2, "x must have H, W >= 2 for a 2x2 pool");
  Array<T> pooled({planes, height / 2, width / 2});
  Codes code({planes, height / 2, width / 2});
  T* pooled_ptr = pooled.mutable_data();
  uint8_t* code_ptr = code.mutable_data();
  {
    py::gil_scoped_release release;
    relu_max_pool2x2_forward(x.data(), planes, height, width, pooled_ptr, code_ptr);
  }
  return py::make_tuple(pooled, code);
}

template <typename T>
Array<T> backward(const Array<T>& grad, const Codes& code, int64_t height, int64_t width, std::optional<Array<T>> out) {
  require(grad.ndim() == 4, "grad must be [seeds, planes, H/2, W/2], got rank " + std::to_string(grad.ndim()));
  require(code.ndim() == 3, "code must be [planes, H/2, W/2], got rank " + std::to_string(code.ndim()));
  require(height >= 2 && width >= 2, "height and width must be >= 2");
  require(code.shape(0) == grad.shape(1) && code.shape(1) == height / 2 && code.shape(2) == width / 2 &&
              grad.shape(2) == height / 2 && grad.shape(3) == width / 2,
          "grad [seeds, planes, H/2, W/2] and code [planes, H/2, W/2] do not match each other or H, W");
  const int64_t seeds = grad.shape(0), planes = grad.shape(1);
  if (out) {  // the caller's buffer, reused across calls (fresh pages cost more than the kernel itself)
    require(out->ndim() == 4 && out->shape(0) == seeds && out->shape(1) == planes && out->shape(2) == height &&
                out->shape(3) == width && out->writeable(),
            "out must be a writeable C-contiguous [seeds, planes, H, W] array of grad's dtype");
    require(!(out->data() < grad.data() + grad.size() && grad.data() < out->data() + out->size()),
            "out must not overlap grad");
  }
  Array<T> grad_input = out ? *out : Array<T>({seeds, planes, height, width});
  T* result = grad_input.mutable_data();
  {
    py::gil_scoped_release release;
    relu_max_pool2x2_backward(grad.data(), code.data(), seeds, planes, height, width, result);
  }
  return grad_input;
}

}  // namespace

void register_relu_max_pool(py::module_& m) {
  const char* forward_doc =
      "max_pool2d(relu(x), 2) of x [planes, H, W] (float32 or float64, C-contiguous) -> (pooled [planes, H/2, "
      "W/2], code uint8 [planes, H/2, W/2]: the argmax dy*2+dx of each window, 255 where no gradient flows).";
  m.def("relu_max_pool2x2", &forward<float>, py::arg("x").noconvert(), forward_doc);
  m.def("relu_max_pool2x2", &forward<double>, py::arg("x").noconvert(), forward_doc);
  const char* backward_doc =
      "Input gradient [seeds, planes, H, W] of max_pool2d(relu(x), 2) for grad [seeds, planes, H/2, W/2] "
      "(same dtype as the forward) and the forward's code; written into `out` when given (C-contiguous, same "
      "dtype, not overlapping grad), which is returned.";
  m.def("relu_max_pool2x2_backward", &backward<float>, py::arg("grad").noconvert(), py::arg("code").noconvert(),
        py::arg("height"), py::arg("width"), py::arg("out").noconvert() = py::none(), backward_doc);
  m.def("relu_max_pool2x2_backward", &backward<double>, py::arg("grad").noconvert(), py::arg("code").noconvert(),
        py::arg("height"), py::arg("width"), py::arg("out").noconvert() = py::none(), backward_doc);
}

}  // namespace medsyn
