// SSIM-max scan on the CPU (OpenMP). See ssim_max.h for the formula and the data layout.
//
// Cost model: the per-image terms (local mean and variance) are computed once per image; a pair only
// needs the windowed cross term w * (x y). That term is filtered in float64: x and y are float32, so
// x*y is exact in float64, and cov = E[xy] - mu_x mu_y cancels badly in float32 on flat regions
// (an error of 1e-7 in cov moves S by up to 2e-7 / C2 ~ 2e-4 per pixel, far above the 1e-5 target).
#include "cpu/ssim_max.h"

#include <omp.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

namespace medsyn {
namespace {

int64_t valid_extent(int64_t size, int64_t win) { return size - win + 1; }

void check_arguments(const ImageGeometry& g, const SsimWindow& w) {
  const int64_t win = static_cast<int64_t>(w.weights.size());
  if (win < 1 || win % 2 == 0) throw std::invalid_argument("window size must be odd, got " + std::to_string(win));
  if (g.channels < 1 || g.height < win || g.width < win)
    throw std::invalid_argument("images must have >= 1 channel and be at least " + std::to_string(win) +
                                " pixels high and wide");
  if (!(w.c1 > 0.0) || !(w.c2 > 0.0) || !(w.covariance_scale > 0.0))
    throw std::invalid_argument("C1, C2 and the covariance scale must be positive");
}

bool is_box(const std::vector<double>& weights) {
  return std::all_of(weights.begin(), weights.end(), [&](double v) { return v == weights[0]; });
}

#if defined(__AVX512F__) && defined(__AVX512VL__)
// out[j] = sum over taps k of w[k] * src[j + k * step] for j < n, as a chain of fused multiply-adds from 0
// in tap order, with 8 columns per register: the same operations per element as filter_valid's portable
// loops, which read and write the partial sums in memory once per tap (bit-identical, ~1.5x faster).
void tap_sums(const double* __restrict src, int64_t step, const double* __restrict w, int64_t win, int64_t n,
              double* __restrict out) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m512d sum = _mm512_setzero_pd();
    for (int64_t k = 0; k < win; ++k)
      sum = _mm512_fmadd_pd(_mm512_set1_pd(w[k]), _mm512_loadu_pd(src + j + k * step), sum);
    _mm512_storeu_pd(out + j, sum);
  }
  for (; j < n; ++j) {
    double sum = 0.0;
    for (int64_t k = 0; k < win; ++k) sum = std::fma(w[k], src[j + k * step], sum);
    out[j] = sum;
  }
}
#endif

// Separable valid-region filter of one float64 plane [height, width] -> [height-win+1, width-win+1]:
// per output row, column sums over the window's rows, then row sums over the window's columns.
void filter_valid(const double* in, int64_t height, int64_t width, const std::vector<double>& weights,
                  double* out, std::vector<double>& column) {
  const int64_t win = static_cast<int64_t>(weights.size());
  const int64_t hv = valid_extent(height, win), wv = valid_extent(width, win);
#if defined(__AVX512F__) && defined(__AVX512VL__)
  column.resize(width);
  for (int64_t i = 0; i < hv; ++i) {
    tap_sums(in + i * width, width, weights.data(), win, width, column.data());
    tap_sums(column.data(), 1, weights.data(), win, wv, out + i * wv);
  }
#else
  column.assign(width, 0.0);
  for (int64_t i = 0; i < hv; ++i) {
    double* col = column.data();
    for (int64_t j = 0; j < width; ++j) col[j] = 0.0;
    for (int64_t k = 0; k < win; ++k) {
      const double wk = weights[k];
      const double* row = in + (i + k) * width;
      for (int64_t j = 0; j < width; ++j) col[j] += wk * row[j];
    }
    double* dst = out + i * wv;
    for (int64_t j = 0; j < wv; ++j) dst[j] = 0.0;
    for (int64_t k = 0; k < win; ++k) {
      const double wk = weights[k];
#pragma omp simd
      for (int64_t j = 0; j < wv; ++j) dst[j] += wk * col[j + k];
    }
  }
#endif
}

// Scratch space of one thread for the pair kernel.
struct PairWorkspace {
  std::vector<double> column;  // vertical window sums, [width]
  std::vector<double> ring;    // products of the last `win` rows (Gaussian window), [win, width]
  std::vector<double> cross;   // E[xy] of one output row, [wv]
};

// One output row of the SSIM map, summed: cross[j] = E[xy] at (row, j).
inline double ssim_row_sum(const double* __restrict cross, const double* __restrict mean_x,
                           const double* __restrict mean_y, const double* __restrict mean_term_x,
                           const double* __restrict mean_term_y, const double* __restrict var_term_x,
                           const double* __restrict var_term_y, int64_t wv, const SsimWindow& w) {
  const double c1 = w.c1, c2 = w.c2, scale2 = 2.0 * w.covariance_scale;
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < wv; ++j) {
    const double mxy = mean_x[j] * mean_y[j];
    const double a1 = 2.0 * mxy + c1;
    const double a2 = scale2 * (cross[j] - mxy) + c2;
    const double b1 = mean_term_x[j] + mean_term_y[j];
    const double b2 = var_term_x[j] + var_term_y[j];
    sum += (a1 * a2) / (b1 * b2);
  }
  return sum;
}

// Mean SSIM of synthetic image `ix` against real image `iy` (planes x, y: [C, H, W]).
double pair_score(const float* x, const float* y, const SsimImageStats& sx, int64_t ix, const SsimImageStats& sy,
                  int64_t iy, const ImageGeometry& g, const SsimWindow& w, PairWorkspace& ws) {
  const int64_t win = static_cast<int64_t>(w.weights.size());
  const int64_t width = g.width, hv = valid_extent(g.height, win), wv = valid_extent(g.width, win);
  const bool box = is_box(w.weights);
  const double box_area = 1.0 / static_cast<double>(win * win);
  ws.column.resize(width);
  ws.cross.resize(wv);
  if (!box) ws.ring.resize(win * width);
  double total = 0.0;
  for (int64_t c = 0; c < g.channels; ++c) {
    const float* xp = x + c * g.height * width;
    const float* yp = y + c * g.height * width;
    const int64_t ox = (ix * g.channels + c) * sx.plane, oy = (iy * g.channels + c) * sy.plane;
    double* __restrict col = ws.column.data();
    double* __restrict cross = ws.cross.data();
    if (box) {
      for (int64_t j = 0; j < width; ++j) col[j] = 0.0;
      for (int64_t r = 0; r < win; ++r) {
        const float* xr = xp + r * width;
        const float* yr = yp + r * width;
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) col[j] += static_cast<double>(xr[j]) * yr[j];
      }
    } else {
      for (int64_t r = 0; r + 1 < win; ++r) {
        double* dst = ws.ring.data() + (r % win) * width;
        const float* xr = xp + r * width;
        const float* yr = yp + r * width;
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) dst[j] = static_cast<double>(xr[j]) * yr[j];
      }
    }
    for (int64_t i = 0; i < hv; ++i) {
      if (box) {
        if (i > 0) {  // slide the vertical window one row down; products are exact in float64
          const float* xn = xp + (i + win - 1) * width;
          const float* yn = yp + (i + win - 1) * width;
          const float* xo = xp + (i - 1) * width;
          const float* yo = yp + (i - 1) * width;
#pragma omp simd
          for (int64_t j = 0; j < width; ++j)
            col[j] += static_cast<double>(xn[j]) * yn[j] - static_cast<double>(xo[j]) * yo[j];
        }
        // Vectorised over j (each output keeps its own left-to-right sum: bit-identical to the scalar
        // loop, which the compiler left as a 7-add latency chain per output: ~0.4 ms per 256 px re-check).
#pragma omp simd
        for (int64_t j = 0; j < wv; ++j) {
          double s = 0.0;
          for (int64_t k = 0; k < win; ++k) s += col[j + k];
          cross[j] = s * box_area;
        }
      } else {
        const int64_t newest = i + win - 1;
        {
          double* dst = ws.ring.data() + (newest % win) * width;
          const float* xr = xp + newest * width;
          const float* yr = yp + newest * width;
#pragma omp simd
          for (int64_t j = 0; j < width; ++j) dst[j] = static_cast<double>(xr[j]) * yr[j];
        }
        for (int64_t j = 0; j < width; ++j) col[j] = 0.0;
        for (int64_t k = 0; k < win; ++k) {
          const double wk = w.weights[k];
          const double* src = ws.ring.data() + ((i + k) % win) * width;
#pragma omp simd
          for (int64_t j = 0; j < width; ++j) col[j] += wk * src[j];
        }
        for (int64_t j = 0; j < wv; ++j) {
          double s = 0.0;
          for (int64_t k = 0; k < win; ++k) s += w.weights[k] * col[j + k];
          cross[j] = s;
        }
      }
      const int64_t o = i * wv;
      total += ssim_row_sum(cross, sx.mean.data() + ox + o, sy.mean.data() + oy + o, sx.mean_term.data() + ox + o,
                            sy.mean_term.data() + oy + o, sx.var_term.data() + ox + o, sy.var_term.data() + oy + o,
                            wv, w);
    }
  }
  return total / static_cast<double>(g.channels * hv * wv);
}

