// Standalone test of the direct convolution against a naive long-double loop (no Python): row tails, rows of
// one vector or less, channel counts that are not multiples of the 4-channel block, paddings, non-square
// kernels, float and double, with and without bias. Run by ctest, also under ASan/UBSan (the row loads read
// past the image into the padded scratch). Exit code != 0 on the first failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "cpu/direct_conv.h"

namespace {

int failures = 0;

template <typename T>
void run(int64_t cin, int64_t cout, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t ph, int64_t pw, bool bias,
         std::mt19937& rng) {
  const int64_t oh = h + 2 * ph - kh + 1, ow = w + 2 * pw - kw + 1, n = 2;
  if (oh < 1 || ow < 1) return;
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::vector<T> x(n * cin * h * w), weight(cout * cin * kh * kw), b(cout), out(n * cout * oh * ow, T(-9));
  for (auto& v : x) v = static_cast<T>(unit(rng));
  for (auto& v : weight) v = static_cast<T>(unit(rng));
  for (auto& v : b) v = static_cast<T>(unit(rng));
  medsyn::conv2d_direct(x.data(), weight.data(), bias ? b.data() : nullptr, n, cin, h, w, cout, kh, kw, ph, pw,
                        out.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t xx = 0; xx < ow; ++xx) {
          long double sum = bias ? b[o] : 0.0L, scale = bias ? std::fabs(static_cast<double>(b[o])) : 0.0L;
          for (int64_t c = 0; c < cin; ++c)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t r = y + ky - ph, q = xx + kx - pw;
                if (r < 0 || r >= h || q < 0 || q >= w) continue;
                const long double term =
                    static_cast<long double>(weight[((o * cin + c) * kh + ky) * kw + kx]) * x[((i * cin + c) * h + r) * w + q];
                sum += term;
                scale += std::fabs(static_cast<double>(term));
              }
          const double got = out[((i * cout + o) * oh + y) * ow + xx];
          const double tolerance = 2.0 * static_cast<double>(cin * kh * kw + 1) * std::numeric_limits<T>::epsilon() *
                                   static_cast<double>(scale);
          if (!(std::fabs(got - static_cast<double>(sum)) <= tolerance) && failures++ < 10)
            std::fprintf(stderr, "FAIL: %lldx%lld->%lld %lldx%lld k%lldx%lld p%lld,%lld: got %g want %g\n",
                         (long long)cin, (long long)h, (long long)cout, (long long)w, (long long)h, (long long)kh,
                         (long long)kw, (long long)ph, (long long)pw, got, static_cast<double>(sum));
        }
}

}  // namespace

int main() {
  std::mt19937 rng(5);
  for (int64_t cout : {1, 4, 6})
    for (int64_t w : {3, 8, 9, 17, 33, 40})
      for (int64_t pad : {0, 1, 2}) {
        run<double>(3, cout, 7, w, 3, 3, pad, pad, cout != 4, rng);
        run<float>(2, cout, 6, w, 3, 3, pad, pad, cout == 4, rng);
      }
  run<double>(5, 7, 9, 21, 5, 3, 2, 1, true, rng);
  run<float>(16, 8, 8, 8, 1, 1, 0, 0, false, rng);
  if (failures) {
    std::fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  std::printf("direct_conv: all checks passed\n");
  return 0;
}
