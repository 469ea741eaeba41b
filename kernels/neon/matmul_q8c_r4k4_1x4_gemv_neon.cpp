// q8c (Q8C_R4K4) x int8 GEMV for ARMv8.0 NEON (no SDOT): one token (plain
// activation row) x one row block (4 rows) per pass. Per 16-byte chunk (4 rows x 4 k): the
// chunk's 4 activation bytes broadcast with DUP, SMULL/SMULL2 to int16 (one
// product per lane, |p| <= 2^14), SADALP into int32 (no overflow for
// K < 65536); ADDP gives per-row sums. Epilogue exactly as ref.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include "kernels/neon/arm_kernels.h"

namespace lamina::kern::arm {

void Q8CGemv1x4Neon(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y) {
  const size_t Kp = Kp32(K), bb = Kp * 4 + 32;
  const int32x4_t zpv = vdupq_n_s32(static_cast<int32_t>(zp));
  for (int b = n0 / 4; b < (n1 + 3) / 4; ++b) {
    const int8_t* p = reinterpret_cast<const int8_t*>(w + static_cast<size_t>(b) * bb);
    int32x4_t s01 = vdupq_n_s32(0), s23 = s01, t01 = s01, t23 = s01;
    for (size_t k = 0; k < Kp; k += 16) {
      const int32x4_t a4 = vld1q_s32(reinterpret_cast<const int32_t*>(q + k));
      const int8x16x4_t wv = vld1q_s8_x4(p + 4 * k);
      int8x16_t x;
      x = vreinterpretq_s8_s32(vdupq_laneq_s32(a4, 0));
      s01 = vpadalq_s16(s01, vmull_s8(vget_low_s8(wv.val[0]), vget_low_s8(x)));
      s23 = vpadalq_s16(s23, vmull_high_s8(wv.val[0], x));
      x = vreinterpretq_s8_s32(vdupq_laneq_s32(a4, 1));
      t01 = vpadalq_s16(t01, vmull_s8(vget_low_s8(wv.val[1]), vget_low_s8(x)));
      t23 = vpadalq_s16(t23, vmull_high_s8(wv.val[1], x));
      x = vreinterpretq_s8_s32(vdupq_laneq_s32(a4, 2));
      s01 = vpadalq_s16(s01, vmull_s8(vget_low_s8(wv.val[2]), vget_low_s8(x)));
      s23 = vpadalq_s16(s23, vmull_high_s8(wv.val[2], x));
      x = vreinterpretq_s8_s32(vdupq_laneq_s32(a4, 3));
      t01 = vpadalq_s16(t01, vmull_s8(vget_low_s8(wv.val[3]), vget_low_s8(x)));
      t23 = vpadalq_s16(t23, vmull_high_s8(wv.val[3], x));
    }
    const int32x4_t acc = vpaddq_s32(vaddq_s32(s01, t01), vaddq_s32(s23, t23));
    const uint8_t* tail = w + static_cast<size_t>(b) * bb + 4 * Kp;
    const int32x4_t wsum = vld1q_s32(reinterpret_cast<const int32_t*>(tail + 16));
    const float32x4_t r =
        vmulq_n_f32(vmulq_f32(Q8CFinishF32(acc, wsum, zpv), LoadF32x4(tail)), ascale);
    Store4(y, 4 * b, n1, r);
  }
}

}  // namespace lamina::kern::arm
