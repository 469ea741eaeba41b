// The x86 q4g / q8c matmul loops, shared by the three x86 tiers: each tier
// file instantiates them with its integer dot-product policy (`Isa`) and is
// compiled with its own ISA flags (this header adds none, it only needs AVX2).
//
// q4g (both layouts). Why 8 rows x 8 k per register: one 16-byte chunk of a
// Q4G_R4K8 row block holds 4 rows x 8 k (low nibbles k 0-3, high k 4-7, see
// loader/format.h); the same chunk of the next row block goes into the upper
// 128-bit lane, so the low nibbles of the register are 8 rows x the same 4 k,
// and the activation operand is those 4 int8 values broadcast (VPBROADCASTD).
// The dot products then land in 32-bit lane r = row r of the 8 (VPDPBUSD, or
// VPMADDUBSW + VPMADDWD), already in the order of the group scales — no
// horizontal reduction per group. The nibbles are taken as unsigned w + 8
// (XOR 0x88, AND 0x0F) because both instructions want one unsigned operand;
// the activations stay signed and the quantizer stored 8 * sum(q) per group:
//   idot = sum((w + 8) * q) - 8 * sum(q)        (exact, int32)
// then per group, as ref: acc = fma((float)idot, scale, acc), then
// acc = fma(-zp, corr, acc), y = acc * a.scale.
// GEMM: a tile of MT tokens shares each unpacked weight register; tiles run
// innermost, so a pair of row blocks (2 x 4.6 KB at K = 2048) is read from
// memory once and from L1/L2 for the other tiles.
#pragma once

#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "kernels/x86/q_x86_inl.h needs AVX2 + FMA + F16C (include it from an x86 tier file)"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/ref/q4g_layout.h"
#include "kernels/x86/x86_kernels.h"
#include "loader/format.h"

namespace lamina::kern::x86 {
// Why an anonymous namespace: every tier file compiles these helpers with its
// own ISA flags; with external linkage the linker would keep ONE copy of each
// (say the AVX-512 one) for every tier, and an AVX2-only CPU would fault in it.
namespace {

// Bytes ahead of the current position that the loops prefetch in each weight
// stream (decode reads the weights from DRAM once; the hardware prefetcher
// alone trails the several block streams a loop walks in parallel).
constexpr size_t kPrefetchAhead = 1024;
inline void Prefetch(const uint8_t* p) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchAhead), _MM_HINT_T0);
}

inline int32_t LoadI32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int64_t LoadI64(const void* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

/// 8 floats to y[0..n) (n <= 8; all 8 when n == 8).
inline void Store8(float* y, int n, __m256 v) {
  if (n >= 8) {
    _mm256_storeu_ps(y, v);
    return;
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  for (int i = 0; i < n; ++i) y[i] = t[i];
}

/// Two 16-byte loads as the low / high lane of one register.
inline __m256i Load2x16(const uint8_t* lo, const uint8_t* hi) {
  return _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
}

/// The scales of group g of row blocks b0 (lanes 0-3) and b1 (lanes 4-7).
template <bool kF16>
inline __m256 Q4Scales(const uint8_t* s0, const uint8_t* s1) {
  if constexpr (kF16) {
    const __m128i h = _mm_set_epi64x(LoadI64(s1), LoadI64(s0));
    return _mm256_cvtph_ps(h);  // f16 -> f32 is exact
  } else {
    return _mm256_insertf128_ps(
        _mm256_castps128_ps256(_mm_loadu_ps(reinterpret_cast<const float*>(s0))),
        _mm_loadu_ps(reinterpret_cast<const float*>(s1)), 1);
  }
}

/// MT tokens (rows q + t*Kp, group sums qsum8 + t*G) x row blocks b0, b1
/// (b1 may equal b0 on an odd last block; then only 4 results are stored).
template <class Isa, bool kF16, int MT>
inline void Q4GTile(const int8_t* q, size_t Kp, const int32_t* qsum8, size_t G, const float* ascale,
                    const float* zp, const uint8_t* b0, const uint8_t* b1, const ref::Q4GLayout& L,
                    float* y, size_t ldy, int nvalid) {
  const __m256i m0f = _mm256_set1_epi8(0x0F), x88 = _mm256_set1_epi8(static_cast<char>(0x88));
  __m256 facc[MT];
  for (int t = 0; t < MT; ++t) facc[t] = _mm256_setzero_ps();
  for (size_t g = 0; g < G; ++g) {
    const uint8_t* g0 = b0 + g * L.group_stride;
    const uint8_t* g1 = b1 + g * L.group_stride;
    Prefetch(g0);
    Prefetch(g1);
    typename Isa::Acc acc[MT];
    for (int t = 0; t < MT; ++t) acc[t] = Isa::Zero();
    for (int c = 0; c < 4; ++c) {
      const __m256i wv = _mm256_xor_si256(Load2x16(g0 + 16 * c, g1 + 16 * c), x88);
      const __m256i lo = _mm256_and_si256(wv, m0f);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(wv, 4), m0f);
      for (int t = 0; t < MT; ++t) {
        const int8_t* qt = q + t * Kp + 32 * g + 8 * c;
        acc[t] = Isa::Dot(acc[t], lo, _mm256_set1_epi32(LoadI32(qt)));
        acc[t] = Isa::Dot(acc[t], hi, _mm256_set1_epi32(LoadI32(qt + 4)));
      }
    }
    const __m256 s = Q4Scales<kF16>(b0 + L.scale_off + g * L.scale_stride,
                                    b1 + L.scale_off + g * L.scale_stride);
    for (int t = 0; t < MT; ++t) {
      const __m256i idot =
          _mm256_sub_epi32(Isa::Finish(acc[t]), _mm256_set1_epi32(qsum8[t * G + g]));
      facc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(idot), s, facc[t]);
    }
  }
  const __m256 corr = _mm256_insertf128_ps(
      _mm256_castps128_ps256(_mm_loadu_ps(reinterpret_cast<const float*>(b0 + L.corr_off))),
      _mm_loadu_ps(reinterpret_cast<const float*>(b1 + L.corr_off)), 1);
  for (int t = 0; t < MT; ++t) {
    const __m256 acc = _mm256_fmadd_ps(_mm256_set1_ps(-zp[t]), corr, facc[t]);
    Store8(y + t * ldy, nvalid, _mm256_mul_ps(acc, _mm256_set1_ps(ascale[t])));
  }
}

