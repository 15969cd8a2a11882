// Standalone test of the CPU SSIM-max kernel (no Python): compares against a naive float64 SSIM that
// evaluates the full 2-D window at every valid pixel. Run by ctest, also under ASan/UBSan.
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <vector>

#include "cpu/ssim_max.h"

namespace {

int failures = 0;

#define EXPECT(condition, ...)                          \
  do {                                                  \
    if (!(condition)) {                                 \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      std::printf(__VA_ARGS__);                         \
      std::printf("\n");                                \
      ++failures;                                       \
    }                                                   \
  } while (0)

medsyn::SsimWindow uniform_window(int win) {
  const double n = static_cast<double>(win) * win;
  return {std::vector<double>(win, 1.0 / win), n / (n - 1.0), 1e-4, 9e-4};
}

medsyn::SsimWindow gaussian_window() {
  std::vector<double> w(11);
  double sum = 0.0;
  for (int k = 0; k < 11; ++k) sum += (w[k] = std::exp(-0.5 * (k - 5) * (k - 5) / (1.5 * 1.5)));
  for (double& v : w) v /= sum;
  return {w, 1.0, 1e-4, 9e-4};
}

// Naive float64 SSIM of two [C,H,W] images: direct 2-D window sums, no precomputation, no sliding.
double naive_ssim(const float* x, const float* y, const medsyn::ImageGeometry& g, const medsyn::SsimWindow& w) {
  const int64_t win = static_cast<int64_t>(w.weights.size());
  const int64_t hv = g.height - win + 1, wv = g.width - win + 1;
  double total = 0.0;
  for (int64_t c = 0; c < g.channels; ++c) {
    const float* xp = x + c * g.height * g.width;
    const float* yp = y + c * g.height * g.width;
    for (int64_t i = 0; i < hv; ++i) {
      for (int64_t j = 0; j < wv; ++j) {
        double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
        for (int64_t a = 0; a < win; ++a) {
          for (int64_t b = 0; b < win; ++b) {
            const double weight = w.weights[a] * w.weights[b];
            const double u = xp[(i + a) * g.width + j + b], v = yp[(i + a) * g.width + j + b];
            mx += weight * u;
            my += weight * v;
            sxx += weight * u * u;
            syy += weight * v * v;
            sxy += weight * u * v;
          }
        }
        const double vx = w.covariance_scale * (sxx - mx * mx), vy = w.covariance_scale * (syy - my * my);
        const double cov = w.covariance_scale * (sxy - mx * my);
        total += ((2 * mx * my + w.c1) * (2 * cov + w.c2)) / ((mx * mx + my * my + w.c1) * (vx + vy + w.c2));
      }
    }
  }
  return total / static_cast<double>(g.channels * hv * wv);
}

std::vector<float> random_images(int64_t count, const medsyn::ImageGeometry& g, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> images(count * g.channels * g.height * g.width);
  for (float& v : images) v = uniform(rng);
  return images;
}

// Returns the number of pairs the scan abandoned part-way.
int64_t check_scan(const std::vector<float>& syn, int64_t ns, const std::vector<float>& real, int64_t nr,
                   const medsyn::ImageGeometry& g, const medsyn::SsimWindow& w, int64_t top_k, const char* name) {
  const int64_t image = g.channels * g.height * g.width;
  std::vector<double> values(ns * top_k);
  std::vector<int64_t> indices(ns * top_k);
  int64_t abandoned = -1;
  medsyn::ssim_max_scan(syn.data(), ns, real.data(), nr, g, w, top_k, values.data(), indices.data(), &abandoned);
  EXPECT(abandoned >= 0 && abandoned <= ns * nr, "%s: %lld abandoned pairs", name,
         static_cast<long long>(abandoned));
  for (int64_t s = 0; s < ns; ++s) {
    std::vector<double> reference(nr);
    for (int64_t r = 0; r < nr; ++r) reference[r] = naive_ssim(&syn[s * image], &real[r * image], g, w);
    // Expected top-k by brute force: repeatedly take the best remaining (ties -> smaller index).
    std::vector<bool> taken(nr, false);
    for (int64_t k = 0; k < top_k; ++k) {
      int64_t best = -1;
      for (int64_t r = 0; r < nr; ++r)
        if (!taken[r] && (best < 0 || reference[r] > reference[best] + 1e-12)) best = r;
      taken[best] = true;
      const double got = values[s * top_k + k];
      const int64_t got_index = indices[s * top_k + k];
      EXPECT(std::fabs(got - reference[best]) < 1e-10, "%s: s=%lld k=%lld value %.15f expected %.15f", name,
             static_cast<long long>(s), static_cast<long long>(k), got, reference[best]);
      EXPECT(got_index >= 0 && got_index < nr && std::fabs(reference[got_index] - got) < 1e-10,
             "%s: s=%lld k=%lld index %lld does not reach the value", name, static_cast<long long>(s),
             static_cast<long long>(k), static_cast<long long>(got_index));
      if (k > 0) EXPECT(values[s * top_k + k - 1] >= got, "%s: top-k not sorted", name);
    }
  }
  return abandoned;
}

void test_random_images() {
  std::mt19937 rng(7);
  for (const auto& g : {medsyn::ImageGeometry{1, 17, 23}, medsyn::ImageGeometry{3, 12, 11}}) {
    const auto syn = random_images(5, g, rng);
    auto real = random_images(9, g, rng);
    const int64_t image = g.channels * g.height * g.width;
    for (int64_t q = 0; q < image; ++q) real[4 * image + q] = 0.9f * syn[2 * image + q] + 0.05f;
    check_scan(syn, 5, real, 9, g, uniform_window(7), 3, "uniform random");
    check_scan(syn, 5, real, 9, g, uniform_window(3), 1, "uniform 3x3 random");
    if (g.height >= 11 && g.width >= 11) check_scan(syn, 5, real, 9, g, gaussian_window(), 2, "gaussian random");
  }
}

void test_constant_images() {
  const medsyn::ImageGeometry g{1, 14, 16};
  const int64_t image = g.height * g.width;
  const float levels[] = {0.0f, 0.25f, 0.8f, 1.0f};
  std::vector<float> images(4 * image);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t q = 0; q < image; ++q) images[n * image + q] = levels[n];
  check_scan(images, 4, images, 4, g, uniform_window(7), 4, "constant uniform");
  check_scan(images, 4, images, 4, g, gaussian_window(), 2, "constant gaussian");
  // Identical constant images score exactly 1 (C1, C2 > 0 keep the ratio defined).
  std::vector<double> values(4);
  medsyn::ssim_pairs(images.data(), images.data(), 4, g, uniform_window(7), values.data());
  for (double v : values) EXPECT(std::fabs(v - 1.0) < 1e-11, "identical constants give %.17f", v);
}

