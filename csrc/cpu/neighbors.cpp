// Exact blocked k-NN scans (see neighbors.h for the contract and the exactness argument).
#include "cpu/neighbors.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace medsyn {
namespace {

// Packed layout: rows are grouped in panels of kPanel; a panel stores dim x kPanel floats, k-major
// (element (row r, feature p) at p * kPanel + r), so the micro-kernel reads kPanel contiguous floats of
// the B side per feature and broadcasts kMicroRows floats of the A side.
constexpr int64_t kPanel = 48;      // 3 x 16 floats: the B width of the micro-kernel
constexpr int64_t kMicroRows = 8;   // A rows per micro-kernel: 8 x 3 = 24 vector accumulators
constexpr int64_t kDepthChunk = 128;  // B micro-panel 128 x 48 floats = 24 KB: stays in L1
constexpr int64_t kDefaultTilePanels = 4;  // 192 x 192 tiles: A chunk + B chunk + C tile fit in L2

typedef float Vec16 __attribute__((vector_size(64)));

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using AlignedFloats = std::unique_ptr<float[], AlignedFree>;

AlignedFloats aligned_floats(int64_t count) {
  const size_t bytes = ((static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(float) + 63) / 64) * 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) throw std::bad_alloc();
  return AlignedFloats(p);
}

int64_t panels_for(int64_t rows) { return (rows + kPanel - 1) / kPanel; }

int64_t tile_panels(int64_t requested) {
  return requested <= 0 ? kDefaultTilePanels : std::max<int64_t>(1, panels_for(requested));
}

// Rows [row0, row0 + rows) of x, minus `center`, into panels at dst (zero rows pad the last panel).
// norms[r] = float64 squared norm of the centred float32 row (what the tile arithmetic sees).
void pack_rows(const float* x, int64_t row0, int64_t rows, int64_t dim, const float* center, float* dst,
               double* norms) {
  const int64_t panels = panels_for(rows);
  for (int64_t panel = 0; panel < panels; ++panel) {
    float* out = dst + panel * dim * kPanel;
    for (int64_t r = 0; r < kPanel; ++r) {
      const int64_t row = panel * kPanel + r;
      if (row >= rows) {
        for (int64_t p = 0; p < dim; ++p) out[p * kPanel + r] = 0.0f;
        continue;
      }
      const float* src = x + (row0 + row) * dim;
      double norm = 0.0;
      for (int64_t p = 0; p < dim; ++p) {
        const float c = src[p] - center[p];
        out[p * kPanel + r] = c;
        norm += static_cast<double>(c) * c;
      }
      norms[row] = norm;
    }
  }
}

// c[8 x 48] (row stride ldc) (+)= A micro-panel (stride kPanel) x B micro-panel, depth `depth`.
inline void micro_kernel(const float* a, const float* b, int64_t depth, float* c, int64_t ldc, bool accumulate) {
  Vec16 acc[kMicroRows][3];
  for (int i = 0; i < kMicroRows; ++i)
    for (int v = 0; v < 3; ++v) {
      if (accumulate) {
        std::memcpy(&acc[i][v], c + i * ldc + 16 * v, sizeof(Vec16));
      } else {
        acc[i][v] = Vec16{};
      }
    }
  for (int64_t p = 0; p < depth; ++p) {
    const Vec16* bp = reinterpret_cast<const Vec16*>(b + p * kPanel);
    const Vec16 b0 = bp[0], b1 = bp[1], b2 = bp[2];
    const float* ap = a + p * kPanel;
#pragma GCC unroll 8
    for (int i = 0; i < kMicroRows; ++i) {
      const float ai = ap[i];
      acc[i][0] += ai * b0;
      acc[i][1] += ai * b1;
      acc[i][2] += ai * b2;
    }
  }
  for (int i = 0; i < kMicroRows; ++i)
    for (int v = 0; v < 3; ++v) std::memcpy(c + i * ldc + 16 * v, &acc[i][v], sizeof(Vec16));
}

