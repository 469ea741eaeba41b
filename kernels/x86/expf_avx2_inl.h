// ref::ExpfRef (kernels/ref/expf_ref.h) on 8 AVX2 lanes. EXACT: lane-wise the
// same operation sequence: same constants, _mm256_fmadd_ps / _mm256_fnmadd_ps
// == std::fma (with -f: negation is exact), separate mul then add where ref
// rounds twice. Clamp: _mm256_min_ps(x, c) is exactly `x < c ? x : c` and
// _mm256_max_ps(x, c) `x > c ? x : c` (the ref's compare-selects); NaN lanes
// are replaced by x + x at the end, as the scalar early return does. Shared by
// silu_mul_avx2.cpp and softmax_avx2.cpp (and through softmax, attention).
#pragma once

#if !defined(__AVX2__) || !defined(__FMA__)
#error "AVX2 + FMA required (kernels/x86/*_avx2.cpp only)"
#endif

#include <immintrin.h>

#include "kernels/ref/expf_ref.h"

namespace lamina::x86 {

/// ref::ExpfRef on 8 lanes; any input (NaN, ±inf, subnormals).
inline __m256 ExpfAvx2(__m256 x) {
  using namespace ref::expf_const;
  const __m256 is_num = _mm256_cmp_ps(x, x, _CMP_ORD_Q);
  const __m256 xnan = _mm256_add_ps(x, x);
  __m256 xc = _mm256_min_ps(x, _mm256_set1_ps(kHi));
  xc = _mm256_max_ps(xc, _mm256_set1_ps(kLo));
  const __m256 shift = _mm256_set1_ps(kShift);
  const __m256 t = _mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(kLog2e)), shift);
  const __m256i n = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_castps_si256(shift));
  const __m256 f = _mm256_sub_ps(t, shift);
  __m256 r = _mm256_fnmadd_ps(f, _mm256_set1_ps(kLn2Hi), xc);  // fma(-f, kLn2Hi, x)
  r = _mm256_fnmadd_ps(f, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kC7);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC5));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kC2));
  const __m256 one = _mm256_set1_ps(1.f);
  p = _mm256_fmadd_ps(p, r, one);
  p = _mm256_fmadd_ps(p, r, one);
  const __m256i n1 = _mm256_srai_epi32(n, 1);  // arithmetic, as the scalar n >> 1
  const __m256i n2 = _mm256_sub_epi32(n, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  const __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  return _mm256_blendv_ps(xnan, e, is_num);
}

}  // namespace lamina::x86
