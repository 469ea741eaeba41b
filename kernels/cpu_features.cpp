// CPU feature detection: getauxval(AT_HWCAP / AT_HWCAP2) once (Linux/aarch64);
// all false elsewhere. The SVE vector length comes from svcntb() in an SVE
// file (only called when HWCAP_SVE is set).
#include "kernels/kernels.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>

#include "kernels/neon/arm_kernels.h"
#endif

namespace lamina::kern {

namespace {

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(__aarch64__) && defined(__linux__)
  // Bit values from the Linux arm64 uapi <asm/hwcap.h> (stable ABI); spelled
  // out so that old libc headers still build.
  constexpr unsigned long kHwcapAsimd = 1ul << 1;
  constexpr unsigned long kHwcapAsimdDp = 1ul << 20;
  constexpr unsigned long kHwcapSve = 1ul << 22;
  constexpr unsigned long kHwcap2Sve2 = 1ul << 1;
  constexpr unsigned long kHwcap2I8mm = 1ul << 13;
  const unsigned long hw = getauxval(AT_HWCAP);
  const unsigned long hw2 = getauxval(AT_HWCAP2);
  f.neon = (hw & kHwcapAsimd) != 0;
  f.dotprod = (hw & kHwcapAsimdDp) != 0;
  f.i8mm = (hw2 & kHwcap2I8mm) != 0;
  f.sve = (hw & kHwcapSve) != 0;
  f.sve2 = (hw2 & kHwcap2Sve2) != 0;
  if (f.sve) f.sve_vector_bytes = arm::SveVectorBytes();
#endif
  return f;
}

}  // namespace

const CpuFeatures& DetectCpu() {
  static const CpuFeatures f = Detect();
  return f;
}

}  // namespace lamina::kern
