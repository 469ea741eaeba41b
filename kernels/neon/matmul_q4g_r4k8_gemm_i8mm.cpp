// q4g (Q4G_R4K8) x int8 GEMM with SMMLA (ARMv8.6 i8mm), "pairs" activations
// (arm_kernels.h). Tile: one row block (4 rows) x up to 4 token pairs.
//
// Per 16-byte chunk (4 rows x 8 k): lo = b << 4, hi = b & 0xF0 (16*w, int8),
// zip1/zip2 on 32-bit lanes give the 2x8 operands [r0 k0..7 | r1 k0..7] and
// [r2 | r3]; the pair's chunk [t0 k0..7 | t1 k0..7] is the other operand; the
// result lanes are [rA tA, rA tB, rB tA, rB tB]. Per group the int32 sums are
// 16*idot, SCVTF #4 gives exactly (float)idot, FMLA by the zipped scale
// [sA sA sB sB]: per (row, token) lane the ref chain. A lone last token (odd M)
// goes through the SDOT GEMV.
//
// Instruction budget per row block, group and 8 tokens (measured inner loop:
// 94): 32 SMMLA + 16 unpack (SHL, AND, ZIP1, ZIP2 per chunk) + 2 LDP weights +
// 8 LDP activations + 24 epilogue (zero, SCVTF #4, FMLA per 4 (row, token)
// lanes) + scale load/zips + loop. The spec's per-group f32 epilogue costs 75%
// of the SMMLA count, so 128-bit NEON cannot go much below ~75 M instructions
// per prefill token on the 1B linears (measured ~92 M incl. quantization and
// the output layer); a 6-pair (12-token) tile measured no better (more
// activation loads, spills). The SVE tier (kernels/sve/) divides all of it by
// VL/128.
#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm"
#endif

#include "kernels/neon/arm_kernels.h"

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

// 4 token pairs (8 tokens) x one row block per pass. Named accumulators (no
// arrays) so that GCC keeps all 16 in registers.
void Gemm4(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
           int n0, int n1, float* y, size_t ldy) {
  const size_t G = Kp / 32, bb = Kp / 32 * 80 + 16, pk = 2 * Kp;
  for (int b = n0 / 4; b < (n1 + 3) / 4; ++b) {
    const uint8_t* p = w + static_cast<size_t>(b) * bb;
    float32x4_t f0a = vdupq_n_f32(0.f), f0b = f0a, f1a = f0a, f1b = f0a, f2a = f0a, f2b = f0a,
                f3a = f0a, f3b = f0a;
    const int8_t* qg = qa;
    for (size_t g = 0; g < G; ++g, p += 80, qg += 64) {
      int32x4_t i0a = vdupq_n_s32(0), i0b = i0a, i1a = i0a, i1b = i0a, i2a = i0a, i2b = i0a,
                i3a = i0a, i3b = i0a;
      for (int c = 0; c < 4; ++c) {
        int8x16_t a01, a23;
        Unpack(p + 16 * c, &a01, &a23);
        const int8x16_t x0 = vld1q_s8(qg + 16 * c), x1 = vld1q_s8(qg + pk + 16 * c),
                        x2 = vld1q_s8(qg + 2 * pk + 16 * c), x3 = vld1q_s8(qg + 3 * pk + 16 * c);
        i0a = vmmlaq_s32(i0a, a01, x0);
        i0b = vmmlaq_s32(i0b, a23, x0);
        i1a = vmmlaq_s32(i1a, a01, x1);
        i1b = vmmlaq_s32(i1b, a23, x1);
        i2a = vmmlaq_s32(i2a, a01, x2);
        i2b = vmmlaq_s32(i2b, a23, x2);
        i3a = vmmlaq_s32(i3a, a01, x3);
        i3b = vmmlaq_s32(i3b, a23, x3);
      }
      const float32x4_t s = LoadF32x4(p + 64);
      const float32x4_t s01 = vzip1q_f32(s, s), s23 = vzip2q_f32(s, s);
      f0a = vfmaq_f32(f0a, vcvtq_n_f32_s32(i0a, 4), s01);
      f0b = vfmaq_f32(f0b, vcvtq_n_f32_s32(i0b, 4), s23);
      f1a = vfmaq_f32(f1a, vcvtq_n_f32_s32(i1a, 4), s01);
      f1b = vfmaq_f32(f1b, vcvtq_n_f32_s32(i1b, 4), s23);
      f2a = vfmaq_f32(f2a, vcvtq_n_f32_s32(i2a, 4), s01);
      f2b = vfmaq_f32(f2b, vcvtq_n_f32_s32(i2b, 4), s23);
      f3a = vfmaq_f32(f3a, vcvtq_n_f32_s32(i3a, 4), s01);
      f3b = vfmaq_f32(f3b, vcvtq_n_f32_s32(i3b, 4), s23);
    }
    const float32x4_t corr = LoadF32x4(p);
    const float32x4_t c01 = vzip1q_f32(corr, corr), c23 = vzip2q_f32(corr, corr);
    const int n = 4 * b;
    FinishPair(f0a, f0b, c01, c23, ascale, zp, n, n1, y, y + ldy);
    FinishPair(f1a, f1b, c01, c23, ascale + 2, zp + 2, n, n1, y + 2 * ldy, y + 3 * ldy);
    FinishPair(f2a, f2b, c01, c23, ascale + 4, zp + 4, n, n1, y + 4 * ldy, y + 5 * ldy);
    FinishPair(f3a, f3b, c01, c23, ascale + 6, zp + 6, n, n1, y + 6 * ldy, y + 7 * ldy);
  }
}

