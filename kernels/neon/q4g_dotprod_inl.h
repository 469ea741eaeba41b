// Inline SDOT building blocks for Q4G_R4K8 (include only from *_dotprod.cpp,
// *_i8mm.cpp or SVE files: needs __ARM_FEATURE_DOTPROD).
#pragma once

#if !defined(__ARM_FEATURE_DOTPROD)
#error "q4g_dotprod_inl.h needs +dotprod"
#endif

#include <arm_neon.h>

#include "kernels/neon/arm_kernels.h"

namespace lamina::kern::arm {

/// One group (80 bytes at gp) of one row block against one token's 32
/// activations (a0 = k 0..15, a1 = k 16..31): returns fma(idot, scale, f) per row.
inline float32x4_t Q4GGroupDot1(const uint8_t* gp, int8x16_t a0, int8x16_t a1, float32x4_t f) {
  const uint8x16x4_t wb = vld1q_u8_x4(gp);
  const uint8x16_t m = vdupq_n_u8(0xF0);
  int32x4_t acc = vdupq_n_s32(0);
  acc = vdotq_laneq_s32(acc, vreinterpretq_s8_u8(vshlq_n_u8(wb.val[0], 4)), a0, 0);
  acc = vdotq_laneq_s32(acc, vreinterpretq_s8_u8(vandq_u8(wb.val[0], m)), a0, 1);
  acc = vdotq_laneq_s32(acc, vreinterpretq_s8_u8(vshlq_n_u8(wb.val[1], 4)), a0, 2);
  acc = vdotq_laneq_s32(acc, vreinterpretq_s8_u8(vandq_u8(wb.val[1], m)), a0, 3);
  acc = vdotq_laneq_s32(acc, vreinterpretq_s8_u8(vshlq_n_u8(wb.val[2], 4)), a1, 0);
  acc = vdotq_laneq_s32(acc, vreinterpretq_s8_u8(vandq_u8(wb.val[2], m)), a1, 1);
  acc = vdotq_laneq_s32(acc, vreinterpretq_s8_u8(vshlq_n_u8(wb.val[3], 4)), a1, 2);
  acc = vdotq_laneq_s32(acc, vreinterpretq_s8_u8(vandq_u8(wb.val[3], m)), a1, 3);
  return vfmaq_f32(f, vcvtq_n_f32_s32(acc, 4), LoadF32x4(gp + 64));
}

}  // namespace lamina::kern::arm
