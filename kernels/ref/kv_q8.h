// The int8 KV cache (kern::KvType::kQ8): row layout and the symmetric int8
// quantizer shared by the engine (cache writes) and every attention tier
// (per-head query quantization). Scalar, header-only: every tier calls this
// same code, so the quantized values are identical everywhere.
//
// Row layout of a Q8 K or V cache (kv_stride in BYTES, >= KvQ8RowBytes):
//   position p, kv head h: head_dim int8 at byte p*kv_stride + h*head_dim;
//   its f16 scale (IEEE binary16 bits, possibly unaligned: read with memcpy)
//   at byte p*kv_stride + n_kv_heads*head_dim + 2*h.
// Why f16 scales at the row end: an f32 scale per (position, head) makes the
// 1B cache (head_dim 64) 68/128 = 0.531x of f16; an f16 one 66/128 = 0.516x.
// The data of a head stays contiguous (as f16/f32), scales are read once per
// position.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/ref/fp16.h"

namespace lamina::ref {

/// Bytes of one Q8 cache row of n_kv_heads heads of head_dim.
inline size_t KvQ8RowBytes(int n_kv_heads, int head_dim) {
  return static_cast<size_t>(n_kv_heads) * (static_cast<size_t>(head_dim) + 2);
}

/// Symmetric int8 quantization of x[0, n), n >= 1:
///   amax = max_i |x[i]| (from 0); d = amax / 127 (f32);
///   f16_scale: d = F16ToF32(F32ToF16(min(d, 65504))) (the stored scale);
///   d == 0 (zero row, or d below the f16 range): q[i] = 0;
///   else q[i] = clamp(round_half_even(x[i] * (1 / d)), -127, 127).
/// Any x[i] NaN or +-Inf: d = NaN, q[i] = 0 (attention then outputs NaN, as it
/// does for such a row in an f16 cache; no non-finite float is cast to int).
/// Returns d; x ≈ q * d.
inline float QuantizeSym8(const float* x, int n, bool f16_scale, int8_t* q) {
  const size_t nz = n > 0 ? static_cast<size_t>(n) : 0;
  float amax = 0.f;
  bool finite = true;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    finite &= std::isfinite(x[i]);
    amax = a > amax ? a : amax;
  }
  if (!finite) {
    std::memset(q, 0, nz);
    return std::nanf("");
  }
  float d = amax / 127.f;
  if (f16_scale) d = F16ToF32(F32ToF16(d < 65504.f ? d : 65504.f));
  if (d == 0.f) {
    std::memset(q, 0, nz);
    return 0.f;
  }
  const float id = 1.f / d;
  for (int i = 0; i < n; ++i) {
    float v = std::nearbyint(x[i] * id);  // default rounding: half to even
    v = v < -127.f ? -127.f : (v > 127.f ? 127.f : v);
    q[i] = static_cast<int8_t>(v);
  }
  return d;
}

/// The queries of nh heads (q [nh, head_dim]) as the SIMD Q8 attention
/// kernels take them: per head QuantizeSym8 (f32 scale) widened to int16 in
/// qw [nh, head_dim] (and as int8 in qq [nh, head_dim]), and c[i] = d_i *
/// scale (ref::Attention's c).
inline void QuantizeQueryQ8(const float* q, int nh, int head_dim, float scale, int16_t* qw,
                            int8_t* qq, float* c) {
  for (int i = 0; i < nh; ++i) {
    int8_t* qi = qq + static_cast<size_t>(i) * head_dim;
    c[i] = QuantizeSym8(q + static_cast<size_t>(i) * head_dim, head_dim, false, qi) * scale;
    for (int d = 0; d < head_dim; ++d) qw[i * head_dim + d] = qi[d];
  }
}

/// Writes one Q8 cache row (layout above) from x [n_kv_heads * head_dim].
inline void StoreKvQ8Row(const float* x, int n_kv_heads, int head_dim, uint8_t* row) {
  int8_t* data = reinterpret_cast<int8_t*>(row);
  uint8_t* scales = row + static_cast<size_t>(n_kv_heads) * head_dim;
  for (int h = 0; h < n_kv_heads; ++h) {
    const size_t o = static_cast<size_t>(h) * head_dim;
    const uint16_t s = F32ToF16(QuantizeSym8(x + o, head_dim, true, data + o));
    std::memcpy(scales + 2 * h, &s, 2);
  }
}

/// n_rows Q8 rows (out_stride bytes apart) from f32 rows x_stride floats apart.
inline void StoreKvQ8Rows(const float* x, size_t x_stride, int n_rows, int n_kv_heads, int head_dim,
                          uint8_t* out, size_t out_stride) {
  for (int r = 0; r < n_rows; ++r)
    StoreKvQ8Row(x + static_cast<size_t>(r) * x_stride, n_kv_heads, head_dim,
                 out + static_cast<size_t>(r) * out_stride);
}

/// The f16 scale of kv head h in the Q8 row at `row`, as f32 (exact).
inline float KvQ8Scale(const void* row, int n_kv_heads, int head_dim, int h) {
  uint16_t s;
  std::memcpy(&s,
              static_cast<const uint8_t*>(row) + static_cast<size_t>(n_kv_heads) * head_dim +
                  2 * static_cast<size_t>(h),
              2);
  return F16ToF32(s);
}

/// s[i][p] *= the V scale of row p (kv head kvh), i < nh, p < n_pos: the ·V
/// weights w = s[p] * vd_p of ref::Attention's Q8 path.
inline void ScaleByKvQ8Scales(float* const* s, int nh, const void* v_cache, size_t kv_stride,
                              int n_pos, int n_kv_heads, int head_dim, int kvh) {
  const uint8_t* vb = static_cast<const uint8_t*>(v_cache);
  for (int p = 0; p < n_pos; ++p) {
    const float vd = KvQ8Scale(vb + static_cast<size_t>(p) * kv_stride, n_kv_heads, head_dim, kvh);
    for (int i = 0; i < nh; ++i) s[i][p] *= vd;
  }
}

}  // namespace lamina::ref
