// Causal GQA attention of one query over the KV cache, AVX2 + FMA + F16C.
// EXACT (bit-identical to ref::Attention for every head slice, group size,
// f16/f32 cache, head_dim in [1, 1024]).
//
// Structure (as kernels/neon/attention_neon.cpp): [h0, h1) is walked in
// passes of up to 4 consecutive heads of ONE GQA group
// (kern::ForEachGroupPass, kernels/attention_passes.h), and each K / V element
// is loaded (f16: VCVTPH2PS, exact) once per pass instead of once per head.
// Head i of a pass keeps its scores in scratch row i (kAttentionScratchRows =
// 4 rows of n_pos).
//  - QK: per step of 8 elements, kP positions x kH heads, one ymm accumulator
//    per (head, position) = ref::Dot's acc[0..7] (k = 8i + j, i ascending,
//    fused). With head_dim % 8 == 0 four accumulators reduce at once (Reduce4:
//    the ref's ((a0+a4)+(a1+a5)) + ((a2+a6)+(a3+a7)) in each lane), across the
//    heads of a pass or, for 1-head passes, across 4 positions; else Reduce8
//    and the n % 8 tail as scalar fma in order. Then * scale (as ref).
//  - softmax per head: SoftmaxAvx2 (ref-exact).
//  - ·V: out[d] = fma(w[p], v[p][d], out[d]), p ascending, per head and lane
//    exactly as ref. kR ymm of outputs x kH heads per sweep; each V row chunk
//    is loaded + converted once for the kH heads. Positions go in blocks of
//    kPosBlock: the partial sums are stored to out between blocks (a stored
//    float is the same value: no extra rounding), so a block's V rows (64 x
//    head_dim) are read from L1 by every output chunk instead of from L2 /
//    memory at long context.
//  - K and V rows kPrefetchRows ahead are prefetched (QK: every row; ·V: in the
//    first output chunk of each block).
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "AVX2 + FMA + F16C required"
#endif

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/attention_passes.h"
#include "kernels/ref/fp16.h"
#include "kernels/ref/kv_q8.h"
#include "kernels/x86/dot_avx2_inl.h"
#include "kernels/x86/x86_ops.h"

namespace lamina::x86 {
namespace {

constexpr int kMaxPassHeads = 4;
// Cache element kinds (template argument kKv). Q8 values are loaded as the raw
// int8 (exact in f32): the scales are applied to scores and weights.
constexpr int kKvF32 = 0, kKvF16 = 1, kKvQ8 = 2;
static_assert(kMaxPassHeads <= kern::kAttentionScratchRows, "one scratch row per head of a pass");
// Why 64: 64 positions of a 128-float head slice (f32) are 32 KB, L1-sized.
constexpr int kPosBlock = 64;
// Rows ahead to prefetch: K / V rows are strided (kv_stride), one head's slice
// of each is 128-256 bytes, too short for the stream prefetchers. Measured
// (1B, all 32 heads, n_pos 4096, CPU time): f16 1536 -> 1036 us, f32 2060 ->
// 1349 us; no change at n_pos 128. A prefetch past the cache end is harmless
// (PREFETCHT0 never faults).
constexpr int kPrefetchRows = 16;

/// 8 cache values at element offset off as f32 (f16: exact VCVTPH2PS).
template <int kKv>
inline __m256 Load8(const void* base, size_t off) {
  if constexpr (kKv == kKvF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(
        reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + off)));
  } else if constexpr (kKv == kKvQ8) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(base) + off))));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(base) + off);
  }
}

template <int kKv>
inline float Load1(const void* base, size_t off) {
  if constexpr (kKv == kKvF16) {
    return F16ToF32(static_cast<const uint16_t*>(base)[off]);
  } else if constexpr (kKv == kKvQ8) {
    return static_cast<float>(static_cast<const int8_t*>(base)[off]);
  } else {
    return static_cast<const float*>(base)[off];
  }
}

