// Blocked squared distances + running top-k on the device (see knn_cuda.h).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "cuda/knn_cuda.h"

namespace medsyn {
namespace cuda {
namespace {

constexpr int kTile = 64;      // output tile 64 x 64 per block
constexpr int kDepth = 16;     // features staged in shared memory per step
constexpr int kThreads = 16;   // 16 x 16 threads, each 4 x 4 outputs
constexpr int kPer = kTile / kThreads;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

__global__ void sq_distance_tile_kernel(const float* __restrict__ a, int64_t a_rows, const float* __restrict__ b,
                                        int64_t b_rows, int64_t dim, const float* __restrict__ a_norms,
                                        const float* __restrict__ b_norms, float* __restrict__ out) {
  __shared__ float a_stage[kDepth][kTile + 1];
  __shared__ float b_stage[kDepth][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThreads + tx;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTile, col0 = static_cast<int64_t>(blockIdx.x) * kTile;
  float acc[kPer][kPer] = {};
  for (int64_t k0 = 0; k0 < dim; k0 += kDepth) {
    for (int t = tid; t < kTile * kDepth; t += kThreads * kThreads) {
      const int r = t / kDepth, kk = t % kDepth;
      const int64_t feature = k0 + kk;
      a_stage[kk][r] = (row0 + r < a_rows && feature < dim) ? a[(row0 + r) * dim + feature] : 0.0f;
      b_stage[kk][r] = (col0 + r < b_rows && feature < dim) ? b[(col0 + r) * dim + feature] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kDepth; ++kk) {
      float av[kPer], bv[kPer];
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        av[i] = a_stage[kk][ty + kThreads * i];
        bv[i] = b_stage[kk][tx + kThreads * i];
      }
#pragma unroll
      for (int i = 0; i < kPer; ++i)
#pragma unroll
        for (int j = 0; j < kPer; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int64_t row = row0 + ty + kThreads * i;
    if (row >= a_rows) continue;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int64_t col = col0 + tx + kThreads * j;
      if (col < b_rows) out[row * b_rows + col] = __fadd_rn(a_norms[row], b_norms[col]) - 2.0f * acc[i][j];
    }
  }
}

__global__ void topk_merge_kernel(const float* __restrict__ tile, int64_t rows, int64_t cols, int64_t ld,
                                  int64_t col_offset, int64_t row_offset, int64_t self_offset,
                                  float* __restrict__ cand_values, int64_t* __restrict__ cand_indices, int keep) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (row >= rows) return;
  float* values = cand_values + row * keep;
  int64_t* indices = cand_indices + row * keep;
  int worst_at = 0;
  for (int t = 1; t < keep; ++t)
    if (values[t] > values[worst_at]) worst_at = t;
  float worst = values[worst_at];
  const int64_t own = row_offset + row + self_offset;
  const float* line = tile + row * ld;
  for (int64_t j = 0; j < cols; ++j) {
    const float v = line[j];
    if (v < worst && col_offset + j != own) {
      values[worst_at] = v;
      indices[worst_at] = col_offset + j;
      worst_at = 0;
      for (int t = 1; t < keep; ++t)
        if (values[t] > values[worst_at]) worst_at = t;
      worst = values[worst_at];
    }
  }
}

}  // namespace

void sq_distance_tile(const float* a, int64_t a_rows, const float* b, int64_t b_rows, int64_t dim,
                      const float* a_norms, const float* b_norms, float* out, void* stream) {
  if (a_rows < 0 || b_rows < 0 || dim < 1) throw std::invalid_argument("sq_distance_tile: bad sizes");
  if (a_rows == 0 || b_rows == 0) return;
  const dim3 threads(kThreads, kThreads);
  const dim3 blocks(static_cast<unsigned>((b_rows + kTile - 1) / kTile), static_cast<unsigned>((a_rows + kTile - 1) / kTile));
  sq_distance_tile_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(a, a_rows, b, b_rows, dim, a_norms,
                                                                                       b_norms, out);
  check(cudaGetLastError(), "sq_distance_tile launch");
}

void topk_merge(const float* tile, int64_t rows, int64_t cols, int64_t ld, int64_t col_offset, int64_t row_offset,
                int64_t self_offset, float* cand_values, int64_t* cand_indices, int64_t keep, void* stream) {
  if (rows < 0 || cols < 0 || keep < 1 || keep > 4096) throw std::invalid_argument("topk_merge: bad sizes");
  if (rows == 0) return;
  const int threads = 128;
  topk_merge_kernel<<<static_cast<unsigned>((rows + threads - 1) / threads), threads, 0,
                      static_cast<cudaStream_t>(stream)>>>(tile, rows, cols, ld, col_offset, row_offset, self_offset,
                                                           cand_values, cand_indices, static_cast<int>(keep));
  check(cudaGetLastError(), "topk_merge launch");
}

}  // namespace cuda
}  // namespace medsyn
