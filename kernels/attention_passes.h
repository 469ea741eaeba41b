// The head walk shared by the SIMD attention kernels (kernels/neon,
// kernels/x86): ISA-neutral, header-only.
//
// Why passes: the heads of a GQA group read the same K and V rows, so a
// kernel handles up to kMaxHeads consecutive heads of ONE group per pass and
// loads (and converts) each K / V element once per pass instead of once per
// head. A head slice [h0, h1) may start or end mid-group; a pass never crosses
// a group edge; the remainder of a group goes in 3-, 2- and 1-head passes.
#pragma once

#include <algorithm>
#include <type_traits>

namespace lamina::kern {

/// Calls pass(nh, h, kvh) for consecutive passes over heads [h0, h1): nh is a
/// std::integral_constant<int, 1..kMaxHeads> (so the pass can be a template),
/// h the pass's first head, kvh its KV head (h / (n_heads / n_kv_heads)).
template <int kMaxHeads, typename Pass>
inline void ForEachGroupPass(int n_heads, int n_kv_heads, int h0, int h1, Pass&& pass) {
  static_assert(kMaxHeads >= 1 && kMaxHeads <= 4, "passes of 1..4 heads");
  const int group = n_heads / n_kv_heads;
  for (int h = h0; h < h1;) {
    const int kvh = h / group;
    const int nh = std::min(kMaxHeads, std::min(h1, (kvh + 1) * group) - h);
    switch (nh) {
      case 4:
        if constexpr (kMaxHeads >= 4) pass(std::integral_constant<int, 4>{}, h, kvh);
        break;
      case 3:
        if constexpr (kMaxHeads >= 3) pass(std::integral_constant<int, 3>{}, h, kvh);
        break;
      case 2:
        if constexpr (kMaxHeads >= 2) pass(std::integral_constant<int, 2>{}, h, kvh);
        break;
      default:
        pass(std::integral_constant<int, 1>{}, h, kvh);
        break;
    }
    h += nh;
  }
}

}  // namespace lamina::kern
