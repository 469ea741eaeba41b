// ref::ExpfRef (kernels/ref/expf_ref.h) on 4 NEON lanes, ARMv8.0. EXACT:
// lane-wise the same operation sequence: same constants, vfmaq_f32 ==
// std::fma, clamp by FMIN/FMAX (NaN lanes are replaced by x + x at the end, as
// the scalar early return does). Shared by silu_mul_neon.cpp and
// softmax_neon.cpp so both stay bit-identical to ref.
#pragma once

#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include <arm_neon.h>

#include "kernels/ref/expf_ref.h"

namespace lamina::kern::arm {

/// ref::ExpfRef on 4 lanes; any input (NaN, ±inf, subnormals).
inline float32x4_t ExpfNeon(float32x4_t x) {
  using namespace ref::expf_const;
  const uint32x4_t is_num = vceqq_f32(x, x);
  const float32x4_t xnan = vaddq_f32(x, x);
  float32x4_t xc = vminq_f32(x, vdupq_n_f32(kHi));
  xc = vmaxq_f32(xc, vdupq_n_f32(kLo));
  const float32x4_t shift = vdupq_n_f32(kShift);
  const float32x4_t t = vaddq_f32(vmulq_f32(xc, vdupq_n_f32(kLog2e)), shift);
  const int32x4_t n = vsubq_s32(vreinterpretq_s32_f32(t), vreinterpretq_s32_f32(shift));
  const float32x4_t nf = vnegq_f32(vsubq_f32(t, shift));  // -f
  float32x4_t r = vfmaq_f32(xc, nf, vdupq_n_f32(kLn2Hi));
  r = vfmaq_f32(r, nf, vdupq_n_f32(kLn2Lo));
  float32x4_t p = vdupq_n_f32(kC7);
  p = vfmaq_f32(vdupq_n_f32(kC6), p, r);
  p = vfmaq_f32(vdupq_n_f32(kC5), p, r);
  p = vfmaq_f32(vdupq_n_f32(kC4), p, r);
  p = vfmaq_f32(vdupq_n_f32(kC3), p, r);
  p = vfmaq_f32(vdupq_n_f32(kC2), p, r);
  const float32x4_t one = vdupq_n_f32(1.f);
  p = vfmaq_f32(one, p, r);
  p = vfmaq_f32(one, p, r);
  const int32x4_t n1 = vshrq_n_s32(n, 1);  // arithmetic, as the scalar n >> 1
  const int32x4_t n2 = vsubq_s32(n, n1);
  const int32x4_t bias = vdupq_n_s32(127);
  const float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
  const float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
  const float32x4_t e = vmulq_f32(vmulq_f32(p, s1), s2);
  return vbslq_f32(is_num, e, xnan);
}

}  // namespace lamina::kern::arm