void test_ties_go_to_smallest_index() {
  std::mt19937 rng(3);
  const medsyn::ImageGeometry g{1, 10, 10};
  const auto a = random_images(1, g, rng);
  const auto noise = random_images(40, g, rng);
  std::vector<float> real(noise);
  for (int64_t r : {13, 21, 37})
    for (int64_t q = 0; q < 100; ++q) real[r * 100 + q] = a[q];
  std::vector<double> values(3);
  std::vector<int64_t> indices(3);
  medsyn::ssim_max_scan(a.data(), 1, real.data(), 40, g, uniform_window(7), 3, values.data(), indices.data());
  EXPECT(indices[0] == 13 && indices[1] == 21 && indices[2] == 37, "tie order %lld %lld %lld",
         static_cast<long long>(indices[0]), static_cast<long long>(indices[1]), static_cast<long long>(indices[2]));
  EXPECT(std::fabs(values[0] - 1.0) < 1e-14, "self-similarity %.17f", values[0]);
}

// The float32 phase of the scan must stay within its stated error bound (the exactness of the returned
// top-k rests on it), on noise, constant, smooth and piecewise-flat images, and the bound must be tight
// enough to be useful (< 1e-3 on noise).
void check_fast_path_error_bound(const medsyn::ImageGeometry& g, int64_t n) {
  std::mt19937 rng(11);
  const int64_t image = g.channels * g.height * g.width;
  std::vector<float> a = random_images(n, g, rng), b = random_images(n, g, rng);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (int64_t i = 0; i < n; ++i) {
    const int kind = static_cast<int>(i % 4);
    const float level_a = uniform(rng), level_b = uniform(rng);
    for (int64_t q = 0; q < image; ++q) {
      const int64_t row = (q / g.width) % g.height, column = q % g.width;
      if (kind == 1) {  // constant
        a[i * image + q] = level_a;
        b[i * image + q] = level_b;
      } else if (kind == 2) {  // piecewise flat with an edge
        a[i * image + q] = column < 15 ? level_a : 1.0f - level_a;
        b[i * image + q] = row < 20 ? level_b : 0.5f * level_b;
      } else if (kind == 3) {  // smooth gradient
        a[i * image + q] = 0.5f + 0.4f * std::sin(0.1f * row + 0.07f * column + level_a);
        b[i * image + q] = 0.5f + 0.4f * std::cos(0.05f * row - 0.09f * column + level_b);
      }
    }
  }
  for (const auto& w : {uniform_window(7), gaussian_window(), uniform_window(5)}) {
    std::vector<double> fast(n), bound(n), exact(n);
    medsyn::ssim_pairs_fast(a.data(), b.data(), n, g, w, fast.data(), bound.data());
    medsyn::ssim_pairs(a.data(), b.data(), n, g, w, exact.data());
    for (int64_t i = 0; i < n; ++i) {
      EXPECT(std::fabs(fast[i] - exact[i]) <= bound[i], "pair %lld (kind %lld): |%.3g| > bound %.3g",
             static_cast<long long>(i), static_cast<long long>(i % 4), fast[i] - exact[i], bound[i]);
      if (i % 4 == 0) EXPECT(bound[i] < 1e-3, "bound %.3g on noise is useless", bound[i]);
    }
  }
}

