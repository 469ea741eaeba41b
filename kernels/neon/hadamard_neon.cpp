// Orthonormal fast Walsh–Hadamard transform, ARMv8.0 NEON (SpinQuant's R4 on
// the FFN intermediate before w2). EXACT: every butterfly computes the same
// (a + b, a - b) on the same operands as kernels/ref, in the same stage order;
// only the grouping into vectors differs. Then x *= 1/sqrtf(n), as ref.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <cmath>

#include "kernels/neon/arm_kernels.h"
#include "kernels/ref/ref.h"

namespace lamina::kern::arm {

void HadamardNeon(float* x, int n) {
  if (n < 8) {
    ref::Hadamard(x, n);
    return;
  }
  // Stages h = 1 and h = 2 live inside one 4-lane vector.
  for (int i = 0; i < n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    // h = 1: [x0+x1, x0-x1, x2+x3, x2-x3]
    const float32x4_t r = vrev64q_f32(v);
    const float32x4_t a = vtrn1q_f32(vaddq_f32(v, r), vsubq_f32(v, r));
    // h = 2: [a0+a2, a1+a3, a0-a2, a1-a3]
    const float32x2_t lo = vget_low_f32(a), hi = vget_high_f32(a);
    vst1q_f32(x + i, vcombine_f32(vadd_f32(lo, hi), vsub_f32(lo, hi)));
  }
  // h >= 4: whole vectors.
  for (int h = 4; h < n; h *= 2)
    for (int i = 0; i < n; i += 2 * h)
      for (int j = i; j < i + h; j += 4) {
        const float32x4_t a = vld1q_f32(x + j), b = vld1q_f32(x + j + h);
        vst1q_f32(x + j, vaddq_f32(a, b));
        vst1q_f32(x + j + h, vsubq_f32(a, b));
      }
  const float32x4_t s = vdupq_n_f32(1.f / std::sqrt(static_cast<float>(n)));
  for (int i = 0; i < n; i += 4) vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), s));
}

}  // namespace lamina::kern::arm
