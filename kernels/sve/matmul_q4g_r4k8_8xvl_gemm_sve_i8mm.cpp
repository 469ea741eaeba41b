// q4g x int8 GEMM, SVE SMMLA (FEAT_I8MM), both q4g layouts, "pairs"
// activations, vector-length agnostic: 1 to 4 token pairs (up to 8 tokens) x
// vl rows per pass (vl = 32-bit lanes per vector: S = VL/128 row blocks, one
// per 128-bit segment, sve_q4g_inl.h). Per chunk: one gather of S blocks,
// LSL + AND (16*w); the whole-vector ZIP1/ZIP2 on 32-bit lanes yield, segment
// by segment, the 2x8 SMMLA operands (zip1: blocks [0, S/2) rows 01 / rows 23
// alternating, zip2: the rest; for S = 1 zip1 = rows 01, zip2 = rows 23); the
// token pair's 16-byte chunk is replicated with LD1RQB. The group scales
// (gathered, then ZIP1/ZIP2 with themselves; f16 scales: one LD1H gather +
// FCVT, exact) line up lane by lane; at the end UZP1/UZP2 of the two halves
// give each token's outputs for 4*S consecutive rows. 8 int32 + 8 f32
// accumulator vectors.
#if !defined(__ARM_FEATURE_SVE) || !defined(__ARM_FEATURE_SVE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm+sve"
#endif

#include <arm_sve.h>

#include "kernels/neon/arm_kernels.h"
#include "kernels/sve/sve_q4g_inl.h"