// Better = larger SSIM, then smaller real index: a total order, so the top-k is independent of
// the order in which threads visit the pairs.
inline bool better(double value, int64_t index, double other_value, int64_t other_index) {
  return value > other_value || (value == other_value && index < other_index);
}

// Insert (value, index) into a sorted top-k list of capacity k holding `size` entries.
void topk_insert(double* values, int64_t* indices, int64_t& size, int64_t k, double value, int64_t index) {
  if (size == k && !better(value, index, values[k - 1], indices[k - 1])) return;
  int64_t pos = size < k ? size : k - 1;
  while (pos > 0 && better(value, index, values[pos - 1], indices[pos - 1])) {
    values[pos] = values[pos - 1];
    indices[pos] = indices[pos - 1];
    --pos;
  }
  values[pos] = value;
  indices[pos] = index;
  if (size < k) ++size;
}


// float64 scratch of one thread for image_stats_into (reused: at 256 px each buffer is ~0.5 MB, and fresh
// ones cost page faults and zero-filling on every re-checked candidate).
struct ExactStatsScratch {
  std::vector<double> value, square, column, second;
};

// Float64 statistics of one image into `stats` (storage reused), without opening a parallel region
// (called from inside one). Same arithmetic as ssim_image_stats.
void image_stats_into(SsimImageStats& stats, const float* image, const ImageGeometry& g, const SsimWindow& w,
                      ExactStatsScratch& scratch) {
  const int64_t win = static_cast<int64_t>(w.weights.size());
  stats.count = 1;
  stats.plane = valid_extent(g.height, win) * valid_extent(g.width, win);
  const int64_t total = g.channels * stats.plane, pixels = g.height * g.width;
  stats.mean.resize(total);
  stats.mean_term.resize(total);
  stats.var_term.resize(total);
  scratch.value.resize(pixels);
  scratch.square.resize(pixels);
  scratch.second.resize(stats.plane);
  double* value = scratch.value.data();
  double* square = scratch.square.data();
  double* second = scratch.second.data();
  for (int64_t p = 0; p < g.channels; ++p) {
    double* mean = stats.mean.data() + p * stats.plane;
#if defined(__AVX512F__) && defined(__AVX512VL__)
    // filter_valid of the value and square planes without materialising them (2 x 0.5 MB at 256 px):
    // the vertical tap sums read the float pixels directly. x^2 of a float is exact in float64, so every
    // fused multiply-add gets the same operands in the same order (bit-identical, ~2x faster).
    (void)value;
    (void)square;
    const int64_t width = g.width, wv = valid_extent(width, win);
    const double* wk = w.weights.data();
    scratch.column.resize(2 * width);
    double* col1 = scratch.column.data();
    double* col2 = col1 + width;
    const float* src = image + p * pixels;
    for (int64_t i = 0; i < valid_extent(g.height, win); ++i) {
      int64_t j = 0;
      for (; j + 8 <= width; j += 8) {
        __m512d s1 = _mm512_setzero_pd(), s2 = _mm512_setzero_pd();
        for (int64_t k = 0; k < win; ++k) {
          const __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(src + (i + k) * width + j));
          const __m512d weight = _mm512_set1_pd(wk[k]);
          s1 = _mm512_fmadd_pd(weight, v, s1);
          s2 = _mm512_fmadd_pd(weight, _mm512_mul_pd(v, v), s2);
        }
        _mm512_storeu_pd(col1 + j, s1);
        _mm512_storeu_pd(col2 + j, s2);
      }
      for (; j < width; ++j) {
        double s1 = 0.0, s2 = 0.0;
        for (int64_t k = 0; k < win; ++k) {
          const double v = src[(i + k) * width + j], v2 = v * v;
          s1 = std::fma(wk[k], v, s1);
          s2 = std::fma(wk[k], v2, s2);
        }
        col1[j] = s1;
        col2[j] = s2;
      }
      tap_sums(col1, 1, wk, win, wv, mean + i * wv);
      tap_sums(col2, 1, wk, win, wv, second + i * wv);
    }
#else
    for (int64_t q = 0; q < pixels; ++q) {
      value[q] = image[p * pixels + q];
      square[q] = value[q] * value[q];
    }
    filter_valid(value, g.height, g.width, w.weights, mean, scratch.column);
    filter_valid(square, g.height, g.width, w.weights, second, scratch.column);
#endif
    for (int64_t q = 0; q < stats.plane; ++q) {
      stats.mean_term[p * stats.plane + q] = mean[q] * mean[q] + 0.5 * w.c1;
      stats.var_term[p * stats.plane + q] = w.covariance_scale * (second[q] - mean[q] * mean[q]) + 0.5 * w.c2;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Phase 1: float32 fast path with a rigorous error bound.
//
// In float32 (unit roundoff u = 2^-24) the cross term E[xy] is a sum of win^2 non-negative products
// through at most n_E roundings, so |dE| <= n_E u E[xy]. n_E = 2 win + 3 for the portable kernel (the product,
// win fused multiply-adds down and win across, the float weights of both directions; the box window: 2 (win - 1)
// adds, 1/win^2 and its product), kBox7CrossRoundings for the AVX-512 box-7 kernel. The stored float means
// and their product add <= 3u mu_x mu_y, and the rounding of cov = E[xy] - mu_x mu_y adds
// u |cov| <= u max(E[xy], mu_x mu_y) (both terms are >= 0).
// Both E[xy] and mu_x mu_y are <= (E[x^2] + E[y^2]) / 2 (Cauchy-Schwarz), and S = A1 A2 / (B1 B2) with
// 0 < A1 <= B1, so the error through A2 = 2 s cov + C2 is at most
//   2 s |dcov| / B2 <= (n_E + 4) u s (E[x^2] + E[y^2]) / B2
//                   <= (n_E + 4) u s (E[x^2]/var_term_x + E[y^2]/var_term_y)      (B2 >= each var_term),
// whose mean over pixels is (n_E + 4) u s (gain_x + gain_y) with a per-image gain. All other roundings
// are relative errors of |S| <= 1: the stored float means and var_terms (u each), A1 = 2 mu_x mu_y + C1 and
// B1 = mu_x^2 + mu_y^2 + C1 recomputed from the float means (<= 4u each), B2 (2u), the two products and the
// division (3u): < 32u in all; and the float lane sums of the map: each lane adds at most
// max(ceil(Wv / 16), kLaneFlushRows) values of |S| <= 1 before they go to float64 (the portable kernel sums a row
// in 16 lanes, the AVX-512 kernel a strip of 16 columns over <= kLaneFlushRows rows). The bound below doubles all of
// this as a safety margin (it also covers the second-order terms: n u / (1 - n u) for n u < 1e-5).
constexpr double kUnit = 1.0 / 16777216.0;  // 2^-24
constexpr double kHuge = 1e300;
constexpr int64_t kSynBlock = 4, kRealBlock = 4, kBandRows = 16;
// Rows per band of the AVX-512 kernel: each 16-column strip of a band first sums 6 rows ahead, so taller
// bands amortise that. Row-major statistics: 64 rows measured 10-15% faster than 16 (32: in between);
// strip-major (a strip's band is contiguous): 128 rows +10% and 256 rows +15% over 64 at 256 px.
constexpr int64_t kVectorBandRows = 256;
// The AVX-512 kernel's float lane sums go to float64 every kLaneFlushRows rows of a strip (bounds the
// number of values a float lane adds: error_bound's lane term).
constexpr int64_t kLaneFlushRows = 64;
constexpr int kLanes = 16;
// Column blocking of a tile's band (AVX-512 kernel): every pair of the tile is scored on a block of
// kColumnBlock output columns before the next block, so the block's rows (~140 KiB for 8 images at 256 px)
// stay in L2 while the 16 pairs use them. It pays only when the tile's band data (images and statistics)
// does not fit in L2; measured on Zen 4 (1 MiB L2, 1 thread, 64-row bands): +30% at 256 px (1.6 MiB per
// tile band), -4% at 128 px (0.8 MiB), hence the threshold.
constexpr int64_t kColumnBlock = 16;
constexpr int64_t kColumnBlockAboveBytes = int64_t{1} << 20;

// Roundings of a term of E[xy] in the AVX-512 box-7 kernel (n_E above; derivation at box7_strip_sums): product
// 1, horizontal 7-sum 4, vertical 7-sum 3, the float constant 1/49 1 (the division by 49 and the subtraction of
// mu_x mu_y are one fused multiply-add, whose rounding is the u |cov| term).
constexpr double kBox7CrossRoundings = 9.0;
bool uses_box7_kernel(const SsimWindow& w);

double error_bound(double gain_x, double gain_y, const SsimWindow& w, int64_t valid_width) {
  const double win = static_cast<double>(w.weights.size());
  const double cross_roundings = uses_box7_kernel(w) ? kBox7CrossRoundings : 2.0 * win + 3.0;
  const int64_t row_lanes = (valid_width + kLanes - 1) / kLanes;
  const double lane_terms = static_cast<double>(std::max<int64_t>(row_lanes, kLaneFlushRows));
  return 2.0 * ((cross_roundings + 4.0) * kUnit * w.covariance_scale * (gain_x + gain_y) +
                (32.0 + lane_terms) * kUnit);
}

// Uninitialised float storage in 2 MiB-aligned blocks advised as transparent huge pages: the statistics of
// a chunk are ~100 MB written once per scan, and first-touch faults on 4 KiB pages took ~10-20% of a
// 256 px scan.
struct HugeBlock {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data;
  size_t capacity = 0;  // floats
  // Reuses the block when it is large enough (the real set's chunks share one block: fresh pages are
  // zeroed by the kernel, a visible cost of a 256 px scan).
  float* allocate(int64_t count) {
    if (data && static_cast<size_t>(count) <= capacity) return data.get();
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t bytes = (static_cast<size_t>(count) * sizeof(float) + kHuge - 1) / kHuge * kHuge;
    data.reset();
    data.reset(static_cast<float*>(std::aligned_alloc(kHuge, bytes)));
    capacity = data ? bytes / sizeof(float) : 0;
    if (!data) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    madvise(data.get(), bytes, MADV_HUGEPAGE);  // advice only: failure just means 4 KiB pages
#endif
    return data.get();
  }
};

// Row stride of the float32 statistics: the valid width rounded up to whole vectors, so that every row
// starts 64-byte aligned and a vector of outputs never straddles two rows (padding lanes hold mean 0,
// var_term 1 and are masked out of every sum).
int64_t stats_stride(int64_t valid_width) { return (valid_width + kLanes - 1) / kLanes * kLanes; }

// True when fast_tile_scores runs the AVX-512 box-7 kernel (uniform 7x7 window on an AVX-512 build).
bool uses_box7_kernel(const SsimWindow& w) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
  return is_box(w.weights) && w.weights.size() == 7;
#else
  (void)w;
  return false;
#endif
}

struct FastStats {
  int64_t stride = 0;  // floats per row (stats_stride)
  int64_t plane = 0;   // Hv * stride
  // Layout of a plane: row-major [Hv, stride] (portable kernel), or strip-major [stride / 16, Hv, 16]
  // (AVX-512 box-7 kernel): a band of one 16-column strip is then one contiguous run of memory, which
  // the hardware prefetchers stream, where row-major strips touch one line per 1 KiB row (256 px).
  // Element (i, j) is at (j / 16) * strip_step + i * row_step + j % 16.
  bool strips = false;
  int64_t row_step = 0, strip_step = 0;
  // Strip-major layout only: the pixels, copied as [C, W / 16 + 1 strips, H, 16] (zero past the width and
  // one all-zero strip at the end, so the kernel loads whole vectors without masks).
  float* pixels = nullptr;
  int64_t pixel_plane = 0;  // floats per channel plane of `pixels`
  // [count, C, Hv, stride], two views of one uninitialised block (every element is written): zero-filling
  // ~100 MB chunks cost as much as the statistics themselves. mu^2 + C1/2 is not stored: the pair kernel
  // recomputes it from mu with one fma, cheaper than loading it.
  HugeBlock block;
  float* mean = nullptr;
  float* var_term = nullptr;
  std::vector<double> gain;  // [count]: mean of E[x^2] / var_term (error bound)
};

// Local mean and second moment E[x^2] of one float32 plane over the valid region, float64 [Hv, Wv].
// Vertical box-window sums of x and x^2 in float64, one per column, for output row i: row 0 sums its `win`
// rows, later rows slide (add the new row, drop the old one). col1, col2: [width], kept between rows.
inline void box_column_sums(const float* __restrict src, int64_t i, int64_t win, int64_t width,
                            double* __restrict col1, double* __restrict col2) {
  if (i > 0) {
    const float* __restrict add = src + (i + win - 1) * width;
    const float* __restrict drop = src + (i - 1) * width;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) {
      const double a = add[j], d = drop[j];
      col1[j] += a - d;
      col2[j] += a * a - d * d;
    }
    return;
  }
  for (int64_t j = 0; j < width; ++j) col1[j] = col2[j] = 0.0;
  for (int64_t k = 0; k < win; ++k) {
    const float* __restrict row = src + k * width;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) {
      const double v = row[j];
      col1[j] += v;
      col2[j] += v * v;
    }
  }
}

