// q4g (Q4G_R4K8_F16S: f16 group scales, widened with FCVTL) x int8 GEMM for
// up to 4 tokens at a time, SDOT by element (ARMv8.2 dotprod):
// Q4GGemmDotprodT in q4g_dotprod_inl.h.
#if !defined(__ARM_FEATURE_DOTPROD)
#error "compile with -march=armv8.2-a+dotprod"
#endif

#include "kernels/neon/arm_kernels.h"
#include "kernels/neon/q4g_dotprod_inl.h"

namespace lamina::kern::arm {

void Q4GF16SGemm4Dotprod(const int8_t* q, const float* ascale, const float* zp, int mt,
                         const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy) {
  Q4GGemm4DotprodT<true>(q, ascale, zp, mt, w, K, n0, n1, y, ldy, Q4GF16SGemvDotprod);
}

}  // namespace lamina::kern::arm