/// s[i][p + j] = Dot(q_i, K row p + j) * scale for heads i < kH, positions
/// j < kP; K row p + j at element offset off + j * stride; q: [kH, n].
/// Prefetches the n cache values at element offset off (one head's slice of
/// a K or V row) into L1.
template <int kKv>
inline void PrefetchSlice(const void* base, size_t off, int n) {
  constexpr int kElt = kKv == kKvQ8 ? 1 : kKv == kKvF16 ? 2 : 4;
  const char* p = static_cast<const char*>(base) + off * kElt;
  const int bytes = n * kElt;
  for (int b = 0; b < bytes; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
}

template <int kKv, int kH, int kP>
inline void ScoresHP(const float* q, const void* k, size_t off, size_t stride, int n, float scale,
                     float* const* s, int p) {
  const int n8 = n / 8 * 8;
#pragma GCC unroll 8
  for (int j = 0; j < kP; ++j) PrefetchSlice<kKv>(k, off + (j + kPrefetchRows) * stride, n);
  __m256 acc[kH][kP];
#pragma GCC unroll 8
  for (int i = 0; i < kH; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < kP; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int d = 0; d < n8; d += 8) {
    __m256 kv[kP];
#pragma GCC unroll 8
    for (int j = 0; j < kP; ++j) kv[j] = Load8<kKv>(k, off + j * stride + d);
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) {
      const __m256 qv = _mm256_loadu_ps(q + static_cast<size_t>(i) * n + d);
#pragma GCC unroll 8
      for (int j = 0; j < kP; ++j) acc[i][j] = _mm256_fmadd_ps(qv, kv[j], acc[i][j]);
    }
  }
  if (n8 == n) {
    const __m128 sc = _mm_set1_ps(scale);
    if constexpr (kH == 1 && kP % 4 == 0) {
#pragma GCC unroll 2
      for (int j = 0; j < kP; j += 4)
        _mm_storeu_ps(
            s[0] + p + j,
            _mm_mul_ps(Reduce4(acc[0][j], acc[0][j + 1], acc[0][j + 2], acc[0][j + 3]), sc));
      return;
    } else if constexpr (kH > 1) {
      constexpr int i1 = 1, i2 = kH > 2 ? 2 : kH - 1, i3 = kH > 3 ? 3 : kH - 1;
#pragma GCC unroll 8
      for (int j = 0; j < kP; ++j) {
        alignas(16) float r[4];
        _mm_store_ps(r, _mm_mul_ps(Reduce4(acc[0][j], acc[i1][j], acc[i2][j], acc[i3][j]), sc));
#pragma GCC unroll 4
        for (int i = 0; i < kH; ++i) s[i][p + j] = r[i];
      }
      return;
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < kH; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < kP; ++j) {
      float r = Reduce8(acc[i][j]);
      for (int d = n8; d < n; ++d)
        r = std::fma(q[static_cast<size_t>(i) * n + d], Load1<kKv>(k, off + j * stride + d), r);
      s[i][p + j] = r * scale;
    }
}

/// QK of kH heads (q [kH, n]) over all positions into score rows s[0..kH).
template <int kKv, int kH>
void GroupScores(const float* q, const void* k_cache, size_t kv_stride, int n_pos, int n,
                 size_t base, float scale, float* const* s) {
  // kH * kP accumulators (<= 8) + kP K vectors + q fit the 16 ymm.
  constexpr int kP = kH == 1 ? 8 : kH == 2 ? 4 : 2;
  int p = 0;
  for (; p + kP <= n_pos; p += kP)
    ScoresHP<kKv, kH, kP>(q, k_cache, p * kv_stride + base, kv_stride, n, scale, s, p);
  for (; p < n_pos; ++p)
    ScoresHP<kKv, kH, 1>(q, k_cache, p * kv_stride + base, kv_stride, n, scale, s, p);
}

/// o[i * o_stride + 8r] (r < kR, i < kH) = fma chain over positions [p0, p1)
/// ascending of s[i][p] * V row p (at off + p * stride + 8r), continuing from
/// the partial sums already in o when p0 > 0. prefetch_n > 0: also prefetches
/// that many values of the row kPrefetchRows ahead.
template <int kKv, int kH, int kR>
inline void WeightedSumHR(float* const* s, const void* v, size_t off, size_t stride, int p0, int p1,
                          float* o, int o_stride, int prefetch_n) {
  __m256 acc[kH][kR];
#pragma GCC unroll 4
  for (int i = 0; i < kH; ++i)
#pragma GCC unroll 8
    for (int r = 0; r < kR; ++r)
      acc[i][r] = p0 == 0 ? _mm256_setzero_ps()
                          : _mm256_loadu_ps(o + static_cast<size_t>(i) * o_stride + 8 * r);
  off += static_cast<size_t>(p0) * stride;
  for (int p = p0; p < p1; ++p, off += stride) {
    if (prefetch_n > 0) PrefetchSlice<kKv>(v, off + kPrefetchRows * stride, prefetch_n);
    __m256 vv[kR];
#pragma GCC unroll 8
    for (int r = 0; r < kR; ++r) vv[r] = Load8<kKv>(v, off + 8 * r);
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) {
      const __m256 w = _mm256_broadcast_ss(s[i] + p);
#pragma GCC unroll 8
      for (int r = 0; r < kR; ++r) acc[i][r] = _mm256_fmadd_ps(w, vv[r], acc[i][r]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < kH; ++i)
#pragma GCC unroll 8
    for (int r = 0; r < kR; ++r)
      _mm256_storeu_ps(o + static_cast<size_t>(i) * o_stride + 8 * r, acc[i][r]);
}

/// kH consecutive heads of one group: q [kH, head_dim], out [kH, head_dim],
/// score rows s[0..kH) of n_pos floats each.
template <int kKv, int kH>
void WeightedSum(float* const* s, const void* v_cache, size_t kv_stride, int n_pos, int head_dim,
                 size_t base, float* o);

template <int kKv, int kH>
void GroupPass(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
               int n_pos, int head_dim, size_t base, float scale, float* const* s, float* o) {
  GroupScores<kKv, kH>(q, k_cache, kv_stride, n_pos, head_dim, base, scale, s);
  for (int i = 0; i < kH; ++i) SoftmaxAvx2(s[i], n_pos);
  WeightedSum<kKv, kH>(s, v_cache, kv_stride, n_pos, head_dim, base, o);
}

/// o[i * head_dim + d] = fma chain over positions ascending of s[i][p] *
/// V row p value d (the ·V half of a pass), i < kH.
template <int kKv, int kH>
void WeightedSum(float* const* s, const void* v_cache, size_t kv_stride, int n_pos, int head_dim,
                 size_t base, float* o) {
  // kH * kR accumulators (<= 8) + kR V vectors + a broadcast weight.
  constexpr int kR = kH == 1 ? 8 : kH == 2 ? 4 : 2;
  const int d8 = head_dim / 8 * 8;
  for (int p0 = 0; p0 < n_pos; p0 += kPosBlock) {
    const int p1 = std::min(n_pos, p0 + kPosBlock);
    int d = 0;
    for (; d + 8 * kR <= head_dim; d += 8 * kR)
      WeightedSumHR<kKv, kH, kR>(s, v_cache, base + d, kv_stride, p0, p1, o + d, head_dim,
                                 d == 0 ? head_dim : 0);
    for (; d < d8; d += 8)
      WeightedSumHR<kKv, kH, 1>(s, v_cache, base + d, kv_stride, p0, p1, o + d, head_dim,
                                d == 0 ? head_dim : 0);
  }
  for (int d = d8; d < head_dim; ++d)
    for (int i = 0; i < kH; ++i) {
      float acc = 0.f;
      for (int p = 0; p < n_pos; ++p)
        acc = std::fma(s[i][p], Load1<kKv>(v_cache, p * kv_stride + base + d), acc);
      o[static_cast<size_t>(i) * head_dim + d] = acc;
    }
}

// ---- int8 cache (KvType::kQ8): integer QK --------------------------------

/// s[i][p] = (float)(int dot of qq_i and K row p) * (kd_p * c[i]) for heads
/// i < kH and all positions (ref::Attention's Q8 scores; the int32 dot is
/// exact, so its order is free). qw: the kH int8 queries widened to int16,
/// [kH, n]; each K row chunk is widened (VPMOVSXBW) once for the kH heads,
/// then VPMADDWD + VPADDD per head.
template <int kH>
void Q8Scores(const int16_t* qw, const uint8_t* k, size_t stride, int n_pos, int n, int n_kv_heads,
              int kvh, const float* c, float* const* s) {
  const size_t base = static_cast<size_t>(kvh) * n;
  const int n16 = n / 16 * 16;
  for (int p = 0; p < n_pos; ++p) {
    const uint8_t* row = k + static_cast<size_t>(p) * stride;
    const int8_t* kp = reinterpret_cast<const int8_t*>(row) + base;
    PrefetchSlice<kKvQ8>(k, (p + kPrefetchRows) * stride + base, n);
    __m256i acc[kH];
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) acc[i] = _mm256_setzero_si256();
    for (int d = 0; d < n16; d += 16) {
      const __m256i kv =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kp + d)));
#pragma GCC unroll 4
      for (int i = 0; i < kH; ++i)
        acc[i] = _mm256_add_epi32(
            acc[i], _mm256_madd_epi16(
                        kv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qw + i * n + d))));
    }
    const float kd = ref::KvQ8Scale(row, n_kv_heads, n, kvh);
