// q4g (Q4G_R4K8) x int8 GEMV, one token x 8 rows (two row blocks) per pass,
// SDOT by element (ARMv8.2 dotprod).
//
// Per 16-byte chunk (4 rows x 8 k as nibbles): lo = b << 4, hi = b & 0xF0 are
// int8 vectors holding 16*w (no sign extension needed), and are exactly SDOT-
// by-element operands: lane r of the accumulator is row r, the activation
// lane is the 4 bytes k = 32g + 8c + {0..3} (lo) / {4..7} (hi).
// Per 32 weights: 1/4 LD1x4 + SHL + AND + 2 SDOT.
// Exactness: the group dot is 16*idot (|16*idot| <= 2^19, exact in int32);
// SCVTF #4 (fixed point, 4 fraction bits) converts it to exactly (float)idot,
// then FMLA (fused) by the group scale: the ref chain
// acc = fma((float)idot, scale_g, acc), groups in order, lane = row. Then
// FMLS by corr (= fma(-zp, corr, acc)) and FMUL by the activation scale.
#if !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod"
#endif

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/q4g_dotprod_inl.h"

namespace lamina::kern::arm {

void Q4GGemv1x8Dotprod(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                       int n1, float* y) {
  const Q4GBlock<false> L(Kp32(K));
  const size_t G = L.G, bb = L.bb;
  const int b0 = n0 / 4, b1 = (n1 + 3) / 4;
  const uint8x16_t mask = vdupq_n_u8(0xF0);
  int b = b0;
  // The asm group loop runs at least once, so K == 0 (no groups) takes the
  // one-block C++ loop below for every block.
  for (; G > 0 && b + 2 <= b1; b += 2) {
    const uint8_t* blk0 = w + static_cast<size_t>(b) * bb;
    const uint8_t *p0 = blk0, *p1 = blk0 + bb;
    float32x4_t f0 = vdupq_n_f32(0.f), f1 = f0;
    const int8_t* qg = q;
    size_t g = G;
    // The group loop of Q4GGroupDot1 for two blocks, hand-scheduled so that
    // every address update is a post-index (45 instructions per 2 x 128
    // weights: 2 LD1x4, LDP acts, 2 MOVI, 16 SHL/AND, 16 SDOT, 2 LDR scales,
    // 2 SCVTF #4, 2 FMLA, SUBS, B.NE). Same operations, same order per lane.
    asm("1:\n" LAMINA_Q4G_GEMV_GROUP2
        "ldr q28, [%[p0]], #16\n"
        "ldr q29, [%[p1]], #16\n"
        "scvtf v26.4s, v26.4s, #4\n"
        "scvtf v27.4s, v27.4s, #4\n"
        "fmla %[f0].4s, v26.4s, v28.4s\n"
        "fmla %[f1].4s, v27.4s, v29.4s\n"
        "subs %[g], %[g], #1\n"
        "b.ne 1b\n"
        : [p0] "+r"(p0), [p1] "+r"(p1), [q] "+r"(qg), [g] "+r"(g), [f0] "+w"(f0), [f1] "+w"(f1)
        : [m] "w"(mask)
        : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19", "v20", "v21",
          "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "cc", "memory");
    Q4GFinish1(L, blk0, f0, zp, ascale, b, n1, y);
    Q4GFinish1(L, blk0 + bb, f1, zp, ascale, b + 1, n1, y);
  }
  for (; b < b1; ++b) {
    const uint8_t* blk = w + static_cast<size_t>(b) * bb;
    Q4GFinish1(L, blk, Q4GGroupsDot1(L, blk, q, 0, vdupq_n_f32(0.f)), zp, ascale, b, n1, y);
  }
}

}  // namespace lamina::kern::arm
