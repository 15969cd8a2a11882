#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

namespace medsyn {
// One registration function per kernel family; add yours here and call it in bindings.cpp.
void register_ssim(pybind11::module_& m);
}  // namespace medsyn
