// q4g x int8 GEMM with SMMLA (ARMv8.6 i8mm), both q4g layouts, "pairs"
// activations: 6 token pairs (12 tokens) x 4 rows (one row block) per pass,
// the whole K loop in asm (instruction budget: q4g_i8mm_inl.h). K >= 1.
#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm"
#endif

#include "kernels/neon/q4g_i8mm_inl.h"

namespace lamina::kern::arm {
namespace {

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

// The whole K loop; SCALES loads the row pair's scales into v28 / v29.
#define LAMINA_GEMM6_ASM(SCALES)                                                              \
  asm volatile(LAMINA_GEMM6_INIT                                                              \
               "1:\n" LAMINA_GEMM6_GROUP_SMMLA SCALES LAMINA_GEMM6_GROUP_EPILOGUE             \
               "subs %[g], %[g], #1\n"                                                        \
               "b.ne 1b\n" LAMINA_GEMM6_STORE                                                 \
               : [p] "+r"(p), [s] "+r"(s), [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2),       \
                 [q3] "+r"(q3), [q4] "+r"(q4), [q5] "+r"(q5), [g] "+r"(g), [f] "+r"(fp)       \
               :                                                                              \
               : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9",  \
                 "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", \
                 "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30")

// 6 token pairs (12 tokens) x one row block per pass, the whole K loop in asm
// with all 24 accumulators in registers (v0-v11 int32 sums, v12-v23 f32
// accumulators, v24-v27 two unpacked chunks, v28/v29 raw weights /
// activations / scales, v30 the mask). Weights are unpacked by half groups
// (2 chunks). Per group: 12 MOVI + 2 x (LDP + 8 unpack + 6 x (LDP + 4 SMMLA))
// + 2 LD1R + 12 SCVTF + 12 FMLA + SUBS/B.NE = 118 per 12 tokens = 78.7 per
// 8 tokens (8x4 tile: 81); f16 scales: LD1R {.2s} + FCVTL, 2 more. G >= 1.
template <bool kF16>
void Gemm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
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
      LAMINA_GEMM6_ASM(LAMINA_I8MM_SCALES_F16("v28", "v29"));
    } else {
      LAMINA_GEMM6_ASM(LAMINA_I8MM_SCALES_F32("v28", "v29"));
    }
    const float32x4_t corr = LoadF32x4(blk + L.corr_off);
    const int n = 4 * b;
    for (int i = 0; i < 6; ++i)
      FinishPairT(vld1q_f32(f + 8 * i), vld1q_f32(f + 8 * i + 4), corr, ascale + 2 * i, zp + 2 * i,
                  n, n1, y + 2 * i * ldy, y + (2 * i + 1) * ldy);
  }
}

}  // namespace

void Q4GGemm12x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                     const uint8_t* w, int n0, int n1, float* y, size_t ldy) {
  Gemm<false>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
}

void Q4GF16SGemm12x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                         const uint8_t* w, int n0, int n1, float* y, size_t ldy) {
  Gemm<true>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
}

}  // namespace lamina::kern::arm

#undef LAMINA_GEMM6_HALF_GROUP
#undef LAMINA_GEMM6_INIT
#undef LAMINA_GEMM6_GROUP_SMMLA
#undef LAMINA_GEMM6_GROUP_EPILOGUE
#undef LAMINA_GEMM6_STORE
#undef LAMINA_GEMM6_ASM