// Box window: vertical window sums slide down the rows (add the new row, drop the old one); the float64
// drift over a plane is ~H * 1e-16 absolute, below 1e-9 of C2/2 and so far below the float32 rounding
// that error_bound accounts for. Other windows: direct weighted sums. col1, col2: [width] scratch.
// WIN > 0: the window length known at compile time (unrolled tap loops), else weights.size().
template <int WIN, bool BOX>
void plane_moments(const float* __restrict src, int64_t height, int64_t width, const std::vector<double>& weights,
                   double* __restrict mean, double* __restrict second, double* __restrict col1,
                   double* __restrict col2) {
  const int64_t win = WIN > 0 ? WIN : static_cast<int64_t>(weights.size());
  const int64_t hv = valid_extent(height, win), wv = valid_extent(width, win);
  const double* __restrict wk = weights.data();
  const double area = BOX ? 1.0 / static_cast<double>(win * win) : 1.0;
  for (int64_t i = 0; i < hv; ++i) {
    if (BOX) {
      box_column_sums(src, i, win, width, col1, col2);
    } else {
      for (int64_t j = 0; j < width; ++j) col1[j] = col2[j] = 0.0;
      for (int64_t k = 0; k < win; ++k) {
        const float* __restrict row = src + (i + k) * width;
        const double weight = wk[k];
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) {
          const double v = row[j];
          col1[j] += weight * v;
          col2[j] += weight * (v * v);
        }
      }
    }
    double* __restrict m = mean + i * wv;
    double* __restrict e = second + i * wv;
#pragma omp simd
    for (int64_t j = 0; j < wv; ++j) {
      double s1 = 0.0, s2 = 0.0;
      for (int64_t k = 0; k < win; ++k) {
        const double weight = BOX ? 1.0 : wk[k];
        s1 += weight * col1[j + k];
        s2 += weight * col2[j + k];
      }
      m[j] = s1 * area;
      e[j] = s2 * area;
    }
  }
}

// Sizes `stats` for `count` images (reusing its storage); fill_plane_stats then fills the planes.
void prepare_stats(FastStats& stats, int64_t count, const ImageGeometry& g, const SsimWindow& w) {
  const int64_t win = static_cast<int64_t>(w.weights.size());
  const int64_t hv = valid_extent(g.height, win);
  stats.stride = stats_stride(valid_extent(g.width, win));
  stats.plane = hv * stats.stride;
  stats.strips = uses_box7_kernel(w);
  stats.row_step = stats.strips ? kLanes : stats.stride;
  stats.strip_step = stats.strips ? hv * kLanes : kLanes;
  stats.pixel_plane = stats.strips ? (g.width / kLanes + 1) * g.height * kLanes : 0;
  const int64_t total = count * g.channels * stats.plane;
  stats.mean = stats.block.allocate(2 * total + count * g.channels * stats.pixel_plane);
  stats.var_term = stats.mean + total;
  stats.pixels = stats.strips ? stats.var_term + total : nullptr;
  stats.gain.assign(count, 0.0);
}

