#!/usr/bin/env bash
# Command 2 (README): install what is missing, build host and aarch64, run every
# test natively and under QEMU, then an AddressSanitizer pass over the
# robustness tests (ctest label "asan"), the libFuzzer harnesses for a short
# fixed time each (preset fuzz, label "fuzz") and the ThreadSanitizer
# multi-context test (preset tsan). Ends with ctest's summaries and one
# "N passed, N failed" line; exits non-zero on any failure. CI runs exactly
# this (.ci/run).
#
#   tools/test.sh [--no-deps] [--no-host] [--no-arm] [--no-asan] [--asan-all]
#                 [--no-fuzz] [--no-tsan]
#
# Environment: LAMINA_JOBS (default: nproc) parallel compile and test jobs.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${LAMINA_JOBS:-$(nproc)}"
DO_DEPS=1 DO_HOST=1 DO_ARM=1 DO_ASAN=1 ASAN_ALL=0 DO_FUZZ=1 DO_TSAN=1
for arg in "$@"; do
  case "$arg" in
    --no-deps) DO_DEPS=0 ;;
    --no-host) DO_HOST=0 ;;
    --no-arm) DO_ARM=0 ;;
    --no-asan) DO_ASAN=0 ;;
    --asan-all) ASAN_ALL=1 ;;
    --no-fuzz) DO_FUZZ=0 ;;
    --no-tsan) DO_TSAN=0 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

LOGDIR="$ROOT/build/logs"
mkdir -p "$LOGDIR"
START=$SECONDS
FAILED=0
TIMES=()
SUMMARIES=()
PASSED_TOTAL=0
FAILED_TOTAL=0

banner() { printf '\n==== %s ====\n' "$*"; }
now() { date -u +%H:%M:%S; }

# phase NAME CMD...: runs CMD, records its wall time and failure.
phase() {
  local name="$1"; shift
  banner "$name  ($(now))"
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  local dt=$((SECONDS - t0))
  TIMES+=("$(printf '%-22s %4d s  %s' "$name" "$dt" "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")")")
  if [ $rc -ne 0 ]; then
    FAILED=1
    echo "test.sh: phase '$name' failed (exit $rc)" >&2
  fi
  return $rc
}

# run_ctest PRESET LOG [ctest args...]: ctest with its summary kept for the end.
run_ctest() {
  local preset="$1" log="$2"; shift 2
  local rc=0
  ctest --preset "$preset" -j "$JOBS" "$@" 2>&1 | tee "$log" || rc=$?
  local line
  line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)"
  if [ -n "$line" ]; then
    SUMMARIES+=("$(printf '%-8s %s' "$preset:" "$line")")
    local failed total
    failed="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")"
    total="$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")"
    PASSED_TOTAL=$((PASSED_TOTAL + total - failed))
    FAILED_TOTAL=$((FAILED_TOTAL + failed))
  else
    SUMMARIES+=("$(printf '%-8s %s' "$preset:" "no ctest summary (see $log)")")
    [ $rc -eq 0 ] && rc=1
  fi
  return $rc
}

# build PRESET EXTRA_CONFIGURE_ARGS...: configure + build (keeps going past a
# broken file so that every target that can build does; still fails).
build() {
  local preset="$1"; shift
  cmake --preset "$preset" "$@" >"$LOGDIR/configure-$preset.log" 2>&1 || {
    cat "$LOGDIR/configure-$preset.log"; return 1; }
  grep -E 'lamina:|emulator' "$LOGDIR/configure-$preset.log" || true
  cmake --build --preset "$preset" --parallel "$JOBS" -- -k 0
}

if [ "$DO_DEPS" -eq 1 ]; then
  phase deps bash tools/setup-deps.sh || { echo "test.sh: cannot install dependencies" >&2; exit 1; }
fi

echo "lamina tests: $(nproc) cores, jobs $JOBS; $(cmake --version | head -1); $(g++ --version | head -1)"