#pragma GCC unroll 4
    for (int i = 0; i < kH; ++i) {
      __m128i x =
          _mm_add_epi32(_mm256_castsi256_si128(acc[i]), _mm256_extracti128_si256(acc[i], 1));
      x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
      x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
      int32_t sum = _mm_cvtsi128_si32(x);
      for (int d = n16; d < n; ++d) sum += static_cast<int32_t>(qw[i * n + d]) * kp[d];
      s[i][p] = static_cast<float>(sum) * (kd * c[i]);
    }
  }
}

/// kH consecutive heads of one group over a Q8 cache (ref::Attention, kQ8):
/// q [kH, head_dim] quantized per head (ref::QuantizeSym8), integer scores,
/// softmax, weights * the V row scales, then the f32 ·V sweep of the f16/f32
/// path on the raw int8 values.
template <int kH>
void Q8Pass(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride, int n_pos,
            int n_kv_heads, int head_dim, int kvh, float scale, float* const* s, float* o) {
  int16_t qw[kH * 1024];  // head_dim <= 1024
  int8_t qq[kH * 1024];
  float c[4] = {0.f, 0.f, 0.f, 0.f};
  ref::QuantizeQueryQ8(q, kH, head_dim, scale, qw, qq, c);
  Q8Scores<kH>(qw, static_cast<const uint8_t*>(k_cache), kv_stride, n_pos, head_dim, n_kv_heads,
               kvh, c, s);
  for (int i = 0; i < kH; ++i) SoftmaxAvx2(s[i], n_pos);
  ref::ScaleByKvQ8Scales(s, kH, v_cache, kv_stride, n_pos, n_kv_heads, head_dim, kvh);
  WeightedSum<kKvQ8, kH>(s, v_cache, kv_stride, n_pos, head_dim,
                         static_cast<size_t>(kvh) * head_dim, o);
}