// float64 scratch of one thread for fill_plane_stats.
struct StatsScratch {
  std::vector<double> columns;  // [2, width]: vertical window sums of x and x^2
  std::vector<double> moments;  // [2, Hv * Wv]: local mean and E[x^2]
  StatsScratch(const ImageGeometry& g, int64_t win)
      : columns(2 * g.width), moments(2 * valid_extent(g.height, win) * valid_extent(g.width, win)) {}
};

#if defined(__AVX512F__) && defined(__AVX512VL__)
// The pixels of channel plane p into stats.pixels, strip-major, zero-padded (row by row: sequential reads).
void copy_pixels_to_strips(FastStats& stats, int64_t p, const float* pixels, const ImageGeometry& g) {
  float* dst = stats.pixels + p * stats.pixel_plane;
  const int64_t strips = g.width / kLanes + 1;
  for (int64_t r = 0; r < g.height; ++r) {
    const float* src = pixels + r * g.width;
    for (int64_t t = 0; t < strips; ++t) {
      const __mmask16 in = t * kLanes >= g.width ? 0 : g.width - t * kLanes >= kLanes
                               ? static_cast<__mmask16>(0xFFFF)
                               : static_cast<__mmask16>((1u << (g.width - t * kLanes)) - 1u);
      _mm512_store_ps(dst + (t * g.height + r) * kLanes, _mm512_maskz_loadu_ps(in, src + std::min(t * kLanes, g.width)));
    }
  }
}

// Lanes n..n+7 of the 16-lane vector hi:lo (valignq).
template <int N>
inline __m512d shifted_pd(__m512d lo, __m512d hi) {
  return _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(hi), _mm512_castpd_si512(lo), N));
}

// Lanes [0, count) of 8 (count clamped to [0, 8]).
inline __mmask8 first_valid8(int64_t count) {
  if (count <= 0) return 0;
  return count >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << count) - 1u);
}
#endif

#if defined(__AVX512F__) && defined(__AVX512VL__)
// fill_plane_stats' statistics for the box-7 kernel (strip-major): plane_moments<7, true>'s sliding column
// sums, then per output row the horizontal 7-sums (same left-to-right float64 adds, 8 outputs per
// register) fused with the float conversion, straight into the strips. The two-pass version wrote and
// re-read 1 MB of float64 moments per 256 px plane (~100 of its ~140 us). Returns the sum over the valid
// pixels of E[x^2] / var_term.
double box7_plane_stats(FastStats& stats, int64_t p, const float* __restrict src, const ImageGeometry& g,
                        const SsimWindow& w, StatsScratch& scratch) {
  constexpr int64_t win = 7;
  const int64_t width = g.width, hv = valid_extent(g.height, win), wv = valid_extent(width, win);
  double* __restrict col1 = scratch.columns.data();
  double* __restrict col2 = col1 + width;
  const __m512d area = _mm512_set1_pd(1.0 / 49.0), scale = _mm512_set1_pd(w.covariance_scale);
  const __m512d half_c2 = _mm512_set1_pd(0.5 * w.c2);
  __m512d gain = _mm512_setzero_pd();
  for (int64_t i = 0; i < hv; ++i) {
    box_column_sums(src, i, win, width, col1, col2);
    for (int64_t j = 0; j < stats.stride; j += 8) {
      // The 7 shifted operands from two loads and lane shifts (valignq): unaligned loads of each shift were
      // 28 512-bit loads per 8 outputs, the load ports' limit.
      const __mmask8 valid = first_valid8(wv - j), next = first_valid8(width - j - 8);
      const __m512d lo1 = _mm512_maskz_loadu_pd(first_valid8(width - j), col1 + j);
      const __m512d hi1 = _mm512_maskz_loadu_pd(next, col1 + j + 8);
      const __m512d lo2 = _mm512_maskz_loadu_pd(first_valid8(width - j), col2 + j);
      const __m512d hi2 = _mm512_maskz_loadu_pd(next, col2 + j + 8);
      __m512d s1 = lo1, s2 = lo2;
      s1 = _mm512_add_pd(s1, shifted_pd<1>(lo1, hi1)), s2 = _mm512_add_pd(s2, shifted_pd<1>(lo2, hi2));
      s1 = _mm512_add_pd(s1, shifted_pd<2>(lo1, hi1)), s2 = _mm512_add_pd(s2, shifted_pd<2>(lo2, hi2));
      s1 = _mm512_add_pd(s1, shifted_pd<3>(lo1, hi1)), s2 = _mm512_add_pd(s2, shifted_pd<3>(lo2, hi2));
      s1 = _mm512_add_pd(s1, shifted_pd<4>(lo1, hi1)), s2 = _mm512_add_pd(s2, shifted_pd<4>(lo2, hi2));
      s1 = _mm512_add_pd(s1, shifted_pd<5>(lo1, hi1)), s2 = _mm512_add_pd(s2, shifted_pd<5>(lo2, hi2));
      s1 = _mm512_add_pd(s1, shifted_pd<6>(lo1, hi1)), s2 = _mm512_add_pd(s2, shifted_pd<6>(lo2, hi2));
      const __m512d mean = _mm512_mul_pd(s1, area), second = _mm512_mul_pd(s2, area);
      const __m512d var_term = _mm512_fmadd_pd(scale, _mm512_fnmadd_pd(mean, mean, second), half_c2);
      // variance >= 0 up to rounding
      gain = _mm512_mask_add_pd(gain, valid, gain, _mm512_div_pd(second, _mm512_max_pd(var_term, half_c2)));
      const int64_t at = p * stats.plane + (j / kLanes) * stats.strip_step + i * stats.row_step + j % kLanes;
      // padding lanes: mean 0, var_term 1
      _mm256_store_ps(stats.mean + at, _mm512_cvtpd_ps(_mm512_maskz_mov_pd(valid, mean)));
      _mm256_store_ps(stats.var_term + at,
                      _mm512_cvtpd_ps(_mm512_mask_mov_pd(_mm512_set1_pd(1.0), valid, var_term)));
    }
  }
  return _mm512_reduce_add_pd(gain);
}
#endif

// Statistics of channel plane p of `stats` from its pixels [H, W]; returns the plane's mean of
// E[x^2] / var_term (its share of the error-bound gain).
double fill_plane_stats(FastStats& stats, int64_t p, const float* pixels, const ImageGeometry& g, const SsimWindow& w,
                        StatsScratch& scratch) {
  const int64_t win = static_cast<int64_t>(w.weights.size());
  const int64_t hv = valid_extent(g.height, win), wv = valid_extent(g.width, win);
#if defined(__AVX512F__) && defined(__AVX512VL__)
  if (stats.strips) {
    copy_pixels_to_strips(stats, p, pixels, g);
    return box7_plane_stats(stats, p, pixels, g, w, scratch) / static_cast<double>(hv * wv);
  }
#endif
  const bool box = is_box(w.weights);
  const auto moments = box ? (win == 7 ? &plane_moments<7, true> : &plane_moments<0, true>)
                           : (win == 11 ? &plane_moments<11, false> : &plane_moments<0, false>);
  double* mean = scratch.moments.data();
  double* second = mean + hv * wv;
  moments(pixels, g.height, g.width, w.weights, mean, second, scratch.columns.data(), scratch.columns.data() + g.width);
  double gain = 0.0;
  for (int64_t i = 0; i < hv; ++i) {
    const double* mi = mean + i * wv;
    const double* si = second + i * wv;
    float* m = stats.mean + p * stats.plane + i * stats.row_step;  // row-major (the strip-major layout
    float* vt = stats.var_term + p * stats.plane + i * stats.row_step;  // is filled above)
#pragma omp simd reduction(+ : gain)
    for (int64_t j = 0; j < wv; ++j) {
      const double var_term = w.covariance_scale * (si[j] - mi[j] * mi[j]) + 0.5 * w.c2;
      m[j] = static_cast<float>(mi[j]);
      vt[j] = static_cast<float>(var_term);
      gain += si[j] / std::max(var_term, 0.5 * w.c2);  // variance >= 0 up to rounding
    }
    for (int64_t j = wv; j < stats.stride; ++j) {
      m[j] = 0.0f;
      vt[j] = 1.0f;
    }
  }
  return gain / static_cast<double>(hv * wv);
}

