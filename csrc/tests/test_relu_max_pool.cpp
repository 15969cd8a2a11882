// Standalone test of the ReLU + 2x2 max-pool kernels against a direct reference (no Python): every size
// from 2 to 37 (odd sizes, rows that are not whole vectors), float and double, lattice values (ties and
// zeros are frequent), NaNs. Run by ctest, also under ASan/UBSan. Exit code != 0 on the first failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cpu/relu_max_pool.h"

namespace {

int failures = 0;

void check(bool ok, const char* what, int64_t a, int64_t b) {
  if (!ok && failures++ < 20) std::fprintf(stderr, "FAIL: %s (%lld, %lld)\n", what, (long long)a, (long long)b);
}

// torch: relu, then each window scanned row-major, `v > best || isnan(v)` replaces the best.
template <typename T>
void reference_forward(const std::vector<T>& x, int64_t planes, int64_t h, int64_t w, std::vector<T>& out,
                       std::vector<uint8_t>& code) {
  const int64_t oh = h / 2, ow = w / 2;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        T best = -std::numeric_limits<T>::infinity();
        int at = 0;
        for (int k = 0; k < 4; ++k) {
          const T raw = x[(p * h + 2 * i + k / 2) * w + 2 * j + k % 2];
          const T v = std::isnan(raw) ? raw : (raw > T(0) ? raw : T(0));
          if (v > best || std::isnan(v)) {
            best = v;
            at = k;
          }
        }
        out[(p * oh + i) * ow + j] = best;
        code[(p * oh + i) * ow + j] = best > T(0) ? static_cast<uint8_t>(at) : medsyn::kNoGradient;
      }
}

template <typename T>
bool same(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

template <typename T>
void run(int64_t h, int64_t w, bool with_nan, std::mt19937& rng) {
  const int64_t planes = 3, seeds = 2, oh = h / 2, ow = w / 2;
  std::uniform_int_distribution<int> level(-2, 3);  // lattice: many ties, zeros and negatives
  std::vector<T> x(planes * h * w);
  for (auto& v : x) v = static_cast<T>(level(rng)) * T(0.5);
  if (with_nan) x[(planes - 1) * h * w + (rng() % (h * w))] = std::numeric_limits<T>::quiet_NaN();
  std::vector<T> out(planes * oh * ow), ref_out(out.size());
  std::vector<uint8_t> code(out.size()), ref_code(out.size());
  medsyn::relu_max_pool2x2_forward(x.data(), planes, h, w, out.data(), code.data());
  reference_forward(x, planes, h, w, ref_out, ref_code);
  for (size_t q = 0; q < out.size(); ++q) {
    check(same(out[q], ref_out[q]), "pooled value", h * 100 + w, static_cast<int64_t>(q));
    check(code[q] == ref_code[q], "argmax code", h * 100 + w, static_cast<int64_t>(q));
  }
  // Backward: each seed's gradient lands at its window's code position, everything else is 0.
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::vector<T> grad(seeds * planes * oh * ow);
  for (auto& v : grad) v = static_cast<T>(unit(rng));
  std::vector<T> grad_input(seeds * planes * h * w, T(-7));  // sentinel: every element must be written
  medsyn::relu_max_pool2x2_backward(grad.data(), code.data(), seeds, planes, h, w, grad_input.data());
  for (int64_t s = 0; s < seeds; ++s)
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t r = 0; r < h; ++r)
        for (int64_t c = 0; c < w; ++c) {
          T expected = T(0);
          const int64_t i = r / 2, j = c / 2;
          if (i < oh && j < ow) {
            const uint8_t at = ref_code[(p * oh + i) * ow + j];
            if (at == (r % 2) * 2 + c % 2) expected = grad[((s * planes + p) * oh + i) * ow + j];
          }
          check(grad_input[((s * planes + p) * h + r) * w + c] == expected, "input gradient", h * 100 + w,
                (s * planes + p) * h * w + r * w + c);
        }
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  for (int64_t h = 2; h <= 37; ++h)
    for (int64_t w = 2; w <= 37; w += (h % 3) + 1) {
      run<float>(h, w, false, rng);
      run<double>(h, w, false, rng);
      run<float>(h, w, true, rng);
      run<double>(h, w, true, rng);
    }
  if (failures) {
    std::fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  std::printf("relu_max_pool: all checks passed\n");
  return 0;
}
