// lamina's own single-precision exp: the REFERENCE expf of kernels/ref.
//
// Why not std::exp: libm's result bits are libm's (and its version's); a SIMD
// kernel cannot reproduce them, so every tier had to call the scalar libm
// per element. This expf uses only IEEE basic operations whose results are
// fully determined (+, -, *, explicit std::fma, bit manipulation), so a NEON
// kernel doing the same lane-wise sequence (kernels/neon/silu_mul_neon.cpp) is
// bit-identical, and results do not depend on the C library.
//
// Specification (float arithmetic, round-to-nearest-even, no contraction):
//   NaN x            -> x + x (a quiet NaN, payload kept)
//   x = min(max(x, -104), 89)            (-inf -> 0 and +inf -> +inf below)
//   t = x * log2(e) + 0x1.8p23           (two roundings: mul, then add)
//   n = bits(t) - bits(0x1.8p23)         (= round_half_even(x * log2e), int)
//   f = t - 0x1.8p23                     (= n as float, exact)
//   r = fma(-f, kLn2Hi, x)               (exact: kLn2Hi has 9 significant bits)
//   r = fma(-f, kLn2Lo, r)               (|r| <= ~0.347)
//   p = kC7; p = fma(p, r, kC6) ... fma(p, r, kC2); p = fma(p, r, 1); p = fma(p, r, 1)
//   n1 = n >> 1 (arithmetic), n2 = n - n1          (n in [-150, 128])
//   result = (p * 2^n1) * 2^n2           (2^k built from exponent bits; the
//            first product is exact, the second rounds once: overflow -> +inf,
//            gradual underflow with one rounding, x <= -104 -> +0)
// Measured (kernels/ref/expf_ref_test.cpp, ~1.2e6 points over [-104, 89]):
// max 0.85 ulp vs exp computed in double where the result is normal; subnormal
// results within 0.76 * 2^-149 (one rounding of p * 2^n).
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/ref/fp16.h"

namespace lamina::ref {

namespace expf_const {
inline constexpr float kHi = 89.f;    // exp(89) > FLT_MAX: overflows to +inf
inline constexpr float kLo = -104.f;  // exp(-104) < 2^-150: rounds to +0
inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kShift = 12582912.f;       // 0x1.8p23: add -> round to integer
inline constexpr float kLn2Hi = 0.693359375f;     // 9 bits: f * kLn2Hi exact
inline constexpr float kLn2Lo = -2.12194440e-4f;  // ln2 - kLn2Hi
// Cephes expf polynomial: exp(r) ~ 1 + r + r^2 (kC2 + kC3 r + ... + kC7 r^5).
inline constexpr float kC2 = 5.0000001201e-1f;
inline constexpr float kC3 = 1.6666665459e-1f;
inline constexpr float kC4 = 4.1665795894e-2f;
inline constexpr float kC5 = 8.3334519073e-3f;
inline constexpr float kC6 = 1.3981999507e-3f;
inline constexpr float kC7 = 1.9875691500e-4f;
}  // namespace expf_const

/// lamina's reference exp(x) for any float x (see the specification above).
/// Deterministic: same bits on every platform and in every SIMD tier.
inline float ExpfRef(float x) {
  using namespace expf_const;
  if (x != x) return x + x;
  x = x < kHi ? x : kHi;
  x = x > kLo ? x : kLo;
  const float t = x * kLog2e + kShift;
  const int32_t n = static_cast<int32_t>(F32Bits(t) - F32Bits(kShift));
  const float f = t - kShift;
  float r = std::fma(-f, kLn2Hi, x);
  r = std::fma(-f, kLn2Lo, r);
  float p = kC7;
  p = std::fma(p, r, kC6);
  p = std::fma(p, r, kC5);
  p = std::fma(p, r, kC4);
  p = std::fma(p, r, kC3);
  p = std::fma(p, r, kC2);
  p = std::fma(p, r, 1.f);
  p = std::fma(p, r, 1.f);
  const int32_t n1 = n >> 1;  // arithmetic shift (GCC/Clang; defined in C++20)
  const int32_t n2 = n - n1;
  const float s1 = BitsF32(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = BitsF32(static_cast<uint32_t>(n2 + 127) << 23);
  return (p * s1) * s2;
}

/// SiLU·mul element: (g / (1 + ExpfRef(-g))) * u — the ref::SiluMul formula.
inline float SiluMulRef1(float g, float u) { return (g / (1.f + ExpfRef(-g))) * u; }

}  // namespace lamina::ref
