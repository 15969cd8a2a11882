// ReLU + 2x2 max pool, forward with argmax codes and multi-seed backward (see relu_max_pool.h).
// Both are memory-bound; OpenMP over planes (forward) and over (seed, plane) pairs (backward). The
// backward writes each 2x2 block once (one value, three zeros), where torch's autograd zero-fills the
// input gradient, scatters, then masks it with ReLU's backward: three passes over it per seed.
#include "cpu/relu_max_pool.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace medsyn {

// One window the way torch scans it: row-major, the first strict maximum wins, a NaN wins.
template <typename T>
inline void pool_window_scalar(const T* top, const T* bottom, T& out, uint8_t& code) {
  const T v[4] = {top[0], top[1], bottom[0], bottom[1]};
  T best = v[0];
  uint8_t at = 0;
  for (uint8_t k = 1; k < 4; ++k) {
    if (v[k] > best || std::isnan(v[k])) {
      best = v[k];
      at = k;
    }
  }
  const bool flows = best > T(0);                              // relu(x) > 0: the gradient passes
  out = flows || std::isnan(best) ? best : T(0);              // relu(NaN) = NaN, with no gradient
  code = flows ? at : kNoGradient;
}

// One output row: windows j in [0, out_w) of rows `top`, `bottom` (scalar, torch's scan order).
template <typename T>
void pool_row_scalar(const T* top, const T* bottom, int64_t out_w, T* out, uint8_t* code) {
  for (int64_t j = 0; j < out_w; ++j) pool_window_scalar(top + 2 * j, bottom + 2 * j, out[j], code[j]);
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// AVX-512 rows (GCC left the plain loop scalar for rows this short: 16 outputs at 32 px). A tournament:
// the first maximum of (a, b) against that of (c, d), the lower pair winning only when strictly greater,
// is the row-major scan's winner when no value is NaN; rows with a NaN are redone by pool_row_scalar.
inline void pool_row(const float* top, const float* bottom, int64_t out_w, float* out, uint8_t* code) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  __mmask16 nan_seen = 0;
  for (int64_t j = 0; j < out_w; j += 16) {
    const int64_t n = std::min<int64_t>(16, out_w - j);
    const __mmask16 lo = n >= 8 ? 0xFFFF : static_cast<__mmask16>((1u << (2 * n)) - 1u);
    const __mmask16 hi = n > 8 ? static_cast<__mmask16>((1u << (2 * n - 16)) - 1u) : 0;
    const __m512 t0 = _mm512_maskz_loadu_ps(lo, top + 2 * j), t1 = _mm512_maskz_loadu_ps(hi, top + 2 * j + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(lo, bottom + 2 * j), b1 = _mm512_maskz_loadu_ps(hi, bottom + 2 * j + 16);
    const __m512 a = _mm512_permutex2var_ps(t0, even, t1), b = _mm512_permutex2var_ps(t0, odd, t1);
    const __m512 c = _mm512_permutex2var_ps(b0, even, b1), d = _mm512_permutex2var_ps(b0, odd, b1);
    const __mmask16 right_top = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
    const __mmask16 right_bottom = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
    const __m512 upper = _mm512_mask_blend_ps(right_top, a, b), lower = _mm512_mask_blend_ps(right_bottom, c, d);
    const __mmask16 take_lower = _mm512_cmp_ps_mask(lower, upper, _CMP_GT_OQ);
    const __m512 best = _mm512_mask_blend_ps(take_lower, upper, lower);
    const __mmask16 flows = _mm512_cmp_ps_mask(best, _mm512_setzero_ps(), _CMP_GT_OQ);
    __m512i at = _mm512_mask_blend_epi32(right_top, _mm512_setzero_si512(), _mm512_set1_epi32(1));
    at = _mm512_mask_blend_epi32(take_lower, at,
                                 _mm512_mask_blend_epi32(right_bottom, _mm512_set1_epi32(2), _mm512_set1_epi32(3)));
    at = _mm512_mask_blend_epi32(flows, _mm512_set1_epi32(kNoGradient), at);
    const __mmask16 valid = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u);
    _mm512_mask_storeu_ps(out + j, valid, _mm512_maskz_mov_ps(flows, best));
    _mm512_mask_cvtepi32_storeu_epi8(code + j, valid, at);
    nan_seen |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q) |
                _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(d, d, _CMP_UNORD_Q);
  }
  if (nan_seen) pool_row_scalar(top, bottom, out_w, out, code);
}

