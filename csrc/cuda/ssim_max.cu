// CUDA SSIM-max scan (see ssim_max_cuda.h). Same algorithm as the CPU kernel:
//   1. per-image valid-region statistics, once per image: mean (float64), mean^2 + C1/2, var + C2/2;
//   2. per pair only the windowed cross term E[xy]: one thread block per pair, threads over columns,
//      vertical window sums of x*y in shared memory then horizontal sums, all in float64 (x*y of two
//      float32 values is exact in float64; float32 cov = E[xy] - mu_x mu_y cancels on flat regions);
//   3. the real set is scanned in chunks; a merge kernel keeps each synthetic image's top-k list.
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/ssim_max_cuda.h"

namespace medsyn {
namespace cuda {
namespace {

constexpr int kMaxWindow = 63;
constexpr int kThreads = 256;

struct Window {
  double weights[kMaxWindow];
  int size;
  double covariance_scale, c1, c2;
};

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status));
}

// One thread per valid pixel of one image plane: direct win x win window in float64.
__global__ void image_stats_kernel(const float* __restrict images, int64_t planes, int64_t height, int64_t width,
                                   Window w, double* __restrict mean, double* __restrict mean_term,
                                   double* __restrict var_term) {
  const int64_t hv = height - w.size + 1, wv = width - w.size + 1, plane = hv * wv;
  const int64_t total = planes * plane;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = t / plane, q = t % plane, i = q / wv, j = q % wv;
    const float* src = images + p * height * width;
    double m = 0.0, second = 0.0;
    for (int a = 0; a < w.size; ++a) {
      double row_m = 0.0, row_s = 0.0;
      for (int b = 0; b < w.size; ++b) {
        const double v = src[(i + a) * width + j + b];
        row_m += w.weights[b] * v;
        row_s += w.weights[b] * v * v;
      }
      m += w.weights[a] * row_m;
      second += w.weights[a] * row_s;
    }
    mean[t] = m;
    mean_term[t] = m * m + 0.5 * w.c1;
    var_term[t] = w.covariance_scale * (second - m * m) + 0.5 * w.c2;
  }
}

// One block per (synthetic s, real r0 + k) pair; scores[s * chunk + k] = mean SSIM.
__global__ void pair_scores_kernel(const float* __restrict synthetic, const float* __restrict real,
                                   int64_t n_synthetic, int64_t r0, int64_t chunk, int64_t channels,
                                   int64_t height, int64_t width, Window w, const double* __restrict mean_s,
                                   const double* __restrict mterm_s, const double* __restrict vterm_s,
                                   const double* __restrict mean_r, const double* __restrict mterm_r,
                                   const double* __restrict vterm_r, double* __restrict scores) {
  extern __shared__ double column[];  // [width]
  __shared__ double partial[kThreads];
  const int64_t pair = blockIdx.x;
  const int64_t s = pair / chunk, k = pair % chunk, r = r0 + k;
  const int64_t hv = height - w.size + 1, wv = width - w.size + 1, plane = hv * wv;
  const int64_t image = channels * height * width;
  double sum = 0.0;
  for (int64_t c = 0; c < channels; ++c) {
    const float* x = synthetic + s * image + c * height * width;
    const float* y = real + r * image + c * height * width;
    const int64_t os = (s * channels + c) * plane, orr = (r * channels + c) * plane;
    for (int64_t i = 0; i < hv; ++i) {
      for (int64_t j = threadIdx.x; j < width; j += blockDim.x) {
        double acc = 0.0;
        for (int a = 0; a < w.size; ++a) {
          const int64_t at = (i + a) * width + j;
          acc += w.weights[a] * (static_cast<double>(x[at]) * static_cast<double>(y[at]));
        }
        column[j] = acc;
      }
      __syncthreads();
      for (int64_t j = threadIdx.x; j < wv; j += blockDim.x) {
        double cross = 0.0;
        for (int b = 0; b < w.size; ++b) cross += w.weights[b] * column[j + b];
        const int64_t q = i * wv + j;
        const double mxy = mean_s[os + q] * mean_r[orr + q];
        const double a1 = 2.0 * mxy + w.c1;
        const double a2 = 2.0 * w.covariance_scale * (cross - mxy) + w.c2;
        const double b1 = mterm_s[os + q] + mterm_r[orr + q];
        const double b2 = vterm_s[os + q] + vterm_r[orr + q];
        sum += (a1 * a2) / (b1 * b2);
      }
      __syncthreads();
    }
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) scores[pair] = partial[0] / static_cast<double>(channels * plane);
}

__device__ bool better(double value, int64_t index, double other_value, int64_t other_index) {
  return value > other_value || (value == other_value && index < other_index);
}

__global__ void init_topk_kernel(double* values, int64_t* indices, int64_t count) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t < count) {
    values[t] = -DBL_MAX;
    indices[t] = INT64_MAX;
  }
}

