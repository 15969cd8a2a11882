// Standalone test of the conv -> ReLU -> 2x2 max-pool backward against a dense reference (no Python): the
// pooled gradient is spread to its argmax positions, then a direct transposed convolution in long double.
// Fast geometries (3x3, 8/16/32/64 input channels) and the generic scatter (other channel counts and kernel
// sizes), paddings 0-2, odd sizes, float and double, codes with no gradient. Run by ctest, also under
// ASan/UBSan. Exit code != 0 on the first failure.
#include <cmath>
#include <limits>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "cpu/conv_pool_backward.h"
#include "cpu/relu_max_pool.h"

namespace {

int failures = 0;

template <typename T>
void run(int64_t cin, int64_t cout, int64_t height, int64_t width, int64_t kh, int64_t kw, int64_t pad,
         std::mt19937& rng) {
  medsyn::ConvPoolGeometry g{cin, cout, height, width, kh, kw, pad, pad};
  const int64_t conv_h = g.conv_height(), conv_w = g.conv_width();
  if (conv_h < 2 || conv_w < 2) return;
  const int64_t out_h = conv_h / 2, out_w = conv_w / 2, seeds = 2, count = 3;
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::uniform_int_distribution<int> pick(0, 5);  // 4, 5 -> no gradient
  std::vector<T> grad(seeds * count * cout * out_h * out_w), weight(cout * kh * kw * cin);
  std::vector<uint8_t> code(count * cout * out_h * out_w);
  for (auto& v : grad) v = static_cast<T>(unit(rng));
  for (auto& v : weight) v = static_cast<T>(unit(rng));
  for (auto& c : code) c = pick(rng) < 4 ? static_cast<uint8_t>(pick(rng) % 4) : medsyn::kNoGradient;
  std::vector<T> result(seeds * count * cin * height * width, T(-9));  // sentinel: all must be written
  medsyn::conv_relu_max_pool2x2_backward(grad.data(), code.data(), weight.data(), seeds, count, g, result.data());
  for (int64_t s = 0; s < seeds; ++s)
    for (int64_t n = 0; n < count; ++n) {
      std::vector<long double> expected(cin * height * width, 0.0L), scale(cin * height * width, 0.0L);
      for (int64_t c = 0; c < cout; ++c)
        for (int64_t i = 0; i < out_h; ++i)
          for (int64_t j = 0; j < out_w; ++j) {
            const uint8_t at = code[((n * cout + c) * out_h + i) * out_w + j];
            if (at == medsyn::kNoGradient) continue;
            const long double value = grad[(((s * count + n) * cout + c) * out_h + i) * out_w + j];
            const int64_t y = 2 * i + at / 2, x = 2 * j + at % 2;  // conv output position
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t r = y + ky - pad, q = x + kx - pad;  // conv input position
                if (r < 0 || r >= height || q < 0 || q >= width) continue;
                for (int64_t ci = 0; ci < cin; ++ci) {
                  const long double term = value * weight[((c * kh + ky) * kw + kx) * cin + ci];
                  expected[(ci * height + r) * width + q] += term;
                  scale[(ci * height + r) * width + q] += std::fabs(static_cast<double>(term));
                }
              }
          }
      const T* got = result.data() + (s * count + n) * cin * height * width;
      for (int64_t e = 0; e < cin * height * width; ++e) {
        // each output sums <= cout * kh * kw terms: rounding <= that many units of the sum of |terms|
        const double tolerance =
            4.0 * static_cast<double>(cout * kh * kw) * std::numeric_limits<T>::epsilon() * static_cast<double>(scale[e]);
        const double error = std::fabs(static_cast<double>(got[e]) - static_cast<double>(expected[e]));
        if (!(error <= tolerance)) {
          if (failures++ < 10)
            std::fprintf(stderr, "FAIL: cin %lld cout %lld %lldx%lld k %lldx%lld pad %lld: element %lld got %g want %g\n",
                         (long long)cin, (long long)cout, (long long)height, (long long)width, (long long)kh,
                         (long long)kw, (long long)pad, (long long)e, static_cast<double>(got[e]),
                         static_cast<double>(expected[e]));
        }
      }
    }
}

}  // namespace

int main() {
  std::mt19937 rng(11);
  for (int64_t cin : {1, 3, 5, 8, 16, 32, 64})
    for (int64_t pad : {0, 1, 2})
      for (int64_t size : {4, 7, 10}) {
        run<float>(cin, 6, size, size + 1, 3, 3, pad, rng);
        run<double>(cin, 5, size + 1, size, 3, 3, pad, rng);
      }
  run<float>(16, 4, 9, 8, 2, 3, 1, rng);   // non-square kernel: generic scatter
  run<double>(8, 3, 11, 11, 5, 5, 2, rng);  // 5 x 5 kernel: generic scatter
  if (failures) {
    std::fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  std::printf("conv_pool_backward: all checks passed\n");
  return 0;
}