void test_fast_path_error_bound() {
  // 40 x 37: two column strips, one band; 200 x 262: lane sums flushed every 64 rows, a valid width of
  // exactly 16 strips, and (AVX-512 kernel) column-blocked tiles; 300 x 70: two 256-row bands (AVX-512
  // kernel), a partial last strip.
  check_fast_path_error_bound({2, 40, 37}, 24);
  check_fast_path_error_bound({1, 200, 262}, 8);
  check_fast_path_error_bound({1, 300, 70}, 8);
}

// Real sets where every tile holds a near-copy of a synthetic image (SSIM ~1) among noise (SSIM ~0): once a
// thread has scored one tile, the noise pairs of later tiles fall below the k-th best lower bound part-way and
// are abandoned (AVX-512 box-7 kernel, column-blocked: valid width > 16). The results must stay exact, with
// both pairs of a pass abandoned, one of them (a pass of one real) or neither. Geometries: a partial last
// strip; two channels and two 256-row bands (the outputs left after a block count both); three blocks.
void test_abandoned_pairs_keep_the_scan_exact() {
  // One thread: how many pairs are abandoned depends on which tiles a thread has seen (each thread keeps its
  // own k-th best lower bounds); with two threads and top_k 2 a thread may never hold two near-copies, and
  // then abandons nothing. Exactness is checked at every thread count by the other tests.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  std::mt19937 rng(11);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  for (const auto& g : {medsyn::ImageGeometry{1, 40, 100}, medsyn::ImageGeometry{2, 270, 60},
                        medsyn::ImageGeometry{1, 30, 50}}) {
    const int64_t ns = 4, nr = 24, image = g.channels * g.height * g.width;
    const auto syn = random_images(ns, g, rng);
    auto real = random_images(nr, g, rng);
    for (int64_t r = 0; r < nr; r += 3) {  // two copies of each synthetic image, one or two in every tile
      const int64_t s = (r / 3) % ns;
      for (int64_t q = 0; q < image; ++q)
        real[r * image + q] = std::fmin(1.0f, std::fmax(0.0f, syn[s * image + q] + noise(rng)));
    }
    for (const int64_t top_k : {1, 2}) {
      const int64_t abandoned = check_scan(syn, ns, real, nr, g, uniform_window(7), top_k, "abandoned pairs");
      if (medsyn::ssim_max_scan_abandons(uniform_window(7)))
        EXPECT(abandoned > (top_k == 1 ? ns * nr / 4 : 0),
               "%lld x %lld, top_k %lld: only %lld of %lld pairs abandoned", static_cast<long long>(g.height), static_cast<long long>(g.width), static_cast<long long>(top_k),
               static_cast<long long>(abandoned), static_cast<long long>(ns * nr));
      else
        EXPECT(abandoned == 0, "the portable kernel does not abandon pairs, got %lld",
               static_cast<long long>(abandoned));
    }
    // The Gaussian window runs the portable kernel (no abandoning) on every build.
    if (g.height < 100)
      EXPECT(check_scan(syn, ns, real, nr, g, gaussian_window(), 2, "abandoned pairs, gaussian") == 0,
             "gaussian window: pairs abandoned");
  }
  omp_set_num_threads(threads);
  // With several threads the results stay exact (check_scan compares with the naive float64 SSIM).
  const medsyn::ImageGeometry g{1, 40, 100};
  const auto syn = random_images(4, g, rng);
  const auto real = random_images(24, g, rng);
  check_scan(syn, 4, real, 24, g, uniform_window(7), 2, "abandoned pairs, all threads");
}

void test_bad_arguments_throw() {
  const medsyn::ImageGeometry g{1, 5, 5};
  std::vector<float> images(25, 0.5f);
  std::vector<double> values(1);
  std::vector<int64_t> indices(1);
  bool threw = false;
  try {
    medsyn::ssim_max_scan(images.data(), 1, images.data(), 1, g, uniform_window(7), 1, values.data(), indices.data());
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  EXPECT(threw, "a 7x7 window on 5x5 images must throw");
  threw = false;
  try {
    medsyn::ssim_max_scan(images.data(), 1, images.data(), 1, g, uniform_window(3), 2, values.data(), indices.data());
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  EXPECT(threw, "top_k > n_real must throw");
}

}  // namespace

int main() {
  test_random_images();
  test_constant_images();
  test_ties_go_to_smallest_index();
  test_fast_path_error_bound();
  test_abandoned_pairs_keep_the_scan_exact();
  test_bad_arguments_throw();
  if (failures) {
    std::printf("%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("test_ssim_max: all checks passed\n");
  return 0;
}
