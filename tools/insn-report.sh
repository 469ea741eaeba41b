#!/usr/bin/env bash
# Instructions per decode token and per prefill token, under QEMU's insncount
# plugin, for a Llama-3.2-shaped model (random weights in the packed layouts;
# the kernels are data-independent). Builds nothing: give it an aarch64 build
# dir containing lamina_kernels_insn (target built by tests/cmake/kernels.cmake).
#
# usage: tools/insn-report.sh BUILD_DIR [--tier T] [--model 1b|3b] [--prefill M]
#                             [--ops linears|all] [--ctx P] [--kv f32|f16|q8] [--cpu MODEL]
#                             [--mix] [--mem] [--q4 f16s|f32]
# --kv: the KV cache type of the attention (--ops all; default f32).
# --q4: the q4g layout: f16 scales (the default) or f32.
# Method: per decode token = (count(--decode 3) - count(--decode 1)) / 2;
#         per prefill token = (count(2 batches of M) - count(1 batch)) / M
#         (prefill batches end with the output layer for their last token only).
# Differencing cancels process start-up, allocation and weight filling exactly.
set -euo pipefail
build=${1:?usage: tools/insn-report.sh BUILD_DIR [options]}
shift
tier=auto model=1b prefill=32 ops=linears ctx=0 kv=f32 cpu=max mix=0 mem=0 q4=f16s
while [[ $# -gt 0 ]]; do
  case $1 in
    --tier) tier=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --prefill) prefill=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --ctx) ctx=$2; shift 2 ;;
    --kv) kv=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --mix) mix=1; shift ;;
    --mem) mem=1; shift ;;
    --q4) q4=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
insncount=${INSNCOUNT:-$here/../../shared/tools/qemu-insn/insncount}
[[ -x $insncount ]] || insncount=/work/shared/tools/qemu-insn/insncount
driver=$(find "$build" -name lamina_kernels_insn -type f -perm -u+x | head -1)
[[ -n $driver ]] || { echo "lamina_kernels_insn not found under $build" >&2; exit 1; }
[[ $tier == auto ]] && tier=""

flags=()
[[ $mix == 1 ]] && flags+=(--mix)
[[ $mem == 1 ]] && flags+=(--mem)
run() {  # prints the plugin's lines (insns N, mem_*, mix ...)
  "$insncount" --cpu "$cpu" "${flags[@]}" -- "$driver" ${tier:+--tier $tier} --model "$model" \
    --ops "$ops" --ctx "$ctx" --kv "$kv" --q4 "$q4" "$@" 2>&1 >/dev/null | grep -E '^(insns|mem_|mix|tier)'
}
val() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2" | head -1; }

d1=$(run --decode 1); d3=$(run --decode 3)
p1=$(run --prefill "$prefill" --batches 1); p2=$(run --prefill "$prefill" --batches 2)
dec=$(( ($(val insns "$d3") - $(val insns "$d1")) / 2 ))
pre=$(( ($(val insns "$p2") - $(val insns "$p1")) / prefill ))
echo "# insn-report: $(grep '^tier' <<<"$d1" | head -1), qemu -cpu $cpu"
printf '| measure | instructions |\n|---|---|\n'
printf '| decode, per token | %d (%.1f M) |\n' "$dec" "$(echo "$dec / 1000000" | bc -l)"
printf '| prefill (batch %d), per token | %d (%.1f M) |\n' "$prefill" "$pre" \
  "$(echo "$pre / 1000000" | bc -l)"
if [[ $mem == 1 ]]; then
  ld=$(( ($(val mem_load_bytes "$d3") - $(val mem_load_bytes "$d1")) / 2 ))
  printf '| decode, bytes loaded per token | %d (%.1f MB) |\n' "$ld" "$(echo "$ld / 1000000" | bc -l)"
fi
if [[ $mix == 1 ]]; then
  echo
  echo "decode mix per token (top 24):"
  join -a2 -e0 -o 0,1.2,2.2 <(awk '$1=="mix"{print $2,$3}' <<<"$d1" | sort) \
    <(awk '$1=="mix"{print $2,$3}' <<<"$d3" | sort) |
    awk '{ printf "%s %.2fM\n", $1, ($3-$2)/2/1e6 }' | sort -k2 -g -r | head -24 | paste -sd' '
  echo "prefill mix per token (top 24):"
  join -a2 -e0 -o 0,1.2,2.2 <(awk '$1=="mix"{print $2,$3}' <<<"$p1" | sort) \
    <(awk '$1=="mix"{print $2,$3}' <<<"$p2" | sort) |
    awk -v m="$prefill" '{ printf "%s %.2fM\n", $1, ($3-$2)/m/1e6 }' | sort -k2 -g -r | head -24 |
    paste -sd' '
fi
