// Exact blocked k-NN scans in feature space: k nearest neighbours (radii, DCR) and hypersphere membership.
//
// Torch- and Python-agnostic C++17 over raw pointers (pybind11 layer: neighbors_bindings.cpp).
// Features are row-major float32 [rows, dim]. Squared Euclidean distances are computed GEMM-style,
// ||a||^2 + ||b||^2 - 2 a.b, on mean-centred data in float32 tiles (packed panels, a register-blocked
// micro-kernel the compiler maps to AVX-512/AVX2 FMAs, OpenMP over tiles); memory is O((rows + cols) dim),
// never O(rows x cols). Results are nevertheless exact (exact squared distances of the float32 inputs,
// rounded once to float64 via error-free transformations; see exact_sq_distance):
//   * each float32 tile value v carries a rigorous bound |v - d^2| <= f(dim) (||a_c||^2 + ||b_c||^2) + tiny,
//     f(dim) = 2 (dim + 16) 2^-24 (centring, norms, any-order dot product, additions; doubled);
//   * membership decisions within that bound of a radius are recomputed exactly;
//   * top-k scans keep k + kExtraCandidates float32 candidates per row, recompute them in float64 and
//     certify the row (every dropped point is provably no closer than the k-th exact value); rows that
//     cannot be certified (e.g. many exact duplicates) are rescanned exactly in float64.
// Ties go to the smaller index, so results do not depend on tile sizes or the thread count.
// The same algorithm in pure torch is medsyn/kernels/knn_torch.py (the test oracle).
#pragma once
#include <cstdint>
#include <limits>

namespace medsyn {

constexpr int64_t kExtraCandidates = 8;
// self_offset value meaning "no query is a reference row".
constexpr int64_t kNoSelf = std::numeric_limits<int64_t>::min() / 2;

struct ScanBlocks {
  int64_t rows = 0;  // rows per tile (rounded up to the 48-row panel); 0 = default
  int64_t cols = 0;  // columns per tile (rounded up to the panel); 0 = default
};

// Rigorous relative rounding bound factor f(dim) of a float32 tile value (see above).
double rounding_bound_factor(int64_t dim);

// The k nearest reference rows of every query.
// queries [q, dim], reference [n, dim]. Query i is reference row i + self_offset and is skipped
// (kNoSelf: none). Requires k <= number of eligible reference rows for every query.
// out_values [q, k] float64 squared distances ascending, out_indices [q, k].
void knn_sq_distances(const float* queries, int64_t q, const float* reference, int64_t n, int64_t dim,
                      int64_t k, int64_t self_offset, double* out_values, int64_t* out_indices,
                      const ScanBlocks& blocks = {});

// k nearest neighbours of every row within its own set, excluding the row itself (a duplicate at another
// index is a neighbour at distance 0). Only the upper triangle of tiles is computed (symmetry).
// features [n, dim], k < n; out_values [n, k], out_indices [n, k].
void knn_sq_distances_self(const float* features, int64_t n, int64_t dim, int64_t k, double* out_values,
                           int64_t* out_indices, const ScanBlocks& blocks = {});

// One exact pass over all pairs (center i, point j): d_ij^2 <= center_radii_sq[i] and d_ij^2 <= point_radii_sq[j].
// centers [n, dim], points [m, dim]. Outputs:
//   points_in_balls [m]        number of center balls containing point j
//   centers_reached [n]        1 if some point lies in center i's ball
//   centers_in_point_balls [n] 1 if center i lies in some point's ball
void ball_membership(const float* centers, const double* center_radii_sq, int64_t n, const float* points,
                     const double* point_radii_sq, int64_t m, int64_t dim, int64_t* points_in_balls,
                     uint8_t* centers_reached, uint8_t* centers_in_point_balls, const ScanBlocks& blocks = {});

// Exact squared distance of two float32 rows rounded once to float64 (double-double accumulation of
// error-free transformations): independent of summation order, so exact ties stay ties.
double exact_sq_distance(const float* a, const float* b, int64_t dim);

}  // namespace medsyn
