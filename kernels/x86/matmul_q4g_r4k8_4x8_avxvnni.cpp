// q4g (Q4G_R4K8 and Q4G_R4K8_F16S) x int8 activations, AVX-VNNI: 4 tokens x
// 8 rows (two row blocks) per pass, VEX VPDPBUSD (vnni_inl.h: unsigned nibbles
// w + 8 x signed activations, groups of 4 products straight into int32 lanes).
// EXACT. Loops and epilogue: kernels/x86/q_x86_inl.h.
#include "kernels/x86/vnni_inl.h"

#if !defined(__AVXVNNI__)
#error "matmul_q4g_r4k8_4x8_avxvnni.cpp needs -mavxvnni (cmake/LaminaCompile.cmake)"
#endif

namespace lamina::kern::x86 {

void MatmulQ4GAvxVnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy) {
  (void)N;
  MatmulQ4GX86<IsaVnni, false>(a, w, K, n0, n1, y, ldy);
}

void MatmulQ4GF16SAvxVnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                          size_t ldy) {
  (void)N;
  MatmulQ4GX86<IsaVnni, true>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::x86
