// q4g (Q4G_R4K8_F16S, f16 group scales) x int8 GEMM with SMMLA (ARMv8.6 i8mm), "pairs"
// activations; the kernel (tiles, asm, instruction budget) is
// q4g_i8mm_gemm_inl.h.
#if !defined(__ARM_FEATURE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm"
#endif

#include "kernels/neon/q4g_i8mm_gemm_inl.h"

namespace lamina::kern::arm {

void MatmulQ4GF16SI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                       size_t ldy) {
  (void)N;
  MatmulQ4GI8mmT<true>(a, w, K, n0, n1, y, ldy, Q4GF16SGemvDotprod);
}

}  // namespace lamina::kern::arm
