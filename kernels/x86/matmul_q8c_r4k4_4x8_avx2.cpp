// q8c (Q8C_R4K4) x int8 activations, AVX2: 4 tokens x 8 rows (two row blocks)
// per pass. EXACT. Why int16 and VPMADDWD:
// VPMADDUBSW needs one unsigned operand, and an unsigned w + 128 (or q + 128)
// times a signed int8 overflows its int16 pair sums (2 * 255 * 128 > 32767);
// sign-extending both to int16 keeps every product exact. One 16-byte chunk
// (4 rows x 4 k) per register, the 4 activations broadcast to the 4 rows.
#include "kernels/x86/q_x86_inl.h"

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "matmul_q8c_r4k4_4x8_avx2.cpp needs -mavx2 -mfma -mf16c"
#endif

namespace lamina::kern::x86 {
namespace {

struct Q8CAvx2Tile {
  static constexpr int kTile = 4;
  template <int MT>
  static void Dots(const int8_t* q, size_t Kp, const int32_t* qtot, const uint8_t* b0,
                   const uint8_t* b1, __m256i* sums) {
    (void)qtot;
    __m256i s0[MT], s1[MT];
    for (int t = 0; t < MT; ++t) s0[t] = s1[t] = _mm256_setzero_si256();
    for (size_t k = 0; k < Kp; k += 4) {  // chunk c = k / 4
      if (k % 16 == 0) {
        Prefetch(b0 + 4 * k);
        Prefetch(b1 + 4 * k);
      }
      const __m256i w0 =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + 4 * k)));
      const __m256i w1 =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + 4 * k)));
      for (int t = 0; t < MT; ++t) {
        const __m256i av =
            _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(LoadI32(q + t * Kp + k))));
        s0[t] = _mm256_add_epi32(s0[t], _mm256_madd_epi16(w0, av));
        s1[t] = _mm256_add_epi32(s1[t], _mm256_madd_epi16(w1, av));
      }
    }
    // s = [r0 k01, r0 k23, r1 .., r1 .., r2, r2, r3, r3]: VPHADDD pairs them
    // per lane to [b0 r0, b0 r1, b1 r0, b1 r1 | b0 r2, b0 r3, b1 r2, b1 r3].
    const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    for (int t = 0; t < MT; ++t)
      sums[t] = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(s0[t], s1[t]), order);
  }
};

}  // namespace

void MatmulQ8CAvx2(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy) {
  (void)N;
  MatmulQ8CX86<Q8CAvx2Tile>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::x86