// c[a_panels*48 x b_panels*48] = A . B^T over `dim` features (float32 dot products of centred rows).
void tile_products(const float* a_pack, int64_t a_panels, const float* b_pack, int64_t b_panels, int64_t dim,
                   float* c) {
  const int64_t ldc = b_panels * kPanel;
  for (int64_t p0 = 0; p0 < dim; p0 += kDepthChunk) {
    const int64_t depth = std::min(kDepthChunk, dim - p0);
    for (int64_t bp = 0; bp < b_panels; ++bp) {
      const float* b = b_pack + bp * dim * kPanel + p0 * kPanel;
      for (int64_t ap = 0; ap < a_panels; ++ap) {
        const float* a_panel = a_pack + ap * dim * kPanel + p0 * kPanel;
        for (int64_t r0 = 0; r0 < kPanel; r0 += kMicroRows) {
          micro_kernel(a_panel + r0, b, depth, c + (ap * kPanel + r0) * ldc + bp * kPanel, ldc, p0 > 0);
        }
      }
    }
  }
}

// c := ||a||^2 + ||b||^2 - 2 c on the valid rows x cols (float32, as the bound assumes).
void to_sq_distances(float* c, int64_t ldc, const double* a_norms, int64_t rows, const double* b_norms,
                     int64_t cols, float* b_norms_f) {
  for (int64_t j = 0; j < cols; ++j) b_norms_f[j] = static_cast<float>(b_norms[j]);
  for (int64_t i = 0; i < rows; ++i) {
    const float na = static_cast<float>(a_norms[i]);
    float* row = c + i * ldc;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) row[j] = (na + b_norms_f[j]) - 2.0f * row[j];
  }
}

std::vector<float> center_of(const float* a, int64_t n, const float* b, int64_t m, int64_t dim) {
  std::vector<double> sum(dim, 0.0);
  for (const auto& [x, rows] : {std::pair<const float*, int64_t>{a, n}, std::pair<const float*, int64_t>{b, m}}) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t p = 0; p < dim; ++p) sum[p] += x[i * dim + p];
  }
  std::vector<float> center(dim);
  for (int64_t p = 0; p < dim; ++p) center[p] = static_cast<float>(sum[p] / static_cast<double>(n + m));
  return center;
}

double abs_bound(int64_t dim) { return static_cast<double>(dim) * std::ldexp(1.0, -120); }

// Running float32 top-K per row: unsorted values + indices and the current worst (largest) value.
class Candidates {
 public:
  Candidates(int64_t rows, int64_t keep)
      : keep_(keep), values_(rows * keep, INFINITY), indices_(rows * keep, -1), worst_(rows, INFINITY) {}

  float worst(int64_t row) const { return worst_[row]; }

  void offer(int64_t row, float value, int64_t index) {
    if (!(value < worst_[row])) return;
    float* v = &values_[row * keep_];
    int64_t* idx = &indices_[row * keep_];
    int64_t at = 0;
    for (int64_t t = 1; t < keep_; ++t)
      if (v[t] > v[at]) at = t;
    v[at] = value;
    idx[at] = index;
    float worst = v[0];
    for (int64_t t = 1; t < keep_; ++t) worst = std::max(worst, v[t]);
    worst_[row] = worst;
  }

  const int64_t* indices(int64_t row) const { return &indices_[row * keep_]; }
  const float* values(int64_t row) const { return &values_[row * keep_]; }
  int64_t keep() const { return keep_; }

 private:
  int64_t keep_;
  std::vector<float> values_;
  std::vector<int64_t> indices_;
  std::vector<float> worst_;
};

bool by_value_then_index(const std::pair<double, int64_t>& x, const std::pair<double, int64_t>& y) {
  return x.first < y.first || (x.first == y.first && x.second < y.second);
}