template <int kKv>
void AttentionT(const float* q, const void* k_cache, const void* v_cache, size_t kv_stride,
                int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0, int h1,
                float* scratch, float* out) {
  const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
  float* s[kMaxPassHeads];
  for (int i = 0; i < kMaxPassHeads; ++i) s[i] = scratch + static_cast<size_t>(i) * n_pos;
  kern::ForEachGroupPass<kMaxPassHeads>(n_heads, n_kv_heads, h0, h1, [&](auto nh, int h, int kvh) {
    if constexpr (kKv == kKvQ8) {
      Q8Pass<decltype(nh)::value>(q + static_cast<size_t>(h) * head_dim, k_cache, v_cache,
                                  kv_stride, n_pos, n_kv_heads, head_dim, kvh, scale, s,
                                  out + static_cast<size_t>(h) * head_dim);
    } else {
      GroupPass<kKv, decltype(nh)::value>(
          q + static_cast<size_t>(h) * head_dim, k_cache, v_cache, kv_stride, n_pos, head_dim,
          static_cast<size_t>(kvh) * head_dim, scale, s, out + static_cast<size_t>(h) * head_dim);
    }
  });
}

}  // namespace

void AttentionAvx2(const float* q, const void* k_cache, const void* v_cache, kern::KvType kv_type,
                   size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0,
                   int h1, float* scratch, float* out) {
  if (kv_type == kern::KvType::kQ8) {
    AttentionT<kKvQ8>(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                      scratch, out);
  } else if (kv_type == kern::KvType::kF16) {
    AttentionT<kKvF16>(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                       scratch, out);
  } else {
    AttentionT<kKvF32>(q, k_cache, v_cache, kv_stride, n_pos, n_heads, n_kv_heads, head_dim, h0, h1,
                       scratch, out);
  }
}

}  // namespace lamina::x86
