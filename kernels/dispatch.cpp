// Tier registry and run-time selection.
//
// Tiers (aarch64 only except ref), each a KernelSet; members a tier does not
// specialise reuse a lower tier's or ref's:
//   Every tier runs both q4g layouts (matmul_q4g: f32 group scales,
//   matmul_q4g_f16s: f16 group scales widened with FCVTL) with the same kernels.
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
// x86-64 tiers (x86-64 builds), all on the "plain + sums" activations of the
// AVX2 quantizer (kernels/x86/x86_kernels.h):
//   avx2        AVX2 + FMA + F16C: q4g (both layouts) GEMV/GEMM with
//               VPMADDUBSW, q8c with VPMADDWD; float matmul, rmsnorm, rope,
//               silu_mul, softmax, hadamard, attention (kernels/x86/x86_ops.h).
//               The VNNI tiers reuse all of these but the q4g / q8c matmuls.
//   avxvnni     + AVX-VNNI: q4g / q8c with VEX VPDPBUSD.
//   avx512vnni  + AVX-512 F/BW/VL/VNNI: EVEX VPDPBUSD on 256-bit registers,
//               8-token GEMM tiles (32 registers).
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
#include "kernels/x86/x86_ops.h"
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
      {arm::MatmulQ4GNeon}, {arm::MatmulQ4GF16SNeon},
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
    s.matmul_q4g_f16s = {arm::MatmulQ4GF16SDotprod};
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
    s.matmul_q4g_f16s = {arm::MatmulQ4GF16SI8mm};
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
    s.matmul_q4g_f16s = {arm::MatmulQ4GF16SSveI8mm};
    s.matmul_q8c = {arm::MatmulQ8CSveI8mm};
    return s;
  }();
  return k;
}

}  // namespace
#endif

#if defined(__x86_64__)
namespace {

const KernelSet& Avx2Kernels() {
  static const KernelSet k = [] {
    KernelSet s = RefKernels();
    s.tier = Tier::kAvx2;
    s.quantize_acts = {x86::QuantizeActsBytes, x86::QuantizeActsAvx2};
    s.matmul_float = {lamina::x86::MatmulFloatAvx2};
    s.rmsnorm = {lamina::x86::RmsNormAvx2};
    s.rope = {lamina::x86::RopeAvx2};
    s.silu_mul = {lamina::x86::SiluMulAvx2};
    s.softmax = {lamina::x86::SoftmaxAvx2};
    s.hadamard = {lamina::x86::HadamardAvx2};
    s.attention = {lamina::x86::AttentionAvx2};
    s.matmul_q4g = {x86::MatmulQ4GAvx2};
    s.matmul_q4g_f16s = {x86::MatmulQ4GF16SAvx2};
    s.matmul_q8c = {x86::MatmulQ8CAvx2};
    return s;
  }();
  return k;
}

const KernelSet& AvxVnniKernels() {
  static const KernelSet k = [] {
    KernelSet s = Avx2Kernels();
    s.tier = Tier::kAvxVnni;
    s.matmul_q4g = {x86::MatmulQ4GAvxVnni};
    s.matmul_q4g_f16s = {x86::MatmulQ4GF16SAvxVnni};
    s.matmul_q8c = {x86::MatmulQ8CAvxVnni};
    return s;
  }();
  return k;
}

const KernelSet& Avx512VnniKernels() {
  static const KernelSet k = [] {
    KernelSet s = Avx2Kernels();
    s.tier = Tier::kAvx512Vnni;
    s.matmul_q4g = {x86::MatmulQ4GAvx512Vnni};
    s.matmul_q4g_f16s = {x86::MatmulQ4GF16SAvx512Vnni};
    s.matmul_q8c = {x86::MatmulQ8CAvx512Vnni};
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
#if defined(__x86_64__)
  switch (t) {
    case Tier::kAvx2:
      return Avx2Kernels();
    case Tier::kAvxVnni:
      return AvxVnniKernels();
    case Tier::kAvx512Vnni:
      return Avx512VnniKernels();
    default:
      break;
  }
#endif
  (void)t;
  return RefKernels();
}

}  // namespace lamina::kern
