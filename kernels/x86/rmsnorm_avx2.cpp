// RMSNorm, AVX2 + FMA. EXACT: ss = ref::Dot order (dot_avx2_inl.h), the same
// scalar inv, then out = (x * inv) * w elementwise (two roundings, no FMA).
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "AVX2 + FMA + F16C required"
#endif

#include <immintrin.h>

#include <cmath>

#include "kernels/x86/dot_avx2_inl.h"
#include "kernels/x86/x86_ops.h"

namespace lamina::x86 {

void RmsNormAvx2(float* out, const float* x, const float* w, int n, float eps) {
  const float ss = DotAvx2(x, x, n);
  const float inv = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
  const __m256 iv = _mm256_set1_ps(inv);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(
        out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), iv), _mm256_loadu_ps(w + i)));
  for (; i < n; ++i) out[i] = (x[i] * inv) * w[i];
}

}  // namespace lamina::x86
