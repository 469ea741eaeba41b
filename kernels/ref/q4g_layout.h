// Where the parts of a q4g row block are (loader/format.h), for both layouts,
// shared by ref and the tiers: Q4G_R4K8 (f32 scales: group g = 64 B nibbles +
// 16 B scales at 80g, corrections after the G groups) and Q4G_R4K8_F16S (f16
// scales: nibbles at 64g, the scales at scale_off + 8g, corrections last).
// Plain integer arithmetic, no SIMD; MakeQ4GLayout has internal linkage so
// that every tier file keeps its own copy (a shared out-of-line copy could
// carry one tier's ISA).
#pragma once

#include <cstddef>

#include "loader/format.h"

namespace lamina::ref {

struct Q4GLayout {
  size_t G;             // groups of 32 per row (Kp / 32)
  size_t block_bytes;   // one row block (4 rows)
  size_t group_stride;  // nibbles of group g at group_stride * g
  size_t scale_off;     // the 4 rows' scales of group g at scale_off + scale_stride * g
  size_t scale_stride;
  size_t corr_off;  // the 4 rows' f32 zero-point corrections
};

namespace {

/// The layout of a row block of Kp (a multiple of 32) columns.
template <bool kF16Scales>
constexpr Q4GLayout MakeQ4GLayout(size_t Kp) {
  if (kF16Scales)
    return {Kp / 32, static_cast<size_t>(format::kQ4F16SBlockBytes(Kp)),
            64,      static_cast<size_t>(format::kQ4F16SScaleOffset(Kp)),
            8,       static_cast<size_t>(format::kQ4F16SCorrOffset(Kp))};
  return {Kp / 32, static_cast<size_t>(format::kQ4BlockBytes(Kp)), 80, 64, 80, Kp / 32 * 80};
}

}  // namespace
}  // namespace lamina::ref
