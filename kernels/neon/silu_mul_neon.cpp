// SiLU·mul, ARMv8.0 NEON. EXACT: lane-wise the same operation sequence as
// ref::ExpfRef / ref::SiluMulRef1 (kernels/ref/expf_ref.h; the exp lanes are
// ExpfNeon, kernels/neon/expf_neon_inl.h): same constants,
// vfmaq_f32 == std::fma, vdivq_f32 == IEEE division, clamp by FMIN/FMAX (NaN
// lanes are replaced by x + x at the end, as the scalar early return does).
// Why: libm's expf made every tier call the scalar ref per element (~131K
// calls per 1B-shaped token); lamina's own expf makes 4 lanes at a time exact.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/expf_neon_inl.h"
#include "kernels/ref/expf_ref.h"

namespace lamina::kern::arm {

void SiluMulNeon(float* gate, const float* up, int n) {
  const float32x4_t one = vdupq_n_f32(1.f);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t g0 = vld1q_f32(gate + i), g1 = vld1q_f32(gate + i + 4);
    const float32x4_t e0 = ExpfNeon(vnegq_f32(g0)), e1 = ExpfNeon(vnegq_f32(g1));
    const float32x4_t s0 = vdivq_f32(g0, vaddq_f32(one, e0));
    const float32x4_t s1 = vdivq_f32(g1, vaddq_f32(one, e1));
    vst1q_f32(gate + i, vmulq_f32(s0, vld1q_f32(up + i)));
    vst1q_f32(gate + i + 4, vmulq_f32(s1, vld1q_f32(up + i + 4)));
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t s = vdivq_f32(g, vaddq_f32(one, ExpfNeon(vnegq_f32(g))));
    vst1q_f32(gate + i, vmulq_f32(s, vld1q_f32(up + i)));
  }
  for (; i < n; ++i) gate[i] = ref::SiluMulRef1(gate[i], up[i]);
}

}  // namespace lamina::kern::arm
