// q4g x int8 GEMM with SMMLA (ARMv8.6 i8mm), both q4g layouts, "pairs" activations
// (arm_kernels.h). Tiles: one row block (4 rows) x 6 token pairs (Gemm6), then
// 4 pairs (Gemm4), then single pairs (Gemm1, compiled C++); a lone last token
// (odd M) goes through the SDOT GEMV.
//
// Per 16-byte chunk (4 rows x 8 k): lo = b << 4, hi = b & 0xF0 (16*w, int8),
// zip1/zip2 on 32-bit lanes give the 2x8 operands [r0 k0..7 | r1 k0..7] and
// [r2 | r3]; the pair's chunk [tA k0..7 | tB k0..7] is the other operand. Per
// group the int32 sums are 16*idot, SCVTF #4 gives exactly (float)idot, FMLA
// by the group scale: per (row, token) lane the ref chain.
//
// Gemm6/Gemm4 run their K loop as inline asm with post-indexed loads. The
// activations are SMMLA's FIRST operand, so the lanes are [tA rA, tA rB, tB rA,
// tB rB] and the scale vector [sA sB sA sB] is one LD1R {.2d} of 8 bytes (no
// ZIPs); the result is transposed once per row block after the K loop (64-bit
// ZIP1/ZIP2), where the zero-point correction and activation scale are applied
// exactly as ref. Instructions per (4 rows x 32 k x 8 tokens), from objdump of
// the loops (the compiled C++ 4-pair loop it replaces: 94):
//   Gemm6: 118 per group and 12 tokens = 78.7 per 8 tokens: 48 SMMLA,
//     16 unpack (SHL, AND, ZIP1, ZIP2 per chunk), 2 LDP weights, 12 LDP
//     activations, 2 LD1R scales, 36 epilogue (MOVI zero, SCVTF #4, FMLA per 4
//     (row, token) lanes), SUBS/B.NE. All 24 accumulators stay in registers
//     (v0-v11 int32, v12-v23 f32; v24-v27 hold 2 unpacked chunks, so weights
//     are unpacked by half groups; v28/v29 raw weights, activations, scales;
//     v30 the 0xF0 mask); the f32 results go through a stack array at the end.
//   Gemm4: 81 per group and 8 tokens: 32 SMMLA, 16 unpack, 1 LD1x4 weights,
//     4 LD1x4 activations (one per pair), 2 LD1R, 24 epilogue, SUBS/B.NE.
// Floor with this layout and spec: 32 SMMLA + 24 epilogue + unpack shared by
// the tile's tokens (16 * 8 / tokens) + loads. The spec's per-group f32
// epilogue costs 75% of the SMMLA count, so 128-bit NEON stays near ~75 M
// instructions per prefill token on the 1B linears; the SVE tier (kernels/sve/)
// divides all of it by VL/128.
// Include only from matmul_q4g_r4k8_gemm_i8mm.cpp and
// matmul_q4g_r4k8_f16s_gemm_i8mm.cpp (Q4G_R4K8_F16S: the scales of a row pair
// are one LD1R of 32 bits + FCVTL).
#pragma once

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

// Transposes one pair's result vectors (fa = rows 0,1, fb = rows 2,3, lanes
// [tA rA, tA rB, tB rA, tB rB]), applies the zero-point correction and the
// activation scale as ref, and stores both tokens.
inline void FinishPairT(float32x4_t fa, float32x4_t fb, float32x4_t corr, const float* ascale,
                        const float* zp, int n, int n1, float* y0, float* y1) {
  const float64x2_t a = vreinterpretq_f64_f32(fa), b = vreinterpretq_f64_f32(fb);
  const float32x4_t t0 = vreinterpretq_f32_f64(vzip1q_f64(a, b));
  const float32x4_t t1 = vreinterpretq_f32_f64(vzip2q_f64(a, b));
  Store4(y0, n, n1, vmulq_f32(vfmsq_f32(t0, corr, vdupq_n_f32(zp[0])), vdupq_n_f32(ascale[0])));
  Store4(y1, n, n1, vmulq_f32(vfmsq_f32(t1, corr, vdupq_n_f32(zp[1])), vdupq_n_f32(ascale[1])));
}

