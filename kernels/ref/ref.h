// Reference kernels: scalar C++ that DEFINES lamina's numerical results.
// Built with -ffp-contract=off (no implicit FMA): every fused multiply-add
// below is an explicit std::fma and part of the specification.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace lamina::ref {

/// Ref layout of QActs::data: row-major int8 [M][Kp], Kp = round_up(K, 32);
/// the padding columns hold 0.
size_t QuantizeActsDataBytes(int M, int K);
/// Per-token asymmetric int8 quantization, exactly torchao's
/// choose_qparams_per_token_asymmetric + quantize_per_token, in f32:
///   mn = min(0, min_k x), mx = max(0, max_k x)
///   scale = max((mx - mn) / 255, FLT_EPSILON)          (clamp(min=eps))
///   dmin = mn / scale, dmax = mx / scale
///   zp = ((-128 + dmin) + (127 + dmax) > 0) ? -128 - dmin : 127 - dmax
///   zp = round_half_even(clamp(zp, -128, 127))
///   q  = clamp(round_half_even(x * (1 / scale) + zp), -128, 127)
/// (x * (1/scale) then + zp, two roundings, as quantize_per_token's
/// input.mul(1.0 / scales).add(zero_points).round().)
/// Non-finite rows: when any x[k] is NaN, +Inf or -Inf the row is not
/// quantized: scale = kern::kNonFiniteActScale (NaN), zp = 0, q[k] = 0 for
/// every k (so the matmuls output NaN for that token and nothing casts a
/// non-finite float to an integer). A finite row whose range overflows
/// (mx - mn = +Inf) is quantized by the formula above (scale +Inf, q = zp).
void QuantizeActs(const float* x, size_t ldx, int m0, int m1, kern::QActs* qa);

/// The exact per-token parameters (also used by tests and other tiers),
/// non-finite rows included (scale NaN, zp 0).
void ChooseQParams(const float* x, int K, float* scale, float* zp);
/// ChooseQParams after its loop: the parameters from the row's min mn <= 0
/// and max mx >= 0 (both include 0) and whether every value was finite. Every
/// tier's quantizer finishes with it (its min/max loop is the SIMD part).
void QParamsFromMinMax(float mn, float mx, bool finite, float* scale, float* zp);

/// q4g x int8, Q4G_R4K8 weights. For each (m, n):
///   acc = 0.f
///   for g in 0..G-1:  idot = sum_{k in group g} w[n][k] * q[m][k]     (int32)
///                     acc  = fma((float)idot, scale[n][g], acc)
///   acc = fma(-zp[m], corr[n], acc)            (corr from the packed block)
///   y[m][n] = acc * a.scale[m]
void MatmulQ4G(const kern::QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
               size_t ldy);

/// q4g x int8, Q4G_R4K8_F16S weights: exactly MatmulQ4G with
/// scale[n][g] = (float) the stored f16 scale (widening is exact), so the same
/// values and f16-representable scales give the same bits in either layout.
void MatmulQ4GF16S(const kern::QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy);

/// q8c x int8, Q8C_R4K4 weights. For each (m, n):
///   idot = sum_k w[n][k] * q[m][k]                       (int32)
///   t    = (int64)idot - (int64)zp[m] * wsum[n]          (int64)
///   y[m][n] = (((float)t) * wscale[n]) * a.scale[m]      ((float)t: one rounding)
/// idot cannot overflow: |w q| <= 128 * 128 and K <= 65536 (the loader's q8c
/// cap; proof beside kMaxQ8CK in loader/model_file.cpp). t is int64 because
/// wsum is read from the file unchecked (any int32 is defined; checking it at
/// load would touch every row block's page: docs/PERFORMANCE.md). zp is
/// integer-valued in [-128, 127] for every row, non-finite ones included.
void MatmulQ8C(const kern::QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
               size_t ldy);

