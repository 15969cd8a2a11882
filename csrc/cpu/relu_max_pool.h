// ReLU followed by a 2x2 max pool with stride 2 (the block of image classifiers), forward with the
// argmax recorded and backward for many gradient seeds at once: the non-convolution half of DeepFool's
// cost (medsyn/metrics/robustness/sequential_engine.py). Torch-agnostic: raw pointers, float or double.
//
// Semantics are those of torch `max_pool2d(relu(x), 2)` (floor mode) and of its autograd backward:
//   - the window's first maximum in row-major order wins (strict >, as torch's CPU kernel), NaN wins;
//   - the gradient reaches that position only when the pooled value is > 0 (ReLU's backward passes the
//     gradient where relu(x) > 0); rows and columns past 2 * (H / 2), 2 * (W / 2) get no gradient.
#pragma once
#include <cstdint>

namespace medsyn {

// Code of an output whose gradient goes nowhere (pooled value <= 0 or NaN).
constexpr uint8_t kNoGradient = 255;

// x [planes, height, width] -> pooled [planes, height / 2, width / 2] and code (same shape): 0..3 the
// argmax in the window (dy * 2 + dx), or kNoGradient. height, width >= 2.
template <typename T>
void relu_max_pool2x2_forward(const T* x, int64_t planes, int64_t height, int64_t width, T* pooled,
                              uint8_t* code);

// grad [seeds, planes, height / 2, width / 2] and the forward's code -> grad_input [seeds, planes, height,
// width] (every element written).
template <typename T>
void relu_max_pool2x2_backward(const T* grad, const uint8_t* code, int64_t seeds, int64_t planes, int64_t height,
                               int64_t width, T* grad_input);

}  // namespace medsyn
