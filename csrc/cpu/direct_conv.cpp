// Direct 2-D convolution (see direct_conv.h).
#include "cpu/direct_conv.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cpu/vector_types.h"

namespace medsyn {

namespace {

constexpr int64_t kBlock = 4;  // output channels per block

// Every output row of one block of 4 output channels: NV vectors of a row at a time, 4 x NV accumulators held
// in registers over all in_channels x kernel taps (each tap: NV input loads, 4 weight broadcasts, 4 NV
// multiply-adds). NV = 1 for rows of at most one vector (8 px in float64), else 2.
template <typename T, int NV>
void block_rows(const T* padded, const T* weights, const T* bias, int64_t n, int64_t first, int64_t used,
                int64_t in_channels, int64_t kernel_h, int64_t kernel_w, int64_t rows, int64_t cols,
                int64_t out_channels, int64_t out_h, int64_t out_w, T* out) {
  using V = typename Vector<T, 64>::type;
  constexpr int64_t kLanes = 64 / sizeof(T), kChunk = NV * kLanes;
  for (int64_t y = 0; y < out_h; ++y)
    for (int64_t j0 = 0; j0 < out_w; j0 += kChunk) {
      V acc[kBlock][NV] = {};
      const T* w = weights;
      for (int64_t c = 0; c < in_channels; ++c)
        for (int64_t ky = 0; ky < kernel_h; ++ky) {
          const T* row = padded + (c * rows + y + ky) * cols + j0;
          for (int64_t kx = 0; kx < kernel_w; ++kx, w += kBlock) {
            V v[NV];
            for (int k = 0; k < NV; ++k) std::memcpy(&v[k], row + kx + k * kLanes, sizeof(V));
            for (int o = 0; o < kBlock; ++o)
              for (int k = 0; k < NV; ++k) acc[o][k] += w[o] * v[k];
          }
        }
      const int64_t valid = std::min(kChunk, out_w - j0);
      for (int64_t o = 0; o < used; ++o) {
        T lanes[kChunk];
        std::memcpy(lanes, acc[o], sizeof(lanes));
        T* dst = out + ((n * out_channels + first + o) * out_h + y) * out_w + j0;
        const T shift = bias ? bias[first + o] : T(0);
        for (int64_t j = 0; j < valid; ++j) dst[j] = lanes[j] + shift;
      }
    }
}

}  // namespace

template <typename T>
void conv2d_direct(const T* x, const T* weight, const T* bias, int64_t count, int64_t in_channels, int64_t height,
                   int64_t width, int64_t out_channels, int64_t kernel_h, int64_t kernel_w, int64_t pad_h,
                   int64_t pad_w, T* out) {
  constexpr int64_t kChunk = 2 * 64 / sizeof(T);
  const int64_t out_h = height + 2 * pad_h - kernel_h + 1, out_w = width + 2 * pad_w - kernel_w + 1;
  if (out_h < 1 || out_w < 1 || in_channels < 1 || out_channels < 1 || pad_h < 0 || pad_w < 0)
    throw std::invalid_argument("conv2d_direct: empty output or bad geometry");
  const int64_t rows = height + 2 * pad_h;
  // padded rows carry kChunk extra zero columns so that the last chunk's loads stay inside the row
  const int64_t cols = width + 2 * pad_w + kChunk;
  const int64_t blocks = (out_channels + kBlock - 1) / kBlock, taps = in_channels * kernel_h * kernel_w;
#pragma omp parallel
  {
    std::vector<T> padded(static_cast<size_t>(in_channels * rows * cols));
    std::vector<T> weights(static_cast<size_t>(kBlock * taps));  // [tap][4]: one block's weights, interleaved
#pragma omp for schedule(static)
    for (int64_t n = 0; n < count; ++n) {
      std::fill(padded.begin(), padded.end(), T(0));
      for (int64_t c = 0; c < in_channels; ++c)
        for (int64_t r = 0; r < height; ++r)
          std::copy_n(x + ((n * in_channels + c) * height + r) * width, width,
                      padded.data() + (c * rows + r + pad_h) * cols + pad_w);
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t first = b * kBlock, used = std::min(kBlock, out_channels - first);
        for (int64_t t = 0; t < taps; ++t)
          for (int64_t o = 0; o < kBlock; ++o) weights[t * kBlock + o] = o < used ? weight[(first + o) * taps + t] : T(0);
        if (out_w <= kChunk / 2)
          block_rows<T, 1>(padded.data(), weights.data(), bias, n, first, used, in_channels, kernel_h, kernel_w,
                           rows, cols, out_channels, out_h, out_w, out);
        else
          block_rows<T, 2>(padded.data(), weights.data(), bias, n, first, used, in_channels, kernel_h, kernel_w,
                           rows, cols, out_channels, out_h, out_w, out);
      }
    }
  }
}

template void conv2d_direct<float>(const float*, const float*, const float*, int64_t, int64_t, int64_t, int64_t,
                                   int64_t, int64_t, int64_t, int64_t, int64_t, float*);
template void conv2d_direct<double>(const double*, const double*, const double*, int64_t, int64_t, int64_t, int64_t,
                                    int64_t, int64_t, int64_t, int64_t, int64_t, double*);

}  // namespace medsyn
