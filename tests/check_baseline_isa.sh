#!/bin/sh
# Checks that a linked x86-64 lamina binary runs on baseline x86-64: every
# function that uses AVX (a VEX/EVEX instruction: mnemonic v*, an opmask
# instruction k*, or a ymm/zmm register) must belong to an x86 kernel tier
# (namespaces lamina::kern::x86 — the quantized matmuls — and lamina::x86 —
# the other ops —, or a template instantiated over their internal types:
# compiled from kernels/x86/*_<isa>.cpp and only called after CPUID said yes). Anything else — a baseline file built with the
# wrong flags, or an inline function whose AVX-compiled copy the linker chose
# for every caller — fails with the offending function names.
# It also fails when the tier functions show no AVX at all (the pattern or
# objdump's syntax would then be wrong and the check vacuous).
#   usage: tests/check_baseline_isa.sh BINARY...
set -eu
status=0
for bin in "$@"; do
  objdump -d --no-show-raw-insn -C "$bin" | awk -v bin="$bin" '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); next }
    /:\t(v[a-z0-9]+|k(mov|or|and|not|shift|unpck|test|add)[a-z]*)[ \t]/ || /%[yz]mm[0-9]/ || /%k[0-7]/ {
      if (fn ~ /lamina::(kern::)?x86::/) { tier++ }
      else if (!(fn in bad)) { bad[fn] = 1; nbad++; print bin ": AVX outside a tier: " fn }
    }
    END {
      if (tier == 0) { print bin ": no AVX instruction found in the x86 tiers (check is broken?)"; exit 1 }
      if (nbad > 0) exit 1
      print bin ": OK (" tier " AVX instructions, all in the x86 tiers)"
    }' || status=1
done
exit $status
