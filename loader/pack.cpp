#include "loader/pack.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/ref/fp16.h"
#include "loader/format.h"

namespace lamina::pack {
namespace {
using format::RoundUp;
inline size_t Kp32(int K) { return RoundUp(static_cast<uint64_t>(K), 32); }
inline void StoreF32(uint8_t* p, float f) { std::memcpy(p, &f, 4); }
inline float LoadF32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
}  // namespace

size_t Q4GBytes(int N, int K) {
  return RoundUp(static_cast<uint64_t>(N), 4) / 4 * format::kQ4BlockBytes(Kp32(K));
}
size_t Q8CBytes(int N, int K) {
  return RoundUp(static_cast<uint64_t>(N), 4) / 4 * format::kQ8BlockBytes(Kp32(K));
}

namespace {

// Packs both q4g layouts: group g's 64 nibble bytes at group_stride * g, its 4
// scales through store_scale(block, g, r, s), the corrections at corr_off.
template <typename StoreScale>
void PackQ4GImpl(const int8_t* vals, const float* scales, int N, int K, size_t block_bytes,
                 size_t group_stride, size_t corr_off, StoreScale store_scale, uint8_t* out) {
  const size_t Kp = Kp32(K), G = Kp / 32, ng_src = (static_cast<size_t>(K) + 31) / 32;
  const size_t n_blocks = RoundUp(static_cast<uint64_t>(N), 4) / 4;
  std::memset(out, 0, n_blocks * block_bytes);
  auto val = [&](size_t n, size_t k) -> int {
    return (n < static_cast<size_t>(N) && k < static_cast<size_t>(K))
               ? vals[n * static_cast<size_t>(K) + k]
               : 0;
  };
  for (size_t b = 0; b < n_blocks; ++b) {
    uint8_t* blk = out + b * block_bytes;
    float corr[4] = {0, 0, 0, 0};
    for (size_t g = 0; g < G; ++g) {
      uint8_t* gp = blk + g * group_stride;
      for (int c = 0; c < 4; ++c)
        for (int r = 0; r < 4; ++r)
          for (int i = 0; i < 4; ++i) {
            const size_t k = g * 32 + 8 * c + i;
            const int lo = val(4 * b + r, k), hi = val(4 * b + r, k + 4);
            gp[16 * c + 4 * r + i] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
          }
      for (int r = 0; r < 4; ++r) {
        const size_t n = 4 * b + r;
        const float s = n < static_cast<size_t>(N) ? scales[n * ng_src + g] : 0.f;
        store_scale(blk, g, r, s);
        int wsum = 0;
        for (int k = 0; k < 32; ++k) wsum += val(n, g * 32 + k);
        corr[r] = std::fma(s, static_cast<float>(wsum), corr[r]);
      }
    }
    for (int r = 0; r < 4; ++r) StoreF32(blk + corr_off + 4 * r, corr[r]);
  }
}

}  // namespace

void PackQ4G(const int8_t* vals, const float* scales, int N, int K, uint8_t* out) {
  const size_t Kp = Kp32(K);
  PackQ4GImpl(
      vals, scales, N, K, format::kQ4BlockBytes(Kp), 80, Kp / 32 * 80,
      [](uint8_t* blk, size_t g, int r, float s) { StoreF32(blk + g * 80 + 64 + 4 * r, s); }, out);
}

size_t Q4GF16SBytes(int N, int K) {
  return RoundUp(static_cast<uint64_t>(N), 4) / 4 * format::kQ4F16SBlockBytes(Kp32(K));
}

bool ScalesFitF16(const float* scales, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (F32Bits(F16ToF32(F32ToF16(scales[i]))) != F32Bits(scales[i])) return false;
  return true;
}

bool PackQ4GF16S(const int8_t* vals, const float* scales, int N, int K, uint8_t* out) {
  if (!ScalesFitF16(scales, static_cast<size_t>(N) * ((static_cast<size_t>(K) + 31) / 32)))
    return false;
  const size_t Kp = Kp32(K), so = format::kQ4F16SScaleOffset(Kp);
  PackQ4GImpl(
      vals, scales, N, K, format::kQ4F16SBlockBytes(Kp), 64, format::kQ4F16SCorrOffset(Kp),
      [so](uint8_t* blk, size_t g, int r, float s) {
        const uint16_t h = F32ToF16(s);
        std::memcpy(blk + so + 8 * g + 2 * r, &h, 2);
      },
      out);
  return true;
}

void PackQ8C(const int8_t* vals, const float* scales, int N, int K, uint8_t* out) {
  const size_t Kp = Kp32(K), bb = format::kQ8BlockBytes(Kp);
  std::memset(out, 0, Q8CBytes(N, K));
  for (size_t b = 0; b < RoundUp(static_cast<uint64_t>(N), 4) / 4; ++b) {
    uint8_t* blk = out + b * bb;
    for (int r = 0; r < 4; ++r) {
      const size_t n = 4 * b + r;
      if (n >= static_cast<size_t>(N)) continue;
      int32_t wsum = 0;
      for (size_t k = 0; k < static_cast<size_t>(K); ++k) {
        const int8_t v = vals[n * K + k];
        blk[16 * (k / 4) + 4 * r + (k % 4)] = static_cast<uint8_t>(v);
        wsum += v;
      }
      StoreF32(blk + Kp * 4 + 4 * r, scales[n]);
      std::memcpy(blk + Kp * 4 + 16 + 4 * r, &wsum, 4);
    }
  }
}

namespace {
// Value (n, k) from the 64 nibble bytes of its group (both q4g layouts).
int GroupNibble(const uint8_t* gp, int n, int k) {
  const int kk = k % 32, c = kk / 8, i = kk % 8;
  const uint8_t b = gp[16 * c + 4 * (n % 4) + (i % 4)];
  const int v = i < 4 ? (b & 0xF) : (b >> 4);
  return v >= 8 ? v - 16 : v;
}
}  // namespace

int Q4GValue(const uint8_t* packed, int N, int K, int n, int k) {
  (void)N;
  const size_t Kp = Kp32(K);
  return GroupNibble(packed + static_cast<size_t>(n / 4) * format::kQ4BlockBytes(Kp) +
                         static_cast<size_t>(k / 32) * 80,
                     n, k);
}

float Q4GScale(const uint8_t* packed, int N, int K, int n, int group) {
  (void)N;
  const size_t Kp = Kp32(K);
  return LoadF32(packed + static_cast<size_t>(n / 4) * format::kQ4BlockBytes(Kp) +
                 static_cast<size_t>(group) * 80 + 64 + 4 * (n % 4));
}

int Q4GF16SValue(const uint8_t* packed, int N, int K, int n, int k) {
  (void)N;
  const size_t Kp = Kp32(K);
  return GroupNibble(packed + static_cast<size_t>(n / 4) * format::kQ4F16SBlockBytes(Kp) +
                         static_cast<size_t>(k / 32) * 64,
                     n, k);
}

float Q4GF16SScale(const uint8_t* packed, int N, int K, int n, int group) {
  (void)N;
  const size_t Kp = Kp32(K);
  uint16_t h;
  std::memcpy(&h,
              packed + static_cast<size_t>(n / 4) * format::kQ4F16SBlockBytes(Kp) +
                  format::kQ4F16SScaleOffset(Kp) + static_cast<size_t>(group) * 8 + 2 * (n % 4),
              2);
  return F16ToF32(h);
}

int Q8CValue(const uint8_t* packed, int N, int K, int n, int k) {
  (void)N;
  const size_t Kp = Kp32(K);
  const uint8_t* blk = packed + static_cast<size_t>(n / 4) * format::kQ8BlockBytes(Kp);
  return static_cast<int8_t>(blk[16 * (k / 4) + 4 * (n % 4) + (k % 4)]);
}

float Q8CScale(const uint8_t* packed, int N, int K, int n) {
  (void)N;
  const size_t Kp = Kp32(K);
  return LoadF32(packed + static_cast<size_t>(n / 4) * format::kQ8BlockBytes(Kp) + Kp * 4 +
                 4 * (n % 4));
}

void Q8CDequantRow(const uint8_t* packed, int N, int K, int n, float* out) {
  const float s = Q8CScale(packed, N, K, n);
  const size_t Kp = Kp32(K);
  const uint8_t* blk = packed + static_cast<size_t>(n / 4) * format::kQ8BlockBytes(Kp);
  for (int k = 0; k < K; ++k)
    out[k] = static_cast<float>(static_cast<int8_t>(blk[16 * (k / 4) + 4 * (n % 4) + (k % 4)])) * s;
}

namespace {
// Non-finite input (see pack.h): every q = 0, scale NaN; nothing converted.
bool NonFinite(const float* w, int n, int8_t* q) {
  bool finite = true;
  for (int i = 0; i < n; ++i) finite &= std::isfinite(w[i]);
  if (!finite) std::memset(q, 0, static_cast<size_t>(n));
  return !finite;
}
}  // namespace

float QuantizeGroupQ4(const float* w, int n, int8_t* q) {
  if (NonFinite(w, n, q)) return std::numeric_limits<float>::quiet_NaN();
  float amax = 0.f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
  float s = amax / 7.5f;
  if (!(s >= FLT_EPSILON)) s = FLT_EPSILON;
  for (int i = 0; i < n; ++i) {
    const float v = std::nearbyint(w[i] / s);
    q[i] = static_cast<int8_t>(std::min(std::max(v, -8.f), 7.f));
  }
  return s;
}

float QuantizeGroupQ4F16(const float* w, int n, int8_t* q) {
  const float s = QuantizeGroupQ4(w, n, q);
  // FLT_EPSILON = 2^-23 is an f16 subnormal, so the rounded scale is never 0.
  const float s16 = std::min(F16ToF32(F32ToF16(s)), 65504.f);
  if (s16 != s)  // requantize with the scale that will be stored
    for (int i = 0; i < n; ++i)
      q[i] = static_cast<int8_t>(std::min(std::max(std::nearbyint(w[i] / s16), -8.f), 7.f));
  return s16;
}

int Q4GValueAny(const uint8_t* packed, bool f16_scales, int N, int K, int n, int k) {
  return f16_scales ? Q4GF16SValue(packed, N, K, n, k) : Q4GValue(packed, N, K, n, k);
}

float Q4GScaleAny(const uint8_t* packed, bool f16_scales, int N, int K, int n, int group) {
  return f16_scales ? Q4GF16SScale(packed, N, K, n, group) : Q4GScale(packed, N, K, n, group);
}

void Q4GDequantRow(const uint8_t* packed, bool f16_scales, int N, int K, int n, float* out) {
  for (int k = 0; k < K; ++k)
    out[k] = static_cast<float>(Q4GValueAny(packed, f16_scales, N, K, n, k)) *
             Q4GScaleAny(packed, f16_scales, N, K, n, k / 32);
}

float QuantizeRowQ8(const float* w, int n, int8_t* q) {
  if (NonFinite(w, n, q)) return std::numeric_limits<float>::quiet_NaN();
  float amax = 0.f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
  float s = amax / 127.f;
  if (!(s >= FLT_EPSILON)) s = FLT_EPSILON;
  for (int i = 0; i < n; ++i) {
    const float v = std::nearbyint(w[i] / s);
    q[i] = static_cast<int8_t>(std::min(std::max(v, -127.f), 127.f));
  }
  return s;
}

}  // namespace lamina::pack
