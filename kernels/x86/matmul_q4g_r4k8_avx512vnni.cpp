// q4g (Q4G_R4K8 and Q4G_R4K8_F16S) x int8 activations, AVX-512 VNNI: EVEX VPDPBUSD on 256-bit
// registers (AVX-512VL; unsigned nibbles w + 8 x signed activations, groups of 4 products into
// int32 lanes). EXACT. Loops and epilogue: kernels/x86/q_x86_inl.h.
#include "kernels/x86/q_x86_inl.h"

#if !defined(__AVX512VNNI__) || !defined(__AVX512VL__)
#error "matmul_q4g_r4k8_avx512vnni.cpp needs -mavx512vl -mavx512vnni (cmake/LaminaCompile.cmake)"
#endif

namespace lamina::kern::x86 {
namespace {

struct IsaAvx512Vnni {
  // Why 8 tokens: with AVX-512VL the 256-bit code has 32 registers
  // (8 float + 8 int32 accumulators, weights, constants).
  static constexpr int kTile = 8;
  using Acc = __m256i;  // int32 sums
  static Acc Zero() { return _mm256_setzero_si256(); }
  static Acc Dot(Acc acc, __m256i w_u8, __m256i a_s8) {
    return _mm256_dpbusd_epi32(acc, w_u8, a_s8);
  }
  static __m256i Finish(Acc acc) { return acc; }
};

}  // namespace

void MatmulQ4GAvx512Vnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                         size_t ldy) {
  (void)N;
  MatmulQ4GX86<IsaAvx512Vnni, false>(a, w, K, n0, n1, y, ldy);
}

void MatmulQ4GF16SAvx512Vnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1,
                             float* y, size_t ldy) {
  (void)N;
  MatmulQ4GX86<IsaAvx512Vnni, true>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::x86
