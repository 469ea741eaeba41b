// SiLU·mul, AVX2 + FMA. EXACT: lane-wise the same operation sequence as
// ref::SiluMulRef1 (kernels/ref/expf_ref.h): g / (1 + ExpfRef(-g)) (IEEE
// division, the exp lanes from expf_avx2_inl.h), then * u. NaN lanes keep
// x86's operand-order NaN rule as the scalar ref compiles it: the division's
// first operand is g in both.
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "AVX2 + FMA + F16C required"
#endif

#include <immintrin.h>

#include "kernels/ref/expf_ref.h"
#include "kernels/x86/expf_avx2_inl.h"
#include "kernels/x86/x86_ops.h"

namespace lamina::x86 {
namespace {

inline __m256 SiluMul8(__m256 g, __m256 u) {
  const __m256 neg = _mm256_xor_ps(g, _mm256_set1_ps(-0.f));  // -g, exact
  const __m256 d = _mm256_add_ps(_mm256_set1_ps(1.f), ExpfAvx2(neg));
  return _mm256_mul_ps(_mm256_div_ps(g, d), u);
}

}  // namespace

void SiluMulAvx2(float* gate, const float* up, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 r0 = SiluMul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i));
    const __m256 r1 = SiluMul8(_mm256_loadu_ps(gate + i + 8), _mm256_loadu_ps(up + i + 8));
    _mm256_storeu_ps(gate + i, r0);
    _mm256_storeu_ps(gate + i + 8, r1);
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(gate + i, SiluMul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  for (; i < n; ++i) gate[i] = ref::SiluMulRef1(gate[i], up[i]);
}

}  // namespace lamina::x86
