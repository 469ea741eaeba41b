// Tier registry and run-time selection: detect once (cpu_features.cpp), pick
// once (AutoTier / SelectTier, $LAMINA_KERNELS or --kernels override), the
// caller logs the tier. What each tier runs, and for which shape, is in ONE
// file per tier, which also lists its KernelSet:
//   neon        kernels/neon/tier_neon.cpp     ARMv8.0 NEON
//   dotprod     kernels/neon/tier_dotprod.cpp  + SDOT
//   i8mm        kernels/neon/tier_i8mm.cpp     + SMMLA ("pairs" activations)
//   sve         kernels/sve/tier_sve.cpp       + SVE (vector-length agnostic)
//   avx2        kernels/x86/tier_avx2.cpp      AVX2 + FMA + F16C
//   avxvnni     kernels/x86/tier_avxvnni.cpp   + AVX-VNNI
//   avx512vnni  kernels/x86/tier_avx512vnni.cpp + AVX-512 F/BW/VL/VNNI
// Default ("auto", AutoTier): sve when SVE + I8MM with vectors of 256 bits or
// more, else i8mm > dotprod > neon on aarch64; avx512vnni > avxvnni > avx2 on
// x86-64; ref elsewhere.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "kernels/kernels.h"
#include "kernels/ref/ref.h"

#if defined(__aarch64__)
#include "kernels/neon/arm_kernels.h"
#endif
#if defined(__x86_64__)
#include "kernels/x86/x86_kernels.h"
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
      {ref::Hadamard},  {ref::Attention, ref::AttentionBatch},
  };
  return k;
}

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
#if defined(__x86_64__)
    case Tier::kAvx2:
      return f.avx2 && f.fma && f.f16c;
    case Tier::kAvxVnni:
      return f.avx2 && f.fma && f.f16c && f.avxvnni;
    case Tier::kAvx512Vnni:
      return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
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
//
// x86-64: the widest VNNI first (avx512vnni > avxvnni > avx2); AVX2 without
// FMA or F16C is not a tier (the epilogue needs FMA, the f16 scales F16C).
Tier AutoTier(const CpuFeatures& f) {
  if (f.avx2 && f.fma && f.f16c) {
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni) return Tier::kAvx512Vnni;
    if (f.avxvnni) return Tier::kAvxVnni;
    return Tier::kAvx2;
  }
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
    // A tier the CPU has but this build lacks: fall back within its family.
    while (t != Tier::kRef && !TierAvailable(t))
      t = t == Tier::kAvx2 ? Tier::kRef : static_cast<Tier>(static_cast<int>(t) - 1);
    *out = t;
    return true;
  }
  for (Tier t : {Tier::kRef, Tier::kNeon, Tier::kDotprod, Tier::kI8mm, Tier::kSve, Tier::kAvx2,
                 Tier::kAvxVnni, Tier::kAvx512Vnni}) {
    if (std::strcmp(name, TierName(t)) == 0) {
      if (!TierAvailable(t)) {
        const CpuFeatures& f = DetectCpu();
        std::snprintf(err, err_len,
                      "kernel tier '%s' is not available on this CPU/build (cpu: neon=%d "
                      "dotprod=%d i8mm=%d sve=%d avx2=%d fma=%d f16c=%d avxvnni=%d "
                      "avx512f=%d avx512bw=%d avx512vl=%d avx512vnni=%d; compiled tiers: %s)",
                      name, f.neon, f.dotprod, f.i8mm, f.sve, f.avx2, f.fma, f.f16c, f.avxvnni,
                      f.avx512f, f.avx512bw, f.avx512vl, f.avx512vnni,
#if defined(__aarch64__)
                      "ref neon dotprod i8mm sve"
#elif defined(__x86_64__)
                      "ref avx2 avxvnni avx512vnni"
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
  std::snprintf(err, err_len,
                "unknown kernel tier '%s' (ref|neon|dotprod|i8mm|sve|avx2|avxvnni|avx512vnni|auto)",
                name);
  return false;
}

const KernelSet& Kernels(Tier t) {
#if defined(__aarch64__)
  switch (t) {
    case Tier::kNeon:
      return arm::NeonKernels();
    case Tier::kDotprod:
      return arm::DotprodKernels();
    case Tier::kI8mm:
      return arm::I8mmKernels();
    case Tier::kSve:
      return arm::SveKernels();
    default:
      break;
  }
#endif
#if defined(__x86_64__)
  switch (t) {
    case Tier::kAvx2:
      return x86::Avx2Kernels();
    case Tier::kAvxVnni:
      return x86::AvxVnniKernels();
    case Tier::kAvx512Vnni:
      return x86::Avx512VnniKernels();
    default:
      break;
  }
#endif
  (void)t;
  return RefKernels();
}

}  // namespace lamina::kern