// One group of the 4-pair tile: unpack the 4 chunks (v8-v15), 8 SMMLA per
// token pair into v0-v7 (int32 sums, zeroed here).
#define LAMINA_GEMM4_GROUP_SMMLA                             \
  "ld1 {v16.16b, v17.16b, v18.16b, v19.16b}, [%[p]], #64\n"  \
  "shl v9.16b, v16.16b, #4\n"                                \
  "and v16.16b, v16.16b, v20.16b\n"                          \
  "shl v11.16b, v17.16b, #4\n"                               \
  "and v17.16b, v17.16b, v20.16b\n"                          \
  "shl v13.16b, v18.16b, #4\n"                               \
  "and v18.16b, v18.16b, v20.16b\n"                          \
  "shl v15.16b, v19.16b, #4\n"                               \
  "and v19.16b, v19.16b, v20.16b\n"                          \
  "zip1 v8.4s, v9.4s, v16.4s\n"                              \
  "zip2 v9.4s, v9.4s, v16.4s\n"                              \
  "zip1 v10.4s, v11.4s, v17.4s\n"                            \
  "zip2 v11.4s, v11.4s, v17.4s\n"                            \
  "zip1 v12.4s, v13.4s, v18.4s\n"                            \
  "zip2 v13.4s, v13.4s, v18.4s\n"                            \
  "zip1 v14.4s, v15.4s, v19.4s\n"                            \
  "zip2 v15.4s, v15.4s, v19.4s\n"                            \
  "movi v0.4s, #0\n"                                         \
  "movi v1.4s, #0\n"                                         \
  "movi v2.4s, #0\n"                                         \
  "movi v3.4s, #0\n"                                         \
  "movi v4.4s, #0\n"                                         \
  "movi v5.4s, #0\n"                                         \
  "movi v6.4s, #0\n"                                         \
  "movi v7.4s, #0\n"                                         \
  "ld1 {v16.16b, v17.16b, v18.16b, v19.16b}, [%[q0]], #64\n" \
  "smmla v0.4s, v16.16b, v8.16b\n"                           \
  "smmla v1.4s, v16.16b, v9.16b\n"                           \
  "smmla v0.4s, v17.16b, v10.16b\n"                          \
  "smmla v1.4s, v17.16b, v11.16b\n"                          \
  "smmla v0.4s, v18.16b, v12.16b\n"                          \
  "smmla v1.4s, v18.16b, v13.16b\n"                          \
  "smmla v0.4s, v19.16b, v14.16b\n"                          \
  "smmla v1.4s, v19.16b, v15.16b\n"                          \
  "ld1 {v16.16b, v17.16b, v18.16b, v19.16b}, [%[q1]], #64\n" \
  "smmla v2.4s, v16.16b, v8.16b\n"                           \
  "smmla v3.4s, v16.16b, v9.16b\n"                           \
  "smmla v2.4s, v17.16b, v10.16b\n"                          \
  "smmla v3.4s, v17.16b, v11.16b\n"                          \
  "smmla v2.4s, v18.16b, v12.16b\n"                          \
  "smmla v3.4s, v18.16b, v13.16b\n"                          \
  "smmla v2.4s, v19.16b, v14.16b\n"                          \
  "smmla v3.4s, v19.16b, v15.16b\n"                          \
  "ld1 {v16.16b, v17.16b, v18.16b, v19.16b}, [%[q2]], #64\n" \
  "smmla v4.4s, v16.16b, v8.16b\n"                           \
  "smmla v5.4s, v16.16b, v9.16b\n"                           \
  "smmla v4.4s, v17.16b, v10.16b\n"                          \
  "smmla v5.4s, v17.16b, v11.16b\n"                          \
  "smmla v4.4s, v18.16b, v12.16b\n"                          \
  "smmla v5.4s, v18.16b, v13.16b\n"                          \
  "smmla v4.4s, v19.16b, v14.16b\n"                          \
  "smmla v5.4s, v19.16b, v15.16b\n"                          \
  "ld1 {v16.16b, v17.16b, v18.16b, v19.16b}, [%[q3]], #64\n" \
  "smmla v6.4s, v16.16b, v8.16b\n"                           \
  "smmla v7.4s, v16.16b, v9.16b\n"                           \
  "smmla v6.4s, v17.16b, v10.16b\n"                          \
  "smmla v7.4s, v17.16b, v11.16b\n"                          \
  "smmla v6.4s, v18.16b, v12.16b\n"                          \
  "smmla v7.4s, v18.16b, v13.16b\n"                          \
  "smmla v6.4s, v19.16b, v14.16b\n"                          \
  "smmla v7.4s, v19.16b, v15.16b\n"