// One thread per synthetic image: insert the chunk's scores into its sorted top-k list.
__global__ void merge_topk_kernel(const double* __restrict scores, int64_t n_synthetic, int64_t r0, int64_t chunk,
                                  int64_t top_k, double* values, int64_t* indices) {
  const int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (s >= n_synthetic) return;
  double* v = values + s * top_k;
  int64_t* idx = indices + s * top_k;
  for (int64_t k = 0; k < chunk; ++k) {
    const double value = scores[s * chunk + k];
    const int64_t index = r0 + k;
    if (!better(value, index, v[top_k - 1], idx[top_k - 1])) continue;
    int64_t pos = top_k - 1;
    while (pos > 0 && better(value, index, v[pos - 1], idx[pos - 1])) {
      v[pos] = v[pos - 1];
      idx[pos] = idx[pos - 1];
      --pos;
    }
    v[pos] = value;
    idx[pos] = index;
  }
}

int blocks_for(int64_t work) { return static_cast<int>(std::min<int64_t>((work + kThreads - 1) / kThreads, 65535)); }

}  // namespace

void ssim_max_scan(const float* synthetic, int64_t n_synthetic, const float* real, int64_t n_real, int64_t channels,
                   int64_t height, int64_t width, const std::vector<double>& weights, double covariance_scale,
                   double c1, double c2, int64_t top_k, double* top_values, int64_t* top_indices, void* stream_ptr) {
  const int64_t win = static_cast<int64_t>(weights.size());
  if (win < 1 || win % 2 == 0 || win > kMaxWindow)
    throw std::invalid_argument("window size must be odd and <= " + std::to_string(kMaxWindow));
  if (n_synthetic < 1 || n_real < 1) throw std::invalid_argument("both image sets must be non-empty");
  if (channels < 1 || height < win || width < win) throw std::invalid_argument("images smaller than the window");
  if (top_k < 1 || top_k > n_real) throw std::invalid_argument("top_k must be in [1, n_real]");
  if (width * static_cast<int64_t>(sizeof(double)) > 40 * 1024)
    throw std::invalid_argument("image width above 5120 pixels is not supported by the CUDA kernel");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  Window w{};
  for (int64_t k = 0; k < win; ++k) w.weights[k] = weights[k];
  w.size = static_cast<int>(win);
  w.covariance_scale = covariance_scale;
  w.c1 = c1;
  w.c2 = c2;

  const int64_t plane = (height - win + 1) * (width - win + 1);
  const int64_t stat_s = n_synthetic * channels * plane, stat_r = n_real * channels * plane;
  // Chunk of real images per launch: bounds the score buffer to ~32 MB.
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(n_real, (int64_t{1} << 22) / n_synthetic));
  double* buffer = nullptr;
  const int64_t doubles = 3 * (stat_s + stat_r) + n_synthetic * chunk;
  check(cudaMallocAsync(reinterpret_cast<void**>(&buffer), doubles * sizeof(double), stream), "cudaMallocAsync");
  double *mean_s = buffer, *mterm_s = mean_s + stat_s, *vterm_s = mterm_s + stat_s;
  double *mean_r = vterm_s + stat_s, *mterm_r = mean_r + stat_r, *vterm_r = mterm_r + stat_r;
  double* scores = vterm_r + stat_r;
  try {
    image_stats_kernel<<<blocks_for(stat_s), kThreads, 0, stream>>>(synthetic, n_synthetic * channels, height, width,
                                                                      w, mean_s, mterm_s, vterm_s);
    image_stats_kernel<<<blocks_for(stat_r), kThreads, 0, stream>>>(real, n_real * channels, height, width, w,
                                                                      mean_r, mterm_r, vterm_r);
    init_topk_kernel<<<blocks_for(n_synthetic * top_k), kThreads, 0, stream>>>(top_values, top_indices,
                                                                               n_synthetic * top_k);
    check(cudaGetLastError(), "SSIM statistics kernels");
    for (int64_t r0 = 0; r0 < n_real; r0 += chunk) {
      const int64_t count = std::min(chunk, n_real - r0);
      const int64_t pairs = n_synthetic * count;
      // gridDim.x allows 2^31-1 blocks; a chunk holds at most max(n_synthetic, 2^22) pairs.
      pair_scores_kernel<<<static_cast<unsigned>(pairs), kThreads, width * sizeof(double), stream>>>(
          synthetic, real, n_synthetic, r0, count, channels, height, width, w, mean_s, mterm_s, vterm_s, mean_r,
          mterm_r, vterm_r, scores);
      merge_topk_kernel<<<blocks_for(n_synthetic), kThreads, 0, stream>>>(scores, n_synthetic, r0, count, top_k,
                                                                          top_values, top_indices);
      check(cudaGetLastError(), "SSIM pair kernels");
    }
  } catch (...) {
    cudaFreeAsync(buffer, stream);
    throw;
  }
  check(cudaFreeAsync(buffer, stream), "cudaFreeAsync");
}

}  // namespace cuda
}  // namespace medsyn