// Exact recompute + certification (+ exact rescan) of every row's candidates; writes the k best.
void finish_topk(const float* queries, int64_t q, const float* reference, int64_t n, int64_t dim, int64_t k,
                 int64_t self_offset, const Candidates& candidates, const std::vector<double>& query_norms,
                 double max_reference_norm, double* out_values, int64_t* out_indices) {
  const double factor = rounding_bound_factor(dim);
  const double tiny = abs_bound(dim);
#pragma omp parallel
  {
    std::vector<std::pair<double, int64_t>> exact, by_float;
    std::vector<std::pair<double, int64_t>> full;
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < q; ++i) {
      exact.clear();
      by_float.clear();
      bool complete = false;
      const int64_t* idx = candidates.indices(i);
      const float* val = candidates.values(i);
      for (int64_t t = 0; t < candidates.keep(); ++t) {
        if (idx[t] < 0) {
          complete = true;
        } else {
          by_float.emplace_back(val[t], idx[t]);
        }
      }
      std::sort(by_float.begin(), by_float.end(), by_value_then_index);
      const double threshold = candidates.worst(i);
      const double b_max = factor * (query_norms[i] + max_reference_norm) + tiny;
      for (const auto& [value, j] : by_float) {
        // Visited by float32 value: once a candidate's lower bound is strictly above the k-th exact value
        // found so far, it and every later one are provably outside the top k (no tie either): stop.
        if (static_cast<int64_t>(exact.size()) >= k && value - b_max > exact[k - 1].first) break;
        exact.emplace_back(exact_sq_distance(queries + i * dim, reference + j * dim, dim), j);
        std::sort(exact.begin(), exact.end(), by_value_then_index);
      }
      const bool certified =
          complete || (static_cast<int64_t>(exact.size()) >= k && threshold - b_max > exact[k - 1].first);
      const std::vector<std::pair<double, int64_t>>* best = &exact;
      if (!certified) {
        full.clear();
        const int64_t own = i + self_offset;
        for (int64_t j = 0; j < n; ++j) {
          if (j == own) continue;
          full.emplace_back(exact_sq_distance(queries + i * dim, reference + j * dim, dim), j);
        }
        std::partial_sort(full.begin(), full.begin() + std::min<int64_t>(k, full.size()), full.end(),
                          by_value_then_index);
        best = &full;
      }
      for (int64_t t = 0; t < k; ++t) {
        const bool have = t < static_cast<int64_t>(best->size());
        out_values[i * k + t] = have ? (*best)[t].first : INFINITY;
        out_indices[i * k + t] = have ? (*best)[t].second : -1;
      }
    }
  }
}

void check_sizes(int64_t rows, int64_t dim, int64_t k, const char* what) {
  if (rows < 0 || dim <= 0) throw std::invalid_argument(std::string(what) + ": rows must be >= 0 and dim > 0");
  if (k < 1) throw std::invalid_argument(std::string(what) + ": k must be >= 1, got " + std::to_string(k));
}

}  // namespace

double rounding_bound_factor(int64_t dim) { return 2.0 * static_cast<double>(dim + 16) * std::ldexp(1.0, -24); }

