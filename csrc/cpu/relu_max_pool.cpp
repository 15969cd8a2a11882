// ReLU + 2x2 max pool, forward with argmax codes and multi-seed backward (see relu_max_pool.h).
// Both are memory-bound; OpenMP over planes (forward) and over (seed, plane) pairs (backward). The
// backward writes each 2x2 block once (one value, three zeros), where torch's autograd zero-fills the
// input gradient, scatters, then masks it with ReLU's backward: three passes over it per seed.
#include "cpu/relu_max_pool.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define MEDSYN_POOL_AVX512 1
#include <immintrin.h>
#endif

namespace medsyn {
namespace {

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
  const bool flows = best > T(0);                  // relu(x) > 0: the gradient passes
  out = flows || std::isnan(best) ? best : T(0);  // relu(NaN) = NaN, with no gradient
  code = flows ? at : kNoGradient;
}

// One output row: windows j in [0, out_w) of rows `top`, `bottom` (scalar, torch's scan order).
template <typename T>
void pool_row_scalar(const T* top, const T* bottom, int64_t out_w, T* out, uint8_t* code) {
  for (int64_t j = 0; j < out_w; ++j) pool_window_scalar(top + 2 * j, bottom + 2 * j, out[j], code[j]);
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

#ifdef MEDSYN_POOL_AVX512
// AVX-512 rows: GCC left the plain loops scalar for rows this short (16 outputs at 32 px; 12x slower).
// Simd<T>: the few operations the two row kernels need, for 16 floats or 8 doubles per register; integer
// lanes (codes) have the same count, as 32- or 64-bit integers.
template <typename T>
struct Simd;

template <>
struct Simd<float> {
  using V = __m512;
  using M = __mmask16;
  static constexpr int kLanes = 16;
  static V load(M m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, M m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static V permute(V a, __m512i index, V b) { return _mm512_permutex2var_ps(a, index, b); }
  static M greater(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M is_nan(V a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static V blend(M m, V a, V b) { return _mm512_mask_blend_ps(m, a, b); }
  static V zero_unless(M m, V a) { return _mm512_maskz_mov_ps(m, a); }
  static V zero() { return _mm512_setzero_ps(); }
  static __m512i integers(int v) { return _mm512_set1_epi32(v); }
  static __m512i blend_integers(M m, __m512i a, __m512i b) { return _mm512_mask_blend_epi32(m, a, b); }
  static M equal(__m512i a, __m512i b) { return _mm512_cmpeq_epi32_mask(a, b); }
  static void store_codes(uint8_t* p, M m, __m512i codes) { _mm512_mask_cvtepi32_storeu_epi8(p, m, codes); }
  static __m512i load_codes(M m, const uint8_t* p) {
    return _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_maskz_loadu_epi8(m, p));
  }
  // lane k <- lane 2k (even) / 2k + 1 (odd) of the pair a:b; interleave: lanes 0, 16, 1, 17, ... of a:b
  static __m512i even() { return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30); }
  static __m512i odd() { return _mm512_add_epi32(even(), _mm512_set1_epi32(1)); }
  static __m512i interleave_low() { return _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23); }
  static __m512i interleave_high() { return _mm512_add_epi32(interleave_low(), _mm512_set1_epi32(8)); }
};

template <>
struct Simd<double> {
  using V = __m512d;
  using M = __mmask8;
  static constexpr int kLanes = 8;
  static V load(M m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, M m, V v) { _mm512_mask_storeu_pd(p, m, v); }
  static V permute(V a, __m512i index, V b) { return _mm512_permutex2var_pd(a, index, b); }
  static M greater(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static M is_nan(V a) { return _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q); }
  static V blend(M m, V a, V b) { return _mm512_mask_blend_pd(m, a, b); }
  static V zero_unless(M m, V a) { return _mm512_maskz_mov_pd(m, a); }
  static V zero() { return _mm512_setzero_pd(); }
  static __m512i integers(int v) { return _mm512_set1_epi64(v); }
  static __m512i blend_integers(M m, __m512i a, __m512i b) { return _mm512_mask_blend_epi64(m, a, b); }
  static M equal(__m512i a, __m512i b) { return _mm512_cmpeq_epi64_mask(a, b); }
  static void store_codes(uint8_t* p, M m, __m512i codes) { _mm512_mask_cvtepi64_storeu_epi8(p, m, codes); }
  static __m512i load_codes(M m, const uint8_t* p) {
    return _mm512_maskz_cvtepu8_epi64(0xFF, _mm_maskz_loadu_epi8(m, p));
  }
  static __m512i even() { return _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14); }
  static __m512i odd() { return _mm512_add_epi64(even(), _mm512_set1_epi64(1)); }
  static __m512i interleave_low() { return _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11); }
  static __m512i interleave_high() { return _mm512_add_epi64(interleave_low(), _mm512_set1_epi64(4)); }
};

