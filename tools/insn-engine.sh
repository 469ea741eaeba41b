#!/usr/bin/env bash
# Whole-engine instruction counts under QEMU's insncount plugin: generates a
# Llama-3.2-shaped model with random weights in lamina's default scheme (q4g32
# linears, q8c output layer and embedding) with the host lamina-convert, then
# runs the aarch64 llama-run on it, one thread, f16 KV cache, context 256.
#
# usage: tools/insn-engine.sh ARM_BUILD_DIR [--host-build DIR] [--model 1b|3b]
#                             [--kernels TIER] [--cpu MODEL] [--prompt N] [--mem]
#                             [--convert "lamina-convert options"]
#   ARM_BUILD_DIR  aarch64 build dir with llama-run (e.g. build/aarch64)
#   --host-build   host build dir with lamina-convert (default build/host)
#   --kernels      kernel tier passed to llama-run (default: auto)
#   --cpu          QEMU CPU model (default max: SVE 512-bit, i8mm, dotprod)
#   --prompt N     prefill batch (default 33: 32 tokens more than the 1-token runs)
#   --mem          also bytes loaded per decode token (the plugin does not count
#                  SVE loads: use --kernels i8mm for a bytes figure)
#   --convert OPTS extra lamina-convert options for the model, e.g. "--output q4"
#                  or "--q4-scales f32" (format 1.0's q4g layout)
# Method (each figure is a difference, so start-up and one-time work cancel):
#   decode  = (run(prompt 1, generate 3) - run(prompt 1, generate 1)) / 2
#   prefill = (run(prompt N, generate 1) - run(prompt 1, generate 1)) / (N - 1)
#   load    = run(load + validate, then reject an out-of-range id) - run(--help)
# The model is cached as $TMPDIR/lamina-insn-<model>-<options>.lamina (seed 1),
# named after the conversion options (the default q4g layout is f16 scales).
set -euo pipefail
arm=${1:?usage: tools/insn-engine.sh ARM_BUILD_DIR [options]}
shift
host=build/host model=1b kernels="" cpu=max prompt=33 mem=0 convert=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --host-build) host=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --kernels) kernels=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --mem) mem=1; shift ;;
    --convert) convert=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $prompt -ge 2 ]] || { echo "--prompt must be >= 2" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
insncount=${INSNCOUNT:-$here/../../shared/tools/qemu-insn/insncount}
[[ -x $insncount ]] || { echo "insncount not found (set INSNCOUNT)" >&2; exit 1; }
run_bin=$arm/llama-run
[[ -x $run_bin ]] || { echo "$run_bin not found" >&2; exit 1; }
tag=$(tr -c 'a-z0-9\n' '_' <<<"q4f16s $convert")
m=${TMPDIR:-/tmp}/lamina-insn-$model-$tag.lamina
if [[ ! -f $m ]]; then
  [[ -x $host/lamina-convert ]] || { echo "$host/lamina-convert not found" >&2; exit 1; }
  # shellcheck disable=SC2086  # $convert is a list of options
  "$host/lamina-convert" --synthetic "$model" --seed 1 $convert -o "$m.tmp" >/dev/null
  mv "$m.tmp" "$m"
fi

common=(-m "$m" -t 1 -c 256 ${kernels:+--kernels "$kernels"})
logf=$(mktemp)
trap 'rm -f "$logf"' EXIT
count() {  # prints "insns N [mem_load_bytes N]"; the program's stderr is left in $logf
  local flags=()
  [[ $mem == 1 ]] && flags+=(--mem)
  "$insncount" --cpu "$cpu" "${flags[@]}" -- "$run_bin" "$@" 2>"$logf" >/dev/null || true
  grep -E '^(insns|mem_load_bytes) ' "$logf" | tr '\n' ' '
}
val() { awk -v k="$1" '{ for (i = 1; i < NF; ++i) if ($i == k) print $(i + 1) }' <<<"$2"; }

help=$(count --help)
load=$(count "${common[@]}" --tokens 999999)
n1=$(count "${common[@]}" --tokens 1 -n 1 --temp 0)
tier=$(grep -o 'kernels [a-z0-9]*' "$logf" | tail -1 | cut -d' ' -f2)
n3=$(count "${common[@]}" --tokens 1 -n 3 --temp 0)
pn=$(count "${common[@]}" --tokens "$(seq -s, 1 "$prompt")" -n 1 --temp 0)

dec=$(( ($(val insns "$n3") - $(val insns "$n1")) / 2 ))
pre=$(( ($(val insns "$pn") - $(val insns "$n1")) / (prompt - 1) ))
ld=$(( $(val insns "$load") - $(val insns "$help") ))
echo "# insn-engine: $model-shaped model $m, kernels $tier, qemu -cpu $cpu, 1 thread"
printf '| measure | instructions |\n|---|---|\n'
printf '| decode, per token | %d (%.1f M) |\n' "$dec" "$(bc -l <<<"$dec / 1000000")"
printf '| prefill (batch %d), per token | %d (%.1f M) |\n' "$prompt" "$pre" \
  "$(bc -l <<<"$pre / 1000000")"
printf '| load + validate | %d (%.2f M) |\n' "$ld" "$(bc -l <<<"$ld / 1000000")"
if [[ $mem == 1 ]]; then
  b=$(( ($(val mem_load_bytes "$n3") - $(val mem_load_bytes "$n1")) / 2 ))
  printf '| decode, bytes loaded per token | %d (%.1f MB) |\n' "$b" "$(bc -l <<<"$b / 1000000")"
fi
echo "raw: help [$help] load [$load] n1 [$n1] n3 [$n3] p$prompt [$pn]"
