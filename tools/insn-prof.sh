#!/usr/bin/env bash
# Instructions and bytes loaded per function of an aarch64 program under QEMU
# (tools/qemu-prof/pcprof.c, a per-instruction-address tally), optionally as
# the difference of two runs per unit (e.g. per generated token: run -n N
# minus run -n 1, divided by N - 1). One thread only (the tally is not atomic).
#
# usage: tools/insn-prof.sh [--cpu MODEL] [--top K] [--base-args "ARGS"] [--per N]
#                           -- PROGRAM ARGS...
#   --base-args "A B"  a second run with ARGS followed by these (e.g. "-n 1");
#                      the table is then (run - base run) / per
#   --per N            divisor of the difference (default 1)
#   --top K            rows printed (default 25)
# Needs gcc, libglib2.0-dev, qemu-user, binutils-aarch64-linux-gnu (nm). The
# program must be a PIE (QEMU maps it at 0x5500000000) or a fixed-address
# executable; addresses outside it count as <libs>.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cpu=max top=25 base_args="" per=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --cpu) cpu=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    --base-args) base_args=$2; shift 2 ;;
    --per) per=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -ge 1 ]] || { echo "usage: tools/insn-prof.sh [options] -- PROGRAM ARGS..." >&2; exit 2; }
cache=${XDG_CACHE_HOME:-$HOME/.cache}/qemu-prof
so=$cache/libpcprof.so
if [[ ! -f $so || $here/qemu-prof/pcprof.c -nt $so ]]; then
  mkdir -p "$cache"
  gcc -O2 -shared -fPIC -o "$so" "$here/qemu-prof/pcprof.c" $(pkg-config --cflags glib-2.0)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prog=$1
run() {  # OUT ARGS...
  local out=$1; shift
  PCPROF_OUT=$out qemu-aarch64 -cpu "$cpu" ${QEMU_LD_PREFIX:+-L "$QEMU_LD_PREFIX"} \
    -plugin "$so" "$@" >/dev/null 2>"$tmp/stderr" || { cat "$tmp/stderr" >&2; exit 1; }
}
run "$tmp/a.txt" "$@"
if [[ -n $base_args ]]; then
  # shellcheck disable=SC2086
  run "$tmp/b.txt" "$@" $base_args
else
  : >"$tmp/b.txt"
fi
nm=${NM:-aarch64-linux-gnu-nm}
"$nm" -nC --defined-only "$prog" | grep -E ' [tTwW] ' >"$tmp/syms.txt"
pie=0
file -L "$prog" | grep -q 'pie executable' && pie=1
python3 - "$tmp" "$per" "$top" "$pie" <<'PY'
import bisect, collections, sys
tmp, per, top, pie = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
syms = []
for line in open(f"{tmp}/syms.txt"):
    p = line.split(None, 2)
    syms.append((int(p[0], 16), p[2].strip()))
syms.sort()
addrs = [a for a, _ in syms]
base = 0x5500000000 if pie else 0
end = addrs[-1] + 0x100000 if addrs else 0
def load(path):
    ins, ld = collections.Counter(), collections.Counter()
    for line in open(path):
        pc, n, b = line.split()
        a = int(pc, 16) - base
        name = syms[bisect.bisect_right(addrs, a) - 1][1] if 0 <= a < end and addrs and a >= addrs[0] else "<libs>"
        ins[name] += int(n)
        ld[name] += int(b)
    return ins, ld
ia, la = load(f"{tmp}/a.txt")
ib, lb = load(f"{tmp}/b.txt")
names = set(ia) | set(ib)
d = {k: ((ia[k] - ib[k]) / per, (la[k] - lb[k]) / per) for k in names}
ti = sum(v[0] for v in d.values())
tb = sum(v[1] for v in d.values())
print(f"{'bytes loaded':>14} {'instructions':>14}  function")
print(f"{tb:14.0f} {ti:14.0f}  (total)")
for k in sorted(d, key=lambda k: -d[k][1])[:top]:
    print(f"{d[k][1]:14.0f} {d[k][0]:14.0f}  {k[:110]}")
PY
