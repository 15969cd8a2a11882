// Direct 2-D convolution, stride 1, zero padding, groups 1: the float64 forward pass of batched DeepFool
// (medsyn/metrics/robustness/sequential_engine.py). torch 2.13 has no oneDNN float64 convolution on the
// CPU, and its reference path (im2col + GEMM per image) reached ~8 GFLOP/s here; this loop nest (4 output
// channels x one output row per block, vectorised along the row) needs no im2col. Torch-agnostic: raw pointers.
#pragma once
#include <cstdint>

namespace medsyn {

// x [count, in_channels, height, width]; weight [out_channels, in_channels, kernel_h, kernel_w]; bias
// [out_channels] or null -> out [count, out_channels, height + 2 pad_h - kernel_h + 1, width + 2 pad_w -
// kernel_w + 1] (every element written). Throws std::invalid_argument for an empty output.
template <typename T>
void conv2d_direct(const T* x, const T* weight, const T* bias, int64_t count, int64_t in_channels, int64_t height,
                   int64_t width, int64_t out_channels, int64_t kernel_h, int64_t kernel_w, int64_t pad_h,
                   int64_t pad_w, T* out);

}  // namespace medsyn
