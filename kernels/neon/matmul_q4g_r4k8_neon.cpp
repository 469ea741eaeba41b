// q4g (Q4G_R4K8, f32 group scales) x int8 for ARMv8.0 NEON; the kernel is
// matmul_q4g_r4k8_neon_inl.h.
#if !defined(__ARM_NEON)
#error "NEON required"
#endif

#include "kernels/neon/matmul_q4g_r4k8_neon_inl.h"

namespace lamina::kern::arm {

void MatmulQ4GNeon(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy) {
  (void)N;
  MatmulQ4GNeonT<false>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::arm