// One token pair x one row block (tail pairs).
void Gemm1(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
           int n0, int n1, float* y, size_t ldy) {
  const size_t G = Kp / 32, bb = Kp / 32 * 80 + 16;
  for (int b = n0 / 4; b < (n1 + 3) / 4; ++b) {
    const uint8_t* p = w + static_cast<size_t>(b) * bb;
    float32x4_t fa = vdupq_n_f32(0.f), fb = fa;
    const int8_t* qg = qa;
    for (size_t g = 0; g < G; ++g, p += 80, qg += 64) {
      int32x4_t ia = vdupq_n_s32(0), ib = ia;
      for (int c = 0; c < 4; ++c) {
        int8x16_t a01, a23;
        Unpack(p + 16 * c, &a01, &a23);
        const int8x16_t x = vld1q_s8(qg + 16 * c);
        ia = vmmlaq_s32(ia, a01, x);
        ib = vmmlaq_s32(ib, a23, x);
      }
      const float32x4_t s = LoadF32x4(p + 64);
      fa = vfmaq_f32(fa, vcvtq_n_f32_s32(ia, 4), vzip1q_f32(s, s));
      fb = vfmaq_f32(fb, vcvtq_n_f32_s32(ib, 4), vzip2q_f32(s, s));
    }
    const float32x4_t corr = LoadF32x4(p);
    FinishPair(fa, fb, vzip1q_f32(corr, corr), vzip2q_f32(corr, corr), ascale, zp, 4 * b, n1, y,
               y + ldy);
  }
}

}  // namespace

void MatmulQ4GI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy) {
  (void)N;
  const size_t Kp = Kp32(K);
  const int8_t* q = static_cast<const int8_t*>(a.data);
  const int pairs = a.M / 2;
  int p = 0;
  for (; p + 4 <= pairs; p += 4)
    Gemm4(q + static_cast<size_t>(p) * 2 * Kp, Kp, a.scale + 2 * p, a.zp + 2 * p, w, n0, n1,
          y + static_cast<size_t>(2 * p) * ldy, ldy);
  for (; p < pairs; ++p)
    Gemm1(q + static_cast<size_t>(p) * 2 * Kp, Kp, a.scale + 2 * p, a.zp + 2 * p, w, n0, n1,
          y + static_cast<size_t>(2 * p) * ldy, ldy);
  if (a.M % 2 == 1) {
    const int m = a.M - 1;
    Q4GGemvDotprod(q + static_cast<size_t>(m) * Kp, a.scale[m], a.zp[m], w, K, n0, n1,
                   y + static_cast<size_t>(m) * ldy);
  }
}

}  // namespace lamina::kern::arm
