// Shared parts of the q4g x int8 GEMMs with SMMLA (ARMv8.6 i8mm), both q4g
// layouts, "pairs" activations (arm_kernels.h). Tiles, one row block (4 rows)
// each: 12 tokens (matmul_q4g_r4k8_12x4_gemm_i8mm.cpp, asm), 8 tokens
// (matmul_q4g_r4k8_8x4_gemm_i8mm.cpp, asm), 2 tokens
// (matmul_q4g_r4k8_2x4_gemm_i8mm.cpp, compiled C++); kernels/neon/tier_i8mm.cpp
// walks the token pairs through them.
//
// Per 16-byte chunk (4 rows x 8 k): lo = b << 4, hi = b & 0xF0 (16*w, int8),
// zip1/zip2 on 32-bit lanes give the 2x8 operands [r0 k0..7 | r1 k0..7] and
// [r2 | r3]; the pair's chunk [tA k0..7 | tB k0..7] is the other operand. Per
// group the int32 sums are 16*idot, SCVTF #4 gives exactly (float)idot, FMLA
// by the group scale: per (row, token) lane the ref chain.
//
// The 12x4 and 8x4 tiles run their K loop as inline asm with post-indexed loads. The
// activations are SMMLA's FIRST operand, so the lanes are [tA rA, tA rB, tB rA,
// tB rB] and the scale vector [sA sB sA sB] is one LD1R {.2d} of 8 bytes (no
// ZIPs); the result is transposed once per row block after the K loop (64-bit
// ZIP1/ZIP2), where the zero-point correction and activation scale are applied
// exactly as ref. Instructions per (4 rows x 32 k x 8 tokens), from objdump of
// the loops (the compiled C++ 4-pair loop it replaces: 94):
//   12x4: 118 per group and 12 tokens = 78.7 per 8 tokens: 48 SMMLA,
//     16 unpack (SHL, AND, ZIP1, ZIP2 per chunk), 2 LDP weights, 12 LDP
//     activations, 2 LD1R scales, 36 epilogue (MOVI zero, SCVTF #4, FMLA per 4
//     (row, token) lanes), SUBS/B.NE. All 24 accumulators stay in registers
//     (v0-v11 int32, v12-v23 f32; v24-v27 hold 2 unpacked chunks, so weights
//     are unpacked by half groups; v28/v29 raw weights, activations, scales;
//     v30 the 0xF0 mask); the f32 results go through a stack array at the end.
//   8x4: 81 per group and 8 tokens: 32 SMMLA, 16 unpack, 1 LD1x4 weights,
//     4 LD1x4 activations (one per pair), 2 LD1R, 24 epilogue, SUBS/B.NE.
// Floor with this layout and spec: 32 SMMLA + 24 epilogue + unpack shared by
// the tile's tokens (16 * 8 / tokens) + loads. The spec's per-group f32
// epilogue costs 75% of the SMMLA count, so 128-bit NEON stays near ~75 M
// instructions per prefill token on the 1B linears; the SVE tier (kernels/sve/)
// divides all of it by VL/128.
// Q4G_R4K8_F16S: the scales of a row pair are one LD1R of 32 bits + FCVTL.
// Include only from the matmul_q4g_r4k8_*_gemm_i8mm.cpp files.
#pragma once

#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm"
#endif

#include "kernels/neon/arm_kernels.h"

// The group scales of a row pair into registers A = [s0 s1 s0 s1], B = [s2 s3
// s2 s3] (asm string arguments, e.g. "v16"): f32 scales follow the group's
// nibbles (two LD1R {.2d} of 8 bytes at %[p]); f16 scales are an array of
// their own (%[s]): two LD1R {.2s} of 4 bytes + FCVTL (exact). Both asm
// statements of a tile take %[s], so the f32 and f16 tiles are one text.
#define LAMINA_I8MM_SCALES_F32(A, B) \
  "ld1r {" A                         \
  ".2d}, [%[p]], #8\n"               \
  "ld1r {" B ".2d}, [%[p]], #8\n"
#define LAMINA_I8MM_SCALES_F16(A, B) \
  "ld1r {" A                         \
  ".2s}, [%[s]], #4\n"               \
  "ld1r {" B                         \
  ".2s}, [%[s]], #4\n"               \
  "fcvtl " A ".4s, " A               \
  ".4h\n"                            \
  "fcvtl " B ".4s, " B ".4h\n"

namespace lamina::kern::arm {
namespace {

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

}  // namespace
}  // namespace lamina::kern::arm