namespace lamina::kern::arm {
namespace {

inline void Finish(svfloat32_t fa, svfloat32_t fb, svfloat32_t ca, svfloat32_t cb,
                   const float* ascale, const float* zp, int row0, int n1, float* y0, float* y1) {
  const svbool_t pt = svptrue_b32();
  const svfloat32_t zv = svdupq_n_f32(zp[0], zp[1], zp[0], zp[1]);
  const svfloat32_t sv = svdupq_n_f32(ascale[0], ascale[1], ascale[0], ascale[1]);
  const svfloat32_t ra = svmul_f32_x(pt, svmls_f32_x(pt, fa, ca, zv), sv);
  const svfloat32_t rb = svmul_f32_x(pt, svmls_f32_x(pt, fb, cb, zv), sv);
  const svbool_t ps = svwhilelt_b32(row0, n1);
  svst1_f32(ps, y0 + row0, svuzp1_f32(ra, rb));
  svst1_f32(ps, y1 + row0, svuzp2_f32(ra, rb));
}

template <bool kF16, int NP>
void Gemm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
          int n0, int n1, float* y, size_t ldy) {
  const SveQ4G<kF16> L(Kp);
  const size_t G = L.G, bb = L.bb, pk = 2 * Kp;
  const svuint64_t offs = L.Offs();
  const svuint32_t offs16 = L.Offs16();
  const int S = static_cast<int>(svcntb() / 16);
  const svbool_t pt8 = svptrue_b8(), pt32 = svptrue_b32();
  const int b1 = (n1 + 3) / 4;
  for (int b = n0 / 4; b < b1; b += S) {
    const int nb = b1 - b < S ? b1 - b : S;
    const svbool_t pg = svwhilelt_b64(0, 2 * nb), pg32 = svwhilelt_b32(0, 4 * nb);
    const uint8_t* base = w + static_cast<size_t>(b) * bb;
    const uint8_t* gp = base;
    svfloat32_t f0a = svdup_n_f32(0.f), f0b = f0a, f1a = f0a, f1b = f0a, f2a = f0a, f2b = f0a,
                f3a = f0a, f3b = f0a;
    const int8_t* qg = qa;
    for (size_t g = 0; g < G; ++g, gp += L.kGroupStride, qg += 64) {
      svint32_t i0a = svdup_n_s32(0), i0b = i0a, i1a = i0a, i1b = i0a, i2a = i0a, i2b = i0a,
                i3a = i0a, i3b = i0a;
      for (int c = 0; c < 4; ++c) {
        const svuint8_t r = GatherChunk(pg, gp + 16 * c, offs);
        const svint32_t lo = svreinterpret_s32_u8(svlsl_n_u8_x(pt8, r, 4));
        const svint32_t hi = svreinterpret_s32_u8(svand_n_u8_x(pt8, r, 0xF0));
        const svint8_t wa = svreinterpret_s8_s32(svzip1_s32(lo, hi));
        const svint8_t wb = svreinterpret_s8_s32(svzip2_s32(lo, hi));
        const svint8_t x0 = svld1rq_s8(pt8, qg + 16 * c);
        i0a = svmmla_s32(i0a, wa, x0);
        i0b = svmmla_s32(i0b, wb, x0);
        if (NP > 1) {
          const svint8_t x1 = svld1rq_s8(pt8, qg + pk + 16 * c);
          i1a = svmmla_s32(i1a, wa, x1);
          i1b = svmmla_s32(i1b, wb, x1);
        }
        if (NP > 2) {
          const svint8_t x2 = svld1rq_s8(pt8, qg + 2 * pk + 16 * c);
          i2a = svmmla_s32(i2a, wa, x2);
          i2b = svmmla_s32(i2b, wb, x2);
        }
        if (NP > 3) {
          const svint8_t x3 = svld1rq_s8(pt8, qg + 3 * pk + 16 * c);
          i3a = svmmla_s32(i3a, wa, x3);
          i3b = svmmla_s32(i3b, wb, x3);
        }
      }
      const svfloat32_t s = L.Scales(pg, pg32, base, g, offs, offs16);
      const svfloat32_t sa = svzip1_f32(s, s), sb = svzip2_f32(s, s);
      f0a = svmla_f32_x(pt32, f0a, CvtX16(i0a), sa);
      f0b = svmla_f32_x(pt32, f0b, CvtX16(i0b), sb);
      if (NP > 1) {
        f1a = svmla_f32_x(pt32, f1a, CvtX16(i1a), sa);
        f1b = svmla_f32_x(pt32, f1b, CvtX16(i1b), sb);
      }
      if (NP > 2) {
        f2a = svmla_f32_x(pt32, f2a, CvtX16(i2a), sa);
        f2b = svmla_f32_x(pt32, f2b, CvtX16(i2b), sb);
      }
      if (NP > 3) {
        f3a = svmla_f32_x(pt32, f3a, CvtX16(i3a), sa);
        f3b = svmla_f32_x(pt32, f3b, CvtX16(i3b), sb);
      }
    }
    const svfloat32_t corr = L.Corr(pg, base, offs);
    const svfloat32_t ca = svzip1_f32(corr, corr), cb = svzip2_f32(corr, corr);
    const int row0 = 4 * b;
    Finish(f0a, f0b, ca, cb, ascale, zp, row0, n1, y, y + ldy);
    if (NP > 1) Finish(f1a, f1b, ca, cb, ascale + 2, zp + 2, row0, n1, y + 2 * ldy, y + 3 * ldy);
    if (NP > 2) Finish(f2a, f2b, ca, cb, ascale + 4, zp + 4, row0, n1, y + 4 * ldy, y + 5 * ldy);
    if (NP > 3) Finish(f3a, f3b, ca, cb, ascale + 6, zp + 6, row0, n1, y + 6 * ldy, y + 7 * ldy);
  }
}

template <bool kF16>
void GemmNp(int np, const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
            const uint8_t* w, int n0, int n1, float* y, size_t ldy) {
  switch (np) {
    case 1:
      Gemm<kF16, 1>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
      break;
    case 2:
      Gemm<kF16, 2>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
      break;
    case 3:
      Gemm<kF16, 3>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
      break;
    default:
      Gemm<kF16, 4>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
      break;
  }
}

}  // namespace

void Q4GGemm8xVlSveI8mm(int np, const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                        const uint8_t* w, int n0, int n1, float* y, size_t ldy) {
  GemmNp<false>(np, qa, Kp, ascale, zp, w, n0, n1, y, ldy);
}

void Q4GF16SGemm8xVlSveI8mm(int np, const int8_t* qa, size_t Kp, const float* ascale,
                            const float* zp, const uint8_t* w, int n0, int n1, float* y,
                            size_t ldy) {
  GemmNp<true>(np, qa, Kp, ascale, zp, w, n0, n1, y, ldy);
}

}  // namespace lamina::kern::arm
