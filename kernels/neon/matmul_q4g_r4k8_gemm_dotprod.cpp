// q4g (Q4G_R4K8) x int8 GEMM for up to 4 tokens at a time, SDOT by element
// (ARMv8.2 dotprod). Same unpack and epilogue as the GEMV
// (matmul_q4g_r4k8_gemv_dotprod.cpp); each 16-byte chunk is unpacked once and
// used by MT tokens. Per token the chain is the ref chain (lane = row).
#if !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod"
#endif

#include "kernels/neon/arm_kernels.h"

namespace lamina::kern::arm {
namespace {

template <int MT>
void Gemm(const int8_t* q, const float* ascale, const float* zp, const uint8_t* w, int K, int n0,
          int n1, float* y, size_t ldy) {
  const size_t Kp = Kp32(K), G = Kp / 32, bb = Kp / 32 * 80 + 16;
  const uint8x16_t mask = vdupq_n_u8(0xF0);
  for (int b = n0 / 4; b < (n1 + 3) / 4; ++b) {
    const uint8_t* p = w + static_cast<size_t>(b) * bb;
    float32x4_t f[MT];
    for (int t = 0; t < MT; ++t) f[t] = vdupq_n_f32(0.f);
    for (size_t g = 0; g < G; ++g, p += 80) {
      const uint8x16x4_t wb = vld1q_u8_x4(p);
      int32x4_t acc[MT];
      for (int t = 0; t < MT; ++t) acc[t] = vdupq_n_s32(0);
      for (int h = 0; h < 2; ++h) {
        int8x16_t act[MT];
        for (int t = 0; t < MT; ++t) act[t] = vld1q_s8(q + t * Kp + 32 * g + 16 * h);
        const int8x16_t l0 = vreinterpretq_s8_u8(vshlq_n_u8(wb.val[2 * h], 4));
        const int8x16_t h0 = vreinterpretq_s8_u8(vandq_u8(wb.val[2 * h], mask));
        const int8x16_t l1 = vreinterpretq_s8_u8(vshlq_n_u8(wb.val[2 * h + 1], 4));
        const int8x16_t h1 = vreinterpretq_s8_u8(vandq_u8(wb.val[2 * h + 1], mask));
        for (int t = 0; t < MT; ++t) {
          acc[t] = vdotq_laneq_s32(acc[t], l0, act[t], 0);
          acc[t] = vdotq_laneq_s32(acc[t], h0, act[t], 1);
          acc[t] = vdotq_laneq_s32(acc[t], l1, act[t], 2);
          acc[t] = vdotq_laneq_s32(acc[t], h1, act[t], 3);
        }
      }
      const float32x4_t s = LoadF32x4(p + 64);
      for (int t = 0; t < MT; ++t) f[t] = vfmaq_f32(f[t], vcvtq_n_f32_s32(acc[t], 4), s);
    }
    const float32x4_t corr = LoadF32x4(p);
    for (int t = 0; t < MT; ++t) {
      const float32x4_t r = vmulq_n_f32(vfmsq_f32(f[t], corr, vdupq_n_f32(zp[t])), ascale[t]);
      Store4(y + t * ldy, 4 * b, n1, r);
    }
  }
}

}  // namespace

void Q4GGemm4Dotprod(const int8_t* q, const float* ascale, const float* zp, int mt,
                     const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy) {
  switch (mt) {
    case 1:
      Q4GGemvDotprod(q, ascale[0], zp[0], w, K, n0, n1, y);
      break;
    case 2:
      Gemm<2>(q, ascale, zp, w, K, n0, n1, y, ldy);
      break;
    case 3:
      Gemm<3>(q, ascale, zp, w, K, n0, n1, y, ldy);
      break;
    default:
      Gemm<4>(q, ascale, zp, w, K, n0, n1, y, ldy);
      break;
  }
}

}  // namespace lamina::kern::arm
