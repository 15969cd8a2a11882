// SSIM-max scan on a CUDA device: the same formula and conventions as csrc/cpu/ssim_max.h (valid-region
// windowed statistics in float64, mean over map and channels, ties -> smaller real index).
// Host launchers over DEVICE pointers; the stream is a cudaStream_t passed as void* so that this header
// needs no CUDA headers (the pybind11 layer is compiled by the C++ compiler).
#pragma once
#include <cstdint>
#include <vector>

namespace medsyn {
namespace cuda {

// synthetic [n_synthetic, C, H, W], real [n_real, C, H, W]: contiguous float32 on the device.
// weights: separable 1-D window (host memory, odd length, sum 1).
// top_values [n_synthetic, top_k] float64 and top_indices [n_synthetic, top_k] int64: device memory.
// Enqueued on `stream`; temporaries are stream-ordered (cudaMallocAsync). Throws std::invalid_argument
// on bad sizes and std::runtime_error on CUDA errors.
void ssim_max_scan(const float* synthetic, int64_t n_synthetic, const float* real, int64_t n_real, int64_t channels,
                   int64_t height, int64_t width, const std::vector<double>& weights, double covariance_scale,
                   double c1, double c2, int64_t top_k, double* top_values, int64_t* top_indices, void* stream);

}  // namespace cuda
}  // namespace medsyn