// The 4-pair tile's group epilogue: 16*idot to float (SCVTF #4), FMLA by the
// row-pair scales v16 = [s0 s1 s0 s1], v17 = [s2 s3 s2 s3].
#define LAMINA_GEMM4_GROUP_EPILOGUE \
  "scvtf v0.4s, v0.4s, #4\n"        \
  "scvtf v1.4s, v1.4s, #4\n"        \
  "scvtf v2.4s, v2.4s, #4\n"        \
  "scvtf v3.4s, v3.4s, #4\n"        \
  "scvtf v4.4s, v4.4s, #4\n"        \
  "scvtf v5.4s, v5.4s, #4\n"        \
  "scvtf v6.4s, v6.4s, #4\n"        \
  "scvtf v7.4s, v7.4s, #4\n"        \
  "fmla %[f0a].4s, v0.4s, v16.4s\n" \
  "fmla %[f0b].4s, v1.4s, v17.4s\n" \
  "fmla %[f1a].4s, v2.4s, v16.4s\n" \
  "fmla %[f1b].4s, v3.4s, v17.4s\n" \
  "fmla %[f2a].4s, v4.4s, v16.4s\n" \
  "fmla %[f2b].4s, v5.4s, v17.4s\n" \
  "fmla %[f3a].4s, v6.4s, v16.4s\n" \
  "fmla %[f3b].4s, v7.4s, v17.4s\n"

// 4 token pairs (8 tokens) x one row block per pass; group loop in asm (see
// the budget at the top of the file). Registers: v0-v7 int32 sums, v8-v15 the
// 4 unpacked chunks, v16-v19 raw weights / activations / scales, v20 the mask.
// f32 scales: two LD1R {.2d} of 8 bytes; f16 scales: two LD1R {.2s} of 4 bytes
// + FCVTL (exact).
template <bool kF16>
void Gemm4(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
           int n0, int n1, float* y, size_t ldy) {
  const Q4GBlock<kF16> L(Kp);
  const size_t G = L.G, bb = L.bb, pk = 2 * Kp;
  for (int b = n0 / 4; b < (n1 + 3) / 4; ++b) {
    const uint8_t* blk = w + static_cast<size_t>(b) * bb;
    const uint8_t* p = blk;
    const uint8_t* s = blk + L.scale_off;
    float32x4_t f0a = vdupq_n_f32(0.f), f0b = f0a, f1a = f0a, f1b = f0a, f2a = f0a, f2b = f0a,
                f3a = f0a, f3b = f0a;
    const int8_t *q0 = qa, *q1 = qa + pk, *q2 = qa + 2 * pk, *q3 = qa + 3 * pk;
    size_t g = G;
    // The asm loop runs at least once: skip it when K == 0 (G == 0).
    if (g != 0) {
      if constexpr (kF16) {
        asm volatile(
            "movi v20.16b, #0xf0\n"
            "1:\n" LAMINA_GEMM4_GROUP_SMMLA
            "ld1r {v16.2s}, [%[s]], #4\n"
            "ld1r {v17.2s}, [%[s]], #4\n"
            "fcvtl v16.4s, v16.4h\n"
            "fcvtl v17.4s, v17.4h\n" LAMINA_GEMM4_GROUP_EPILOGUE
            "subs %[g], %[g], #1\n"
            "b.ne 1b\n"
            : [p] "+r"(p), [s] "+r"(s), [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3),
              [g] "+r"(g), [f0a] "+w"(f0a), [f0b] "+w"(f0b), [f1a] "+w"(f1a), [f1b] "+w"(f1b),
              [f2a] "+w"(f2a), [f2b] "+w"(f2b), [f3a] "+w"(f3a), [f3b] "+w"(f3b)
            :
            : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",
              "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20");
      } else {
        asm volatile(
            "movi v20.16b, #0xf0\n"
            "1:\n" LAMINA_GEMM4_GROUP_SMMLA
            "ld1r {v16.2d}, [%[p]], #8\n"
            "ld1r {v17.2d}, [%[p]], #8\n" LAMINA_GEMM4_GROUP_EPILOGUE
            "subs %[g], %[g], #1\n"
            "b.ne 1b\n"
            : [p] "+r"(p), [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3), [g] "+r"(g),
              [f0a] "+w"(f0a), [f0b] "+w"(f0b), [f1a] "+w"(f1a), [f1b] "+w"(f1b), [f2a] "+w"(f2a),
              [f2b] "+w"(f2b), [f3a] "+w"(f3a), [f3b] "+w"(f3b)
            :
            : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",
              "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20");
      }
    }
    const float32x4_t corr = LoadF32x4(blk + L.corr_off);
    const int n = 4 * b;
    FinishPairT(f0a, f0b, corr, ascale, zp, n, n1, y, y + ldy);
    FinishPairT(f1a, f1b, corr, ascale + 2, zp + 2, n, n1, y + 2 * ldy, y + 3 * ldy);
    FinishPairT(f2a, f2b, corr, ascale + 4, zp + 4, n, n1, y + 4 * ldy, y + 5 * ldy);
    FinishPairT(f3a, f3b, corr, ascale + 6, zp + 6, n, n1, y + 6 * ldy, y + 7 * ldy);
  }
}

