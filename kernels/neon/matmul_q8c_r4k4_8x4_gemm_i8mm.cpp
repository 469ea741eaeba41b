// q8c (Q8C_R4K4) x int8 GEMM with SMMLA (ARMv8.6 i8mm), "pairs" activations:
// 1 to 4 token pairs (up to 8 tokens) x 4 rows (one row block) per pass.
// Two adjacent 16-byte chunks (4 rows x k 0..3, 4 rows x k 4..7) zip on 32-bit
// lanes into the 2x8 operands [r0 k0..7 | r1 k0..7], [r2 | r3]; the pair's
// chunk [t0 k0..7 | t1 k0..7] is the other; result lanes [rA tA, rA tB, rB tA,
// rB tB]. Epilogue as ref (int32 MLS by zp*wsum, SCVTF, FMUL ws, FMUL as).
#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm"
#endif

#include "kernels/neon/arm_kernels.h"

namespace lamina::kern::arm {
namespace {

template <int NP>
void Gemm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
          int n0, int n1, float* y, size_t ldy) {
  const size_t bb = Kp * 4 + 32;
  for (int b = n0 / 4; b < (n1 + 3) / 4; ++b) {
    const uint8_t* p = w + static_cast<size_t>(b) * bb;
    int32x4_t acc[NP][2];
    for (int i = 0; i < NP; ++i) acc[i][0] = acc[i][1] = vdupq_n_s32(0);
    for (size_t j = 0; j < Kp / 8; ++j) {
      const int32x4_t c0 = vld1q_s32(reinterpret_cast<const int32_t*>(p + 32 * j));
      const int32x4_t c1 = vld1q_s32(reinterpret_cast<const int32_t*>(p + 32 * j + 16));
      const int8x16_t a01 = vreinterpretq_s8_s32(vzip1q_s32(c0, c1));
      const int8x16_t a23 = vreinterpretq_s8_s32(vzip2q_s32(c0, c1));
      for (int i = 0; i < NP; ++i) {
        const int8x16_t act = vld1q_s8(qa + i * 2 * Kp + 16 * j);
        acc[i][0] = vmmlaq_s32(acc[i][0], a01, act);
        acc[i][1] = vmmlaq_s32(acc[i][1], a23, act);
      }
    }
    const uint8_t* tail = p + 4 * Kp;
    const float32x4_t ws = LoadF32x4(tail);
    const int32x4_t wsum = vld1q_s32(reinterpret_cast<const int32_t*>(tail + 16));
    const float32x4_t ws01 = vzip1q_f32(ws, ws), ws23 = vzip2q_f32(ws, ws);
    const int32x4_t wsum01 = vzip1q_s32(wsum, wsum), wsum23 = vzip2q_s32(wsum, wsum);
    for (int i = 0; i < NP; ++i) {
      const int32x2_t z2 = vcvt_s32_f32(vld1_f32(zp + 2 * i));  // integer-valued: exact
      const int32x4_t zv = vcombine_s32(z2, z2);
      const float32x2_t s2 = vld1_f32(ascale + 2 * i);
      const float32x4_t sv = vcombine_f32(s2, s2);
      const float32x4_t r01 = vmulq_f32(vmulq_f32(Q8CFinishF32(acc[i][0], wsum01, zv), ws01), sv);
      const float32x4_t r23 = vmulq_f32(vmulq_f32(Q8CFinishF32(acc[i][1], wsum23, zv), ws23), sv);
      Store4(y + (2 * i) * ldy, 4 * b, n1, vuzp1q_f32(r01, r23));
      Store4(y + (2 * i + 1) * ldy, 4 * b, n1, vuzp2q_f32(r01, r23));
    }
  }
}

}  // namespace

void Q8CGemm8x4I8mm(int np, const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                    const uint8_t* w, int n0, int n1, float* y, size_t ldy) {
  switch (np) {
    case 1:
      Gemm<1>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
      break;
    case 2:
      Gemm<2>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
      break;
    case 3:
      Gemm<3>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
      break;
    default:
      Gemm<4>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
      break;
  }
}

}  // namespace lamina::kern::arm
