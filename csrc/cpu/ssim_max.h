// Batched SSIM-max scan: for every synthetic image, the largest SSIM against every real image.
//
// Torch- and Python-agnostic C++17 over raw pointers (the pybind11 layer is ssim_max_bindings.cpp),
// so the kernel builds and is tested standalone (csrc/tests) and under sanitizers.
//
// SSIM (Wang et al. 2004) as scikit-image computes it, restricted to the windows that lie fully
// inside the image (skimage crops (win-1)/2 pixels of border, which is exactly that region):
//   mu_x = w * x,  var_x = s (w * x^2 - mu_x^2),  cov = s (w * xy - mu_x mu_y)
//   S = (2 mu_x mu_y + C1)(2 cov + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2))
// with w a separable window (box 1/win or a normalised Gaussian), s = N/(N-1) for skimage's sample
// covariance (N = win*win) or 1, C1 = (K1 L)^2, C2 = (K2 L)^2. The score of an image pair is the
// mean of S over the valid region and over channels.
#pragma once
#include <cstdint>
#include <vector>

namespace medsyn {

struct SsimWindow {
  std::vector<double> weights;  // separable 1-D weights, odd length, summing to 1
  double covariance_scale;      // N/(N-1) (sample covariance) or 1
  double c1;                    // (K1 * data_range)^2
  double c2;                    // (K2 * data_range)^2
};

struct ImageGeometry {
  int64_t channels;
  int64_t height;
  int64_t width;
};

// Statistics of each image over the valid region, computed once and reused for every pair.
// Per image and channel, arrays of (height-win+1) x (width-win+1):
//   mean       mu (float64: the cross term mu_x mu_y must not lose digits to cancellation)
//   mean_term  mu^2 + C1/2       (so that B1 = mean_term_x + mean_term_y)
//   var_term   var + C2/2        (so that B2 = var_term_x + var_term_y)
struct SsimImageStats {
  int64_t count = 0;
  int64_t plane = 0;  // valid pixels per channel
  std::vector<double> mean;
  std::vector<double> mean_term;
  std::vector<double> var_term;
};

SsimImageStats ssim_image_stats(const float* images, int64_t count, const ImageGeometry& geometry,
                                const SsimWindow& window);

// synthetic [n_synthetic, C, H, W], real [n_real, C, H, W]: contiguous float32 in [0, data_range].
// Two phases: (1) every pair in float32 (vectorised, cache-blocked, OpenMP) with a rigorous per-pair
// error bound b (see ssim_max.cpp), keeping for each synthetic image the candidates whose upper bound
// S+b reaches the k-th best lower bound S-b (a pair whose upper bound falls below it part-way, counting
// S <= 1 for the outputs left, is not scored further); (2) those few candidates recomputed in float64. The returned
// values are float64-exact and the top-k is exactly the float64 top-k.
// top_values [n_synthetic, top_k] (descending) and top_indices [n_synthetic, top_k]; ties go to the
// smaller real index, so the result does not depend on the thread count.
// Throws std::invalid_argument on inconsistent sizes.
// abandoned_pairs (optional, diagnostics and tests): the number of pairs phase 1 stopped scoring part-way
// because their upper bound had fallen below the k-th best lower bound of their synthetic image.
void ssim_max_scan(const float* synthetic, int64_t n_synthetic, const float* real, int64_t n_real,
                   const ImageGeometry& geometry, const SsimWindow& window, int64_t top_k,
                   double* top_values, int64_t* top_indices, int64_t* abandoned_pairs = nullptr);

// True when ssim_max_scan's phase 1 may abandon pairs part-way (the AVX-512 box-7 kernel: a 7x7 uniform window
// on an AVX-512 build). For tests.
bool ssim_max_scan_abandons(const SsimWindow& window);

// Same SSIM for explicit pairs: a[i] against b[i], i < n (float64 path; used by tests and diagnostics).
void ssim_pairs(const float* a, const float* b, int64_t n, const ImageGeometry& geometry,
                const SsimWindow& window, double* values);

// The float32 fast path of the scan on explicit pairs: values[i] and a bound with |values - exact| <= bounds
// (exposed so that tests can check the bound the scan relies on).
void ssim_pairs_fast(const float* a, const float* b, int64_t n, const ImageGeometry& geometry,
                     const SsimWindow& window, double* values, double* bounds);

}  // namespace medsyn
