// q4g x int8 GEMM with SMMLA (ARMv8.6 i8mm), both q4g layouts, "pairs"
// activations: 4 token pairs (8 tokens) x 4 rows (one row block) per pass,
// group loop in asm (instruction budget: q4g_i8mm_inl.h).
#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm"
#endif

#include "kernels/neon/q4g_i8mm_inl.h"

namespace lamina::kern::arm {
namespace {

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

// The whole group loop; SCALES loads the row pair's scales into v16 / v17.
#define LAMINA_GEMM4_ASM(SCALES)                                                                  \
  asm volatile(                                                                                   \
      "movi v20.16b, #0xf0\n"                                                                     \
      "1:\n" LAMINA_GEMM4_GROUP_SMMLA SCALES LAMINA_GEMM4_GROUP_EPILOGUE                          \
      "subs %[g], %[g], #1\n"                                                                     \
      "b.ne 1b\n"                                                                                 \
      : [p] "+r"(p), [s] "+r"(s), [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3),     \
        [g] "+r"(g), [f0a] "+w"(f0a), [f0b] "+w"(f0b), [f1a] "+w"(f1a), [f1b] "+w"(f1b),          \
        [f2a] "+w"(f2a), [f2b] "+w"(f2b), [f3a] "+w"(f3a), [f3b] "+w"(f3b)                        \
      :                                                                                           \
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", \
        "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20")

// 4 token pairs (8 tokens) x one row block per pass; group loop in asm (see
// the budget in q4g_i8mm_inl.h). Registers: v0-v7 int32 sums, v8-v15 the
// 4 unpacked chunks, v16-v19 raw weights / activations / scales, v20 the mask.
// f32 scales: two LD1R {.2d} of 8 bytes; f16 scales: two LD1R {.2s} of 4 bytes
// + FCVTL (exact).
template <bool kF16>
void Gemm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp, const uint8_t* w,
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
        LAMINA_GEMM4_ASM(LAMINA_I8MM_SCALES_F16("v16", "v17"));
      } else {
        LAMINA_GEMM4_ASM(LAMINA_I8MM_SCALES_F32("v16", "v17"));
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

}  // namespace

void Q4GGemm8x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                    const uint8_t* w, int n0, int n1, float* y, size_t ldy) {
  Gemm<false>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
}

void Q4GF16SGemm8x4I8mm(const int8_t* qa, size_t Kp, const float* ascale, const float* zp,
                        const uint8_t* w, int n0, int n1, float* y, size_t ldy) {
  Gemm<true>(qa, Kp, ascale, zp, w, n0, n1, y, ldy);
}

}  // namespace lamina::kern::arm

#undef LAMINA_GEMM4_GROUP_SMMLA
#undef LAMINA_GEMM4_GROUP_EPILOGUE
#undef LAMINA_GEMM4_ASM
