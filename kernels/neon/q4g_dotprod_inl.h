// Inline SDOT building blocks for both q4g layouts, shared by the SDOT GEMVs and
// GEMM (include only from *_dotprod.cpp files: needs __ARM_FEATURE_DOTPROD).
#pragma once

#if !defined(__ARM_FEATURE_DOTPROD)
#error "q4g_dotprod_inl.h needs +dotprod"
#endif

#include <arm_neon.h>

#include "kernels/neon/arm_kernels.h"

namespace lamina::kern::arm {

/// One group (64 nibble bytes at gp) of one row block against one token's 32
/// activations (a0 = k 0..15, a1 = k 16..31): returns fma(idot, scale, f) per
/// row (scale: the 4 rows' group scales as f32).
inline float32x4_t Q4GGroupDot1(const uint8_t* gp, int8x16_t a0, int8x16_t a1, float32x4_t f,
                                float32x4_t scale) {
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
  return vfmaq_f32(f, vcvtq_n_f32_s32(acc, 4), scale);
}

/// Groups [g0, G) of the row block at blk into f (the C++ tail of the asm
/// GEMV loops, and the whole loop for a lone block).
template <bool kF16>
inline float32x4_t Q4GGroupsDot1(const Q4GBlock<kF16>& L, const uint8_t* blk, const int8_t* q,
                                 size_t g0, float32x4_t f) {
  for (size_t g = g0; g < L.G; ++g)
    f = Q4GGroupDot1(blk + L.kGroupStride * g, vld1q_s8(q + 32 * g), vld1q_s8(q + 32 * g + 16), f,
                     L.Scales(blk, g));
  return f;
}

/// The zero-point correction and activation scale of one row block's 4 rows
/// (ref: fma(-zp, corr, acc) * ascale), stored to y[4b..] below n1.
template <bool kF16>
inline void Q4GFinish1(const Q4GBlock<kF16>& L, const uint8_t* blk, float32x4_t f, float zp,
                       float ascale, int b, int n1, float* y) {
  Store4(y, 4 * b, n1,
         vmulq_n_f32(vfmsq_f32(f, LoadF32x4(blk + L.corr_off), vdupq_n_f32(zp)), ascale));
}

// One group of two row blocks in the asm GEMVs (matmul_q4g_r4k8_1x8_gemv_dotprod.cpp,
// matmul_q4g_r4k8_f16s_1x8_gemv_dotprod.cpp): loads the 64 nibble bytes of each
// block (post-indexed, %[p0] / %[p1]) and the group's 32 activations (%[q]),
// and leaves 16*idot of block 0 in v26 and of block 1 in v27 (lane = row).
// Unpack: lo = b << 4, hi = b & 0xF0 (%[m]), SDOT by element. Uses v0-v7,
// v16-v27.
#define LAMINA_Q4G_GEMV_GROUP2                               \
  "ld1 {v16.16b, v17.16b, v18.16b, v19.16b}, [%[p0]], #64\n" \
  "ld1 {v20.16b, v21.16b, v22.16b, v23.16b}, [%[p1]], #64\n" \
  "ldp q24, q25, [%[q]], #32\n"                              \
  "movi v26.4s, #0\n"                                        \
  "movi v27.4s, #0\n"                                        \
  "shl v0.16b, v16.16b, #4\n"                                \
  "and v1.16b, v16.16b, %[m].16b\n"                          \
  "shl v2.16b, v17.16b, #4\n"                                \
  "and v3.16b, v17.16b, %[m].16b\n"                          \
  "shl v4.16b, v18.16b, #4\n"                                \
  "and v5.16b, v18.16b, %[m].16b\n"                          \
  "shl v6.16b, v19.16b, #4\n"                                \
  "and v7.16b, v19.16b, %[m].16b\n"                          \
  "sdot v26.4s, v0.16b, v24.4b[0]\n"                         \
  "sdot v26.4s, v1.16b, v24.4b[1]\n"                         \
  "sdot v26.4s, v2.16b, v24.4b[2]\n"                         \
  "sdot v26.4s, v3.16b, v24.4b[3]\n"                         \
  "sdot v26.4s, v4.16b, v25.4b[0]\n"                         \
  "sdot v26.4s, v5.16b, v25.4b[1]\n"                         \
  "sdot v26.4s, v6.16b, v25.4b[2]\n"                         \
  "sdot v26.4s, v7.16b, v25.4b[3]\n"                         \
  "shl v0.16b, v20.16b, #4\n"                                \
  "and v1.16b, v20.16b, %[m].16b\n"                          \
  "shl v2.16b, v21.16b, #4\n"                                \
  "and v3.16b, v21.16b, %[m].16b\n"                          \
  "shl v4.16b, v22.16b, #4\n"                                \
  "and v5.16b, v22.16b, %[m].16b\n"                          \
  "shl v6.16b, v23.16b, #4\n"                                \
  "and v7.16b, v23.16b, %[m].16b\n"                          \
  "sdot v27.4s, v0.16b, v24.4b[0]\n"                         \
  "sdot v27.4s, v1.16b, v24.4b[1]\n"                         \
  "sdot v27.4s, v2.16b, v24.4b[2]\n"                         \
  "sdot v27.4s, v3.16b, v24.4b[3]\n"                         \
  "sdot v27.4s, v4.16b, v25.4b[0]\n"                         \
  "sdot v27.4s, v5.16b, v25.4b[1]\n"                         \
  "sdot v27.4s, v6.16b, v25.4b[2]\n"                         \
  "sdot v27.4s, v7.16b, v25.4b[3]\n"

}  // namespace lamina::kern::arm
