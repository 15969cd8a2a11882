// pybind11 layer of the conv -> ReLU -> 2x2 max-pool backward: C-contiguous float32 or float64 numpy arrays in
// (one overload per type; no conversion), an array out (new, or the caller's `out`). The GIL is released while
// the kernel runs. std::invalid_argument becomes ValueError in Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "bindings.h"
#include "cpu/conv_pool_backward.h"

namespace py = pybind11;

namespace medsyn {
namespace {

template <typename T>
using Array = py::array_t<T, py::array::c_style>;
using Codes = py::array_t<uint8_t, py::array::c_style>;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

template <typename T>
Array<T> backward(const Array<T>& grad, const Codes& code, const Array<T>& weight_hwio, int64_t in_height,
                  int64_t in_width, int64_t pad_h, int64_t pad_w, std::optional<Array<T>> out) {
  require(grad.ndim() == 5, "grad must be [seeds, N, C_out, H/2, W/2], got rank " + std::to_string(grad.ndim()));
  require(code.ndim() == 4, "code must be [N, C_out, H/2, W/2], got rank " + std::to_string(code.ndim()));
  require(weight_hwio.ndim() == 4, "weight_hwio must be [C_out, kh, kw, C_in]");
  ConvPoolGeometry g{weight_hwio.shape(3), weight_hwio.shape(0), in_height, in_width,
                     weight_hwio.shape(1),  weight_hwio.shape(2), pad_h,     pad_w};
  require(in_height >= 1 && in_width >= 1 && pad_h >= 0 && pad_w >= 0 && g.conv_height() >= 2 && g.conv_width() >= 2,
          "the convolution's input size, padding and kernel must give an output of at least 2 x 2");
  const int64_t seeds = grad.shape(0), count = grad.shape(1);
  require(grad.shape(2) == g.out_channels && grad.shape(3) == g.conv_height() / 2 &&
              grad.shape(4) == g.conv_width() / 2,
          "grad [seeds, N, C_out, H/2, W/2] does not match the weights and the input size");
  require(code.shape(0) == count && code.shape(1) == g.out_channels && code.shape(2) == grad.shape(3) &&
              code.shape(3) == grad.shape(4),
          "code [N, C_out, H/2, W/2] does not match grad");
  if (out) {
    require(out->ndim() == 5 && out->shape(0) == seeds && out->shape(1) == count &&
                out->shape(2) == g.in_channels && out->shape(3) == in_height && out->shape(4) == in_width &&
                out->writeable(),
            "out must be a writeable C-contiguous [seeds, N, C_in, H_in, W_in] array of grad's dtype");
    require(!(out->data() < grad.data() + grad.size() && grad.data() < out->data() + out->size()),
            "out must not overlap grad");
  }
  Array<T> grad_input = out ? *out : Array<T>({seeds, count, g.in_channels, in_height, in_width});
  T* result = grad_input.mutable_data();
  {
    py::gil_scoped_release release;
    conv_relu_max_pool2x2_backward(grad.data(), code.data(), weight_hwio.data(), seeds, count, g, result);
  }
  return grad_input;
}

}  // namespace

void register_conv_pool_backward(py::module_& m) {
  m.def(
      "conv_relu_max_pool2x2_backward_is_fast",
      [](int64_t in_channels, int64_t kernel_h, int64_t kernel_w) {
        ConvPoolGeometry g{in_channels, 1, 8, 8, kernel_h, kernel_w, 0, 0};
        return conv_pool_backward_gathers(g);
      },
      py::arg("in_channels"), py::arg("kernel_h"), py::arg("kernel_w"),
      "True when conv_relu_max_pool2x2_backward has a fast kernel for this geometry (3x3 kernel; 1, 3, 8, 16, 32 "
      "or 64 input channels); other geometries are computed correctly but no faster than a dense backward.");
  const char* doc =
      "Input gradient [seeds, N, C_in, H_in, W_in] of conv2d (stride 1, zero padding pad_h, pad_w) -> ReLU -> "
      "2x2 max pool, from grad [seeds, N, C_out, H/2, W/2] at the pool's output, the pool's codes "
      "(relu_max_pool2x2) and the weights as [C_out, kh, kw, C_in]; written into `out` when given.";
  m.def("conv_relu_max_pool2x2_backward", &backward<float>, py::arg("grad").noconvert(), py::arg("code").noconvert(),
        py::arg("weight_hwio").noconvert(), py::arg("in_height"), py::arg("in_width"), py::arg("pad_h"),
        py::arg("pad_w"), py::arg("out").noconvert() = py::none(), doc);
  m.def("conv_relu_max_pool2x2_backward", &backward<double>, py::arg("grad").noconvert(),
        py::arg("code").noconvert(), py::arg("weight_hwio").noconvert(), py::arg("in_height"), py::arg("in_width"),
        py::arg("pad_h"), py::arg("pad_w"), py::arg("out").noconvert() = py::none(), doc);
}

}  // namespace medsyn