inline void pool_row(const double* top, const double* bottom, int64_t out_w, double* out, uint8_t* code) {
  const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  const __m512i odd = _mm512_add_epi64(even, _mm512_set1_epi64(1));
  __mmask8 nan_seen = 0;
  for (int64_t j = 0; j < out_w; j += 8) {
    const int64_t n = std::min<int64_t>(8, out_w - j);
    const __mmask8 lo = n >= 4 ? 0xFF : static_cast<__mmask8>((1u << (2 * n)) - 1u);
    const __mmask8 hi = n > 4 ? static_cast<__mmask8>((1u << (2 * n - 8)) - 1u) : 0;
    const __m512d t0 = _mm512_maskz_loadu_pd(lo, top + 2 * j), t1 = _mm512_maskz_loadu_pd(hi, top + 2 * j + 8);
    const __m512d b0 = _mm512_maskz_loadu_pd(lo, bottom + 2 * j), b1 = _mm512_maskz_loadu_pd(hi, bottom + 2 * j + 8);
    const __m512d a = _mm512_permutex2var_pd(t0, even, t1), b = _mm512_permutex2var_pd(t0, odd, t1);
    const __m512d c = _mm512_permutex2var_pd(b0, even, b1), d = _mm512_permutex2var_pd(b0, odd, b1);
    const __mmask8 right_top = _mm512_cmp_pd_mask(b, a, _CMP_GT_OQ);
    const __mmask8 right_bottom = _mm512_cmp_pd_mask(d, c, _CMP_GT_OQ);
    const __m512d upper = _mm512_mask_blend_pd(right_top, a, b), lower = _mm512_mask_blend_pd(right_bottom, c, d);
    const __mmask8 take_lower = _mm512_cmp_pd_mask(lower, upper, _CMP_GT_OQ);
    const __m512d best = _mm512_mask_blend_pd(take_lower, upper, lower);
    const __mmask8 flows = _mm512_cmp_pd_mask(best, _mm512_setzero_pd(), _CMP_GT_OQ);
    __m512i at = _mm512_mask_blend_epi64(right_top, _mm512_setzero_si512(), _mm512_set1_epi64(1));
    at = _mm512_mask_blend_epi64(take_lower, at,
                                 _mm512_mask_blend_epi64(right_bottom, _mm512_set1_epi64(2), _mm512_set1_epi64(3)));
    at = _mm512_mask_blend_epi64(flows, _mm512_set1_epi64(kNoGradient), at);
    const __mmask8 valid = static_cast<__mmask8>(n >= 8 ? 0xFF : (1u << n) - 1u);
    _mm512_mask_storeu_pd(out + j, valid, _mm512_maskz_mov_pd(flows, best));
    _mm512_mask_cvtepi64_storeu_epi8(code + j, valid, at);
    nan_seen |= _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q) | _mm512_cmp_pd_mask(b, b, _CMP_UNORD_Q) |
                _mm512_cmp_pd_mask(c, c, _CMP_UNORD_Q) | _mm512_cmp_pd_mask(d, d, _CMP_UNORD_Q);
  }
  if (nan_seen) pool_row_scalar(top, bottom, out_w, out, code);
}
#else
template <typename T>
inline void pool_row(const T* top, const T* bottom, int64_t out_w, T* out, uint8_t* code) {
  pool_row_scalar(top, bottom, out_w, out, code);
}
#endif

template <typename T>
void relu_max_pool2x2_forward(const T* x, int64_t planes, int64_t height, int64_t width, T* pooled,
                              uint8_t* code) {
  const int64_t out_h = height / 2, out_w = width / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const T* plane = x + p * height * width;
    for (int64_t i = 0; i < out_h; ++i) {
      const T* top = plane + 2 * i * width;
      pool_row(top, top + width, out_w, pooled + (p * out_h + i) * out_w, code + (p * out_h + i) * out_w);
    }
  }
}

// Input-gradient rows 2i, 2i + 1 of one output row: value g[j] at the window position code[j], 0 elsewhere.
template <typename T>
void unpool_row_scalar(const T* g, const uint8_t* code, int64_t out_w, T* top, T* bottom) {
  for (int64_t j = 0; j < out_w; ++j) {
    const T value = g[j];
    const uint8_t at = code[j];
    top[2 * j] = at == 0 ? value : T(0);
    top[2 * j + 1] = at == 1 ? value : T(0);
    bottom[2 * j] = at == 2 ? value : T(0);
    bottom[2 * j + 1] = at == 3 ? value : T(0);
  }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
inline void unpool_row(const float* g, const uint8_t* code, int64_t out_w, float* top, float* bottom) {
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
  for (int64_t j = 0; j < out_w; j += 16) {
    const int64_t n = std::min<int64_t>(16, out_w - j);
    const __mmask16 valid = static_cast<__mmask16>(n >= 16 ? 0xFFFF : (1u << n) - 1u);
    const __mmask16 lo = n >= 8 ? 0xFFFF : static_cast<__mmask16>((1u << (2 * n)) - 1u);
    const __mmask16 hi = n > 8 ? static_cast<__mmask16>((1u << (2 * n - 16)) - 1u) : 0;
    const __m512 value = _mm512_maskz_loadu_ps(valid, g + j);
    const __m512i at = _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_maskz_loadu_epi8(valid, code + j));
    const __m512 v0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(0)), value);
    const __m512 v1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(1)), value);
    const __m512 v2 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(2)), value);
    const __m512 v3 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_set1_epi32(3)), value);
    _mm512_mask_storeu_ps(top + 2 * j, lo, _mm512_permutex2var_ps(v0, first, v1));
    _mm512_mask_storeu_ps(top + 2 * j + 16, hi, _mm512_permutex2var_ps(v0, second, v1));
    _mm512_mask_storeu_ps(bottom + 2 * j, lo, _mm512_permutex2var_ps(v2, first, v3));
    _mm512_mask_storeu_ps(bottom + 2 * j + 16, hi, _mm512_permutex2var_ps(v2, second, v3));
  }
}