/// Float matmul, row-major W in f32/f16/bf16 (converted to f32 exactly). For
/// each (m, n): eight partial sums over k = 8i + j (acc[j] = fma(w, x, acc[j]),
/// i ascending), then s = ((a0+a4) + (a1+a5)) + ((a2+a6) + (a3+a7)), then the
/// K % 8 tail elements in order: s = fma(w, x, s).
void MatmulFloat(const float* x, size_t ldx, int M, const void* w, int wtype, int N, int K, int n0,
                 int n1, float* y, size_t ldy);

}  // namespace lamina::ref

namespace lamina::ref {

/// Dot product in the MatmulFloat order (8 fma partial sums, fixed tree, fma tail).
float Dot(const float* a, const float* b, int n);
/// ss = Dot(x, x, n); inv = 1 / sqrt(ss / n + eps); out[i] = (x[i] * inv) * w[i].
void RmsNorm(float* out, const float* x, const float* w, int n, float eps);
/// (a, b) -> (a*c - b*s, a*s + b*c), each product rounded (no fma).
void Rope(float* x, int n_heads, int head_dim, const float* cos, const float* sin);
/// g = (g / (1 + ExpfRef(-g))) * u, ExpfRef = lamina's exactly specified expf
/// (kernels/ref/expf_ref.h), so SIMD tiers can reproduce it bit for bit.
/// n >= 0; gate and up may not alias partially.
void SiluMul(float* gate, const float* up, int n);
/// n >= 1. m = max (compare-select from x[0]); x[i] = ExpfRef(x[i] - m);
/// sum = 8 partial sums s[i % 8] (from +0, each in ascending i, tail included)
/// combined as ((s0+s4)+(s1+s5))+((s2+s6)+(s3+s7)); x[i] *= 1 / sum.
/// Why: lamina's own expf and a fixed 8-way order are what two NEON q
/// registers reproduce bit-exactly (libm exp + one sequential sum forced every
/// tier to scalar code). NaN or +inf inputs: all outputs NaN.
void Softmax(float* x, int n);
/// Natural-order fast Walsh–Hadamard butterflies, then x *= 1 / sqrtf(n).
void Hadamard(float* x, int n);
/// Per head: s[p] = Dot(q_h, k_p) * (1 / sqrtf(head_dim)); Softmax(s);
/// out = 0; for p ascending: out[d] = fma(s[p], v_p[d], out[d]).
/// KvType::kQ8 (layout: kernels/ref/kv_q8.h; kv_stride in bytes): per head,
///   qd = QuantizeSym8(q_h, head_dim, f32 scale, qq) (int8 query);
///   c = qd * (1 / sqrtf(head_dim));
///   s[p] = (float)(sum_d (int32)qq[d] * kq_p[d]) * (kd_p * c)   (exact int dot);
///   Softmax(s); out = 0; for p ascending:
///   w = s[p] * vd_p; out[d] = fma(w, (float)vq_p[d], out[d]).
/// kd_p / vd_p: the f16 scales of K / V row p for this kv head. The integer
/// dot is exact (|sum| <= 127^2 * 1024 < 2^24), so any summation order gives
/// it: the SIMD tiers reproduce s[p] and out bit for bit.
void Attention(const float* q, const void* k_cache, const void* v_cache, kern::KvType kv_type,
               size_t kv_stride, int n_pos, int n_heads, int n_kv_heads, int head_dim, int h0,
               int h1, float* scratch, float* out);
/// AttentionKernel::run_batch: for m in [0, M), Attention of token m
/// (q + m * ldq) over positions [0, n_pos + m) into out + m * ldo.
void AttentionBatch(const float* q, size_t ldq, int M, const void* k_cache, const void* v_cache,
                    kern::KvType kv_type, size_t kv_stride, int n_pos, int n_heads, int n_kv_heads,
                    int head_dim, int h0, int h1, float* scratch, float* out, size_t ldo);

}  // namespace lamina::ref