// The error-free transformations below need every operation rounded on its own: no fused multiply-add
// contraction (the library is compiled with -ffp-contract=fast).
#if defined(__clang__)
double exact_sq_distance(const float* a, const float* b, int64_t dim) {
#pragma clang fp contract(off)
#else
__attribute__((optimize("fp-contract=off"))) double exact_sq_distance(const float* a, const float* b, int64_t dim) {
#endif
  // Error-free transformations (Ogita, Rump & Oishi 2005, "Sum2"/"Dot2"): each term (a_p - b_p)^2 is split
  // exactly into double pieces and summed in double-double, so the result is the exact squared distance
  // rounded once (up to ~dim * 2^-100 relative). Equal exact distances therefore give equal doubles
  // whatever the summation order: ties at a radius are decided as exact arithmetic would, and the torch
  // twin (a tree-ordered double-double sum) returns the same values.
  // 16 independent double-double lanes (vectorised, latency hidden), combined exactly at the end.
  constexpr int kLanes = 16;
  double hi[kLanes] = {}, lo[kLanes] = {};
  int64_t p = 0;
  for (; p + kLanes <= dim; p += kLanes) {
#pragma omp simd
    for (int t = 0; t < kLanes; ++t) {
      const double x = a[p + t], y = -static_cast<double>(b[p + t]);
      const double h = x + y;  // TwoSum: h + l == x + y exactly
      const double yv = h - x;
      const double l = (x - (h - yv)) + (y - yv);
      const double sq = h * h;
      const double sq_err = std::fma(h, h, -sq);  // TwoProduct: sq + sq_err == h * h exactly
      const double sum = hi[t] + sq;              // TwoSum of the lane's running high part
      const double z = sum - hi[t];
      lo[t] += ((hi[t] - (sum - z)) + (sq - z)) + sq_err + 2.0 * h * l;  // l^2 < 2^-106 h^2 is dropped
      hi[t] = sum;
    }
  }
  for (; p < dim; ++p) {
    const double x = a[p], y = -static_cast<double>(b[p]);
    const double h = x + y;
    const double yv = h - x;
    const double l = (x - (h - yv)) + (y - yv);
    const double sq = h * h;
    const double sq_err = std::fma(h, h, -sq);
    const double sum = hi[0] + sq;
    const double z = sum - hi[0];
    lo[0] += ((hi[0] - (sum - z)) + (sq - z)) + sq_err + 2.0 * h * l;
    hi[0] = sum;
  }
  double total = 0.0, total_lo = 0.0;
  for (int t = 0; t < kLanes; ++t) {
    const double sum = total + hi[t];
    const double z = sum - total;
    total_lo += ((total - (sum - z)) + (hi[t] - z)) + lo[t];
    total = sum;
  }
  return total + total_lo;
}

void knn_sq_distances(const float* queries, int64_t q, const float* reference, int64_t n, int64_t dim, int64_t k,
                      int64_t self_offset, double* out_values, int64_t* out_indices, const ScanBlocks& blocks) {
  check_sizes(q, dim, k, "knn_sq_distances");
  if (n < 1) throw std::invalid_argument("knn_sq_distances: the reference set is empty");
  if (q == 0) return;
  const std::vector<float> center = center_of(reference, n, nullptr, 0, dim);
  const int64_t ref_panels = panels_for(n);
  AlignedFloats ref_pack = aligned_floats(ref_panels * dim * kPanel);
  std::vector<double> ref_norms(ref_panels * kPanel, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t panel = 0; panel < ref_panels; ++panel) {
    const int64_t row0 = panel * kPanel;
    pack_rows(reference, row0, std::min(kPanel, n - row0), dim, center.data(), ref_pack.get() + panel * dim * kPanel,
              ref_norms.data() + row0);
  }
  const double max_ref_norm = *std::max_element(ref_norms.begin(), ref_norms.begin() + n);
  const int64_t row_panels = tile_panels(blocks.rows), col_panels = tile_panels(blocks.cols);
  const int64_t tile_rows = row_panels * kPanel, tile_cols = col_panels * kPanel;
  Candidates candidates(q, k + kExtraCandidates);
  std::vector<double> query_norms(q + tile_rows, 0.0);
  const int64_t row_blocks = (q + tile_rows - 1) / tile_rows;
#pragma omp parallel
  {
    AlignedFloats a_pack = aligned_floats(row_panels * dim * kPanel);
    AlignedFloats c = aligned_floats(tile_rows * tile_cols);
    std::vector<float> norms_f(tile_cols);
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < row_blocks; ++block) {
      const int64_t r0 = block * tile_rows, rows = std::min(tile_rows, q - r0);
      const int64_t a_panels = panels_for(rows);
      pack_rows(queries, r0, rows, dim, center.data(), a_pack.get(), query_norms.data() + r0);
      for (int64_t c0 = 0; c0 < n; c0 += tile_cols) {
        const int64_t cols = std::min(tile_cols, n - c0);
        const int64_t b_panels = panels_for(cols);
        tile_products(a_pack.get(), a_panels, ref_pack.get() + (c0 / kPanel) * dim * kPanel, b_panels, dim, c.get());
        const int64_t ldc = b_panels * kPanel;
        to_sq_distances(c.get(), ldc, query_norms.data() + r0, rows, ref_norms.data() + c0, cols, norms_f.data());
        for (int64_t i = 0; i < rows; ++i) {
          const float* row = c.get() + i * ldc;
          const int64_t own = r0 + i + self_offset - c0;  // column of the query itself in this tile
          float worst = candidates.worst(r0 + i);
          for (int64_t j = 0; j < cols; ++j) {
            if (row[j] < worst && j != own) {
              candidates.offer(r0 + i, row[j], c0 + j);
              worst = candidates.worst(r0 + i);
            }
          }
        }
      }
    }
  }
  finish_topk(queries, q, reference, n, dim, k, self_offset, candidates, query_norms, max_ref_norm, out_values,
              out_indices);
}

