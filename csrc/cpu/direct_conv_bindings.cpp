// pybind11 layer of the direct convolution: C-contiguous float32 or float64 numpy arrays in (one overload per
// type; no conversion), a new array out. The GIL is released while the kernel runs. std::invalid_argument
// becomes ValueError in Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "bindings.h"
#include "cpu/direct_conv.h"

namespace py = pybind11;

namespace medsyn {
namespace {

template <typename T>
using Array = py::array_t<T, py::array::c_style>;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

template <typename T>
Array<T> conv(const Array<T>& x, const Array<T>& weight, std::optional<Array<T>> bias, int64_t pad_h, int64_t pad_w,
               std::optional<Array<T>> out_buffer) {
  require(x.ndim() == 4, "x must be [N, C_in, H, W], got rank " + std::to_string(x.ndim()));
  require(weight.ndim() == 4, "weight must be [C_out, C_in, kh, kw], got rank " + std::to_string(weight.ndim()));
  require(weight.shape(1) == x.shape(1), "weight's C_in does not match x");
  require(!bias || (bias->ndim() == 1 && bias->shape(0) == weight.shape(0)), "bias must be [C_out]");
  require(pad_h >= 0 && pad_w >= 0, "padding must be >= 0");
  const int64_t out_h = x.shape(2) + 2 * pad_h - weight.shape(2) + 1, out_w = x.shape(3) + 2 * pad_w - weight.shape(3) + 1;
  require(out_h >= 1 && out_w >= 1 && x.shape(0) >= 1, "the convolution's output is empty");
  if (out_buffer) {  // the caller's buffer, reused across calls (fresh pages cost as much as the loop itself)
    require(out_buffer->ndim() == 4 && out_buffer->shape(0) == x.shape(0) && out_buffer->shape(1) == weight.shape(0) &&
                out_buffer->shape(2) == out_h && out_buffer->shape(3) == out_w && out_buffer->writeable(),
            "out must be a writeable C-contiguous [N, C_out, H_out, W_out] array of x's dtype");
    require(!(out_buffer->data() < x.data() + x.size() && x.data() < out_buffer->data() + out_buffer->size()),
            "out must not overlap x");
  }
  Array<T> out = out_buffer ? *out_buffer : Array<T>({x.shape(0), weight.shape(0), out_h, out_w});
  T* result = out.mutable_data();
  const T* bias_ptr = bias ? bias->data() : nullptr;
  {
    py::gil_scoped_release release;
    conv2d_direct(x.data(), weight.data(), bias_ptr, x.shape(0), x.shape(1), x.shape(2), x.shape(3), weight.shape(0),
                  weight.shape(2), weight.shape(3), pad_h, pad_w, result);
  }
  return out;
}

}  // namespace

void register_direct_conv(py::module_& m) {
  const char* doc =
      "conv2d(x, weight, bias, stride=1, padding=(pad_h, pad_w)) for x [N, C_in, H, W], weight [C_out, C_in, kh, "
      "kw], bias [C_out] or None (float32 or float64, C-contiguous, one dtype) -> [N, C_out, H_out, W_out], written "
      "into `out` when given.";
  m.def("conv2d_direct", &conv<float>, py::arg("x").noconvert(), py::arg("weight").noconvert(),
        py::arg("bias").noconvert(), py::arg("pad_h"), py::arg("pad_w"), py::arg("out").noconvert() = py::none(), doc);
  m.def("conv2d_direct", &conv<double>, py::arg("x").noconvert(), py::arg("weight").noconvert(),
        py::arg("bias").noconvert(), py::arg("pad_h"), py::arg("pad_w"), py::arg("out").noconvert() = py::none(), doc);
}

}  // namespace medsyn
