// RoPE on interleaved pairs, AVX2. EXACT: per pair (a, b) and j,
// (a*cos[j] - b*sin[j], a*sin[j] + b*cos[j]) with each product rounded and
// one add / sub, as ref::Rope (no fma). 4 pairs per ymm: X = [a*c, a*s, ..],
// Y = [b*s, b*c, ..], then ADDSUBPS gives X - Y in even and X + Y in odd lanes.
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "AVX2 + FMA + F16C required"
#endif

#include <immintrin.h>

#include "kernels/x86/x86_ops.h"

namespace lamina::x86 {

void RopeAvx2(float* x, int n_heads, int head_dim, const float* cos, const float* sin) {
  const int half = head_dim / 2;
  const int h4 = half / 4 * 4;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<size_t>(h) * head_dim;
    int j = 0;
    for (; j < h4; j += 4) {
      const __m128 c = _mm_loadu_ps(cos + j), s = _mm_loadu_ps(sin + j);
      const __m256 cs = _mm256_set_m128(_mm_unpackhi_ps(c, s), _mm_unpacklo_ps(c, s));
      const __m256 sc = _mm256_set_m128(_mm_unpackhi_ps(s, c), _mm_unpacklo_ps(s, c));
      const __m256 ab = _mm256_loadu_ps(v + 2 * j);
      const __m256 xa = _mm256_mul_ps(_mm256_moveldup_ps(ab), cs);
      const __m256 yb = _mm256_mul_ps(_mm256_movehdup_ps(ab), sc);
      _mm256_storeu_ps(v + 2 * j, _mm256_addsub_ps(xa, yb));
    }
    for (; j < half; ++j) {
      const float a = v[2 * j], b = v[2 * j + 1];
      v[2 * j] = a * cos[j] - b * sin[j];
      v[2 * j + 1] = a * sin[j] + b * cos[j];
    }
  }
}

}  // namespace lamina::x86
