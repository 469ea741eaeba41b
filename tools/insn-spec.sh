#!/usr/bin/env bash
# Bytes loaded and instructions per generated token with and without
# speculative decoding, under QEMU's insncount plugin (--mem): stories260K
# (../shared) converted to f32 (the target) and q8 (a draft of the same
# vocabulary) with the host lamina-convert, then the aarch64 llama-run, greedy,
# one thread, for each mode: plain, --lookup, --draft q8, --lookup --draft q8.
#
# usage: tools/insn-spec.sh ARM_BUILD_DIR [--host-build DIR] [--kernels TIER]
#                           [--prompt TEXT] [-n N] [--modes "plain lookup ..."]
#   --kernels  tier passed to llama-run (default i8mm: the plugin does not count
#              SVE loads, so the bytes figure needs a NEON tier)
#   -n N       generated tokens (default 200)
#   --modes    modes to run, of: plain lookup draft lookup+draft (default all;
#              plain always runs first: it is the reference text and bytes)
#   extra llama-run options for every mode: LAMINA_SPEC_ARGS (e.g. "--draft-max 16")
# Method: per generated token = (run(-n N) - run(-n 1)) / (N - 1), so start-up,
# loading and the prompt cancel. The text of every mode is compared with the
# plain run's (it must be identical).
set -euo pipefail
arm=${1:?usage: tools/insn-spec.sh ARM_BUILD_DIR [options]}
shift
host=build/host kernels=i8mm prompt="Once upon a time" n=200 modes="plain lookup draft lookup+draft"
while [[ $# -gt 0 ]]; do
  case $1 in
    --host-build) host=$2; shift 2 ;;
    --kernels) kernels=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    --modes) modes="plain ${2//plain/}"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $n -ge 2 ]] || { echo "-n must be >= 2" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
shared=${LAMINA_SHARED:-$here/../../shared}
insncount=${INSNCOUNT:-$shared/tools/qemu-insn/insncount}
st=$shared/models/stories260K
[[ -x $insncount ]] || { echo "insncount not found (set INSNCOUNT)" >&2; exit 1; }
[[ -f $st/stories260K.bin ]] || { echo "stories260K not found under $shared" >&2; exit 1; }
tmp=${TMPDIR:-/tmp}
for w in f32 q8; do
  m=$tmp/lamina-spec-stories-$w.lamina
  [[ -f $m ]] || "$host/lamina-convert" "$st/stories260K.bin" -o "$m" --weights "$w" \
    --tokenizer "$st/tok512.bin" >/dev/null 2>&1
done
target=$tmp/lamina-spec-stories-f32.lamina draft=$tmp/lamina-spec-stories-q8.lamina

# run N MODE_ARGS... -> "insns bytes" (stdout of llama-run into $tmp/spec-out-N.txt)
run() {
  local nn=$1; shift
  local log
  log=$("$insncount" --mem -- "$arm/llama-run" -m "$target" -p "$prompt" -n "$nn" --temp 0 \
        -t 1 --kernels "$kernels" "$@" ${LAMINA_SPEC_ARGS:-} 2>&1 >"$tmp/spec-out-$nn.txt")
  echo "$(sed -n 's/.*insns \([0-9]*\).*/\1/p' <<<"$log" | tail -1)" \
       "$(sed -n 's/.*mem_load_bytes \([0-9]*\).*/\1/p' <<<"$log" | tail -1)" \
       "$(grep -o 'target passes [0-9]*' <<<"$log" | grep -o '[0-9]*' || echo "$nn")"
}

printf '%-22s %14s %14s %10s %8s\n' mode "insns/token" "bytes/token" passes text
base_bytes=""
for mode in $modes; do
  case $mode in
    plain) args=() ;;
    lookup) args=(--lookup) ;;
    draft) args=(--draft "$draft") ;;
    lookup+draft) args=(--lookup --draft "$draft") ;;
  esac
  read -r i1 b1 _ < <(run 1 "${args[@]}")
  read -r iN bN passes < <(run "$n" "${args[@]}")
  cp "$tmp/spec-out-$n.txt" "$tmp/spec-text-$mode.txt"
  same=yes
  [[ $mode == plain ]] || cmp -s "$tmp/spec-text-plain.txt" "$tmp/spec-text-$mode.txt" || same=DIFFERS
  ipt=$(( (iN - i1) / (n - 1) )) bpt=$(( (bN - b1) / (n - 1) ))
  [[ -n $base_bytes ]] || base_bytes=$bpt
  printf '%-22s %14d %14d %10s %8s  (%.2fx bytes of plain)\n' "$mode" "$ipt" "$bpt" "$passes" \
    "$same" "$(awk -v a="$bpt" -v b="$base_bytes" 'BEGIN { print a / b }')"
done
