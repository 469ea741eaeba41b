// q4g (Q4G_R4K8 and Q4G_R4K8_F16S) x int8 activations, AVX2: 4 tokens x 8
// rows (two row blocks) per pass. VPMADDUBSW
// (unsigned nibbles w + 8 x signed activations, pairs to int16) summed over a
// group in int16, then VPMADDWD by 1 to int32. EXACT. Why int16 is safe: a
// pair is at most 2 * 15 * 128 = 3840 in magnitude and a group adds 8 pairs
// per lane: 30720 < 32767. Loops and epilogue: kernels/x86/q_x86_inl.h.
#include "kernels/x86/q_x86_inl.h"

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "matmul_q4g_r4k8_4x8_avx2.cpp needs -mavx2 -mfma -mf16c"
#endif

namespace lamina::kern::x86 {
namespace {

struct IsaAvx2 {
  // Why 4 tokens: 4 float + 4 int16 accumulators, the two unpacked weight
  // registers and three constants fill AVX2's 16 registers.
  static constexpr int kTile = 4;
  using Acc = __m256i;  // int16 pair sums
  static Acc Zero() { return _mm256_setzero_si256(); }
  static Acc Dot(Acc acc, __m256i w_u8, __m256i a_s8) {
    return _mm256_add_epi16(acc, _mm256_maddubs_epi16(w_u8, a_s8));
  }
  static __m256i Finish(Acc acc) { return _mm256_madd_epi16(acc, _mm256_set1_epi16(1)); }
};

}  // namespace

void MatmulQ4GAvx2(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy) {
  (void)N;
  MatmulQ4GX86<IsaAvx2, false>(a, w, K, n0, n1, y, ldy);
}

void MatmulQ4GF16SAvx2(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                       size_t ldy) {
  (void)N;
  MatmulQ4GX86<IsaAvx2, true>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::x86