if [ "$DO_HOST" -eq 1 ]; then
  if phase host-build build host -DLAMINA_BUILD_BENCH=ON; then :; fi
  phase host-test run_ctest host "$LOGDIR/ctest-host.log"
fi

if [ "$DO_ARM" -eq 1 ]; then
  echo "emulator: $(command -v qemu-aarch64) ($(qemu-aarch64 --version | head -1))"
  if phase aarch64-build build aarch64 -DLAMINA_BUILD_BENCH=ON; then :; fi
  grep -E '^CMAKE_CROSSCOMPILING_EMULATOR' build/aarch64/CMakeCache.txt 2>/dev/null || true
  phase aarch64-test run_ctest aarch64 "$LOGDIR/ctest-aarch64.log"
fi

if [ "$DO_ASAN" -eq 1 ]; then
  if [ "$ASAN_ALL" -eq 1 ]; then
    phase asan-build build asan
    phase asan-test run_ctest asan "$LOGDIR/ctest-asan.log"
  else
    # Only what the robustness tests need: the test binaries and the CLIs they run.
    asan_build() {
      cmake --preset asan >"$LOGDIR/configure-asan.log" 2>&1 || {
        cat "$LOGDIR/configure-asan.log"; return 1; }
      local targets=()
      for t in lamina_tests lamina_kernel_tests lamina_server_tests lamina_hub_tests lamina-convert \
               llama-run lamina-tokenize lamina-perplexity lamina-server; do
        grep -q "^build $t:" build/asan/build.ninja 2>/dev/null && targets+=("$t")
      done
      [ ${#targets[@]} -eq 0 ] && return 0
      cmake --build --preset asan --parallel "$JOBS" --target "${targets[@]}" -- -k 0
    }
    phase asan-build asan_build
    asan_test() {
      local n
      n="$(ctest --preset asan -N -L asan 2>/dev/null | sed -nE 's/^Total Tests: ([0-9]+)/\1/p')"
      if [ "${n:-0}" -eq 0 ]; then
        echo "no test carries the label 'asan' yet: nothing to run under ASan"
        SUMMARIES+=("$(printf '%-8s %s' "asan:" "no test labelled asan")")
        return 0
      fi
      run_ctest asan "$LOGDIR/ctest-asan.log" -L asan
    }
    phase asan-test asan_test
  fi
fi

if [ "$DO_FUZZ" -eq 1 ]; then
  # Only the harnesses and lamina-convert (it writes the seed models).
  fuzz_build() {
    cmake --preset fuzz >"$LOGDIR/configure-fuzz.log" 2>&1 || {
      cat "$LOGDIR/configure-fuzz.log"; return 1; }
    local targets=(lamina-convert)
    mapfile -t -O 1 targets < <(sed -nE 's/^build (fuzz_[a-z0-9_]+): .*/\1/p' build/fuzz/build.ninja)
    cmake --build --preset fuzz --parallel "$JOBS" --target "${targets[@]}" -- -k 0
  }
  phase fuzz-build fuzz_build
  # Each harness runs LAMINA_FUZZ_SECONDS (15 s); a crash leaves its reproducer
  # in build/fuzz/artifacts/.
  phase fuzz-test run_ctest fuzz "$LOGDIR/ctest-fuzz.log" -L fuzz
fi

if [ "$DO_TSAN" -eq 1 ]; then
  phase tsan-build build tsan
  phase tsan-test run_ctest tsan "$LOGDIR/ctest-tsan.log" -L tsan
fi

banner "summary  ($(now))"
printf '%s\n' "${TIMES[@]}"
printf '%-22s %4d s\n' total $((SECONDS - START))
echo
printf '%s\n' "${SUMMARIES[@]}"
if [ "$FAILED" -ne 0 ] && [ "$FAILED_TOTAL" -eq 0 ]; then
  echo "test.sh: a build or setup phase failed (see above)"
fi
echo "tests: $PASSED_TOTAL passed, $FAILED_TOTAL failed"
exit "$FAILED"