template <class Isa, bool kF16, int MT>
inline void Q4GTileN(int mt, const int8_t* q, size_t Kp, const int32_t* qsum8, size_t G,
                     const float* ascale, const float* zp, const uint8_t* b0, const uint8_t* b1,
                     const ref::Q4GLayout& L, float* y, size_t ldy, int nvalid) {
  if (mt == MT) {
    Q4GTile<Isa, kF16, MT>(q, Kp, qsum8, G, ascale, zp, b0, b1, L, y, ldy, nvalid);
  } else if constexpr (MT > 1) {
    Q4GTileN<Isa, kF16, MT - 1>(mt, q, Kp, qsum8, G, ascale, zp, b0, b1, L, y, ldy, nvalid);
  }
}

/// MatmulQ4GKernel::run for "plain + sums" activations.
template <class Isa, bool kF16>
void MatmulQ4GX86(const QActs& a, const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy) {
  const size_t Kp = XKp(K), G = Kp / 32;
  const ref::Q4GLayout L = ref::MakeQ4GLayout<kF16>(Kp);
  const int8_t* q = static_cast<const int8_t*>(a.data);
  const int32_t* qsum8 =
      reinterpret_cast<const int32_t*>(static_cast<const uint8_t*>(a.data) + QSumOffset(a.M, K));
  const int nb1 = (n1 + 3) / 4;
  for (int b = n0 / 4; b < nb1; b += 2) {
    const uint8_t* b0 = w + static_cast<size_t>(b) * L.block_bytes;
    const uint8_t* b1 = b + 1 < nb1 ? b0 + L.block_bytes : b0;
    const int n = 4 * b, nvalid = std::min(8, n1 - n);
    for (int m = 0; m < a.M; m += Isa::kTile) {
      Q4GTileN<Isa, kF16, Isa::kTile>(std::min(Isa::kTile, a.M - m), q + m * Kp, Kp, qsum8 + m * G,
                                      G, a.scale + m, a.zp + m, b0, b1, L,
                                      y + static_cast<size_t>(m) * ldy + n, ldy, nvalid);
    }
  }
}

// q8c. Q8C_R4K4 chunk c of a row block: 16 bytes = 4 rows x 4 k. Two row
// blocks per step (8 output rows, like q4g); the per-row int32 sums of each
// block are folded into [block 0 rows 0-3 | block 1 rows 0-3] at the end, then
// the ref's epilogue (Q8CTile). `Tile` (a tier's class) has kTile and
//   template <int MT> static void Dots(q, Kp, qtot, b0, b1, __m256i* sums)
// which leaves in sums[t] the 8 exact sums sum_k w q of token t for blocks
// b0, b1 (any bias of its own, e.g. 128 * sum(q) for unsigned weights, removed).

/// MT tokens x row blocks b0, b1 of Q8C_R4K4 (qtot: per-token sum(q)).
/// Epilogue in scalar code, statement for statement ref's: t = (int64)idot -
/// (int64)zp * wsum (wsum is unchecked file data, so int64), then
/// ((float)t * wscale) * a.scale; 8 rows per token against K multiply-adds.
template <class Tile, int MT>
inline void Q8CTile(const int8_t* q, size_t Kp, const int32_t* qtot, const float* ascale,
                    const float* zp, const uint8_t* b0, const uint8_t* b1, float* y, size_t ldy,
                    int nvalid) {
  __m256i sums[MT];
  Tile::template Dots<MT>(q, Kp, qtot, b0, b1, sums);
  const size_t off = Kp * 4;
  alignas(32) float ws[8];
  alignas(32) int32_t wsum[8], idot[8];
  std::memcpy(ws, b0 + off, 16);
  std::memcpy(ws + 4, b1 + off, 16);
  std::memcpy(wsum, b0 + off + 16, 16);
  std::memcpy(wsum + 4, b1 + off + 16, 16);
  const int nv = std::min(nvalid, 8);
  for (int t = 0; t < MT; ++t) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(idot), sums[t]);
    const int64_t z = static_cast<int64_t>(zp[t]);
    float* yt = y + t * ldy;
    for (int i = 0; i < nv; ++i) {
      const int64_t v = idot[i] - z * wsum[i];
      yt[i] = (static_cast<float>(v) * ws[i]) * ascale[t];
    }
  }
}

