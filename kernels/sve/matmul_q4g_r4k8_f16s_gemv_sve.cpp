// q4g (Q4G_R4K8_F16S: f16 group scales) x int8 GEMV, one token, SVE SDOT by
// element, vector-length agnostic: sve_q4g_gemv_inl.h. The scales of S blocks
// are one LD1H gather into 32-bit lanes + FCVT (exact widening).
#if !defined(__ARM_FEATURE_SVE) || !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod+sve"
#endif

#include "kernels/sve/sve_q4g_gemv_inl.h"

namespace lamina::kern::arm {

void Q4GF16SGemvSve(const int8_t* q, float ascale, float zp, const uint8_t* w, int K, int n0,
                    int n1, float* y) {
  Q4GGemvSveT<true>(q, ascale, zp, w, K, n0, n1, y);
}

}  // namespace lamina::kern::arm