inline void unpool_row(const double* g, const uint8_t* code, int64_t out_w, double* top, double* bottom) {
  const __m512i first = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
  const __m512i second = _mm512_add_epi64(first, _mm512_set1_epi64(4));
  for (int64_t j = 0; j < out_w; j += 8) {
    const int64_t n = std::min<int64_t>(8, out_w - j);
    const __mmask8 valid = static_cast<__mmask8>(n >= 8 ? 0xFF : (1u << n) - 1u);
    const __mmask8 lo = n >= 4 ? 0xFF : static_cast<__mmask8>((1u << (2 * n)) - 1u);
    const __mmask8 hi = n > 4 ? static_cast<__mmask8>((1u << (2 * n - 8)) - 1u) : 0;
    const __m512d value = _mm512_maskz_loadu_pd(valid, g + j);
    const __m512i at = _mm512_maskz_cvtepu8_epi64(0xFF, _mm_maskz_loadu_epi8(valid, code + j));
    const __m512d v0 = _mm512_maskz_mov_pd(_mm512_cmpeq_epi64_mask(at, _mm512_set1_epi64(0)), value);
    const __m512d v1 = _mm512_maskz_mov_pd(_mm512_cmpeq_epi64_mask(at, _mm512_set1_epi64(1)), value);
    const __m512d v2 = _mm512_maskz_mov_pd(_mm512_cmpeq_epi64_mask(at, _mm512_set1_epi64(2)), value);
    const __m512d v3 = _mm512_maskz_mov_pd(_mm512_cmpeq_epi64_mask(at, _mm512_set1_epi64(3)), value);
    _mm512_mask_storeu_pd(top + 2 * j, lo, _mm512_permutex2var_pd(v0, first, v1));
    _mm512_mask_storeu_pd(top + 2 * j + 8, hi, _mm512_permutex2var_pd(v0, second, v1));
    _mm512_mask_storeu_pd(bottom + 2 * j, lo, _mm512_permutex2var_pd(v2, first, v3));
    _mm512_mask_storeu_pd(bottom + 2 * j + 8, hi, _mm512_permutex2var_pd(v2, second, v3));
  }
}
#else
template <typename T>
inline void unpool_row(const T* g, const uint8_t* code, int64_t out_w, T* top, T* bottom) {
  unpool_row_scalar(g, code, out_w, top, bottom);
}
#endif

template <typename T>
void relu_max_pool2x2_backward(const T* grad, const uint8_t* code, int64_t seeds, int64_t planes, int64_t height,
                               int64_t width, T* grad_input) {
  const int64_t out_h = height / 2, out_w = width / 2;
#pragma omp parallel for schedule(static)
  for (int64_t sp = 0; sp < seeds * planes; ++sp) {
    const int64_t p = sp % planes;
    const T* g = grad + sp * out_h * out_w;
    const uint8_t* c = code + p * out_h * out_w;
    T* plane = grad_input + sp * height * width;
    for (int64_t i = 0; i < out_h; ++i) {
      T* top = plane + 2 * i * width;
      unpool_row(g + i * out_w, c + i * out_w, out_w, top, top + width);
      if (width % 2) top[width - 1] = top[2 * width - 1] = T(0);
    }
    if (height % 2)
      for (int64_t j = 0; j < width; ++j) plane[(height - 1) * width + j] = T(0);
  }
}

template void relu_max_pool2x2_forward<float>(const float*, int64_t, int64_t, int64_t, float*, uint8_t*);
template void relu_max_pool2x2_forward<double>(const double*, int64_t, int64_t, int64_t, double*, uint8_t*);
template void relu_max_pool2x2_backward<float>(const float*, const uint8_t*, int64_t, int64_t, int64_t, int64_t,
                                               float*);
template void relu_max_pool2x2_backward<double>(const double*, const uint8_t*, int64_t, int64_t, int64_t, int64_t,
                                                double*);

}  // namespace medsyn
