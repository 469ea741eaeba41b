// q4g x int8 GEMV for ARMv8.0 NEON (no SDOT), both q4g layouts: one token
// (plain activation row) x 8 rows (two row blocks) per pass, then a lone block.
// Unpack per 16-byte chunk: lo = SSHR(SHL(b, 4), 4), hi = SSHR(b, 4) (true
// int4 values, sign-extended). The chunk's activations (4 bytes of k) are
// broadcast with DUP (shared by the two blocks). SMULL/SMLAL(2) accumulate in
// int16: each lane collects 8 products per group, |w*q| <= 8*128, so
// |sum| <= 8192 (no overflow); SADDLP + ADDP give the per-row int32 idot.
// Epilogue: SCVTF, FMLA by the group scale (the ref chain; f16 scales widened
// with FCVTL), FMLS corr*zp, FMUL act scale.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include "kernels/neon/arm_kernels.h"

namespace lamina::kern::arm {
namespace {

struct Acc16 {
  int16x8_t r01, r23;
};

inline void Chunk(Acc16* acc, uint8x16_t raw, int8x16_t alo, int8x16_t ahi) {
  const int8x16_t b = vreinterpretq_s8_u8(raw);
  const int8x16_t lo = vshrq_n_s8(vshlq_n_s8(b, 4), 4);
  const int8x16_t hi = vshrq_n_s8(b, 4);
  acc->r01 = vmlal_s8(acc->r01, vget_low_s8(lo), vget_low_s8(alo));
  acc->r23 = vmlal_high_s8(acc->r23, lo, alo);
  acc->r01 = vmlal_s8(acc->r01, vget_low_s8(hi), vget_low_s8(ahi));
  acc->r23 = vmlal_high_s8(acc->r23, hi, ahi);
}

inline int32x4_t RowSums(const Acc16& a) {
  return vpaddq_s32(vpaddlq_s16(a.r01), vpaddlq_s16(a.r23));
}

inline int8x16_t Bcast(int8x16_t a, int lane) {
  switch (lane) {
    case 0:
      return vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(a), 0));
    case 1:
      return vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(a), 1));
    case 2:
      return vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(a), 2));
    default:
      return vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(a), 3));
  }
}

template <bool kF16, int NB>
void Blocks(const int8_t* q, float ascale, float zp, const uint8_t* w, const Q4GBlock<kF16>& L,
            int b, int n1, float* y) {
  const size_t G = L.G, gs = L.kGroupStride;
  const uint8_t* p[NB];
  float32x4_t f[NB];
  for (int i = 0; i < NB; ++i) {
    p[i] = w + static_cast<size_t>(b + i) * L.bb;
    f[i] = vdupq_n_f32(0.f);
  }
  for (size_t g = 0; g < G; ++g) {
    const int8x16_t a0 = vld1q_s8(q + 32 * g), a1 = vld1q_s8(q + 32 * g + 16);
    Acc16 acc[NB];
    for (int i = 0; i < NB; ++i) acc[i].r01 = acc[i].r23 = vdupq_n_s16(0);
    for (int c = 0; c < 4; ++c) {
      const int8x16_t src = c < 2 ? a0 : a1;
      const int8x16_t alo = Bcast(src, (2 * c) & 3), ahi = Bcast(src, (2 * c + 1) & 3);
      for (int i = 0; i < NB; ++i) Chunk(&acc[i], vld1q_u8(p[i] + gs * g + 16 * c), alo, ahi);
    }
    for (int i = 0; i < NB; ++i)
      f[i] = vfmaq_f32(f[i], vcvtq_f32_s32(RowSums(acc[i])), L.Scales(p[i], g));
  }
  const float32x4_t zpv = vdupq_n_f32(zp);
  for (int i = 0; i < NB; ++i) {
    const float32x4_t r = vmulq_n_f32(vfmsq_f32(f[i], LoadF32x4(p[i] + L.corr_off), zpv), ascale);
    Store4(y, 4 * (b + i), n1, r);
  }
}

template <bool kF16>
void Gemv(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0, int n1,
          float* y) {
  const Q4GBlock<kF16> L(Kp32(K));
  const int b1 = (n1 + 3) / 4;
  int b = n0 / 4;
  for (; b + 2 <= b1; b += 2) Blocks<kF16, 2>(q, ascale, zp, w, L, b, n1, y);
  if (b < b1) Blocks<kF16, 1>(q, ascale, zp, w, L, b, n1, y);
}

}  // namespace

void Q4GGemv1x8Neon(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y) {
  Gemv<false>(q, ascale, zp, w, K, n0, n1, y);
}

void Q4GF16SGemv1x8Neon(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                        int n1, float* y) {
  Gemv<true>(q, ascale, zp, w, K, n0, n1, y);
}

}  // namespace lamina::kern::arm