void knn_sq_distances_self(const float* features, int64_t n, int64_t dim, int64_t k, double* out_values,
                           int64_t* out_indices, const ScanBlocks& blocks) {
  check_sizes(n, dim, k, "knn_sq_distances_self");
  if (k >= n) throw std::invalid_argument("knn_sq_distances_self: k must be smaller than the number of rows");
  const std::vector<float> center = center_of(features, n, nullptr, 0, dim);
  const int64_t panels = panels_for(n);
  AlignedFloats pack = aligned_floats(panels * dim * kPanel);
  std::vector<double> norms(panels * kPanel, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t panel = 0; panel < panels; ++panel) {
    const int64_t row0 = panel * kPanel;
    pack_rows(features, row0, std::min(kPanel, n - row0), dim, center.data(), pack.get() + panel * dim * kPanel,
              norms.data() + row0);
  }
  const double max_norm = *std::max_element(norms.begin(), norms.begin() + n);
  const int64_t block_panels = tile_panels(std::max(blocks.rows, blocks.cols));
  const int64_t block_rows = block_panels * kPanel;
  const int64_t nb = (n + block_rows - 1) / block_rows;
  Candidates candidates(n, k + kExtraCandidates);

  // Round-robin tournament (circle method): in each round every block appears in at most one tile, so
  // tiles of a round run in parallel and update the candidates of disjoint rows. Round 0: the diagonal.
  const int64_t slots = nb + (nb % 2);
  std::vector<std::vector<std::pair<int64_t, int64_t>>> rounds;
  rounds.emplace_back();
  for (int64_t b = 0; b < nb; ++b) rounds[0].emplace_back(b, b);
  for (int64_t r = 0; r + 1 < slots; ++r) {
    rounds.emplace_back();
    for (int64_t t = 0; t < slots / 2; ++t) {
      const int64_t x = t == 0 ? slots - 1 : (r + t) % (slots - 1);
      const int64_t y = (r + slots - 1 - t) % (slots - 1);
      if (x < nb && y < nb && x != y) rounds.back().emplace_back(std::min(x, y), std::max(x, y));
    }
  }
#pragma omp parallel
  {
    AlignedFloats c = aligned_floats(block_rows * block_rows);
    std::vector<float> norms_f(block_rows);
    for (const auto& round : rounds) {
#pragma omp for schedule(dynamic, 1)
      for (size_t t = 0; t < round.size(); ++t) {
        const auto [bi, bj] = round[t];
        const int64_t r0 = bi * block_rows, rows = std::min(block_rows, n - r0);
        const int64_t c0 = bj * block_rows, cols = std::min(block_rows, n - c0);
        const int64_t b_panels = panels_for(cols), ldc = b_panels * kPanel;
        tile_products(pack.get() + (r0 / kPanel) * dim * kPanel, panels_for(rows),
                      pack.get() + (c0 / kPanel) * dim * kPanel, b_panels, dim, c.get());
        to_sq_distances(c.get(), ldc, norms.data() + r0, rows, norms.data() + c0, cols, norms_f.data());
        for (int64_t i = 0; i < rows; ++i) {
          const float* row = c.get() + i * ldc;
          float worst = candidates.worst(r0 + i);
          for (int64_t j = 0; j < cols; ++j) {
            if (row[j] < worst && !(bi == bj && i == j)) {
              candidates.offer(r0 + i, row[j], c0 + j);
              worst = candidates.worst(r0 + i);
            }
          }
        }
        if (bi == bj) continue;
        for (int64_t j = 0; j < cols; ++j) {  // the transposed tile feeds the rows of block bj
          float worst = candidates.worst(c0 + j);
          for (int64_t i = 0; i < rows; ++i) {
            const float v = c[i * ldc + j];
            if (v < worst) {
              candidates.offer(c0 + j, v, r0 + i);
              worst = candidates.worst(c0 + j);
            }
          }
        }
      }
    }
  }
  finish_topk(features, n, features, n, dim, k, 0, candidates, norms, max_norm, out_values, out_indices);
}

