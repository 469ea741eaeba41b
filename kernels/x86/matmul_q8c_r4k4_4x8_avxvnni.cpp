// q8c (Q8C_R4K4) x int8 activations, AVX-VNNI: 4 tokens x 8 rows (two row
// blocks) per pass. VEX VPDPBUSD (vnni_inl.h) with the weights as unsigned
// w + 128, minus 128 * sum(q). EXACT. Loops and epilogue: kernels/x86/q_x86_inl.h
// (Q8CVnniTile).
#include "kernels/x86/vnni_inl.h"

#if !defined(__AVXVNNI__)
#error "matmul_q8c_r4k4_4x8_avxvnni.cpp needs -mavxvnni (cmake/LaminaCompile.cmake)"
#endif

namespace lamina::kern::x86 {

void MatmulQ8CAvxVnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy) {
  (void)N;
  MatmulQ8CX86<Q8CVnniTile<IsaVnni>>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::x86
