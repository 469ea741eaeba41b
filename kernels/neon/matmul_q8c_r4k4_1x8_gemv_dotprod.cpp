// q8c (Q8C_R4K4) x int8 GEMV, one token x 8 rows (two row blocks) per pass,
// SDOT by element (ARMv8.2 dotprod).
// Each 16-byte chunk (4 rows x 4 k) is an SDOT-by-element operand: lane r =
// row r, activation lane = the chunk's 4 bytes of k. Two row blocks per pass
// share the activation loads; per 64 weights: 1 LD1x4 + 4 SDOT.
// Exactness: integer sums are order-free (|sum| < 2^31 for K < 65536), then
// idot - zp*wsum (MLS, int32), SCVTF, FMUL by the row scale, FMUL by the
// activation scale: ref's ((float)idot * ws) * as.
#if !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod"
#endif

#include "kernels/neon/arm_kernels.h"

namespace lamina::kern::arm {
namespace {

inline int32x4_t Dot16(int32x4_t acc, const uint8_t* p, int8x16_t a) {
  const int8x16x4_t wv = vld1q_s8_x4(reinterpret_cast<const int8_t*>(p));
  acc = vdotq_laneq_s32(acc, wv.val[0], a, 0);
  acc = vdotq_laneq_s32(acc, wv.val[1], a, 1);
  acc = vdotq_laneq_s32(acc, wv.val[2], a, 2);
  acc = vdotq_laneq_s32(acc, wv.val[3], a, 3);
  return acc;
}

inline float32x4_t Finish(int32x4_t acc, const uint8_t* tail, int32x4_t zpv, float ascale) {
  const int32x4_t wsum = vld1q_s32(reinterpret_cast<const int32_t*>(tail + 16));
  return vmulq_n_f32(vmulq_f32(Q8CFinishF32(acc, wsum, zpv), LoadF32x4(tail)), ascale);
}

}  // namespace

void Q8CGemv1x8Dotprod(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                       int n1, float* y) {
  const size_t Kp = Kp32(K), bb = Kp * 4 + 32;
  const int b1 = (n1 + 3) / 4;
  const int32x4_t zpv = vdupq_n_s32(static_cast<int32_t>(zp));
  int b = n0 / 4;
  for (; b + 2 <= b1; b += 2) {
    const uint8_t* p0 = w + static_cast<size_t>(b) * bb;
    const uint8_t* p1 = p0 + bb;
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, c0 = a0, c1 = a0;
    size_t k = 0;
    for (; k + 32 <= Kp; k += 32) {
      const int8x16_t x0 = vld1q_s8(q + k), x1 = vld1q_s8(q + k + 16);
      a0 = Dot16(a0, p0 + 4 * k, x0);
      a1 = Dot16(a1, p1 + 4 * k, x0);
      c0 = Dot16(c0, p0 + 4 * k + 64, x1);
      c1 = Dot16(c1, p1 + 4 * k + 64, x1);
    }
    Store4(y, 4 * b, n1, Finish(vaddq_s32(a0, c0), p0 + 4 * Kp, zpv, ascale));
    Store4(y, 4 * b + 4, n1, Finish(vaddq_s32(a1, c1), p1 + 4 * Kp, zpv, ascale));
  }
  if (b < b1) {
    const uint8_t* p0 = w + static_cast<size_t>(b) * bb;
    int32x4_t a0 = vdupq_n_s32(0), c0 = a0;
    for (size_t k = 0; k + 32 <= Kp; k += 32) {
      a0 = Dot16(a0, p0 + 4 * k, vld1q_s8(q + k));
      c0 = Dot16(c0, p0 + 4 * k + 64, vld1q_s8(q + k + 16));
    }
    Store4(y, 4 * b, n1, Finish(vaddq_s32(a0, c0), p0 + 4 * Kp, zpv, ascale));
  }
}

}  // namespace lamina::kern::arm