void ball_membership(const float* centers, const double* center_radii_sq, int64_t n, const float* points,
                     const double* point_radii_sq, int64_t m, int64_t dim, int64_t* points_in_balls,
                     uint8_t* centers_reached, uint8_t* centers_in_point_balls, const ScanBlocks& blocks) {
  if (n < 1 || m < 1 || dim < 1) throw std::invalid_argument("ball_membership: empty centers, points or dim");
  const std::vector<float> center = center_of(centers, n, points, m, dim);
  const double factor = rounding_bound_factor(dim), tiny = abs_bound(dim);
  const int64_t point_panels = panels_for(m);
  AlignedFloats point_pack = aligned_floats(point_panels * dim * kPanel);
  std::vector<double> point_norms(point_panels * kPanel, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t panel = 0; panel < point_panels; ++panel) {
    const int64_t row0 = panel * kPanel;
    pack_rows(points, row0, std::min(kPanel, m - row0), dim, center.data(), point_pack.get() + panel * dim * kPanel,
              point_norms.data() + row0);
  }
  const int64_t row_panels = tile_panels(blocks.rows), col_panels = tile_panels(blocks.cols);
  const int64_t tile_rows = row_panels * kPanel, tile_cols = col_panels * kPanel;
  const int64_t row_blocks = (n + tile_rows - 1) / tile_rows;
  std::fill(points_in_balls, points_in_balls + m, 0);
  std::fill(centers_reached, centers_reached + n, 0);
  std::fill(centers_in_point_balls, centers_in_point_balls + n, 0);
#pragma omp parallel
  {
    AlignedFloats a_pack = aligned_floats(row_panels * dim * kPanel);
    AlignedFloats c = aligned_floats(tile_rows * tile_cols);
    std::vector<float> norms_f(tile_cols);
    std::vector<double> center_norms(tile_rows);
    std::vector<int64_t> counts(m, 0);  // per thread: columns are shared by all row blocks
    std::vector<uint8_t> in_center(tile_cols), in_point(tile_cols), unsure(tile_cols);
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < row_blocks; ++block) {
      const int64_t r0 = block * tile_rows, rows = std::min(tile_rows, n - r0);
      pack_rows(centers, r0, rows, dim, center.data(), a_pack.get(), center_norms.data());
      for (int64_t c0 = 0; c0 < m; c0 += tile_cols) {
        const int64_t cols = std::min(tile_cols, m - c0);
        const int64_t b_panels = panels_for(cols), ldc = b_panels * kPanel;
        tile_products(a_pack.get(), panels_for(rows), point_pack.get() + (c0 / kPanel) * dim * kPanel, b_panels, dim,
                      c.get());
        to_sq_distances(c.get(), ldc, center_norms.data(), rows, point_norms.data() + c0, cols, norms_f.data());
        const double* s_sq = point_radii_sq + c0;
        const double* nb = point_norms.data() + c0;
        for (int64_t i = 0; i < rows; ++i) {
          const float* row = c.get() + i * ldc;
          const double r_sq = center_radii_sq[r0 + i];
          const double na = center_norms[i];
          uint8_t any_unsure = 0;
#pragma omp simd reduction(| : any_unsure)
          for (int64_t j = 0; j < cols; ++j) {
            const double v = row[j];
            const double bound = factor * (na + nb[j]) + tiny;
            const uint8_t sure_c = v + bound <= r_sq, maybe_c = v - bound <= r_sq;
            const uint8_t sure_p = v + bound <= s_sq[j], maybe_p = v - bound <= s_sq[j];
            in_center[j] = sure_c;
            in_point[j] = sure_p;
            unsure[j] = static_cast<uint8_t>((maybe_c & !sure_c) | (maybe_p & !sure_p));
            any_unsure |= unsure[j];
          }
          if (any_unsure) {
            for (int64_t j = 0; j < cols; ++j) {
              if (!unsure[j]) continue;
              const double exact = exact_sq_distance(centers + (r0 + i) * dim, points + (c0 + j) * dim, dim);
              in_center[j] = exact <= r_sq;
              in_point[j] = exact <= s_sq[j];
            }
          }
          int64_t reached = 0, inside = 0;
          int64_t* count = counts.data() + c0;
#pragma omp simd reduction(+ : reached, inside)
          for (int64_t j = 0; j < cols; ++j) {
            count[j] += in_center[j];
            reached += in_center[j];
            inside += in_point[j];
          }
          if (reached) centers_reached[r0 + i] = 1;
          if (inside) centers_in_point_balls[r0 + i] = 1;
        }
      }
    }
#pragma omp critical
    for (int64_t j = 0; j < m; ++j) points_in_balls[j] += counts[j];
  }
}

}  // namespace medsyn
