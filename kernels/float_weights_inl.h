// The weight types of the float matmul (f32 / f16 / bf16, format::DType), one
// switch for every tier: each tier supplies a loader struct per type (its own
// vector width and conversion) and a body templated on the loader.
#pragma once

#include <cstdint>
#include <utility>

#include "loader/format.h"

namespace lamina::kern {

/// Calls body(L{w}, args...) with L = F32W, F16W or BF16W by wtype (a
/// format::DType); any other type does nothing (callers validate the type, as
/// ref::MatmulFloat).
template <typename F32W, typename F16W, typename BF16W, typename Body, typename... Args>
inline void WithFloatWeights(const void* w, int wtype, const Body& body, Args&&... args) {
  switch (static_cast<format::DType>(wtype)) {
    case format::DType::kF32:
      body(F32W{static_cast<const float*>(w)}, std::forward<Args>(args)...);
      break;
    case format::DType::kF16:
      body(F16W{static_cast<const uint16_t*>(w)}, std::forward<Args>(args)...);
      break;
    case format::DType::kBF16:
      body(BF16W{static_cast<const uint16_t*>(w)}, std::forward<Args>(args)...);
      break;
    default:
      break;
  }
}

}  // namespace lamina::kern
