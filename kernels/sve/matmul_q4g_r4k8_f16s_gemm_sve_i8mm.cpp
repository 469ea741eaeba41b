// q4g (Q4G_R4K8_F16S, f16 group scales) x int8 GEMM, SVE SMMLA (FEAT_I8MM),
// "pairs" activations, vector-length agnostic: sve_q4g_gemm_inl.h (the scales
// of S blocks: one LD1H gather into 32-bit lanes + FCVT, exact).
#if !defined(__ARM_FEATURE_SVE) || !defined(__ARM_FEATURE_SVE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm+sve"
#endif

#include "kernels/sve/sve_q4g_gemm_inl.h"

namespace lamina::kern::arm {

void MatmulQ4GF16SSveI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                          size_t ldy) {
  if (!SveQ4G<true>::Fits(Kp32(K))) {  // 32-bit gather offsets would overflow
    MatmulQ4GF16SI8mm(a, w, N, K, n0, n1, y, ldy);
    return;
  }
  MatmulQ4GSveI8mmT<true>(a, w, K, n0, n1, y, ldy, Q4GF16SGemvSve, Q4GF16SGemvDotprod);
}

}  // namespace lamina::kern::arm
