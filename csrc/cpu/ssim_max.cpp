// SSIM-max scan on the CPU (OpenMP). See ssim_max.h for the formula and the data layout.
//
// Cost model: the per-image terms (local mean and variance) are computed once per image; a pair only
// needs the windowed cross term w * (x y). That term is filtered in float64: x and y are float32, so
// x*y is exact in float64, and cov = E[xy] - mu_x mu_y cancels badly in float32 on flat regions
// (an error of 1e-7 in cov moves S by up to 2e-7 / C2 ~ 2e-4 per pixel, far above the 1e-5 target).
#include "cpu/ssim_max.h"

#include <omp.h>

#include <algorithm>
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

// Separable valid-region filter of one float64 plane [height, width] -> [height-win+1, width-win+1].
void filter_valid(const double* in, int64_t height, int64_t width, const std::vector<double>& weights,
                  double* out, std::vector<double>& column) {
  const int64_t win = static_cast<int64_t>(weights.size());
  const int64_t hv = valid_extent(height, win), wv = valid_extent(width, win);
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
    for (int64_t j = 0; j < wv; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < win; ++k) s += weights[k] * col[j + k];
      dst[j] = s;
    }
  }
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
                   int64_t* top_indices) {
  check_arguments(g, w);
  if (n_synthetic < 1 || n_real < 1) throw std::invalid_argument("both image sets must be non-empty");
  if (top_k < 1 || top_k > n_real)
    throw std::invalid_argument("top_k must be in [1, n_real], got " + std::to_string(top_k));
  const SsimImageStats sx = ssim_image_stats(synthetic, n_synthetic, g, w);
  const SsimImageStats sy = ssim_image_stats(real, n_real, g, w);
  const int64_t image = g.channels * g.height * g.width;
  // Tiles of synthetic x real images; each thread keeps its own top-k lists, merged at the end.
  const int64_t syn_block = 4, real_block = 16;
  const int64_t syn_tiles = (n_synthetic + syn_block - 1) / syn_block;
  const int64_t real_tiles = (n_real + real_block - 1) / real_block;
  const int threads = omp_get_max_threads();
  std::vector<double> part_values(static_cast<size_t>(threads) * n_synthetic * top_k);
  std::vector<int64_t> part_indices(part_values.size(), -1);
  std::vector<int64_t> part_sizes(static_cast<size_t>(threads) * n_synthetic, 0);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    PairWorkspace ws;
    double* my_values = part_values.data() + static_cast<size_t>(t) * n_synthetic * top_k;
    int64_t* my_indices = part_indices.data() + static_cast<size_t>(t) * n_synthetic * top_k;
    int64_t* my_sizes = part_sizes.data() + static_cast<size_t>(t) * n_synthetic;
#pragma omp for schedule(dynamic) collapse(2)
    for (int64_t st = 0; st < syn_tiles; ++st) {
      for (int64_t rt = 0; rt < real_tiles; ++rt) {
        const int64_t s_end = std::min(n_synthetic, (st + 1) * syn_block);
        const int64_t r_end = std::min(n_real, (rt + 1) * real_block);
        for (int64_t r = rt * real_block; r < r_end; ++r) {
          for (int64_t s = st * syn_block; s < s_end; ++s) {
            const double v = pair_score(synthetic + s * image, real + r * image, sx, s, sy, r, g, w, ws);
            topk_insert(my_values + s * top_k, my_indices + s * top_k, my_sizes[s], top_k, v, r);
          }
        }
      }
    }
  }
  for (int64_t s = 0; s < n_synthetic; ++s) {
    double* values = top_values + s * top_k;
    int64_t* indices = top_indices + s * top_k;
    int64_t size = 0;
    for (int t = 0; t < threads; ++t) {
      const size_t base = (static_cast<size_t>(t) * n_synthetic + s) * top_k;
      const int64_t n = part_sizes[static_cast<size_t>(t) * n_synthetic + s];
      for (int64_t q = 0; q < n; ++q) topk_insert(values, indices, size, top_k, part_values[base + q], part_indices[base + q]);
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