// gain of each image = mean over its channels of the planes' gains.
void sum_channel_gains(FastStats& stats, const std::vector<double>& plane_gain, int64_t channels) {
  for (size_t p = 0; p < plane_gain.size(); ++p)
    stats.gain[p / channels] += plane_gain[p] / static_cast<double>(channels);
}

// Fills `stats` (reusing its storage) with the statistics of `count` images, serially (inside a parallel
// region), with the caller's scratch.
void fast_stats_into_serial(FastStats& stats, const float* images, int64_t count, const ImageGeometry& g,
                            const SsimWindow& w, StatsScratch& scratch) {
  prepare_stats(stats, count, g, w);
  const int64_t planes = count * g.channels, pixels = g.height * g.width;
  std::vector<double> plane_gain(planes);
  for (int64_t p = 0; p < planes; ++p) plane_gain[p] = fill_plane_stats(stats, p, images + p * pixels, g, w, scratch);
  sum_channel_gains(stats, plane_gain, g.channels);
}

struct FastWorkspace {
  std::vector<float> products;  // [kBandRows + win - 1, width]
  std::vector<float> column;    // [width]
  std::vector<float> weights;   // [win]
};

// Sum of the SSIM map over output rows [i0, i1) of one channel plane, float32.
template <int WIN, bool BOX>
double band_sum(const float* __restrict x, const float* __restrict y, int64_t width, int64_t wv, int64_t stride,
                int64_t i0, int64_t i1, int runtime_win, const float* __restrict mx, const float* __restrict my,
                const float* __restrict vtx, const float* __restrict vty, const SsimWindow& w, FastWorkspace& ws) {
  const int win = WIN > 0 ? WIN : runtime_win;
  const int64_t rows = i1 - i0 + win - 1;
  float* __restrict products = ws.products.data();
  float* __restrict col = ws.column.data();
  const float* __restrict weights = ws.weights.data();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + (i0 + r) * width;
    const float* yr = y + (i0 + r) * width;
    float* pr = products + r * width;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) pr[j] = xr[j] * yr[j];
  }
  const float c1 = static_cast<float>(w.c1), c2 = static_cast<float>(w.c2);
  const float scale2 = static_cast<float>(2.0 * w.covariance_scale);
  const float inv_area = static_cast<float>(1.0 / (static_cast<double>(win) * win));
  double total = 0.0;
  for (int64_t i = i0; i < i1; ++i) {
    const float* base = products + (i - i0) * width;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) {
      float c = 0.0f;
      for (int k = 0; k < win; ++k) c += (BOX ? 1.0f : weights[k]) * base[k * width + j];
      col[j] = c;
    }
    const int64_t o = i * stride;
    // S in float32, summed in kLanes float accumulators (each adds <= ceil(wv / kLanes) terms: bounded
    // rounding, see error_bound), then in float64 once per row.
    float lanes[kLanes] = {};
    double sum = 0.0;
    auto group = [&](int64_t start, float* __restrict out, bool accumulate) {
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) {
        const int64_t j = start + l;
        float e = 0.0f;
        for (int k = 0; k < win; ++k) e += (BOX ? 1.0f : weights[k]) * col[j + k];
        if (BOX) e *= inv_area;
        const float mxy = mx[o + j] * my[o + j];
        const float a1 = 2.0f * mxy + c1;
        const float a2 = scale2 * (e - mxy) + c2;
        const float b1 = mx[o + j] * mx[o + j] + (my[o + j] * my[o + j] + c1);
        const float b2 = vtx[o + j] + vty[o + j];
        const float value = (a1 * a2) / (b1 * b2);
        out[l] = accumulate ? out[l] + value : value;
      }
    };
    if (wv >= kLanes) {
      int64_t j0 = 0;
      for (; j0 + kLanes <= wv; j0 += kLanes) group(j0, lanes, true);
      if (j0 < wv) {
        // No scalar tail: the last group is shifted left to end at wv and only its lanes past the previous
        // group are added, so each lane still adds <= ceil(wv / kLanes) terms.
        float last[kLanes];
        group(wv - kLanes, last, false);
        for (int l = static_cast<int>(j0 - (wv - kLanes)); l < kLanes; ++l) lanes[l] += last[l];
      }
    } else {
      for (int64_t j = 0; j < wv; ++j) {
        float e = 0.0f;
        for (int k = 0; k < win; ++k) e += (BOX ? 1.0f : weights[k]) * col[j + k];
        if (BOX) e *= inv_area;
        const float mxy = mx[o + j] * my[o + j];
        sum += static_cast<double>(((2.0f * mxy + c1) * (scale2 * (e - mxy) + c2)) /
                                   ((mx[o + j] * mx[o + j] + (my[o + j] * my[o + j] + c1)) *
                                    (vtx[o + j] + vty[o + j])));
      }
    }
    for (int l = 0; l < kLanes; ++l) sum += lanes[l];
    total += sum;
  }
  return total;
}

#if defined(__AVX512F__) && defined(__AVX512VL__)
// Lanes n..n+15 of the 32-lane vector hi:lo (valignd).
template <int N>
inline __m512 lanes_from(__m512 lo, __m512 hi) {
  return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), N));
}

// The first `count` lanes (count clamped to [0, 16]).
inline __mmask16 first_lanes(int64_t count) {
  if (count <= 0) return 0;
  return count >= kLanes ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1u);
}

// Sum of the 16 float lanes in float64 (each lane converted exactly, then added in float64).
inline double lane_sum_f64(__m512 v) {
  const __m512d low = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  const __m512d high = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  return _mm512_reduce_add_pd(_mm512_add_pd(low, high));
}

