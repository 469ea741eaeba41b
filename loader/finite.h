// NaN / Inf detection over float arrays (weights at load, activations in the
// engine): an integer test on the exponent field (all ones = NaN or +-Inf),
// so no FP compare and no FP exception, and an OR reduction the compiler
// vectorizes (~1.75 instructions per float on NEON, measured in
// docs/PERFORMANCE.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lamina {

/// Index of the first NaN or +-Inf among x[0, n), or n if all are finite.
inline size_t FirstNonFinite(const float* x, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  if (!bad) return n;  // the common case: one vectorized pass
  for (size_t i = 0;; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return i;
  }
}

}  // namespace lamina
