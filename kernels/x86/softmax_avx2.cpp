// Softmax in place, AVX2 + FMA. EXACT (bit-identical to ref::Softmax,
// kernels/ref/ops_ref.cpp, for inputs without NaN / +inf): the max is
// order-independent (per lane _mm256_max_ps(x, m) is the ref's compare-select
// `x > m ? x : m`; lanes combine in another order, which can only change the
// sign of a zero maximum, invisible to x - m and ExpfRef); exp lanes are
// ref::ExpfRef (expf_avx2_inl.h); the ref's 8 partial sums s[i % 8] are the 8
// lanes of one ymm, each accumulated in index order, the n % 8 tail added
// scalar to the same partials, then the ref's combine
// ((s0+s4)+(s1+s5))+((s2+s6)+(s3+s7)); x *= 1/sum as ref.
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "AVX2 + FMA + F16C required"
#endif

#include <immintrin.h>

#include "kernels/ref/expf_ref.h"
#include "kernels/x86/expf_avx2_inl.h"
#include "kernels/x86/x86_ops.h"

namespace lamina::x86 {

void SoftmaxAvx2(float* x, int n) {
  const int n8 = n / 8 * 8;
  float m = x[0];
  if (n8 > 0) {
    __m256 mv = _mm256_loadu_ps(x);
    for (int i = 8; i < n8; i += 8) mv = _mm256_max_ps(_mm256_loadu_ps(x + i), mv);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    m = _mm_cvtss_f32(h);
  }
  for (int i = n8; i < n; ++i) m = x[i] > m ? x[i] : m;
  const __m256 mv = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  for (int i = 0; i < n8; i += 8) {
    const __m256 e = ExpfAvx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  alignas(32) float s[8];
  _mm256_store_ps(s, acc);
  for (int i = n8; i < n; ++i) {
    x[i] = ref::ExpfRef(x[i] - m);
    s[i - n8] += x[i];
  }
  const float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
  const float inv = 1.f / sum;
  const __m256 iv = _mm256_set1_ps(inv);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), iv));
  for (; i < n; ++i) x[i] *= inv;
}

}  // namespace lamina::x86
