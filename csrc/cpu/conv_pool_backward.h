// Input gradient of the block conv2d (stride 1, zero padding) -> ReLU -> 2x2 max pool, straight from the
// pooled gradient and the pool's argmax codes (relu_max_pool.h), for many gradient seeds at once: the
// backward pass batched DeepFool spends most of its time in (medsyn/metrics/robustness/sequential_engine.py).
//
// The gradient reaching the convolution's output is zero except at one position per 2x2 window and channel
// (and nowhere where the pooled value is <= 0), so instead of a dense transposed convolution over a
// mostly-zero map this adds, for each such position, its gradient times the convolution's weights to the
// kh x kw input patch it came from: at most a quarter of the dense multiply-adds, vectorised over the input
// channels (channels-last scratch per image). Torch-agnostic: raw pointers, float or double.
#pragma once
#include <cstdint>

namespace medsyn {

struct ConvPoolGeometry {
  int64_t in_channels, out_channels;
  int64_t in_height, in_width;      // the convolution's input
  int64_t kernel_h, kernel_w;
  int64_t pad_h, pad_w;             // zero padding; stride 1, dilation 1, groups 1
  // The convolution's output is (in_height + 2 pad_h - kernel_h + 1) x (... width ...), >= 2 x 2; the pool's
  // output is half of it (floor).
  int64_t conv_height() const { return in_height + 2 * pad_h - kernel_h + 1; }
  int64_t conv_width() const { return in_width + 2 * pad_w - kernel_w + 1; }
};

// True when the geometry has a fast kernel (3 x 3 kernel and 8, 16, 32 or 64 input channels: the gradients of
// the channels whose argmax fell on the same position are summed in registers; or 1 or 3 input channels: an
// unrolled per-channel scatter); other geometries use the generic scatter, correct but not faster than a
// dense transposed convolution.
bool conv_pool_backward_gathers(const ConvPoolGeometry& g);

// grad [seeds, count, out_channels, conv_h / 2, conv_w / 2]: gradient at the pool's output;
// code [count, out_channels, conv_h / 2, conv_w / 2]: relu_max_pool2x2_forward's codes of this block;
// weight_hwio [out_channels, kernel_h, kernel_w, in_channels]: the convolution's weights, channels last;
// -> grad_input [seeds, count, in_channels, in_height, in_width] (every element written).
// Throws std::invalid_argument for a geometry whose convolution output is smaller than 2 x 2.
template <typename T>
void conv_relu_max_pool2x2_backward(const T* grad, const uint8_t* code, const T* weight_hwio, int64_t seeds,
                                    int64_t count, const ConvPoolGeometry& g, T* grad_input);

}  // namespace medsyn
