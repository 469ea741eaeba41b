// Packing of quantized matrices into the kernels' layouts (format.h), and the
// round-to-nearest weight quantizers used by lamina-convert.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lamina::pack {

/// Bytes of a Q4G_R4K8 / Q8C_R4K4 packed [N, K] matrix.
size_t Q4GBytes(int N, int K);
size_t Q8CBytes(int N, int K);

/// vals: [N][K] int4 values in [-8, 7], one per int8; scales: [N][ceil(K/32)]
/// f32 group scales. Writes Q4GBytes(N, K) bytes to out (padding zeroed,
/// per-row zero-point correction computed as format.h specifies).
void PackQ4G(const int8_t* vals, const float* scales, int N, int K, uint8_t* out);
/// Bytes of a Q4G_R4K8_F16S packed [N, K] matrix.
size_t Q4GF16SBytes(int N, int K);
/// As PackQ4G into the Q4G_R4K8_F16S layout. Every scale must be exactly
/// representable in f16 (F16ToF32(F32ToF16(s)) == s); returns false (and
/// writes nothing meaningful) when one is not, so a caller can keep f32.
bool PackQ4GF16S(const int8_t* vals, const float* scales, int N, int K, uint8_t* out);
/// Whether every scale of [n] is exactly an f16 value.
bool ScalesFitF16(const float* scales, size_t n);

/// vals: [N][K] int8; scales: [N] f32. Writes Q8CBytes(N, K) bytes.
void PackQ8C(const int8_t* vals, const float* scales, int N, int K, uint8_t* out);

/// Inverse of the packers, for tests and tools: value and scale of (n, k).
int Q4GValue(const uint8_t* packed, int N, int K, int n, int k);
float Q4GScale(const uint8_t* packed, int N, int K, int n, int group);
/// Q4G_R4K8_F16S counterparts (the scale widened to f32).
int Q4GF16SValue(const uint8_t* packed, int N, int K, int n, int k);
float Q4GF16SScale(const uint8_t* packed, int N, int K, int n, int group);
/// Either q4g layout: Q4G_R4K8_F16S when f16_scales, else Q4G_R4K8.
int Q4GValueAny(const uint8_t* packed, bool f16_scales, int N, int K, int n, int k);
float Q4GScaleAny(const uint8_t* packed, bool f16_scales, int N, int K, int n, int group);
int Q8CValue(const uint8_t* packed, int N, int K, int n, int k);
float Q8CScale(const uint8_t* packed, int N, int K, int n);
/// Dequantized row n of a Q8C matrix (embedding lookup): out[k] = w[n][k] * scale[n].
void Q8CDequantRow(const uint8_t* packed, int N, int K, int n, float* out);
/// Dequantized row n of a q4g matrix (embedding lookup), Q4G_R4K8 (f16_scales
/// false) or Q4G_R4K8_F16S (true): out[k] = (float)w[n][k] * scale[n][k / 32]
/// for k < K.
void Q4GDequantRow(const uint8_t* packed, bool f16_scales, int N, int K, int n, float* out);

/// Symmetric int4 round-to-nearest for one group (torchao
/// get_group_qparams_symmetric): scale = max(amax / 7.5, FLT_EPSILON),
/// q = clamp(round_half_even(w / scale), -8, 7). Returns the scale.
/// Non-finite input (any NaN or +-Inf in w): every q = 0 and the scale is NaN,
/// nothing is cast (lamina-convert refuses such tensors before quantizing).
float QuantizeGroupQ4(const float* w, int n, int8_t* q);
/// QuantizeGroupQ4 with an f16 scale (for Q4G_R4K8_F16S): the scale above is
/// first rounded to the nearest f16 (ties to even; above the largest finite
/// f16, 65504, it is 65504), then the values are quantized with that rounded
/// scale: q = clamp(round_half_even(w / scale16), -8, 7). Returns scale16,
/// which is exactly an f16 value, so packing it loses nothing.
float QuantizeGroupQ4F16(const float* w, int n, int8_t* q);
/// Symmetric int8 per-row: scale = max(amax / 127, FLT_EPSILON),
/// q = clamp(round_half_even(w / scale), -127, 127). Returns the scale.
/// Non-finite input: q = 0, scale NaN (as QuantizeGroupQ4).
float QuantizeRowQ8(const float* w, int n, int8_t* q);

}  // namespace lamina::pack
