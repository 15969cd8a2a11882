// Blocked squared Euclidean distances and per-row running top-k on a CUDA device: the two hot loops of the
// exact k-NN scans (csrc/cpu/neighbors.h). The Python wrapper (medsyn/metrics/neighbors.py, backend "cuda")
// centres the rows and computes their norms with torch on the device, calls these for every tile, and
// finishes exactly (float64 recompute + certification) with the torch twin's device code.
// Host launchers over DEVICE pointers; the stream is a cudaStream_t passed as void*.
#pragma once
#include <cstdint>

namespace medsyn {
namespace cuda {

// out[i, j] = (a_norms[i] + b_norms[j]) - 2 a_i . b_j in float32 (row-major, leading dimension b_rows)
// for centred rows a [a_rows, dim], b [b_rows, dim] (contiguous float32). Same rounding model as the CPU
// kernel, so the same rigorous bound f(dim) (||a||^2 + ||b||^2) applies.
void sq_distance_tile(const float* a, int64_t a_rows, const float* b, int64_t b_rows, int64_t dim,
                      const float* a_norms, const float* b_norms, float* out, void* stream);

// Merge a distance tile [rows, cols] (leading dimension ld) into the running candidates of its rows:
// cand_values [rows, keep] float32 / cand_indices [rows, keep] int64 (init +inf / -1) keep the `keep`
// smallest values seen. Column j is reference row col_offset + j; row i is query row_offset + i and its
// own reference row (row_offset + i + self_offset) is skipped. One thread per row.
void topk_merge(const float* tile, int64_t rows, int64_t cols, int64_t ld, int64_t col_offset, int64_t row_offset,
                int64_t self_offset, float* cand_values, int64_t* cand_indices, int64_t keep, void* stream);

}  // namespace cuda
}  // namespace medsyn
