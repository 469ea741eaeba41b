// q4g (Q4G_R4K8, f32 group scales) x int8 GEMM, SVE SMMLA (FEAT_I8MM), "pairs"
// activations, vector-length agnostic: sve_q4g_gemm_inl.h. Also the sve
// tier's q8c entry (SVE GEMV for decode from 512 bits, NEON SMMLA otherwise).
#if !defined(__ARM_FEATURE_SVE) || !defined(__ARM_FEATURE_SVE_MATMUL_INT8)
#error "compile with -march=armv8.2-a+dotprod+i8mm+sve"
#endif

#include "kernels/sve/sve_q4g_gemm_inl.h"

namespace lamina::kern::arm {

void MatmulQ4GSveI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy) {
  (void)N;
  MatmulQ4GSveI8mmT<false>(a, w, K, n0, n1, y, ldy, Q4GGemvSve, Q4GGemvDotprod);
}

void MatmulQ8CSveI8mm(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy) {
  if (a.M == 1 && SveGemvPays()) {
    MatmulQ8CSve(a, w, N, K, n0, n1, y, ldy);  // pairs layout of one token == plain
  } else {
    MatmulQ8CI8mm(a, w, N, K, n0, n1, y, ldy);
  }
}

}  // namespace lamina::kern::arm