template <class Tile, int MT>
inline void Q8CTileN(int mt, const int8_t* q, size_t Kp, const int32_t* qtot, const float* ascale,
                     const float* zp, const uint8_t* b0, const uint8_t* b1, float* y, size_t ldy,
                     int nvalid) {
  if (mt == MT) {
    Q8CTile<Tile, MT>(q, Kp, qtot, ascale, zp, b0, b1, y, ldy, nvalid);
  } else if constexpr (MT > 1) {
    Q8CTileN<Tile, MT - 1>(mt, q, Kp, qtot, ascale, zp, b0, b1, y, ldy, nvalid);
  }
}

/// MatmulQ8CKernel::run for "plain + sums" activations.
template <class Tile>
void MatmulQ8CX86(const QActs& a, const uint8_t* w, int K, int n0, int n1, float* y, size_t ldy) {
  const size_t Kp = XKp(K), bb = format::kQ8BlockBytes(Kp);
  const int8_t* q = static_cast<const int8_t*>(a.data);
  const int32_t* qtot =
      reinterpret_cast<const int32_t*>(static_cast<const uint8_t*>(a.data) + QTotOffset(a.M, K));
  const int nb1 = (n1 + 3) / 4;
  for (int b = n0 / 4; b < nb1; b += 2) {
    const uint8_t* b0 = w + static_cast<size_t>(b) * bb;
    const uint8_t* b1 = b + 1 < nb1 ? b0 + bb : b0;
    const int n = 4 * b, nvalid = std::min(8, n1 - n);
    for (int m = 0; m < a.M; m += Tile::kTile) {
      Q8CTileN<Tile, Tile::kTile>(std::min(Tile::kTile, a.M - m), q + m * Kp, Kp, qtot + m,
                                  a.scale + m, a.zp + m, b0, b1,
                                  y + static_cast<size_t>(m) * ldy + n, ldy, nvalid);
    }
  }
}

/// Folds per-lane sums of blocks b0 (s0) and b1 (s1), each [lane0 rows 0-3 |
/// lane1 rows 0-3], into [b0 rows 0-3 | b1 rows 0-3].
inline __m256i FoldLanes(__m256i s0, __m256i s1) {
  return _mm256_add_epi32(_mm256_permute2x128_si256(s0, s1, 0x20),
                          _mm256_permute2x128_si256(s0, s1, 0x31));
}

/// The q8c dot products with VPDPBUSD (Isa::Dot): weights as unsigned w + 128
/// (XOR 0x80), 32 bytes = chunks c, c+1 of one block per register, the
/// activations [q(4c..4c+3) x4 | q(4c+4..4c+7) x4] (VPERMD of 8 bytes);
/// the bias 128 * sum(q) is removed at the end.
template <class Isa>
struct Q8CVnniTile {
  static constexpr int kTile = Isa::kTile;
  template <int MT>
  static void Dots(const int8_t* q, size_t Kp, const int32_t* qtot, const uint8_t* b0,
                   const uint8_t* b1, __m256i* sums) {
    const __m256i x80 = _mm256_set1_epi8(static_cast<char>(0x80));
    const __m256i idx = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m256i s0[MT], s1[MT];
    for (int t = 0; t < MT; ++t) s0[t] = s1[t] = _mm256_setzero_si256();
    for (size_t k = 0; k < Kp; k += 8) {  // chunks c = k/4, k/4 + 1
      if (k % 16 == 0) {
        Prefetch(b0 + 4 * k);
        Prefetch(b1 + 4 * k);
      }
      const __m256i w0 =
          _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 4 * k)), x80);
      const __m256i w1 =
          _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 4 * k)), x80);
      for (int t = 0; t < MT; ++t) {
        const __m256i av = _mm256_permutevar8x32_epi32(
            _mm256_castsi128_si256(
                _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + t * Kp + k))),
            idx);
        s0[t] = Isa::Dot(s0[t], w0, av);
        s1[t] = Isa::Dot(s1[t], w1, av);
      }
    }
    for (int t = 0; t < MT; ++t)
      sums[t] = _mm256_sub_epi32(FoldLanes(s0[t], s1[t]), _mm256_set1_epi32(128 * qtot[t]));
  }
};

}  // namespace
}  // namespace lamina::kern::x86
