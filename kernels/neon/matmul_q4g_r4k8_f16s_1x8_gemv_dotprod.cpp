// q4g (Q4G_R4K8_F16S: f16 group scales) x int8 GEMV, one token x 8 rows (two
// row blocks) per pass, SDOT by element (ARMv8.2 dotprod). The unpack, SDOT and exactness argument
// are the f32-scale GEMV's (matmul_q4g_r4k8_1x8_gemv_dotprod.cpp, LAMINA_Q4G_GEMV_GROUP2); the
// scales of 4 groups x 4 rows of a block are one 32-byte LDP, widened per group with FCVTL / FCVTL2
// (exact), so the group loop is unrolled by 4. Per group and 2 blocks: 2 LD1x4, LDP acts, 2 MOVI,
// 16 SHL/AND, 16 SDOT, 2 SCVTF #4, 2 FCVTL(2), 2 FMLA = 43; per 4 groups + 2 LDP scales + SUBS +
// B.NE = 176 instructions per 2 x 128 weights, fewer than the f32-scale
// GEMV's 4 x 45 = 180: the widening costs less than the loop overhead saved.
// Groups beyond the last multiple of 4 run in C++ (same operations).
#if !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod"
#endif

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/q4g_dotprod_inl.h"

namespace lamina::kern::arm {

// The epilogue of one group: 16*idot (v26, v27) to float, the group's scales
// widened from %[s0]'s / %[s1]'s registers with `cvt` (fcvtl / fcvtl2), FMLA.
#define LAMINA_F16S_GROUP_EPILOGUE(cvt, h0, h1)                         \
  "scvtf v26.4s, v26.4s, #4\n"                                          \
  "scvtf v27.4s, v27.4s, #4\n" cvt " v0.4s, " h0 "\n" cvt " v1.4s, " h1 \
  "\n"                                                                  \
  "fmla %[f0].4s, v26.4s, v0.4s\n"                                      \
  "fmla %[f1].4s, v27.4s, v1.4s\n"

void Q4GF16SGemv1x8Dotprod(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                           int n1, float* y) {
  const Q4GBlock<true> L(Kp32(K));
  const size_t G4 = L.G / 4, bb = L.bb;
  const int b0 = n0 / 4, b1 = (n1 + 3) / 4;
  const uint8x16_t mask = vdupq_n_u8(0xF0);
  int b = b0;
  for (; b + 2 <= b1; b += 2) {
    const uint8_t* blk0 = w + static_cast<size_t>(b) * bb;
    const uint8_t *p0 = blk0, *p1 = blk0 + bb;
    const uint8_t *s0 = blk0 + L.scale_off, *s1 = s0 + bb;
    float32x4_t f0 = vdupq_n_f32(0.f), f1 = f0;
    const int8_t* qg = q;
    size_t g = G4;
    // The asm loop runs at least once: skip it when G < 4.
    if (g != 0)
      asm("1:\n"
          "ldp q28, q29, [%[s0]], #32\n"
          "ldp q30, q31, [%[s1]], #32\n" LAMINA_Q4G_GEMV_GROUP2 LAMINA_F16S_GROUP_EPILOGUE(
              "fcvtl", "v28.4h", "v30.4h") LAMINA_Q4G_GEMV_GROUP2
              LAMINA_F16S_GROUP_EPILOGUE("fcvtl2", "v28.8h", "v30.8h") LAMINA_Q4G_GEMV_GROUP2
                  LAMINA_F16S_GROUP_EPILOGUE("fcvtl", "v29.4h", "v31.4h") LAMINA_Q4G_GEMV_GROUP2
                      LAMINA_F16S_GROUP_EPILOGUE("fcvtl2", "v29.8h", "v31.8h")
          "subs %[g], %[g], #1\n"
          "b.ne 1b\n"
          : [p0] "+r"(p0), [p1] "+r"(p1), [s0] "+r"(s0), [s1] "+r"(s1), [q] "+r"(qg), [g] "+r"(g),
            [f0] "+w"(f0), [f1] "+w"(f1)
          : [m] "w"(mask)
          : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19", "v20",
            "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "cc",
            "memory");
    f0 = Q4GGroupsDot1(L, blk0, q, 4 * G4, f0);
    f1 = Q4GGroupsDot1(L, blk0 + bb, q, 4 * G4, f1);
    Q4GFinish1(L, blk0, f0, zp, ascale, b, n1, y);
    Q4GFinish1(L, blk0 + bb, f1, zp, ascale, b + 1, n1, y);
  }
  for (; b < b1; ++b) {
    const uint8_t* blk = w + static_cast<size_t>(b) * bb;
    Q4GFinish1(L, blk, Q4GGroupsDot1(L, blk, q, 0, vdupq_n_f32(0.f)), zp, ascale, b, n1, y);
  }
}

#undef LAMINA_F16S_GROUP_EPILOGUE

}  // namespace lamina::kern::arm
