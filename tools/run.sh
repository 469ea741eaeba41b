#!/usr/bin/env bash
# Command 1 (README): install what is missing, build lamina (host, Release)
# and run llama-run.
#
#   tools/run.sh                      demo: a tiny model with RANDOM weights that
#                                     lamina generates itself (gibberish output)
#   tools/run.sh MODEL [ARGS...]      MODEL: a Hugging Face Llama 3.2 directory, a Meta
#                                     checkpoint directory, a .gguf, a llama2.c .bin
#                                     or a .lamina file. Anything but .lamina is first
#                                     converted to build/models/<name>.lamina (once).
#   ARGS go to llama-run (e.g. -n 256 --temp 0 --chat); without -p/-f/--tokens/--chat
#   the prompt is "Once upon a time".
#
# Environment: LAMINA_JOBS (default: nproc) parallel compile jobs;
#              LAMINA_CONVERT_ARGS extra arguments for lamina-convert (e.g. "--weights q8").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${LAMINA_JOBS:-$(nproc)}"
BIN="$ROOT/build/host"

case "${1:-}" in
  -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

say() { echo "run.sh: $*" >&2; }

bash tools/setup-deps.sh --host-only

say "building lamina (build/host, Release)"
LOG="$(mktemp)"
if ! cmake --preset host >"$LOG" 2>&1; then
  cat "$LOG" >&2; rm -f "$LOG"; exit 1
fi
rm -f "$LOG"
cmake --build --preset host --parallel "$JOBS" --target llama-run lamina-convert lamina-tokenize

if [ $# -eq 0 ] || [[ "$1" == -* ]]; then
  # ----------------------------------------------------------------- demo
  MODEL="$ROOT/build/demo.lamina"
  if [ ! -s "$MODEL" ] || [ "$BIN/lamina-convert" -nt "$MODEL" ]; then
    say "generating the demo model (lamina-convert --synthetic tiny --seed 1)"
    "$BIN/lamina-convert" --synthetic tiny --seed 1 -o "$MODEL"
  fi
  echo "======================================================================" >&2
  echo " Demo model with RANDOM weights: the output below is gibberish."       >&2
  echo " It shows that lamina builds and runs; for real text pass a model:"    >&2
  echo "   tools/run.sh /path/to/Llama-3.2-1B-Instruct"                        >&2
  echo "======================================================================" >&2
  exec "$BIN/llama-run" -m "$MODEL" -p "Hello" -n 32 "$@"
fi

# ------------------------------------------------------------ given a model
INPUT="${1%/}"
shift
[ -e "$INPUT" ] || { say "no such file or directory: $INPUT"; exit 1; }
case "$INPUT" in
  *.lamina)
    MODEL="$INPUT"
    ;;
  *)
    # dir/ -> dir.lamina; name.gguf -> name-gguf.lamina (a .bin and a .gguf of one model differ)
    name="$(basename "$INPUT")"
    if [ -f "$INPUT" ] && [[ "$name" == *.* ]]; then
      name="${name%.*}-${name##*.}"
    fi
    MODEL="$ROOT/build/models/$name.lamina"
    STAMP="$MODEL.convert-args"  # the conversion is redone when these change
    mkdir -p "$ROOT/build/models"
    if [ -s "$MODEL" ] && [ "$MODEL" -nt "$INPUT" ] && [ "$MODEL" -nt "$BIN/lamina-convert" ] &&
       [ "$(cat "$STAMP" 2>/dev/null)" = "$INPUT ${LAMINA_CONVERT_ARGS:-}" ]; then
      say "using ${MODEL#"$ROOT"/} (converted earlier; delete it to convert again)"
    else
      say "converting $INPUT -> ${MODEL#"$ROOT"/}"
      rm -f "$STAMP"
      # shellcheck disable=SC2086
      "$BIN/lamina-convert" "$INPUT" -o "$MODEL" ${LAMINA_CONVERT_ARGS:-}
      echo "$INPUT ${LAMINA_CONVERT_ARGS:-}" >"$STAMP"
    fi
    ;;
esac

has_prompt=0
for a in "$@"; do
  case "$a" in -p | -f | --tokens | --chat | --prompt | --file) has_prompt=1 ;; esac
done
if [ "$has_prompt" -eq 1 ]; then
  exec "$BIN/llama-run" -m "$MODEL" "$@"
fi
exec "$BIN/llama-run" -m "$MODEL" -p "Once upon a time" "$@"
