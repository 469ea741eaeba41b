#!/usr/bin/env bash
# Command 1 (README): install what is missing, build lamina (host, Release)
# and run llama-run.
#
#   tools/run.sh                      online: download Llama 3.2 1B Instruct from Hugging
#                                     Face (once; converted and cached in ~/.cache/lamina)
#                                     and start a chat; offline, the cached copy. Else: a
#                                     tiny demo model with RANDOM weights (gibberish)
#   tools/run.sh ORG/REPO[:FILE]      any Hugging Face Llama 3.x repo (lamina-convert -hf)
#   tools/run.sh MODEL [ARGS...]      MODEL: a Hugging Face Llama 3.2 directory, a Meta
#                                     checkpoint directory, a .gguf, a llama2.c .bin
#                                     or a .lamina file. Anything but .lamina is first
#                                     converted to build/models/<name>.lamina (once).
#   ARGS go to llama-run (e.g. -n 256 --temp 0 --chat); without -p/-f/--tokens/--chat
#   the prompt is "Once upon a time" (a Hugging Face repo: --chat).
#
# Environment: LAMINA_JOBS (default: nproc) parallel compile jobs;
#              LAMINA_CONVERT_ARGS extra arguments for lamina-convert (e.g. "--weights q8");
#              LAMINA_RUN_MODEL the repo of the no-argument run (default
#              unsloth/Llama-3.2-1B-Instruct, an ungated copy of Meta's; "random": the demo);
#              HF_ENDPOINT, HF_TOKEN, LAMINA_CACHE: see README ("Models from Hugging Face").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${LAMINA_JOBS:-$(nproc)}"
BIN="$ROOT/build/host"

case "${1:-}" in
  -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

has_prompt() {
  for a in "$@"; do
    case "$a" in -p | -f | --tokens | --chat | --prompt | --file | --bench) return 0 ;; esac
  done
  return 1
}

# Runs a model file: a chat unless ARGS give a prompt.
run_chat() {
  local model="$1"
  shift
  if has_prompt "$@"; then
    exec "$BIN/llama-run" -m "$model" "$@"
  fi
  exec "$BIN/llama-run" -m "$model" --chat "$@"
}

# hub_model REPO [ENV...]: the cached .lamina of a Hugging Face repo on stdout,
# downloaded and converted first when needed (lamina-convert -hf: progress and
# errors on stderr). Fails when it cannot get it.
hub_model() {
  local repo="$1"
  shift
  # shellcheck disable=SC2086
  env "$@" "$BIN/lamina-convert" -hf "$repo" ${LAMINA_CONVERT_ARGS:-}
}

# A quick reachability check of the hub (HEAD, 5 s): curl when installed
# (honours proxies), else a TCP connect to the endpoint's host.
online() {
  local url="${HF_ENDPOINT:-https://huggingface.co}"
  if command -v curl >/dev/null; then
    curl -sS -o /dev/null -I --max-time 5 "$url" 2>/dev/null
    return
  fi
  local hostport="${url#*://}"
  hostport="${hostport%%/*}"
  local host="${hostport%%:*}" port=443
  [[ "$url" == http://* ]] && port=80
  [[ "$hostport" == *:* ]] && port="${hostport##*:}"
  timeout 5 bash -c ">/dev/tcp/$host/$port" 2>/dev/null
}

if [ $# -eq 0 ] || [[ "$1" == -* ]]; then
  RUN_MODEL="${LAMINA_RUN_MODEL:-unsloth/Llama-3.2-1B-Instruct}"
  ENDPOINT="${HF_ENDPOINT:-https://huggingface.co}"
  if [ "$RUN_MODEL" = random ]; then
    OFFLINE_WHY="LAMINA_RUN_MODEL=random"
  elif online; then
    say "$RUN_MODEL from $ENDPOINT (downloaded and converted once, then cached)"
    if MODEL="$(hub_model "$RUN_MODEL")"; then
      run_chat "$MODEL" "$@"
    fi
    OFFLINE_WHY="getting $RUN_MODEL failed, see above"
  elif MODEL="$(hub_model "$RUN_MODEL" HF_HUB_OFFLINE=1 2>/dev/null)"; then
    say "offline ($ENDPOINT unreachable): using the cached $RUN_MODEL"
    run_chat "$MODEL" "$@"
  else
    OFFLINE_WHY="cannot reach $ENDPOINT and $RUN_MODEL is not cached"
  fi
  # ----------------------------------------------------------------- demo
  MODEL="$ROOT/build/demo.lamina"
  if [ ! -s "$MODEL" ] || [ "$BIN/lamina-convert" -nt "$MODEL" ]; then
    say "generating the demo model (lamina-convert --synthetic tiny --seed 1)"
    "$BIN/lamina-convert" --synthetic tiny --seed 1 -o "$MODEL"
  fi
  echo "======================================================================" >&2
  echo " No real model ($OFFLINE_WHY): running a tiny demo model instead."     >&2
  echo " Its weights are RANDOM, so the text below is GIBBERISH: it only shows" >&2
  echo " that lamina builds and runs. Online, tools/run.sh downloads Llama 3.2" >&2
  echo " 1B Instruct ($RUN_MODEL) and starts a chat; or pass a model you have:" >&2
  echo "   tools/run.sh /path/to/Llama-3.2-1B-Instruct"                        >&2
  echo "======================================================================" >&2
  exec "$BIN/llama-run" -m "$MODEL" -p "Hello" -n 32 "$@"
fi

# ------------------------------------------------- a Hugging Face repo name
if [ ! -e "$1" ] && [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[^:]+)?(:.+)?$ ]]; then
  repo="$1"
  shift
  MODEL="$(hub_model "$repo")" || exit 1
  run_chat "$MODEL" "$@"
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

if has_prompt "$@"; then
  exec "$BIN/llama-run" -m "$MODEL" "$@"
fi
exec "$BIN/llama-run" -m "$MODEL" -p "Once upon a time" "$@"
