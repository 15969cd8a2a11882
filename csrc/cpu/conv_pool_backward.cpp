// Sparse input gradient of conv2d -> ReLU -> 2x2 max pool (see conv_pool_backward.h).
#include "cpu/conv_pool_backward.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cpu/relu_max_pool.h"
#include "cpu/vector_types.h"

namespace medsyn {

namespace {

// channels last with border -> grad_input plane [cin, in_height, in_width]
template <typename T>
void store_image(const T* acc, const ConvPoolGeometry& g, int64_t cols, T* out) {
  const int64_t cin = g.in_channels, plane = g.in_height * g.in_width;
  for (int64_t r = 0; r < g.in_height; ++r)
    for (int64_t x = 0; x < g.in_width; ++x) {
      const T* src = acc + ((r + g.pad_h) * cols + x + g.pad_w) * cin;
      for (int64_t ci = 0; ci < cin; ++ci) out[ci * plane + r * g.in_width + x] = src[ci];
    }
}

// One patch per (channel, position) with a nonzero gradient. CIN, K > 0: input channels and square kernel
// size known at compile time (1 or 3 channels, 3 x 3: the image-facing layer, fully unrolled); 0: any.
template <typename T, int CIN, int K>
void backward_scatter(const T* grad, const uint8_t* code, const T* weight_hwio, int64_t seeds, int64_t count,
                      const ConvPoolGeometry& g, T* grad_input) {
  const int64_t out_w = g.conv_width() / 2, pooled = (g.conv_height() / 2) * out_w;
  const int64_t cin = CIN > 0 ? CIN : g.in_channels;
  const int64_t kh = K > 0 ? K : g.kernel_h, kw = K > 0 ? K : g.kernel_w;
  // Scratch: the input gradient of one image, channels last, with a border of pad on each side so that every
  // patch lands inside it (the border is dropped at the end: those are the padding's zeros).
  const int64_t rows = g.in_height + 2 * g.pad_h, cols = g.in_width + 2 * g.pad_w;
#pragma omp parallel
  {
    std::vector<T> scratch(static_cast<size_t>(rows * cols * cin));
#pragma omp for schedule(static)
    for (int64_t sn = 0; sn < seeds * count; ++sn) {
      const int64_t n = sn % count;
      std::fill(scratch.begin(), scratch.end(), T(0));
      for (int64_t c = 0; c < g.out_channels; ++c) {
        const T* gc = grad + (sn * g.out_channels + c) * pooled;
        const uint8_t* cc = code + (n * g.out_channels + c) * pooled;
        const T* wc = weight_hwio + c * kh * kw * cin;
        for (int64_t q = 0; q < pooled; ++q) {
          if (cc[q] == kNoGradient) continue;
          // conv output position (y, x); its patch starts at input row y - pad, i.e. scratch row y
          const int64_t y = 2 * (q / out_w) + cc[q] / 2, x = 2 * (q % out_w) + cc[q] % 2;
          const T value = gc[q];
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx) {
              T* __restrict dst = scratch.data() + ((y + ky) * cols + x + kx) * cin;
              const T* __restrict w = wc + (ky * kw + kx) * cin;
#pragma omp simd
              for (int64_t ci = 0; ci < cin; ++ci) dst[ci] += value * w[ci];
            }
        }
      }
      store_image(scratch.data(), g, cols, grad_input + sn * cin * g.in_height * g.in_width);
    }
  }
}

// CIN channels (8, 16, 32 or 64), K x K kernel, known at compile time. Per pooled position and window phase
// (which of the 4 positions the argmax took), the channels with that phase are listed, and their gradients
// times their weights are summed into one K x K patch of vectors held in registers (one vector of up to 64
// bytes of input channels at a time), which is then added to the scratch once: the same multiply-adds
// as one patch per channel, without a load and store of the scratch per multiply-add (that version ran at
// ~4 cycles per 16-lane multiply-add, store-to-load bound).
template <typename T, int CIN, int K>
void backward_gathered(const T* grad, const uint8_t* code, const T* weight_hwio, int64_t seeds, int64_t count,
                       const ConvPoolGeometry& g, T* grad_input) {
  constexpr int kBytes = CIN * sizeof(T) < 64 ? CIN * static_cast<int>(sizeof(T)) : 64;
  using V = typename Vector<T, kBytes>::type;
  constexpr int kLanes = kBytes / sizeof(T), kChunks = CIN / kLanes;
  static_assert(CIN % kLanes == 0, "CIN must fill whole vectors");
  const int64_t out_w = g.conv_width() / 2, pooled = (g.conv_height() / 2) * out_w, cout = g.out_channels;
  const int64_t rows = g.in_height + 2 * g.pad_h, cols = g.in_width + 2 * g.pad_w;
  constexpr int kPatch = K * K * CIN;
#pragma omp parallel
  {
    std::vector<T> scratch(static_cast<size_t>(rows * cols * CIN));
    std::vector<int32_t> listed(static_cast<size_t>(4 * cout));
    std::vector<T> values(static_cast<size_t>(4 * cout));
#pragma omp for schedule(static)
    for (int64_t sn = 0; sn < seeds * count; ++sn) {
      const int64_t n = sn % count;
      std::fill(scratch.begin(), scratch.end(), T(0));
      const T* gi = grad + sn * cout * pooled;
      const uint8_t* ci = code + n * cout * pooled;
      for (int64_t q = 0; q < pooled; ++q) {
        int32_t length[4] = {0, 0, 0, 0};
        for (int64_t c = 0; c < cout; ++c) {  // branch-free bucketing; kNoGradient goes nowhere
          const uint8_t at = ci[c * pooled + q];
          const int bucket = at < 4 ? at : 0;
          listed[bucket * cout + length[bucket]] = static_cast<int32_t>(c);
          values[bucket * cout + length[bucket]] = gi[c * pooled + q];
          length[bucket] += at < 4;
        }
        for (int d = 0; d < 4; ++d) {
          const int32_t* channels = listed.data() + d * cout;
          const T* gradients = values.data() + d * cout;
          const int64_t y = 2 * (q / out_w) + d / 2, x = 2 * (q % out_w) + d % 2;
          for (int chunk = 0; chunk < kChunks && length[d] > 0; ++chunk) {
            V patch[K * K];
#pragma GCC unroll 16
            for (int t = 0; t < K * K; ++t) patch[t] = V{};
            for (int32_t l = 0; l < length[d]; ++l) {
              const T* w = weight_hwio + static_cast<int64_t>(channels[l]) * kPatch + chunk * kLanes;
              const T value = gradients[l];
#pragma GCC unroll 16
              for (int t = 0; t < K * K; ++t) {
                V wv;
                std::memcpy(&wv, w + t * CIN, sizeof(V));
                patch[t] += value * wv;
              }
            }
#pragma GCC unroll 16
            for (int t = 0; t < K * K; ++t) {
              T* dst = scratch.data() + ((y + t / K) * cols + x + t % K) * CIN + chunk * kLanes;
              V sum;
              std::memcpy(&sum, dst, sizeof(V));
              sum += patch[t];
              std::memcpy(dst, &sum, sizeof(V));
            }
          }
        }
      }
      store_image(scratch.data(), g, cols, grad_input + sn * CIN * g.in_height * g.in_width);
    }
  }
}

template <typename T>
void dispatch_channels(const T* grad, const uint8_t* code, const T* w, int64_t seeds, int64_t count,
                       const ConvPoolGeometry& g, T* out) {
  switch (g.in_channels) {
    case 8: return backward_gathered<T, 8, 3>(grad, code, w, seeds, count, g, out);
    case 16: return backward_gathered<T, 16, 3>(grad, code, w, seeds, count, g, out);
    case 32: return backward_gathered<T, 32, 3>(grad, code, w, seeds, count, g, out);
    case 64: return backward_gathered<T, 64, 3>(grad, code, w, seeds, count, g, out);
    case 1: return backward_scatter<T, 1, 3>(grad, code, w, seeds, count, g, out);
    case 3: return backward_scatter<T, 3, 3>(grad, code, w, seeds, count, g, out);
    default: return backward_scatter<T, 0, 0>(grad, code, w, seeds, count, g, out);
  }
}

}  // namespace

