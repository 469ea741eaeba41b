// q4g (Q4G_R4K8 and Q4G_R4K8_F16S) x int8 activations, AVX-512 VNNI: 8 tokens
// x 16 rows (four row blocks) per pass, EVEX VPDPBUSD (unsigned nibbles w + 8 x
// signed activations, groups of 4 products into int32 lanes). EXACT. The x86
// scheme of kernels/x86/q_x86_inl.h on 512-bit registers: chunk c of four row
// blocks in the four 128-bit lanes (16 rows x 8 k per register), 8 tokens per
// tile (32 registers); a last run of fewer than 4 row blocks goes through
// q_x86_inl.h's 256-bit loop (8 tokens x 8 rows, vnni_inl.h's EVEX policy).
// Why 512 bits: Zen 5 and Intel server cores execute VPDPBUSD zmm at the rate
// of ymm, so the GEMM (prefill) does twice the work per instruction.
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which its
// -W(maybe-)uninitialized misreport at -O3 (GCC bug 105593); nothing here reads
// an uninitialized value.
#if defined(__GNUC__) && !defined(__clang__)  // GCC only (clang has no such warning group)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "kernels/x86/vnni_inl.h"

#if !defined(__AVX512VNNI__) || !defined(__AVX512VL__) || !defined(__AVX512BW__)
#error "matmul_q4g_r4k8_8x16_avx512vnni.cpp needs -mavx512f -mavx512bw -mavx512vl -mavx512vnni"
#endif

namespace lamina::kern::x86 {
namespace {

/// Four 16-byte loads as the four lanes of one register.
inline __m512i Load4x16(const uint8_t* p0, const uint8_t* p1, const uint8_t* p2,
                        const uint8_t* p3) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(Load2x16(p0, p1)), Load2x16(p2, p3), 1);
}

/// The scales of group g of 4 row blocks (s_i: block i's group-g scales).
template <bool kF16>
inline __m512 Q4Scales16(const uint8_t* s0, const uint8_t* s1, const uint8_t* s2,
                         const uint8_t* s3) {
  if constexpr (kF16) {
    return _mm512_cvtph_ps(_mm256_set_epi64x(LoadI64(s3), LoadI64(s2), LoadI64(s1), LoadI64(s0)));
  } else {
    return _mm512_castsi512_ps(Load4x16(s0, s1, s2, s3));
  }
}

/// MT tokens x 4 row blocks (blk[0..3]); nvalid <= 16 results per token stored.
template <bool kF16, int MT>
void Q4GTile16(const int8_t* q, size_t Kp, const int32_t* qsum8, size_t G, const float* ascale,
               const float* zp, const uint8_t* const* blk, const ref::Q4GLayout& L, float* y,
               size_t ldy, int nvalid) {
  const __m512i m0f = _mm512_set1_epi8(0x0F), x88 = _mm512_set1_epi8(static_cast<char>(0x88));
  __m512 facc[MT];
  for (int t = 0; t < MT; ++t) facc[t] = _mm512_setzero_ps();
  for (size_t g = 0; g < G; ++g) {
    const size_t go = g * L.group_stride;
    for (int i = 0; i < 4; ++i) Prefetch(blk[i] + go);
    __m512i acc[MT];
    for (int t = 0; t < MT; ++t) acc[t] = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      const size_t o = go + 16 * c;
      const __m512i wv =
          _mm512_xor_si512(Load4x16(blk[0] + o, blk[1] + o, blk[2] + o, blk[3] + o), x88);
      const __m512i lo = _mm512_and_si512(wv, m0f);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), m0f);
      for (int t = 0; t < MT; ++t) {
        const int8_t* qt = q + t * Kp + 32 * g + 8 * c;
        acc[t] = _mm512_dpbusd_epi32(acc[t], lo, _mm512_set1_epi32(LoadI32(qt)));
        acc[t] = _mm512_dpbusd_epi32(acc[t], hi, _mm512_set1_epi32(LoadI32(qt + 4)));
      }
    }
    const size_t so = L.scale_off + g * L.scale_stride;
    const __m512 s = Q4Scales16<kF16>(blk[0] + so, blk[1] + so, blk[2] + so, blk[3] + so);
    for (int t = 0; t < MT; ++t) {
      const __m512i idot = _mm512_sub_epi32(acc[t], _mm512_set1_epi32(qsum8[t * G + g]));
      facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(idot), s, facc[t]);
    }
  }
  const size_t co = L.corr_off;
  const __m512 corr =
      _mm512_castsi512_ps(Load4x16(blk[0] + co, blk[1] + co, blk[2] + co, blk[3] + co));
  const __mmask16 mask = nvalid >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << nvalid) - 1);
  for (int t = 0; t < MT; ++t) {
    const __m512 acc = _mm512_fmadd_ps(_mm512_set1_ps(-zp[t]), corr, facc[t]);
    _mm512_mask_storeu_ps(y + t * ldy, mask, _mm512_mul_ps(acc, _mm512_set1_ps(ascale[t])));
  }
}

template <bool kF16, int MT>
void Q4GTile16N(int mt, const int8_t* q, size_t Kp, const int32_t* qsum8, size_t G,
                const float* ascale, const float* zp, const uint8_t* const* blk,
                const ref::Q4GLayout& L, float* y, size_t ldy, int nvalid) {
  if (mt == MT) {
    Q4GTile16<kF16, MT>(q, Kp, qsum8, G, ascale, zp, blk, L, y, ldy, nvalid);
  } else if constexpr (MT > 1) {
    Q4GTile16N<kF16, MT - 1>(mt, q, Kp, qsum8, G, ascale, zp, blk, L, y, ldy, nvalid);
  }
}

template <bool kF16>
void MatmulQ4G512(const QActs& a, const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy) {
  const size_t Kp = XKp(K), G = Kp / 32;
  const ref::Q4GLayout L = ref::MakeQ4GLayout<kF16>(Kp);
  const int8_t* q = static_cast<const int8_t*>(a.data);
  const int32_t* qsum8 =
      reinterpret_cast<const int32_t*>(static_cast<const uint8_t*>(a.data) + QSumOffset(a.M, K));
  const int nb1 = (n1 + 3) / 4;
  int b = n0 / 4;
  for (; b + 4 <= nb1; b += 4) {
    const uint8_t* blk[4];
    for (int i = 0; i < 4; ++i) blk[i] = w + static_cast<size_t>(b + i) * L.block_bytes;
    const int n = 4 * b, nvalid = std::min(16, n1 - n);
    for (int m = 0; m < a.M; m += IsaVnni::kTile) {
      Q4GTile16N<kF16, IsaVnni::kTile>(std::min(IsaVnni::kTile, a.M - m), q + m * Kp, Kp,
                                       qsum8 + m * G, G, a.scale + m, a.zp + m, blk, L,
                                       y + static_cast<size_t>(m) * ldy + n, ldy, nvalid);
    }
  }
  if (b < nb1) MatmulQ4GX86<IsaVnni, kF16>(a, w, K, 4 * b, n1, y, ldy);
}

}  // namespace

void MatmulQ4GAvx512Vnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                         size_t ldy) {
  (void)N;
  MatmulQ4G512<false>(a, w, K, n0, n1, y, ldy);
}

void MatmulQ4GF16SAvx512Vnni(const QActs& a, const uint8_t* w, int N, int K, int n0, int n1,
                             float* y, size_t ldy) {
  (void)N;
  MatmulQ4G512<true>(a, w, K, n0, n1, y, ldy);
}

}  // namespace lamina::kern::x86
