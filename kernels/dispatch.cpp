// Tier registry and run-time selection.
//
// Tiers (aarch64 only except ref), each a KernelSet; members a tier does not
// specialise reuse a lower tier's or ref's:
//   neon    ARMv8.0 NEON: quantize (plain layout), q4g/q8c (SMULL/SADALP), float,
//           rmsnorm, attention, hadamard, silu_mul and softmax (own exp,
//           ref-exact); rope stays ref (tiny per token).
//   dotprod + SDOT q4g GEMV/GEMM and q8c GEMV (plain activations).
//   i8mm    + SMMLA q4g/q8c GEMM on "pairs" activations (its own quantizer);
//           a lone token (decode) goes through the SDOT GEMV.
//   sve     i8mm tier ("pairs" activations) + vector-length-agnostic SVE
//           kernels: q4g SMMLA GEMM and SDOT GEMV with one row block per
//           128-bit segment (64-bit gathers), q8c SDOT GEMV; the SVE GEMVs
//           serve decode from 512-bit vectors on, the NEON SDOT GEMV below.
//           Needs SVE + I8MM.
// Default ("auto", AutoTier): sve when SVE + I8MM with vectors of 256 bits or
// more, else i8mm > dotprod > neon on aarch64; ref elsewhere.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"

#if defined(__aarch64__)
#include "kernels/neon/arm_kernels.h"
#endif

namespace lamina::kern {

const char* TierName(Tier t) {
  switch (t) {
    case Tier::kRef:
      return "ref";
    case Tier::kNeon:
      return "neon";
    case Tier::kDotprod:
      return "dotprod";
    case Tier::kI8mm:
      return "i8mm";
    case Tier::kSve:
      return "sve";
    case Tier::kAvx2:
      return "avx2";
    case Tier::kAvxVnni:
      return "avxvnni";
    case Tier::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

const KernelSet& RefKernels() {
  static const KernelSet k = {
      Tier::kRef,       {ref::QuantizeActsDataBytes, ref::QuantizeActs},
      {ref::MatmulQ4G}, {ref::MatmulQ4GF16S},
      {ref::MatmulQ8C}, {ref::MatmulFloat},
      {ref::RmsNorm},   {ref::Rope},
      {ref::SiluMul},   {ref::Softmax},
      {ref::Hadamard},  {ref::Attention},
  };
  return k;
}

#if defined(__aarch64__)
namespace {

const KernelSet& NeonKernels() {
  static const KernelSet k = {
      Tier::kNeon,          {arm::QuantizeActsBytes, arm::QuantizeActsPlainNeon},
      {arm::MatmulQ4GNeon}, {ref::MatmulQ4GF16S},
      {arm::MatmulQ8CNeon}, {arm::MatmulFloatNeon},
      {arm::RmsNormNeon},   {ref::Rope},
      {arm::SiluMulNeon},   {arm::SoftmaxNeon},
      {arm::HadamardNeon},  {arm::AttentionNeon},
  };
  return k;
}

const KernelSet& DotprodKernels() {
  static const KernelSet k = [] {
    KernelSet s = NeonKernels();
    s.tier = Tier::kDotprod;
    s.attention = {arm::AttentionDotprod};  // SDOT scores for the Q8 KV cache
    s.matmul_q4g = {arm::MatmulQ4GDotprod};
    s.matmul_q8c = {arm::MatmulQ8CDotprod};
    return s;
  }();
  return k;
}

const KernelSet& I8mmKernels() {
  static const KernelSet k = [] {
    KernelSet s = DotprodKernels();
    s.tier = Tier::kI8mm;
    s.quantize_acts = {arm::QuantizeActsBytes, arm::QuantizeActsPairsNeon};
    s.matmul_q4g = {arm::MatmulQ4GI8mm};
    s.matmul_q8c = {arm::MatmulQ8CI8mm};
    return s;
  }();
  return k;
}

const KernelSet& SveKernels() {
  static const KernelSet k = [] {
    KernelSet s = I8mmKernels();  // "pairs" activations
    s.tier = Tier::kSve;
    s.matmul_q4g = {arm::MatmulQ4GSveI8mm};
    s.matmul_q8c = {arm::MatmulQ8CSveI8mm};
    return s;
  }();
  return k;
}

}  // namespace
#endif

bool TierAvailable(Tier t) {
  const CpuFeatures& f = DetectCpu();
  switch (t) {
    case Tier::kRef:
      return true;
#if defined(__aarch64__)
    case Tier::kNeon:
      return f.neon;
    case Tier::kDotprod:
      return f.neon && f.dotprod;
    case Tier::kI8mm:
      return f.neon && f.dotprod && f.i8mm;
    case Tier::kSve:
      return f.neon && f.dotprod && f.i8mm && f.sve;
#endif
    default:
      (void)f;
      return false;
  }
}

// Why 256 bits: the SVE kernels put one 4-row block in each 128-bit segment,
// so at 128 bits they do the NEON kernels' work with an extra 64-bit gather
// per chunk and no gain; from 256 bits on every instruction covers VL/128
// blocks (QEMU -cpu max, 512-bit: prefill 100.6 M -> 37.0 M and decode
// 211.3 M -> 113.1 M instructions per 1B token, docs/PERFORMANCE.md).
Tier AutoTier(const CpuFeatures& f) {
  if (!f.neon) return Tier::kRef;
  if (f.dotprod && f.i8mm && f.sve && f.sve_vector_bytes >= 32) return Tier::kSve;
  if (f.dotprod && f.i8mm) return Tier::kI8mm;
  if (f.dotprod) return Tier::kDotprod;
  return Tier::kNeon;
}

bool SelectTier(const char* name, Tier* out, char* err, size_t err_len) {
  if (!name || !*name) name = std::getenv("LAMINA_KERNELS");
  if (!name || !*name || std::strcmp(name, "auto") == 0) {
    Tier t = AutoTier(DetectCpu());
    // A tier the CPU has but this build lacks (non-aarch64 builds): fall back.
    while (t != Tier::kRef && !TierAvailable(t)) t = static_cast<Tier>(static_cast<int>(t) - 1);
    *out = t;
    return true;
  }
  for (Tier t : {Tier::kRef, Tier::kNeon, Tier::kDotprod, Tier::kI8mm, Tier::kSve}) {
    if (std::strcmp(name, TierName(t)) == 0) {
      if (!TierAvailable(t)) {
        const CpuFeatures& f = DetectCpu();
        std::snprintf(err, err_len,
                      "kernel tier '%s' is not available on this CPU/build (cpu: neon=%d "
                      "dotprod=%d i8mm=%d sve=%d; compiled tiers: %s)",
                      name, f.neon, f.dotprod, f.i8mm, f.sve,
#if defined(__aarch64__)
                      "ref neon dotprod i8mm sve"
#else
                      "ref"
#endif
        );
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
#if defined(__aarch64__)
  switch (t) {
    case Tier::kNeon:
      return NeonKernels();
    case Tier::kDotprod:
      return DotprodKernels();
    case Tier::kI8mm:
      return I8mmKernels();
    case Tier::kSve:
      return SveKernels();
    default:
      break;
  }
#endif
  (void)t;
  return RefKernels();
}

}  // namespace lamina::kern