bool conv_pool_backward_gathers(const ConvPoolGeometry& g) {
  const bool channels = g.in_channels == 1 || g.in_channels == 3 || g.in_channels == 8 || g.in_channels == 16 ||
                        g.in_channels == 32 || g.in_channels == 64;
  return channels && g.kernel_h == 3 && g.kernel_w == 3;
}

template <typename T>
void conv_relu_max_pool2x2_backward(const T* grad, const uint8_t* code, const T* weight_hwio, int64_t seeds,
                                    int64_t count, const ConvPoolGeometry& g, T* grad_input) {
  if (g.conv_height() < 2 || g.conv_width() < 2 || g.in_channels < 1 || g.out_channels < 1 || g.pad_h < 0 ||
      g.pad_w < 0 || g.kernel_h < 1 || g.kernel_w < 1)
    throw std::invalid_argument("conv_relu_max_pool2x2_backward: the convolution's output must be >= 2 x 2");
  if (conv_pool_backward_gathers(g))
    dispatch_channels<T>(grad, code, weight_hwio, seeds, count, g, grad_input);
  else
    backward_scatter<T, 0, 0>(grad, code, weight_hwio, seeds, count, g, grad_input);
}

template void conv_relu_max_pool2x2_backward<float>(const float*, const uint8_t*, const float*, int64_t, int64_t,
                                                    const ConvPoolGeometry&, float*);
template void conv_relu_max_pool2x2_backward<double>(const double*, const uint8_t*, const double*, int64_t,
                                                     int64_t, const ConvPoolGeometry&, double*);

}  // namespace medsyn
