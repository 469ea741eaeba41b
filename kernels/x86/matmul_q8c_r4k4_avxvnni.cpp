// q8c (Q8C_R4K4) x int8 activations, AVX-VNNI: VEX VPDPBUSD (unsigned nibbles w + 8 x signed
// activations, groups of 4 products straight into int32 lanes): the weights as unsigned w + 128,
// minus 128 * sum(q). EXACT. Loops and epilogue: kernels/x86/q_x86_inl.h (Q8CVnniTile).
#include "kernels/x86/q_x86_inl.h"

#if !defined(__AVXVNNI__)
#error "matmul_q8c_r4k4_avxvnni.cpp needs -mavxvnni (cmake/LaminaCompile.cmake)"
#endif

namespace lamina::kern::x86 {
namespace {

struct IsaAvxVnni {
  static constexpr int kTile = 4;
  static __m256i Dot(__m256i acc, __m256i w_u8, __m256i a_s8) {
    return _mm256_dpbusd_avx_epi32(acc, w_u8, a_s8);
  }
};

}  // namespace

void MatmulQ8CAvxVnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy) {
  (void)N;
  MatmulQ8CX86<Q8CVnniTile<IsaAvxVnni>>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::x86