// Sums of S over output rows [i0, i1) and columns [j_begin, j_end) of one channel plane: synthetic x
// against R real planes y[0..R-1] at once (statistics mx, vtx of x; my[r], vty[r] of y[r]), added to
// *sums[0..R-1]. Against R reals, x, its statistics and mu_x^2 + C1 are loaded or computed once per R
// pairs, and the R independent dependency chains keep the FP units busy.
// The band is walked in strips of 16 output columns and, within a strip, down the rows with the window
// sums held in registers: horizontal 7-sums of each input row's products first (16 sums need the
// products at columns 0..21: lo = 0..15, hi = 16..21, the other hi lanes are loaded as 0 and never used;
// D2 = P + P<<1, D4 = D2 + D2<<2, H = (D4 + D2<<4) + P<<6, <<n: lanes n.. of hi:lo), then vertical 7-sums
// of those with Q_r = H_r + H_{r+1}: V_i = (Q_i + Q_{i+2}) + (Q_{i+4} + H_{i+6}).
// Rounding: every term of the 49-term window sum goes through <= 1 + 4 + 3 roundings (product, horizontal,
// vertical: a term of P<<0 passes D2, D4 and both adds of H; of H_i, Q_i and both adds of V), and the float
// constant 1/49 is off by <= u: kBox7CrossRoundings = 9 in error_bound; (window sum) / 49 - mu_x mu_y is one
// fused multiply-add, rounded once (the u |cov| term there). B1 = (mu_x^2 + C1) + mu_y^2 in two roundings.
// Each lane accumulates <= kLaneFlushRows values of S before the float64 sum (error_bound's lane term). Lanes
// past the valid width are masked out of the sum.
// Pixels and statistics are strip-major (FastStats::strips): x, y[r] are planes of strips of `height` rows
// of 16 pixels, zero past the width (so whole vectors are loaded; the products past the width are 0 and
// only reach masked-out lanes); mx, vtx, my[r], vty[r] planes of strips of Hv rows of 16.
template <int R>
void box7_strip_sums(const float* __restrict x, const float* const* y, int64_t height, int64_t wv, int64_t hv,
                     int64_t i0, int64_t i1, int64_t j_begin, int64_t j_end, const float* __restrict mx,
                     const float* __restrict vtx, const float* const* my, const float* const* vty,
                     const SsimWindow& w, double* const* sums) {
  const __m512 c1 = _mm512_set1_ps(static_cast<float>(w.c1)), c2 = _mm512_set1_ps(static_cast<float>(w.c2));
  const __m512 scale2 = _mm512_set1_ps(static_cast<float>(2.0 * w.covariance_scale));
  const __m512 inv_area = _mm512_set1_ps(static_cast<float>(1.0 / 49.0)), two = _mm512_set1_ps(2.0f);
  for (int64_t j0 = j_begin; j0 < j_end; j0 += kLanes) {
    const __mmask16 outputs = first_lanes(wv - j0);
    const int64_t pixel_strip = height * kLanes;  // lo: this strip, hi: the next one (exists: zero strip)
    const float* __restrict xs = x + (j0 / kLanes) * pixel_strip;
    const float* ys[R];
    for (int r = 0; r < R; ++r) ys[r] = y[r] + (j0 / kLanes) * pixel_strip;
    // Horizontal 7-sums of the products of input row `row`, one vector per real image.
    auto row_sums = [&](int64_t row, __m512* h) {
      const int64_t o = row * kLanes;
      // hi needs only 6 lanes: it is computed in 256-bit vectors (half the cost of 512-bit ones on Zen 4);
      // the upper lanes of the widened vectors are never shifted into an output lane.
      const __m512 xlo = _mm512_load_ps(xs + o);
      const __m256 xhi = _mm256_load_ps(xs + o + pixel_strip);
      for (int r = 0; r < R; ++r) {
        const __m512 lo = _mm512_mul_ps(xlo, _mm512_load_ps(ys[r] + o));
        const __m256 hi8 = _mm256_mul_ps(xhi, _mm256_load_ps(ys[r] + o + pixel_strip));
        const __m256 d2h8 = _mm256_add_ps(
            hi8, _mm256_castsi256_ps(_mm256_alignr_epi32(_mm256_castps_si256(hi8), _mm256_castps_si256(hi8), 1)));
        const __m512 hi = _mm512_castps256_ps512(hi8), d2h = _mm512_castps256_ps512(d2h8);
        const __m512 d2l = _mm512_add_ps(lo, lanes_from<1>(lo, hi));
        const __m512 d4l = _mm512_add_ps(d2l, lanes_from<2>(d2l, d2h));
        h[r] = _mm512_add_ps(_mm512_add_ps(d4l, lanes_from<4>(d2l, d2h)), lanes_from<6>(lo, hi));
      }
    };
    // Vertical state for the next output row i: Q_i .. Q_{i+4} and H_{i+5}.
    __m512 q0[R], q1[R], q2[R], q3[R], q4[R], h5[R];
    {
      __m512 h[6][R];
      for (int k = 0; k < 6; ++k) row_sums(i0 + k, h[k]);
      for (int r = 0; r < R; ++r) {
        q0[r] = _mm512_add_ps(h[0][r], h[1][r]), q1[r] = _mm512_add_ps(h[1][r], h[2][r]);
        q2[r] = _mm512_add_ps(h[2][r], h[3][r]), q3[r] = _mm512_add_ps(h[3][r], h[4][r]);
        q4[r] = _mm512_add_ps(h[4][r], h[5][r]), h5[r] = h[5][r];
      }
    }
    // Window sums of output row i, for i = i0, i0 + 1, ... in order (it slides the vertical state down).
    auto next_window_sums = [&](int64_t i, __m512* sum) {
      __m512 h6[R];
      row_sums(i + 6, h6);
      for (int r = 0; r < R; ++r) {
        sum[r] = _mm512_add_ps(_mm512_add_ps(q0[r], q2[r]), _mm512_add_ps(q4[r], h6[r]));
        q0[r] = q1[r], q1[r] = q2[r], q2[r] = q3[r], q3[r] = q4[r], q4[r] = _mm512_add_ps(h5[r], h6[r]);
        h5[r] = h6[r];
      }
    };
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    // Adds S of output row i, from its window sums, to acc.
    auto accumulate_ssim = [&](int64_t i, const __m512* window_sum) {
      const int64_t o = (j0 / kLanes) * hv * kLanes + i * kLanes;  // strip-major, 64-byte aligned
      const __m512 ux = _mm512_load_ps(mx + o), vx = _mm512_load_ps(vtx + o);
      const __m512 mean_term_x = _mm512_fmadd_ps(ux, ux, c1);
      for (int r = 0; r < R; ++r) {
        const __m512 uy = _mm512_load_ps(my[r] + o);
        const __m512 mxy = _mm512_mul_ps(ux, uy);
        const __m512 a1 = _mm512_fmadd_ps(two, mxy, c1);
        // cov = E[xy] - mu_x mu_y in one rounding (window sum / 49 is not rounded on its own)
        const __m512 cov = _mm512_fmsub_ps(window_sum[r], inv_area, mxy);
        const __m512 a2 = _mm512_fmadd_ps(scale2, cov, c2);
        const __m512 b1 = _mm512_fmadd_ps(uy, uy, mean_term_x);
        const __m512 b2 = _mm512_add_ps(vx, _mm512_load_ps(vty[r] + o));
        const __m512 value = _mm512_div_ps(_mm512_mul_ps(a1, a2), _mm512_mul_ps(b1, b2));
        acc[r] = _mm512_mask_add_ps(acc[r], outputs, acc[r], value);
      }
    };
    // Software-pipelined by one row: the window sums of row i + 1 are issued before S of row i, so the
    // long dependency chain of one row (loads, sums, division) does not stall the next.
    __m512 current[R], next[R];
    next_window_sums(i0, current);
    for (int64_t i = i0; i + 1 < i1; ++i) {
      next_window_sums(i + 1, next);
      accumulate_ssim(i, current);
      for (int r = 0; r < R; ++r) current[r] = next[r];
      if ((i - i0) % kLaneFlushRows == kLaneFlushRows - 1) {  // bounded lane sums (error_bound)
        for (int r = 0; r < R; ++r) {
          *sums[r] += lane_sum_f64(acc[r]);
          acc[r] = _mm512_setzero_ps();
        }
      }
    }
    accumulate_ssim(i1 - 1, current);
    for (int r = 0; r < R; ++r) *sums[r] += lane_sum_f64(acc[r]);
  }
}

// fast_tile_scores for the 7x7 box window with AVX-512: per band of rows and block of columns, every
// synthetic image of the tile against the real images two at a time. Reads the strip-major pixel copies
// held by the statistics (ss.pixels, rs.pixels).
// Abandoning: S <= 1 at every output (A1 <= B1, A2 <= B2), so after a block a pair's mean SSIM is at most (its
// partial sum + the number of outputs left) / N plus the error bound of its float32 sum, which bounds the error
// of any part of the sum (the per-output terms of error_bound are >= 0). A pair whose upper bound falls below
// limits[pair] = (the k-th best lower bound of its synthetic image) - (its error bound) cannot be in the top-k:
// it is not scored further and its score is -infinity. limits may be null (no abandoning). Not for small images
// (one column block, block == wv): their last block is their only one. On the 256 px 32 x 256 benchmark (natural
// photographs, SSIM 0.04-0.46) 78% of the pairs stop in their last strips: 13% of the pair-blocks are skipped.
void box7_tile_scores(int64_t sa, int64_t sb, const FastStats& ss, int64_t ra, int64_t rb, const FastStats& rs,
                      const ImageGeometry& g, const SsimWindow& w, const double* limits, double* scores) {
  constexpr int64_t win = 7;
  const int64_t width = g.width, hv = valid_extent(g.height, win), wv = valid_extent(g.width, win);
  const int64_t band_bytes = static_cast<int64_t>(sizeof(float)) * (kSynBlock + kRealBlock) *
                             ((kVectorBandRows + win - 1) * width + 2 * kVectorBandRows * ss.stride);
  const int64_t block = band_bytes > kColumnBlockAboveBytes ? kColumnBlock : wv;
  const int64_t outputs = g.channels * hv * wv;
  const double norm = 1.0 / static_cast<double>(outputs);
  bool abandoned[kSynBlock * kRealBlock] = {};
  for (int64_t c = 0; c < g.channels; ++c) {
    for (int64_t i0 = 0; i0 < hv; i0 += kVectorBandRows) {
      const int64_t i1 = std::min(hv, i0 + kVectorBandRows);
      for (int64_t j0 = 0; j0 < wv; j0 += block) {
        const int64_t j1 = std::min(wv, j0 + block);
        const double left = static_cast<double>(outputs - ((c * hv + i0) * wv + (i1 - i0) * j1));
        for (int64_t s = sa; s < sb; ++s) {
          const float* x = ss.pixels + (s * g.channels + c) * ss.pixel_plane;
          const int64_t os = (s * g.channels + c) * ss.plane;
          int64_t live[kRealBlock];
          int count = 0;
          for (int64_t r = ra; r < rb; ++r)
            if (!abandoned[(s - sa) * kRealBlock + (r - ra)]) live[count++] = r;
          for (int k0 = 0; k0 < count; k0 += 2) {
            const float* y[2];
            const float* my[2];
            const float* vty[2];
            double* sums[2];
            const int reals = std::min(2, count - k0);
            for (int k = 0; k < reals; ++k) {
              const int64_t r = live[k0 + k], orr = (r * g.channels + c) * rs.plane;
              y[k] = rs.pixels + (r * g.channels + c) * rs.pixel_plane;
              my[k] = rs.mean + orr;
              vty[k] = rs.var_term + orr;
              sums[k] = scores + (s - sa) * kRealBlock + (r - ra);
            }
            if (reals == 2)
              box7_strip_sums<2>(x, y, g.height, wv, hv, i0, i1, j0, j1, ss.mean + os, ss.var_term + os, my, vty,
                                 w, sums);
            else
              box7_strip_sums<1>(x, y, g.height, wv, hv, i0, i1, j0, j1, ss.mean + os, ss.var_term + os, my, vty,
                                 w, sums);
          }
          if (limits == nullptr || left == 0.0) continue;
          for (int k = 0; k < count; ++k) {
            const int64_t q = (s - sa) * kRealBlock + (live[k] - ra);
            // the margin covers the float64 roundings of this test (~1e-15)
            if ((scores[q] + left) * norm < limits[q] - 1e-12) abandoned[q] = true;
          }
        }
      }
    }
  }
  for (int64_t q = 0; q < kSynBlock * kRealBlock; ++q)
    if (abandoned[q]) scores[q] = -std::numeric_limits<double>::infinity();
}
#endif

