// Orthonormal fast Walsh–Hadamard transform, AVX2 (SpinQuant's R4 on the FFN
// intermediate before w2). EXACT: every butterfly computes the same
// (a + b, a - b) on the same operands as ref::Hadamard, and every element goes
// through the stages in the same order h = 1, 2, 4, ...; only the grouping
// into vectors and passes differs. Then x *= 1/sqrtf(n), as ref.
// Why the pass structure: n = 8192 (Llama 3.2's ffn width) is 13 stages over
// 32 KB. Stages h = 1, 2, 4 are lane shuffles inside one ymm; h = 8, 16, 32
// run on 8 ymm held in registers (one pass over x for the first six stages);
// the remaining stages go two at a time (radix 4: the 4 vectors at j, j + h,
// j + 2h, j + 3h take stage h, then stage 2h), so 8192 takes 5 passes instead
// of 13.
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "AVX2 + FMA + F16C required"
#endif

#include <immintrin.h>

#include <cmath>

#include "kernels/ref/ref.h"
#include "kernels/x86/x86_ops.h"

namespace lamina::x86 {
namespace {

/// Butterfly (a, b) -> (a + b, a - b).
inline void Bfly(__m256* a, __m256* b) {
  const __m256 s = _mm256_add_ps(*a, *b), d = _mm256_sub_ps(*a, *b);
  *a = s;
  *b = d;
}

/// Stages h = 1, 2, 4 inside the 8 lanes of v.
inline __m256 In8(__m256 v) {
  // h = 1: lanes (2i, 2i+1): lo = x[2i] twice, hi = x[2i+1] twice.
  __m256 lo = _mm256_moveldup_ps(v), hi = _mm256_movehdup_ps(v);
  v = _mm256_blend_ps(_mm256_add_ps(lo, hi), _mm256_sub_ps(lo, hi), 0xAA);
  // h = 2: in each 128-bit half [a, b, c, d] -> [a + c, b + d, a - c, b - d].
  lo = _mm256_permute_ps(v, 0x44);  // [a, b, a, b]
  hi = _mm256_permute_ps(v, 0xEE);  // [c, d, c, d]
  v = _mm256_blend_ps(_mm256_add_ps(lo, hi), _mm256_sub_ps(lo, hi), 0xCC);
  // h = 4: [L, H] -> [L + H, L - H].
  lo = _mm256_permute2f128_ps(v, v, 0x00);
  hi = _mm256_permute2f128_ps(v, v, 0x11);
  return _mm256_blend_ps(_mm256_add_ps(lo, hi), _mm256_sub_ps(lo, hi), 0xF0);
}

/// Stages h = 1 .. 32 on x[0, 64).
inline void Block64(float* x) {
  __m256 v[8];
  for (int r = 0; r < 8; ++r) v[r] = In8(_mm256_loadu_ps(x + 8 * r));
  for (int h = 1; h < 8; h *= 2)  // register stride h: element stride 8h
    for (int i = 0; i < 8; i += 2 * h)
      for (int j = i; j < i + h; ++j) Bfly(&v[j], &v[j + h]);
  for (int r = 0; r < 8; ++r) _mm256_storeu_ps(x + 8 * r, v[r]);
}

/// One stage h (h >= 8) over x[0, n).
void Stage(float* x, int n, int h) {
  for (int i = 0; i < n; i += 2 * h)
    for (int j = i; j < i + h; j += 8) {
      __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
      Bfly(&a, &b);
      _mm256_storeu_ps(x + j, a);
      _mm256_storeu_ps(x + j + h, b);
    }
}

/// Stages h and 2h (h >= 8) over x[0, n) in one pass.
void Stage2(float* x, int n, int h) {
  for (int i = 0; i < n; i += 4 * h)
    for (int j = i; j < i + h; j += 8) {
      __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + h);
      __m256 c = _mm256_loadu_ps(x + j + 2 * h), d = _mm256_loadu_ps(x + j + 3 * h);
      Bfly(&a, &b);
      Bfly(&c, &d);
      Bfly(&a, &c);
      Bfly(&b, &d);
      _mm256_storeu_ps(x + j, a);
      _mm256_storeu_ps(x + j + h, b);
      _mm256_storeu_ps(x + j + 2 * h, c);
      _mm256_storeu_ps(x + j + 3 * h, d);
    }
}

}  // namespace

void HadamardAvx2(float* x, int n) {
  if (n < 8) {
    ref::Hadamard(x, n);
    return;
  }
  int h;
  if (n >= 64) {
    for (int i = 0; i < n; i += 64) Block64(x + i);
    h = 64;
  } else {
    for (int i = 0; i < n; i += 8) _mm256_storeu_ps(x + i, In8(_mm256_loadu_ps(x + i)));
    h = 8;
  }
  for (; 2 * h < n; h *= 4) Stage2(x, n, h);
  if (h < n) Stage(x, n, h);
  const __m256 s = _mm256_set1_ps(1.f / std::sqrt(static_cast<float>(n)));
  for (int i = 0; i < n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), s));
}

}  // namespace lamina::x86
