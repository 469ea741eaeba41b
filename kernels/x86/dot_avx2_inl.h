// ref::Dot's exact order on AVX2 (kernels/ref/ops_ref.cpp): the 8 partial sums
// acc[j] (k = 8i + j) are the 8 lanes of one ymm (VFMADD, fused, i ascending);
// Reduce8 then forms ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)) with one 128-bit
// add of the halves and two pairwise adds; the n % 8 tail is scalar fma in
// order; Reduce4 does four such trees at once. Shared by rmsnorm_avx2.cpp, matmul_float_avx2.cpp
// and attention_avx2.cpp.
#pragma once

#if !defined(__AVX2__) || !defined(__FMA__)
#error "AVX2 + FMA required (kernels/x86/*_avx2.cpp only)"
#endif

#include <immintrin.h>

#include <cmath>

namespace lamina::x86 {

/// ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)) of the 8 lanes of acc.
inline float Reduce8(__m256 acc) {
  const __m128 t = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  // t = [a0+a4, a1+a5, a2+a6, a3+a7]; u0 = t0 + t1, u2 = t2 + t3.
  const __m128 u = _mm_add_ps(t, _mm_movehdup_ps(t));
  return _mm_cvtss_f32(_mm_add_ss(u, _mm_movehl_ps(u, u)));
}

/// [Reduce8(a), Reduce8(b), Reduce8(c), Reduce8(d)] in one xmm: per
/// accumulator t = [a0+a4, a1+a5, a2+a6, a3+a7] (lo + hi halves), then two
/// rounds of HADDPS give lane i = (t0 + t1) + (t2 + t3) of accumulator i.
inline __m128 Reduce4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m128 ta = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 tb = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
  const __m128 tc = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
  const __m128 td = _mm_add_ps(_mm256_castps256_ps128(d), _mm256_extractf128_ps(d, 1));
  return _mm_hadd_ps(_mm_hadd_ps(ta, tb), _mm_hadd_ps(tc, td));
}

/// ref::Dot(a, b, n), bit for bit.
inline float DotAvx2(const float* a, const float* b, int n) {
  const int n8 = n / 8 * 8;
  __m256 acc = _mm256_setzero_ps();
  for (int k = 0; k < n8; k += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc);
  float s = Reduce8(acc);
  for (int k = n8; k < n; ++k) s = std::fma(a[k], b[k], s);
  return s;
}

}  // namespace lamina::x86
