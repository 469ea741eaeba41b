// Reference int4/int8 x int8 matmuls over the packed layouts (the spec).
#include <cmath>
#include <cstring>

#include "kernels/ref/fp16.h"
#include "kernels/ref/q4g_layout.h"
#include "kernels/ref/ref.h"
#include "loader/format.h"

namespace lamina::ref {
namespace {

// Signed 4-bit value of nibble `hi` (0 = low, 1 = high) of byte b.
inline int Nibble(uint8_t b, int hi) {
  const int v = hi ? (b >> 4) : (b & 0xF);
  return v >= 8 ? v - 16 : v;
}

inline float LoadF32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
inline int32_t LoadI32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

namespace {

// Both q4g layouts (q4g_layout.h).
template <bool kF16Scales>
void MatmulQ4GImpl(const kern::QActs& a, const uint8_t* w, int K, int n0, int n1, float* y,
                   size_t ldy) {
  const size_t Kp = format::RoundUp(static_cast<uint64_t>(K), 32);
  const Q4GLayout L = MakeQ4GLayout<kF16Scales>(Kp);
  const size_t G = L.G, block_bytes = L.block_bytes, group_stride = L.group_stride;
  const size_t scale_off = L.scale_off, scale_stride = L.scale_stride, corr_off = L.corr_off;
  for (int m = 0; m < a.M; ++m) {
    const int8_t* q = static_cast<const int8_t*>(a.data) + static_cast<size_t>(m) * Kp;
    for (int n = n0; n < n1; ++n) {
      const uint8_t* blk = w + static_cast<size_t>(n / 4) * block_bytes;
      const int r = n % 4;
      float acc = 0.f;
      for (size_t g = 0; g < G; ++g) {
        const uint8_t* gp = blk + g * group_stride;
        int32_t idot = 0;
        for (int c = 0; c < 4; ++c) {
          for (int i = 0; i < 4; ++i) {
            const uint8_t b = gp[16 * c + 4 * r + i];
            const size_t k = g * 32 + 8 * c + i;
            idot += Nibble(b, 0) * q[k] + Nibble(b, 1) * q[k + 4];
          }
        }
        const uint8_t* sp = blk + scale_off + g * scale_stride;
        float scale;
        if constexpr (kF16Scales) {
          uint16_t h;
          std::memcpy(&h, sp + 2 * r, 2);
          scale = F16ToF32(h);
        } else {
          scale = LoadF32(sp + 4 * r);
        }
        acc = std::fma(static_cast<float>(idot), scale, acc);
      }
      const float corr = LoadF32(blk + corr_off + 4 * r);
      acc = std::fma(-a.zp[m], corr, acc);
      y[static_cast<size_t>(m) * ldy + n] = acc * a.scale[m];
    }
  }
}

}  // namespace

void MatmulQ4G(const kern::QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
               size_t ldy) {
  (void)N;
  MatmulQ4GImpl<false>(a, w, K, n0, n1, y, ldy);
}

void MatmulQ4GF16S(const kern::QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
                   size_t ldy) {
  (void)N;
  MatmulQ4GImpl<true>(a, w, K, n0, n1, y, ldy);
}

void MatmulQ8C(const kern::QActs& a, const uint8_t* w, int N, int K, int n0, int n1, float* y,
               size_t ldy) {
  (void)N;
  const size_t Kp = format::RoundUp(static_cast<uint64_t>(K), 32);
  const size_t block_bytes = format::kQ8BlockBytes(Kp);
  for (int m = 0; m < a.M; ++m) {
    const int8_t* q = static_cast<const int8_t*>(a.data) + static_cast<size_t>(m) * Kp;
    for (int n = n0; n < n1; ++n) {
      const uint8_t* blk = w + static_cast<size_t>(n / 4) * block_bytes;
      const int r = n % 4;
      int32_t idot = 0;
      for (size_t c = 0; c < Kp / 4; ++c) {
        const int8_t* wp = reinterpret_cast<const int8_t*>(blk + 16 * c + 4 * r);
        for (int i = 0; i < 4; ++i) idot += wp[i] * q[4 * c + i];
      }
      const float ws = LoadF32(blk + Kp * 4 + 4 * r);
      const int32_t wsum = LoadI32(blk + Kp * 4 + 16 + 4 * r);
      // int64: wsum is file data, not checked at load (ref.h).
      const int64_t t = idot - static_cast<int64_t>(a.zp[m]) * wsum;
      y[static_cast<size_t>(m) * ldy + n] = (static_cast<float>(t) * ws) * a.scale[m];
    }
  }
}

}  // namespace lamina::ref
