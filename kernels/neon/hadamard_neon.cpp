// Orthonormal fast Walsh–Hadamard transform, ARMv8.0 NEON (SpinQuant's R4 on
// the FFN intermediate before w2). EXACT: every butterfly computes the same
// (a + b, a - b) on the same operands as kernels/ref, and every element goes
// through the stages in the same order h = 1, 2, 4, ...; only the grouping
// into vectors and passes differs. Then x *= 1/sqrtf(n), as ref (a separate
// multiply of the finished sum, fused into the last pass's store).
// Why the pass structure: n = 8192 (Llama 3.2's ffn width) is 13 stages over
// 32 KB, run once per layer and token. One butterfly stage costs 2
// instructions per 8 floats, a pass over x 2 more (load + store), so the
// passes are what to save: blocks of 64 floats (16 q registers) take stages
// h = 1 .. 32 in one pass (LD4 puts x[4l + c] in lane l of register c, so
// h = 1, 2 are whole-register butterflies; a 4x4 transpose then restores
// natural order for h = 4 .. 32), and the remaining stages go up to four at a
// time (radix 16: the 16 vectors at j, j + h, ..., j + 15h), so 8192 takes 3
// passes instead of 13.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <cmath>
#include <cstddef>
#include <utility>

#include "kernels/neon/arm_kernels.h"
#include "kernels/ref/ref.h"

namespace lamina::kern::arm {
namespace {

/// Butterfly (a, b) -> (a + b, a - b).
inline void Bfly(float32x4_t* a, float32x4_t* b) {
  const float32x4_t s = vaddq_f32(*a, *b), d = vsubq_f32(*a, *b);
  *a = s;
  *b = d;
}

/// One stage among the R registers v: butterflies (v[a], v[a + G]) with a
/// over the first halves of the pairs (register stride G). Constant indices
/// (a fold over P), so the registers never go through memory.
template <int G, size_t... P>
inline void Stage(float32x4_t* v, std::index_sequence<P...>) {
  (Bfly(&v[P / G * 2 * G + P % G], &v[P / G * 2 * G + P % G + G]), ...);
}

/// Every stage G = 1, 2, .., R/2 among the R registers v, in that order.
template <int R, int G = 1>
inline void Stages(float32x4_t* v) {
  if constexpr (G < R) {
    Stage<G>(v, std::make_index_sequence<R / 2>{});
    Stages<R, 2 * G>(v);
  }
}

/// Stages h = 1 .. 32 on x[0, 64).
inline void Block64(float* x) {
  float32x4_t v[16];
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    // c[k] lane l = x[16q + 4l + k]: h = 1, 2 pair registers (k, k ^ 1), (k, k ^ 2).
    const float32x4x4_t c = vld4q_f32(x + 16 * q);
    float32x4_t k[4] = {c.val[0], c.val[1], c.val[2], c.val[3]};
    Stages<4>(k);
    // 4x4 transpose back to natural order: v[4q + l] = x[16q + 4l .. 16q + 4l + 3].
    const float32x4_t t0 = vtrn1q_f32(k[0], k[1]), t1 = vtrn2q_f32(k[0], k[1]);
    const float32x4_t t2 = vtrn1q_f32(k[2], k[3]), t3 = vtrn2q_f32(k[2], k[3]);
    const float64x2_t d0 = vreinterpretq_f64_f32(t0), d1 = vreinterpretq_f64_f32(t1);
    const float64x2_t d2 = vreinterpretq_f64_f32(t2), d3 = vreinterpretq_f64_f32(t3);
    v[4 * q + 0] = vreinterpretq_f32_f64(vtrn1q_f64(d0, d2));
    v[4 * q + 1] = vreinterpretq_f32_f64(vtrn1q_f64(d1, d3));
    v[4 * q + 2] = vreinterpretq_f32_f64(vtrn2q_f64(d0, d2));
    v[4 * q + 3] = vreinterpretq_f32_f64(vtrn2q_f64(d1, d3));
  }
  Stages<16>(v);  // register stride g = element stride 4g: h = 4 .. 32
#pragma GCC unroll 16
  for (int r = 0; r < 16; ++r) vst1q_f32(x + 4 * r, v[r]);
}

/// Stages h, 2h, .., (R/2)h (h >= 4) over x[0, n) in one pass; kScale: then
/// x *= s (the last pass).
template <int R, bool kScale>
void Pass(float* x, int n, int h, float32x4_t s) {
  for (int i = 0; i < n; i += R * h)
    for (int j = i; j < i + h; j += 4) {
      float32x4_t v[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) v[r] = vld1q_f32(x + j + r * h);
      Stages<R>(v);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) vst1q_f32(x + j + r * h, kScale ? vmulq_f32(v[r], s) : v[r]);
    }
}

}  // namespace

void HadamardNeon(float* x, int n) {
  if (n < 64) {
    ref::Hadamard(x, n);
    return;
  }
  for (int i = 0; i < n; i += 64) Block64(x + i);
  const float32x4_t s = vdupq_n_f32(1.f / std::sqrt(static_cast<float>(n)));
  int h = 64;
  for (; h * 16 < n; h *= 16) Pass<16, false>(x, n, h, s);
  // 1 to 4 stages left (h < n), or none (n == 64): the last pass scales.
  if (h * 16 == n) {
    Pass<16, true>(x, n, h, s);
  } else if (h * 8 == n) {
    Pass<8, true>(x, n, h, s);
  } else if (h * 4 == n) {
    Pass<4, true>(x, n, h, s);
  } else if (h * 2 == n) {
    Pass<2, true>(x, n, h, s);
  } else {
    for (int i = 0; i < n; i += 4) vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), s));
  }
}

}  // namespace lamina::kern::arm
