// CPU feature detection, once: getauxval(AT_HWCAP / AT_HWCAP2) on
// Linux/aarch64 (the SVE vector length comes from svcntb() in an SVE file, only
// called when HWCAP_SVE is set); CPUID + XGETBV on x86-64; all false elsewhere.
#include "kernels/kernels.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>

#include "kernels/neon/arm_kernels.h"
#endif
#if defined(__x86_64__)
#include <cpuid.h>
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
#elif defined(__x86_64__)
  // Bit positions from the Intel SDM, vol. 2A, CPUID (stable across vendors).
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28);
  const bool fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  // XGETBV(0): the OS saves XMM|YMM (bits 1-2) and opmask|ZMM (bits 5-7) on
  // context switch; without that the registers are unusable (SIGILL or worse).
  unsigned xlo = 0, xhi = 0;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  const bool os_avx = (xlo & 0x6u) == 0x6u, os_avx512 = (xlo & 0xE6u) == 0xE6u;
  if (!os_avx) return f;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  unsigned b7 = 0, c7 = 0, a71 = 0;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b7, c7, d);
    unsigned b71 = 0, c71 = 0, d71 = 0;
    __cpuid_count(7, 1, a71, b71, c71, d71);
  }
  f.fma = fma;
  f.f16c = f16c;
  f.avx2 = (b7 & (1u << 5)) != 0;
  f.avxvnni = (a71 & (1u << 4)) != 0;
  if (os_avx512) {
    f.avx512f = (b7 & (1u << 16)) != 0;
    f.avx512bw = (b7 & (1u << 30)) != 0;
    f.avx512vl = (b7 & (1u << 31)) != 0;
    f.avx512vnni = (c7 & (1u << 11)) != 0;
  }
#endif
  return f;
}

}  // namespace

const CpuFeatures& DetectCpu() {
  static const CpuFeatures f = Detect();
  return f;
}

}  // namespace lamina::kern
