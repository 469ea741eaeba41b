// q4g x int8 GEMV, SVE SDOT by element, both q4g layouts, vector-length
// agnostic: one token (plain activation row) x vl rows per pass (vl = 32-bit
// lanes per vector: S = VL/128 row blocks, one per 128-bit segment, see
// sve_q4g_inl.h). Per chunk and S blocks: one gather, LSL + AND (16*w), two
// SDOT-by-element against the replicated activations. The f16 scales of S
// blocks are one LD1H gather into 32-bit lanes + FCVT (exact widening).
// Exactness as the NEON dotprod GEMV (lane = row, groups in order, FMLA by
// scale, FMLS corr*zp, FMUL act scale).
#if !defined(__ARM_FEATURE_SVE) || !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod+sve"
#endif

#include <arm_sve.h>

#include "kernels/neon/arm_kernels.h"
#include "kernels/sve/sve_q4g_inl.h"

namespace lamina::kern::arm {
namespace {

template <bool kF16>
void Gemv(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0, int n1,
          float* y) {
  const SveQ4G<kF16> L(Kp32(K));
  const size_t G = L.G, bb = L.bb;
  const svuint64_t offs = L.Offs();
  const svuint32_t offs16 = L.Offs16();
  const int S = static_cast<int>(svcntb() / 16);
  const svbool_t pt8 = svptrue_b8(), pt32 = svptrue_b32();
  const int b1 = (n1 + 3) / 4;
  for (int b = n0 / 4; b < b1; b += S) {
    const int nb = b1 - b < S ? b1 - b : S;
    const svbool_t pg = svwhilelt_b64(0, 2 * nb), pg32 = svwhilelt_b32(0, 4 * nb);
    const uint8_t* base = w + static_cast<size_t>(b) * bb;
    svfloat32_t f = svdup_n_f32(0.f);
    const uint8_t* gp = base;
    for (size_t g = 0; g < G; ++g, gp += L.kGroupStride) {
      const svint8_t a0 = svld1rq_s8(pt8, q + 32 * g), a1 = svld1rq_s8(pt8, q + 32 * g + 16);
      svint32_t acc = svdup_n_s32(0);
      svuint8_t r = GatherChunk(pg, gp, offs);
      acc = svdot_lane_s32(acc, svreinterpret_s8_u8(svlsl_n_u8_x(pt8, r, 4)), a0, 0);
      acc = svdot_lane_s32(acc, svreinterpret_s8_u8(svand_n_u8_x(pt8, r, 0xF0)), a0, 1);
      r = GatherChunk(pg, gp + 16, offs);
      acc = svdot_lane_s32(acc, svreinterpret_s8_u8(svlsl_n_u8_x(pt8, r, 4)), a0, 2);
      acc = svdot_lane_s32(acc, svreinterpret_s8_u8(svand_n_u8_x(pt8, r, 0xF0)), a0, 3);
      r = GatherChunk(pg, gp + 32, offs);
      acc = svdot_lane_s32(acc, svreinterpret_s8_u8(svlsl_n_u8_x(pt8, r, 4)), a1, 0);
      acc = svdot_lane_s32(acc, svreinterpret_s8_u8(svand_n_u8_x(pt8, r, 0xF0)), a1, 1);
      r = GatherChunk(pg, gp + 48, offs);
      acc = svdot_lane_s32(acc, svreinterpret_s8_u8(svlsl_n_u8_x(pt8, r, 4)), a1, 2);
      acc = svdot_lane_s32(acc, svreinterpret_s8_u8(svand_n_u8_x(pt8, r, 0xF0)), a1, 3);
      f = svmla_f32_x(pt32, f, CvtX16(acc), L.Scales(pg, pg32, base, g, offs, offs16));
    }
    const svfloat32_t corr = L.Corr(pg, base, offs);
    f = svmls_f32_x(pt32, f, corr, svdup_n_f32(zp));
    f = svmul_n_f32_x(pt32, f, ascale);
    svst1_f32(svwhilelt_b32(4 * b, n1), y + 4 * b, f);
  }
}

}  // namespace

void Q4GGemv1xVlSve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y) {
  Gemv<false>(q, ascale, zp, w, K, n0, n1, y);
}

void Q4GF16SGemv1xVlSve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                        int n1, float* y) {
  Gemv<true>(q, ascale, zp, w, K, n0, n1, y);
}

}  // namespace lamina::kern::arm
