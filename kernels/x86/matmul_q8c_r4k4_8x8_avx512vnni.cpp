// q8c (Q8C_R4K4) x int8 activations, AVX-512 VNNI: 8 tokens x 8 rows (two row
// blocks) per pass. EVEX VPDPBUSD on 256-bit registers (AVX-512VL, vnni_inl.h)
// with the weights as unsigned w + 128, minus 128 * sum(q). EXACT. Loops and
// epilogue: kernels/x86/q_x86_inl.h (Q8CVnniTile).
#include "kernels/x86/vnni_inl.h"

#if !defined(__AVX512VNNI__) || !defined(__AVX512VL__)
#error \
    "matmul_q8c_r4k4_8x8_avx512vnni.cpp needs -mavx512vl -mavx512vnni (cmake/LaminaCompile.cmake)"
#endif

namespace lamina::kern::x86 {

void MatmulQ8CAvx512Vnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                         size_t ldy) {
  (void)N;
  MatmulQ8CX86<Q8CVnniTile<IsaVnni>>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::x86
