// q4g (Q4G_R4K8 and Q4G_R4K8_F16S) x int8 activations, AVX-VNNI: VEX VPDPBUSD (unsigned nibbles w +
// 8 x signed activations, groups of 4 products straight into int32 lanes). EXACT. Loops and
// epilogue: kernels/x86/q_x86_inl.h.
#include "kernels/x86/q_x86_inl.h"

#if !defined(__AVXVNNI__)
#error "matmul_q4g_r4k8_avxvnni.cpp needs -mavxvnni (cmake/LaminaCompile.cmake)"
#endif

namespace lamina::kern::x86 {
namespace {

struct IsaAvxVnni {
  // Why 4 tokens: AVX2 has 16 registers (4 float + 4 int32 accumulators,
  // two unpacked weight registers, constants).
  static constexpr int kTile = 4;
  using Acc = __m256i;  // int32 sums
  static Acc Zero() { return _mm256_setzero_si256(); }
  static Acc Dot(Acc acc, __m256i w_u8, __m256i a_s8) {
    return _mm256_dpbusd_avx_epi32(acc, w_u8, a_s8);
  }
  static __m256i Finish(Acc acc) { return acc; }
};

}  // namespace

void MatmulQ4GAvxVnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                      size_t ldy) {
  (void)N;
  MatmulQ4GX86<IsaAvxVnni, false>(a, w, K, n0, n1, y, ldy);
}

void MatmulQ4GF16SAvxVnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                          size_t ldy) {
  (void)N;
  MatmulQ4GX86<IsaAvxVnni, true>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::x86
