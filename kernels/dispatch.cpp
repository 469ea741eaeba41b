// Tier registry and run-time selection. (Arm tiers register here once built.)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"

namespace lamina::kern {

const char* TierName(Tier t) {
  switch (t) {
    case Tier::kRef: return "ref";
    case Tier::kNeon: return "neon";
    case Tier::kDotprod: return "dotprod";
    case Tier::kI8mm: return "i8mm";
    case Tier::kSve: return "sve";
  }
  return "?";
}

const KernelSet& RefKernels() {
  static const KernelSet k = {
      Tier::kRef,
      {ref::QuantizeActsDataBytes, ref::QuantizeActs},
      {ref::MatmulQ4G},
      {ref::MatmulQ8C},
      {ref::MatmulFloat},
      {ref::RmsNorm},
      {ref::Rope},
      {ref::SiluMul},
      {ref::Softmax},
      {ref::Hadamard},
      {ref::Attention},
  };
  return k;
}

const CpuFeatures& DetectCpu() {
  static const CpuFeatures f{};
  return f;
}

bool TierAvailable(Tier t) { return t == Tier::kRef; }

bool SelectTier(const char* name, Tier* out, char* err, size_t err_len) {
  if (!name || !*name) name = std::getenv("LAMINA_KERNELS");
  if (!name || !*name || std::strcmp(name, "auto") == 0) {
    *out = Tier::kRef;
    return true;
  }
  for (Tier t : {Tier::kRef, Tier::kNeon, Tier::kDotprod, Tier::kI8mm, Tier::kSve}) {
    if (std::strcmp(name, TierName(t)) == 0) {
      if (!TierAvailable(t)) {
        std::snprintf(err, err_len, "kernel tier '%s' is not available on this CPU/build", name);
        return false;
      }
      *out = t;
      return true;
    }
  }
  std::snprintf(err, err_len, "unknown kernel tier '%s' (ref|neon|dotprod|i8mm|sve|auto)", name);
  return false;
}

const KernelSet& Kernels(Tier t) {
  (void)t;
  return RefKernels();
}

}  // namespace lamina::kern