// One half group (2 chunks = 16 k) of the 6-pair tile: unpack 4 rows x 16 k
// into v24-v27, then 4 SMMLA per token pair. The asm below runs it twice.
#define LAMINA_GEMM6_HALF_GROUP      \
  "ldp q28, q29, [%[p]], #32\n"      \
  "shl v25.16b, v28.16b, #4\n"       \
  "and v28.16b, v28.16b, v30.16b\n"  \
  "shl v27.16b, v29.16b, #4\n"       \
  "and v29.16b, v29.16b, v30.16b\n"  \
  "zip1 v24.4s, v25.4s, v28.4s\n"    \
  "zip2 v25.4s, v25.4s, v28.4s\n"    \
  "zip1 v26.4s, v27.4s, v29.4s\n"    \
  "zip2 v27.4s, v27.4s, v29.4s\n"    \
  "ldp q28, q29, [%[q0]], #32\n"     \
  "smmla v0.4s, v28.16b, v24.16b\n"  \
  "smmla v1.4s, v28.16b, v25.16b\n"  \
  "smmla v0.4s, v29.16b, v26.16b\n"  \
  "smmla v1.4s, v29.16b, v27.16b\n"  \
  "ldp q28, q29, [%[q1]], #32\n"     \
  "smmla v2.4s, v28.16b, v24.16b\n"  \
  "smmla v3.4s, v28.16b, v25.16b\n"  \
  "smmla v2.4s, v29.16b, v26.16b\n"  \
  "smmla v3.4s, v29.16b, v27.16b\n"  \
  "ldp q28, q29, [%[q2]], #32\n"     \
  "smmla v4.4s, v28.16b, v24.16b\n"  \
  "smmla v5.4s, v28.16b, v25.16b\n"  \
  "smmla v4.4s, v29.16b, v26.16b\n"  \
  "smmla v5.4s, v29.16b, v27.16b\n"  \
  "ldp q28, q29, [%[q3]], #32\n"     \
  "smmla v6.4s, v28.16b, v24.16b\n"  \
  "smmla v7.4s, v28.16b, v25.16b\n"  \
  "smmla v6.4s, v29.16b, v26.16b\n"  \
  "smmla v7.4s, v29.16b, v27.16b\n"  \
  "ldp q28, q29, [%[q4]], #32\n"     \
  "smmla v8.4s, v28.16b, v24.16b\n"  \
  "smmla v9.4s, v28.16b, v25.16b\n"  \
  "smmla v8.4s, v29.16b, v26.16b\n"  \
  "smmla v9.4s, v29.16b, v27.16b\n"  \
  "ldp q28, q29, [%[q5]], #32\n"     \
  "smmla v10.4s, v28.16b, v24.16b\n" \
  "smmla v11.4s, v28.16b, v25.16b\n" \
  "smmla v10.4s, v29.16b, v26.16b\n" \
  "smmla v11.4s, v29.16b, v27.16b\n"

#define LAMINA_GEMM6_INIT \
  "movi v30.16b, #0xf0\n" \
  "movi v12.4s, #0\n"     \
  "movi v13.4s, #0\n"     \
  "movi v14.4s, #0\n"     \
  "movi v15.4s, #0\n"     \
  "movi v16.4s, #0\n"     \
  "movi v17.4s, #0\n"     \
  "movi v18.4s, #0\n"     \
  "movi v19.4s, #0\n"     \
  "movi v20.4s, #0\n"     \
  "movi v21.4s, #0\n"     \
  "movi v22.4s, #0\n"     \
  "movi v23.4s, #0\n"