using BandFn = double (*)(const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                          const float*, const float*, const float*, const float*, const SsimWindow&, FastWorkspace&);

BandFn pick_band_fn(const SsimWindow& w) {
  const bool box = is_box(w.weights);
  const size_t win = w.weights.size();
  if (box && win == 7) return &band_sum<7, true>;
  if (!box && win == 11) return &band_sum<11, false>;
  return box ? &band_sum<0, true> : &band_sum<0, false>;
}

// scores[(s - sa) * kRealBlock + (r - ra)] = float32 mean SSIM of synthetic s and real r (chunk-local
// indices), computed band by band so that the tile's rows stay in L2 while every pair uses them.
void fast_tile_scores(const float* synthetic, int64_t sa, int64_t sb, const FastStats& ss, const float* real,
                      int64_t ra, int64_t rb, const FastStats& rs, const ImageGeometry& g, const SsimWindow& w,
                      FastWorkspace& ws, const double* limits, double* scores) {
  const int win = static_cast<int>(w.weights.size());
  const int64_t width = g.width, hv = valid_extent(g.height, win), wv = valid_extent(g.width, win);
  const int64_t plane_pixels = g.height * g.width, image = g.channels * plane_pixels;
  for (int64_t q = 0; q < kSynBlock * kRealBlock; ++q) scores[q] = 0.0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  const bool vectorised = uses_box7_kernel(w);  // and ss, rs are strip-major (prepare_stats)
  if (vectorised) box7_tile_scores(sa, sb, ss, ra, rb, rs, g, w, limits, scores);
#else
  const bool vectorised = false;
  (void)limits;
#endif
  if (!vectorised) {
    ws.products.resize((kBandRows + win - 1) * width);
    ws.column.resize(width);
    ws.weights.assign(w.weights.begin(), w.weights.end());
    const BandFn band = pick_band_fn(w);
    for (int64_t c = 0; c < g.channels; ++c) {
      for (int64_t i0 = 0; i0 < hv; i0 += kBandRows) {
        const int64_t i1 = std::min(hv, i0 + kBandRows);
        for (int64_t s = sa; s < sb; ++s) {
          const float* x = synthetic + s * image + c * plane_pixels;
          const int64_t os = (s * g.channels + c) * ss.plane;
          for (int64_t r = ra; r < rb; ++r) {
            const float* y = real + r * image + c * plane_pixels;
            const int64_t orr = (r * g.channels + c) * rs.plane;
            scores[(s - sa) * kRealBlock + (r - ra)] +=
                band(x, y, width, wv, ss.stride, i0, i1, win, ss.mean + os, rs.mean + orr, ss.var_term + os,
                     rs.var_term + orr, w, ws);
          }
        }
      }
    }
  }
  const double norm = 1.0 / static_cast<double>(g.channels * hv * wv);
  for (int64_t q = 0; q < kSynBlock * kRealBlock; ++q) scores[q] *= norm;
}

struct Candidate {
  double upper;
  int64_t index;
};

// Keep candidates whose upper bound reaches the (rising) threshold; prune when the list doubles.
void add_candidate(std::vector<Candidate>& list, Candidate c, double threshold, int64_t top_k) {
  list.push_back(c);
  if (list.size() >= static_cast<size_t>(std::max<int64_t>(64, 4 * top_k)) && (list.size() & (list.size() - 1)) == 0) {
    list.erase(std::remove_if(list.begin(), list.end(), [&](const Candidate& q) { return q.upper < threshold; }),
               list.end());
  }
}

}  // namespace

SsimImageStats ssim_image_stats(const float* images, int64_t count, const ImageGeometry& g, const SsimWindow& w) {
  check_arguments(g, w);
  const int64_t win = static_cast<int64_t>(w.weights.size());
  SsimImageStats stats;
  stats.count = count;
  stats.plane = valid_extent(g.height, win) * valid_extent(g.width, win);
  const int64_t total = count * g.channels * stats.plane;
  stats.mean.resize(total);
  stats.mean_term.resize(total);
  stats.var_term.resize(total);
  const int64_t planes = count * g.channels, pixels = g.height * g.width;
#pragma omp parallel
  {
    std::vector<double> value(pixels), square(pixels), column, second(stats.plane);
#pragma omp for schedule(dynamic)
    for (int64_t p = 0; p < planes; ++p) {
      const float* src = images + p * pixels;
      for (int64_t q = 0; q < pixels; ++q) {
        value[q] = src[q];
        square[q] = value[q] * value[q];
      }
      double* mean = stats.mean.data() + p * stats.plane;
      filter_valid(value.data(), g.height, g.width, w.weights, mean, column);
      filter_valid(square.data(), g.height, g.width, w.weights, second.data(), column);
      double* mean_term = stats.mean_term.data() + p * stats.plane;
      double* var_term = stats.var_term.data() + p * stats.plane;
      for (int64_t q = 0; q < stats.plane; ++q) {
        mean_term[q] = mean[q] * mean[q] + 0.5 * w.c1;
        var_term[q] = w.covariance_scale * (second[q] - mean[q] * mean[q]) + 0.5 * w.c2;
      }
    }
  }
  return stats;
}

