// q4g x int8 GEMM with SMMLA (ARMv8.6 i8mm), both q4g layouts, "pairs"
// activations: one token pair x 4 rows (one row block) per pass, compiled
// C++ (the tail pairs after the 12x4 and 8x4 tiles; scheme: q4g_i8mm_inl.h).
#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm"
#endif

#include "kernels/neon/q4g_i8mm_inl.h"

namespace lamina::kern::arm {
namespace {

inline void Unpack(const uint8_t* p, int8x16_t* a01, int8x16_t* a23) {
  const uint8x16_t raw = vld1q_u8(p);
  const int32x4_t lo = vreinterpretq_s32_u8(vshlq_n_u8(raw, 4));
  const int32x4_t hi = vreinterpretq_s32_u8(vandq_u8(raw, vdupq_n_u8(0xF0)));
  *a01 = vreinterpretq_s8_s32(vzip1q_s32(lo, hi));
  *a23 = vreinterpretq_s8_s32(vzip2q_s32(lo, hi));
}

// Final scaling of one pair's two result vectors and the stores of both tokens.
inline void FinishPair(float32x4_t f01, float32x4_t f23, float32x4_t c01, float32x4_t c23,
                       const float* ascale, const float* zp, int n, int n1, float* y0, float* y1) {
  const float32x2_t z2 = vld1_f32(zp), s2 = vld1_f32(ascale);
  const float32x4_t zv = vcombine_f32(z2, z2), sv = vcombine_f32(s2, s2);
  const float32x4_t r01 = vmulq_f32(vfmsq_f32(f01, c01, zv), sv);
  const float32x4_t r23 = vmulq_f32(vfmsq_f32(f23, c23, zv), sv);
  Store4(y0, n, n1, vuzp1q_f32(r01, r23));
  Store4(y1, n, n1, vuzp2q_f32(r01, r23));
}

// One token pair x one row block (tail pairs).
template <bool kF16>
void Gemm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
          int n0, int n1, float* y, size_t ldy) {
  const Q4GBlock<kF16> L(Kp);
  for (int b = n0 / 4; b < (n1 + 3) / 4; ++b) {
    const uint8_t* blk = w + static_cast<size_t>(b) * L.bb;
    const uint8_t* p = blk;
    float32x4_t fa = vdupq_n_f32(0.f), fb = fa;
    const int8_t* qg = qa;
    for (size_t g = 0; g < L.G; ++g, p += L.kGroupStride, qg += 64) {
      int32x4_t ia = vdupq_n_s32(0), ib = ia;
      for (int c = 0; c < 4; ++c) {
        int8x16_t a01, a23;
        Unpack(p + 16 * c, &a01, &a23);
        const int8x16_t x = vld1q_s8(qg + 16 * c);
        ia = vmmlaq_s32(ia, a01, x);
        ib = vmmlaq_s32(ib, a23, x);
      }
      const float32x4_t s = L.Scales(blk, g);
      fa = vfmaq_f32(fa, vcvtq_n_f32_s32(ia, 4), vzip1q_f32(s, s));
      fb = vfmaq_f32(fb, vcvtq_n_f32_s32(ib, 4), vzip2q_f32(s, s));
    }
    const float32x4_t corr = LoadF32x4(blk + L.corr_off);
    FinishPair(fa, fb, vzip1q_f32(corr, corr), vzip2q_f32(corr, corr), ascale, zp, 4 * b, n1, y,
               y + ldy);
  }
}

}  // namespace

void Q4GGemm2x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                    const uint8_t* w, int n0, int n1, float* y, size_t ldy) {
  Gemm<false>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
}

void Q4GF16SGemm2x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                        const uint8_t* w, int n0, int n1, float* y, size_t ldy) {
  Gemm<true>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
}

}  // namespace lamina::kern::arm
