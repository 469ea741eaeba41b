// q4g x int8 GEMM, SDOT by element (ARMv8.2 dotprod), both q4g layouts: 2 to
// 4 tokens (plain activation rows) x 4 rows (one row block) per pass. Same
// unpack and epilogue as the GEMV (q4g_dotprod_inl.h); each 16-byte chunk is
// unpacked once and used by every token of the tile, and per token the chain
// is the ref chain (lane = row), as the GEMV.
#if !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod"
#endif

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/q4g_dotprod_inl.h"

namespace lamina::kern::arm {
namespace {

// MT tokens x one row block per pass, either layout.
template <bool kF16, int MT>
void Gemm(const int8_t* q, const float* ascale, const float* zp, const uint8_t* w, int K, int n0,
          int n1, float* y, size_t ldy) {
  const size_t Kp = Kp32(K);
  const Q4GBlock<kF16> L(Kp);
  const uint8x16_t mask = vdupq_n_u8(0xF0);
  for (int b = n0 / 4; b < (n1 + 3) / 4; ++b) {
    const uint8_t* blk = w + static_cast<size_t>(b) * L.bb;
    float32x4_t f[MT];
    for (int t = 0; t < MT; ++t) f[t] = vdupq_n_f32(0.f);
    for (size_t g = 0; g < L.G; ++g) {
      const uint8x16x4_t wb = vld1q_u8_x4(blk + L.kGroupStride * g);
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
      const float32x4_t s = L.Scales(blk, g);
      for (int t = 0; t < MT; ++t) f[t] = vfmaq_f32(f[t], vcvtq_n_f32_s32(acc[t], 4), s);
    }
    for (int t = 0; t < MT; ++t) Q4GFinish1(L, blk, f[t], zp[t], ascale[t], b, n1, y + t * ldy);
  }
}

template <bool kF16>
void GemmMt(const int8_t* q, const float* ascale, const float* zp, int mt, const uint8_t* w, int K,
            int n0, int n1, float* y, size_t ldy) {
  switch (mt) {
    case 2:
      Gemm<kF16, 2>(q, ascale, zp, w, K, n0, n1, y, ldy);
      break;
    case 3:
      Gemm<kF16, 3>(q, ascale, zp, w, K, n0, n1, y, ldy);
      break;
    default:
      Gemm<kF16, 4>(q, ascale, zp, w, K, n0, n1, y, ldy);
      break;
  }
}

}  // namespace

void Q4GGemm4x4Dotprod(const int8_t* q, const float* ascale, const float* zp, int mt,
                       const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy) {
  GemmMt<false>(q, ascale, zp, mt, w, K, n0, n1, y, ldy);
}

void Q4GF16SGemm4x4Dotprod(const int8_t* q, const float* ascale, const float* zp, int mt,
                           const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy) {
  GemmMt<true>(q, ascale, zp, mt, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::arm