#define LAMINA_GEMM6_GROUP_SMMLA \
  "movi v0.4s, #0\n"             \
  "movi v1.4s, #0\n"             \
  "movi v2.4s, #0\n"             \
  "movi v3.4s, #0\n"             \
  "movi v4.4s, #0\n"             \
  "movi v5.4s, #0\n"             \
  "movi v6.4s, #0\n"             \
  "movi v7.4s, #0\n"             \
  "movi v8.4s, #0\n"             \
  "movi v9.4s, #0\n"             \
  "movi v10.4s, #0\n"            \
  "movi v11.4s, #0\n" LAMINA_GEMM6_HALF_GROUP LAMINA_GEMM6_HALF_GROUP
#define LAMINA_GEMM6_GROUP_EPILOGUE \
  "scvtf v0.4s, v0.4s, #4\n"        \
  "scvtf v1.4s, v1.4s, #4\n"        \
  "scvtf v2.4s, v2.4s, #4\n"        \
  "scvtf v3.4s, v3.4s, #4\n"        \
  "scvtf v4.4s, v4.4s, #4\n"        \
  "scvtf v5.4s, v5.4s, #4\n"        \
  "scvtf v6.4s, v6.4s, #4\n"        \
  "scvtf v7.4s, v7.4s, #4\n"        \
  "scvtf v8.4s, v8.4s, #4\n"        \
  "scvtf v9.4s, v9.4s, #4\n"        \
  "scvtf v10.4s, v10.4s, #4\n"      \
  "scvtf v11.4s, v11.4s, #4\n"      \
  "fmla v12.4s, v0.4s, v28.4s\n"    \
  "fmla v13.4s, v1.4s, v29.4s\n"    \
  "fmla v14.4s, v2.4s, v28.4s\n"    \
  "fmla v15.4s, v3.4s, v29.4s\n"    \
  "fmla v16.4s, v4.4s, v28.4s\n"    \
  "fmla v17.4s, v5.4s, v29.4s\n"    \
  "fmla v18.4s, v6.4s, v28.4s\n"    \
  "fmla v19.4s, v7.4s, v29.4s\n"    \
  "fmla v20.4s, v8.4s, v28.4s\n"    \
  "fmla v21.4s, v9.4s, v29.4s\n"    \
  "fmla v22.4s, v10.4s, v28.4s\n"   \
  "fmla v23.4s, v11.4s, v29.4s\n"
#define LAMINA_GEMM6_STORE                              \
  "st1 {v12.4s, v13.4s, v14.4s, v15.4s}, [%[f]], #64\n" \
  "st1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[f]], #64\n" \
  "st1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[f]]\n"