// The first `count` of S::kLanes lanes (count clamped to [0, kLanes]).
template <typename S>
typename S::M first_lanes(int64_t count) {
  if (count <= 0) return 0;
  return count >= S::kLanes ? static_cast<typename S::M>(~0u) : static_cast<typename S::M>((1u << count) - 1u);
}

// A tournament: the first maximum of (a, b) against that of (c, d), the lower pair winning only when strictly
// greater, is the row-major scan's winner when no value is NaN; rows with a NaN are redone by pool_row_scalar.
template <typename T>
void pool_row(const T* top, const T* bottom, int64_t out_w, T* out, uint8_t* code) {
  using S = Simd<T>;
  constexpr int L = S::kLanes;
  typename S::M nan_seen = 0;
  for (int64_t j = 0; j < out_w; j += L) {
    const int64_t n = std::min<int64_t>(L, out_w - j);
    const auto low = first_lanes<S>(2 * n), high = first_lanes<S>(2 * n - L), valid = first_lanes<S>(n);
    const auto t0 = S::load(low, top + 2 * j), t1 = S::load(high, top + 2 * j + L);
    const auto b0 = S::load(low, bottom + 2 * j), b1 = S::load(high, bottom + 2 * j + L);
    const auto a = S::permute(t0, S::even(), t1), b = S::permute(t0, S::odd(), t1);
    const auto c = S::permute(b0, S::even(), b1), d = S::permute(b0, S::odd(), b1);
    const auto right_top = S::greater(b, a), right_bottom = S::greater(d, c);
    const auto upper = S::blend(right_top, a, b), lower = S::blend(right_bottom, c, d);
    const auto take_lower = S::greater(lower, upper);
    const auto best = S::blend(take_lower, upper, lower);
    const auto flows = S::greater(best, S::zero());
    __m512i at = S::blend_integers(right_top, S::integers(0), S::integers(1));
    at = S::blend_integers(take_lower, at, S::blend_integers(right_bottom, S::integers(2), S::integers(3)));
    at = S::blend_integers(flows, S::integers(kNoGradient), at);
    S::store(out + j, valid, S::zero_unless(flows, best));
    S::store_codes(code + j, valid, at);
    nan_seen |= S::is_nan(a) | S::is_nan(b) | S::is_nan(c) | S::is_nan(d);
  }
  if (nan_seen) pool_row_scalar(top, bottom, out_w, out, code);
}

template <typename T>
void unpool_row(const T* g, const uint8_t* code, int64_t out_w, T* top, T* bottom) {
  using S = Simd<T>;
  constexpr int L = S::kLanes;
  for (int64_t j = 0; j < out_w; j += L) {
    const int64_t n = std::min<int64_t>(L, out_w - j);
    const auto low = first_lanes<S>(2 * n), high = first_lanes<S>(2 * n - L), valid = first_lanes<S>(n);
    const auto value = S::load(valid, g + j);
    const __m512i at = S::load_codes(valid, code + j);
    const auto v0 = S::zero_unless(S::equal(at, S::integers(0)), value);
    const auto v1 = S::zero_unless(S::equal(at, S::integers(1)), value);
    const auto v2 = S::zero_unless(S::equal(at, S::integers(2)), value);
    const auto v3 = S::zero_unless(S::equal(at, S::integers(3)), value);
    S::store(top + 2 * j, low, S::permute(v0, S::interleave_low(), v1));
    S::store(top + 2 * j + L, high, S::permute(v0, S::interleave_high(), v1));
    S::store(bottom + 2 * j, low, S::permute(v2, S::interleave_low(), v3));
    S::store(bottom + 2 * j + L, high, S::permute(v2, S::interleave_high(), v3));
  }
}
#else
template <typename T>
void pool_row(const T* top, const T* bottom, int64_t out_w, T* out, uint8_t* code) {
  pool_row_scalar(top, bottom, out_w, out, code);
}

template <typename T>
void unpool_row(const T* g, const uint8_t* code, int64_t out_w, T* top, T* bottom) {
  unpool_row_scalar(g, code, out_w, top, bottom);
}
#endif

}  // namespace

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