void ssim_max_scan(const float* synthetic, int64_t n_synthetic, const float* real, int64_t n_real,
                   const ImageGeometry& g, const SsimWindow& w, int64_t top_k, double* top_values,
                   int64_t* top_indices, int64_t* abandoned_pairs) {
  check_arguments(g, w);
  if (n_synthetic < 1 || n_real < 1) throw std::invalid_argument("both image sets must be non-empty");
  if (top_k < 1 || top_k > n_real)
    throw std::invalid_argument("top_k must be in [1, n_real], got " + std::to_string(top_k));
  const int64_t image = g.channels * g.height * g.width;
  const int threads = omp_get_max_threads();
  // Phase 1 state, per thread and synthetic image: top-k of lower bounds, candidates (upper, index).
  std::vector<double> lower_values(static_cast<size_t>(threads) * n_synthetic * top_k);
  std::vector<int64_t> lower_indices(lower_values.size(), -1);
  std::vector<int64_t> lower_sizes(static_cast<size_t>(threads) * n_synthetic, 0);
  std::vector<std::vector<Candidate>> candidates(static_cast<size_t>(threads) * n_synthetic);
  std::vector<int64_t> abandoned(threads, 0);

  // Phase 1 runs in one parallel region per chunk of synthetic images (one region for any q up to the
  // chunk size): a loaded machine that deschedules a thread inside a region stalls the other at its
  // barriers, so the scan has as few barriers as possible. The synthetic chunk's statistics are computed
  // once (planes in parallel); each work item then computes the statistics of one tile of kRealBlock
  // real images into its thread's reused buffer (no large real-set block: its fresh pages cost ~15% of a
  // 256 px scan in page clearing) and scores it against a group of synthetic tiles.
  const int64_t win = static_cast<int64_t>(w.weights.size());
  const int64_t plane_bytes = 2 * sizeof(float) * g.channels * valid_extent(g.height, win) *
                              stats_stride(valid_extent(g.width, win));
  const int64_t chunk = std::max<int64_t>(kSynBlock, (int64_t{128} << 20) / std::max<int64_t>(1, plane_bytes));
  const int64_t real_tiles = (n_real + kRealBlock - 1) / kRealBlock, pixels = g.height * g.width;
  const int64_t wv = valid_extent(g.width, win);
  FastStats syn_stats;
  std::vector<double> plane_gain;
  for (int64_t s0 = 0; s0 < n_synthetic; s0 += chunk) {
    const int64_t ns = std::min(chunk, n_synthetic - s0);
    const float* syn = synthetic + s0 * image;
    prepare_stats(syn_stats, ns, g, w);
    plane_gain.assign(ns * g.channels, 0.0);
    const int64_t syn_tiles = (ns + kSynBlock - 1) / kSynBlock;
    // Synthetic tiles per work item: all of them unless there are too few real tiles to keep every
    // thread busy (then a real tile's statistics are recomputed once per group; they cost about one pair).
    const int64_t groups = std::min(syn_tiles, std::max<int64_t>(1, (4 * threads + real_tiles - 1) / real_tiles));
    const int64_t tiles_per_group = (syn_tiles + groups - 1) / groups;
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      StatsScratch scratch(g, win);
#pragma omp for schedule(dynamic)
      for (int64_t p = 0; p < ns * g.channels; ++p)
        plane_gain[p] = fill_plane_stats(syn_stats, p, syn + p * pixels, g, w, scratch);
#pragma omp single
      sum_channel_gains(syn_stats, plane_gain, g.channels);  // implicit barrier: statistics complete
      FastStats tile_stats;
      FastWorkspace ws;
      double scores[kSynBlock * kRealBlock], limits[kSynBlock * kRealBlock];
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < real_tiles * groups; ++item) {
        const int64_t rt = item / groups, group = item % groups;
        const int64_t ra = rt * kRealBlock, nr = std::min(kRealBlock, n_real - ra);
        const float* tile = real + ra * image;
        fast_stats_into_serial(tile_stats, tile, nr, g, w, scratch);
        const int64_t st_end = std::min(syn_tiles, (group + 1) * tiles_per_group);
        for (int64_t st = group * tiles_per_group; st < st_end; ++st) {
          const int64_t sa = st * kSynBlock, sb = std::min(ns, sa + kSynBlock);
          for (int64_t s = sa; s < sb; ++s) {
            const size_t slot = static_cast<size_t>(t) * n_synthetic + s0 + s;
            const double threshold = lower_sizes[slot] == top_k ? lower_values[slot * top_k + top_k - 1] : -kHuge;
            for (int64_t r = 0; r < nr; ++r) {
              const double bound = error_bound(syn_stats.gain[s], tile_stats.gain[r], w, wv);
              limits[(s - sa) * kRealBlock + r] = threshold - bound;
            }
          }
          fast_tile_scores(syn, sa, sb, syn_stats, tile, 0, nr, tile_stats, g, w, ws, limits, scores);
          for (int64_t s = sa; s < sb; ++s) {
            const size_t slot = static_cast<size_t>(t) * n_synthetic + s0 + s;
            double* lv = lower_values.data() + slot * top_k;
            int64_t* li = lower_indices.data() + slot * top_k;
            for (int64_t r = 0; r < nr; ++r) {
              const double value = scores[(s - sa) * kRealBlock + r];
              if (std::isinf(value)) {  // abandoned: cannot be in the top-k (box7_tile_scores)
                ++abandoned[t];
                continue;
              }
              const double bound = error_bound(syn_stats.gain[s], tile_stats.gain[r], w, wv);
              topk_insert(lv, li, lower_sizes[slot], top_k, value - bound, ra + r);
              const double threshold = lower_sizes[slot] == top_k ? lv[top_k - 1] : -kHuge;
              if (value + bound >= threshold)
                add_candidate(candidates[slot], {value + bound, ra + r}, threshold, top_k);
            }
          }
        }
      }
    }
  }

  if (abandoned_pairs != nullptr) {
    *abandoned_pairs = 0;
    for (const int64_t count : abandoned) *abandoned_pairs += count;
  }

  // Phase 2: the k-th best lower bound over all threads is the threshold; recompute in float64 every
  // candidate whose upper bound reaches it. The exact top-k are among them (see ssim_max.h).
#pragma omp parallel
  {
    PairWorkspace ws;
    ExactStatsScratch scratch;
    SsimImageStats sx, sy;
    std::vector<Candidate> mine;
#pragma omp for schedule(dynamic)
    for (int64_t s = 0; s < n_synthetic; ++s) {
      std::vector<double> best_lower(top_k);
      std::vector<int64_t> best_lower_index(top_k);
      int64_t size = 0;
      for (int t = 0; t < threads; ++t) {
        const size_t slot = static_cast<size_t>(t) * n_synthetic + s;
        for (int64_t q = 0; q < lower_sizes[slot]; ++q)
          topk_insert(best_lower.data(), best_lower_index.data(), size, top_k, lower_values[slot * top_k + q],
                      lower_indices[slot * top_k + q]);
      }
      const double threshold = best_lower[top_k - 1];
      mine.clear();
      for (int t = 0; t < threads; ++t)
        for (const Candidate& c : candidates[static_cast<size_t>(t) * n_synthetic + s])
          if (c.upper >= threshold) mine.push_back(c);
      const float* x = synthetic + s * image;
      image_stats_into(sx, x, g, w, scratch);
      double* values = top_values + s * top_k;
      int64_t* indices = top_indices + s * top_k;
      int64_t filled = 0;
      for (const Candidate& c : mine) {
        const float* y = real + c.index * image;
        image_stats_into(sy, y, g, w, scratch);
        topk_insert(values, indices, filled, top_k, pair_score(x, y, sx, 0, sy, 0, g, w, ws), c.index);
      }
    }
  }
}

bool ssim_max_scan_abandons(const SsimWindow& window) { return uses_box7_kernel(window); }

void ssim_pairs_fast(const float* a, const float* b, int64_t n, const ImageGeometry& g, const SsimWindow& w,
                     double* values, double* bounds) {
  check_arguments(g, w);
  const int64_t image = g.channels * g.height * g.width;
#pragma omp parallel
  {
    FastWorkspace ws;
    StatsScratch scratch(g, static_cast<int64_t>(w.weights.size()));
    FastStats sa, sb;
    double score[kSynBlock * kRealBlock];
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < n; ++i) {
      fast_stats_into_serial(sa, a + i * image, 1, g, w, scratch);
      fast_stats_into_serial(sb, b + i * image, 1, g, w, scratch);
      fast_tile_scores(a + i * image, 0, 1, sa, b + i * image, 0, 1, sb, g, w, ws, nullptr, score);
      values[i] = score[0];
      bounds[i] = error_bound(sa.gain[0], sb.gain[0], w, valid_extent(g.width, static_cast<int64_t>(w.weights.size())));
    }
  }
}

void ssim_pairs(const float* a, const float* b, int64_t n, const ImageGeometry& g, const SsimWindow& w,
                double* values) {
  check_arguments(g, w);
  const SsimImageStats sa = ssim_image_stats(a, n, g, w);
  const SsimImageStats sb = ssim_image_stats(b, n, g, w);
  const int64_t image = g.channels * g.height * g.width;
#pragma omp parallel
  {
    PairWorkspace ws;
#pragma omp for schedule(dynamic)
    for (int64_t i = 0; i < n; ++i) values[i] = pair_score(a + i * image, b + i * image, sa, i, sb, i, g, w, ws);
  }
}

}  // namespace medsyn