// 6 token pairs (12 tokens) x one row block per pass, the whole K loop in asm
// with all 24 accumulators in registers (v0-v11 int32 sums, v12-v23 f32
// accumulators, v24-v27 two unpacked chunks, v28/v29 raw weights /
// activations / scales, v30 the mask). Weights are unpacked by half groups
// (2 chunks). Per group: 12 MOVI + 2 x (LDP + 8 unpack + 6 x (LDP + 4 SMMLA))
// + 2 LD1R + 12 SCVTF + 12 FMLA + SUBS/B.NE = 118 per 12 tokens = 78.7 per
// 8 tokens (Gemm4: 81); f16 scales: LD1R {.2s} + FCVTL, 2 more. G >= 1.
template <bool kF16>
void Gemm6(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
           int n0, int n1, float* y, size_t ldy) {
  const Q4GBlock<kF16> L(Kp);
  const size_t G = L.G, bb = L.bb, pk = 2 * Kp;
  for (int b = n0 / 4; b < (n1 + 3) / 4; ++b) {
    const uint8_t* blk = w + static_cast<size_t>(b) * bb;
    const uint8_t* p = blk;
    const uint8_t* s = blk + L.scale_off;
    const int8_t *q0 = qa, *q1 = qa + pk, *q2 = qa + 2 * pk, *q3 = qa + 3 * pk, *q4 = qa + 4 * pk,
                 *q5 = qa + 5 * pk;
    float f[48];
    float* fp = f;
    size_t g = G;
    if constexpr (kF16) {
      asm volatile(LAMINA_GEMM6_INIT "1:\n" LAMINA_GEMM6_GROUP_SMMLA
                                     "ld1r {v28.2s}, [%[s]], #4\n"
                                     "ld1r {v29.2s}, [%[s]], #4\n"
                                     "fcvtl v28.4s, v28.4h\n"
                                     "fcvtl v29.4s, v29.4h\n" LAMINA_GEMM6_GROUP_EPILOGUE
                                     "subs %[g], %[g], #1\n"
                                     "b.ne 1b\n" LAMINA_GEMM6_STORE
                   : [p] "+r"(p), [s] "+r"(s), [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2),
                     [q3] "+r"(q3), [q4] "+r"(q4), [q5] "+r"(q5), [g] "+r"(g), [f] "+r"(fp)
                   :
                   : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9",
                     "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20",
                     "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30");
    } else {
      asm volatile(LAMINA_GEMM6_INIT "1:\n" LAMINA_GEMM6_GROUP_SMMLA
                                     "ld1r {v28.2d}, [%[p]], #8\n"
                                     "ld1r {v29.2d}, [%[p]], #8\n" LAMINA_GEMM6_GROUP_EPILOGUE
                                     "subs %[g], %[g], #1\n"
                                     "b.ne 1b\n" LAMINA_GEMM6_STORE
                   : [p] "+r"(p), [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3),
                     [q4] "+r"(q4), [q5] "+r"(q5), [g] "+r"(g), [f] "+r"(fp)
                   :
                   : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9",
                     "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20",
                     "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30");
    }
    const float32x4_t corr = LoadF32x4(blk + L.corr_off);
    const int n = 4 * b;
    for (int i = 0; i < 6; ++i)
      FinishPairT(vld1q_f32(f + 8 * i), vld1q_f32(f + 8 * i + 4), corr, ascale + 2 * i, zp + 2 * i,
                  n, n1, y + 2 * i * ldy, y + (2 * i + 1) * ldy);
  }
}

// One token pair x one row block (tail pairs).
template <bool kF16>
void Gemm1(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
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

/// Either q4g layout, pairs activations: 6-pair tiles, then 4, then single
/// pairs; a lone last token through `gemv` (the layout's SDOT GEMV).
template <bool kF16, typename Gemv>
void MatmulQ4GI8mmT(const QActs& a, const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy,
                    Gemv gemv) {
  const size_t Kp = Kp32(K);
  const int8_t* q = static_cast<const int8_t*>(a.data);
  const int pairs = a.M / 2;
  int p = 0;
  if (Kp > 0)
    for (; p + 6 <= pairs; p += 6)
      Gemm6<kF16>(q + static_cast<size_t>(p) * 2 * Kp, Kp, a.scale + 2 * p, a.zp + 2 * p, w, n0, n1,
                  y + static_cast<size_t>(2 * p) * ldy, ldy);
  for (; p + 4 <= pairs; p += 4)
    Gemm4<kF16>(q + static_cast<size_t>(p) * 2 * Kp, Kp, a.scale + 2 * p, a.zp + 2 * p, w, n0, n1,
                y + static_cast<size_t>(2 * p) * ldy, ldy);
  for (; p < pairs; ++p)
    Gemm1<kF16>(q + static_cast<size_t>(p) * 2 * Kp, Kp, a.scale + 2 * p, a.zp + 2 * p, w, n0, n1,
                y + static_cast<size_t>(2 * p) * ldy, ldy);
  if (a.M % 2 == 1) {
    const int m = a.M - 1;
    gemv(q + static_cast<size_t>(m) * Kp, a.scale[m], a.zp[m], w, K, n0, n1,
         y + static_cast<size_t>(m) * ldy);
  }
}

}  // namespace
}  // namespace lamina::kern::arm

#undef LAMINA_GEMM4_GROUP_SMMLA
#undef LAMINA_GEMM4_GROUP_EPILOGUE
#undef LAMINA_GEMM6_HALF_GROUP
#undef LAMINA_GEMM6_INIT
#undef LAMINA_GEMM6_GROUP_SMMLA
#undef LAMINA_GEMM6_GROUP_EPILOGUE
#undef LAMINA_GEMM6_STORE
