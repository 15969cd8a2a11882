// pybind11 layer of the SSIM-max scan: contiguous float32 numpy arrays in, numpy arrays out.
// The GIL is released while the kernel runs. std::invalid_argument becomes ValueError in Python.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.h"
#include "cpu/ssim_max.h"

namespace py = pybind11;

namespace medsyn {
namespace {

using FloatImages = py::array_t<float, py::array::c_style>;

ImageGeometry geometry_of(const py::array& images, const char* name) {
  if (images.ndim() != 4)
    throw std::invalid_argument(std::string(name) + " must be float32 [N,C,H,W], got rank " +
                                std::to_string(images.ndim()));
  return ImageGeometry{images.shape(1), images.shape(2), images.shape(3)};
}

FloatImages require_float32_contiguous(const py::array& images, const char* name) {
  if (!py::isinstance<FloatImages>(images) || !(images.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + " must be a C-contiguous float32 array");
  return py::reinterpret_borrow<FloatImages>(images);
}

SsimWindow window_of(const py::array_t<double, py::array::c_style | py::array::forcecast>& weights,
                     double covariance_scale, double c1, double c2) {
  if (weights.ndim() != 1) throw std::invalid_argument("weights must be a 1-d array");
  SsimWindow window;
  window.weights.assign(weights.data(), weights.data() + weights.shape(0));
  window.covariance_scale = covariance_scale;
  window.c1 = c1;
  window.c2 = c2;
  return window;
}

void check_same_geometry(const ImageGeometry& a, const ImageGeometry& b) {
  if (a.channels != b.channels || a.height != b.height || a.width != b.width)
    throw std::invalid_argument("synthetic and real images must have the same [C,H,W]");
}

py::tuple ssim_max_numpy(const py::array& synthetic_in, const py::array& real_in,
                         const py::array_t<double, py::array::c_style | py::array::forcecast>& weights,
                         double covariance_scale, double c1, double c2, int64_t top_k) {
  const FloatImages synthetic = require_float32_contiguous(synthetic_in, "synthetic");
  const FloatImages real = require_float32_contiguous(real_in, "real");
  const ImageGeometry g = geometry_of(synthetic, "synthetic");
  check_same_geometry(g, geometry_of(real, "real"));
  const SsimWindow window = window_of(weights, covariance_scale, c1, c2);
  const int64_t n_synthetic = synthetic.shape(0), n_real = real.shape(0);
  py::array_t<double> values({n_synthetic, top_k});
  py::array_t<int64_t> indices({n_synthetic, top_k});
  double* values_ptr = values.mutable_data();
  int64_t* indices_ptr = indices.mutable_data();
  {
    py::gil_scoped_release release;
    ssim_max_scan(synthetic.data(), n_synthetic, real.data(), n_real, g, window, top_k, values_ptr, indices_ptr);
  }
  return py::make_tuple(values, indices);
}

py::array_t<double> ssim_pairs_numpy(const py::array& a_in, const py::array& b_in,
                                     const py::array_t<double, py::array::c_style | py::array::forcecast>& weights,
                                     double covariance_scale, double c1, double c2) {
  const FloatImages a = require_float32_contiguous(a_in, "a");
  const FloatImages b = require_float32_contiguous(b_in, "b");
  const ImageGeometry g = geometry_of(a, "a");
  check_same_geometry(g, geometry_of(b, "b"));
  if (a.shape(0) != b.shape(0)) throw std::invalid_argument("a and b must hold the same number of images");
  const SsimWindow window = window_of(weights, covariance_scale, c1, c2);
  py::array_t<double> values(a.shape(0));
  double* values_ptr = values.mutable_data();
  {
    py::gil_scoped_release release;
    ssim_pairs(a.data(), b.data(), a.shape(0), g, window, values_ptr);
  }
  return values;
}

}  // namespace

void register_ssim(py::module_& m) {
  m.def("ssim_max", &ssim_max_numpy, py::arg("synthetic"), py::arg("real"), py::arg("weights"),
        py::arg("covariance_scale"), py::arg("c1"), py::arg("c2"), py::arg("top_k"),
        "SSIM-max scan. synthetic [Ns,C,H,W], real [Nr,C,H,W]: C-contiguous float32. weights: separable 1-D "
        "window (odd length, sum 1). Returns (values float64 [Ns,top_k] descending, indices int64 [Ns,top_k]); "
        "ties go to the smaller real index.");
  m.def("ssim_pairs", &ssim_pairs_numpy, py::arg("a"), py::arg("b"), py::arg("weights"),
        py::arg("covariance_scale"), py::arg("c1"), py::arg("c2"),
        "SSIM of a[i] against b[i]: float64 [N].");
}

}  // namespace medsyn
