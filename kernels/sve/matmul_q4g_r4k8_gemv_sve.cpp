// q4g (Q4G_R4K8) x int8 GEMV, one token (plain activation row), SVE SDOT by
// element, vector-length agnostic: S = VL/128 row blocks per vector, one
// block per 128-bit segment (see sve_q4g_inl.h). Per chunk and S blocks: one
// gather, LSL + AND (16*w), two SDOT-by-element against the replicated
// activations. Exactness as the NEON dotprod GEMV (lane = row, groups in
// order, FMLA by scale, FMLS corr*zp, FMUL act scale).
#if !defined(__ARM_FEATURE_SVE) || !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod+sve"
#endif

#include "kernels/sve/sve_q4g_gemv_inl.h"

namespace lamina::kern::arm {

void Q4GGemvSve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0, int n1,
                float* y) {
  Q4GGemvSveT<false>(q, ascale, zp, w, K, n0, n1, y);
}

}  // namespace lamina::kern::arm
