#!/usr/bin/env bash
# Installs what lamina needs from Debian's packages, and nothing that is
# already there. Idempotent and non-interactive; a fast no-op (dpkg-query only,
# no apt-get) when everything is present. Root runs apt-get directly, anyone
# else through sudo.
#
#   tools/setup-deps.sh              everything: host build + tests, aarch64 cross
#                                    build + QEMU, PyTorch for the reference tests
#   tools/setup-deps.sh --host-only  just what a host build of the CLIs needs
#
# The arm64 libsentencepiece0 conflicts with the amd64 one (same file in
# /usr/share/doc), so it is not installed: its .deb is downloaded and unpacked
# into .deps/arm64 in the repository (gitignored), which the aarch64 build
# links into the tools and tests only (lamina-convert's cross-check of .model
# files, the tokenizer tests' oracle; liblamina.a never needs it). Without it a
# cross build goes on without libsentencepiece and those oracle tests skip
# (cmake/LaminaCompile.cmake finds it there; headers are the host's).
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
HOST_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --host-only) HOST_ONLY=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "setup-deps: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
ARM_SP="$DEPS/arm64/usr/lib/aarch64-linux-gnu/libsentencepiece.so.0"
export DEBIAN_FRONTEND=noninteractive

log() { echo "setup-deps: $*" >&2; }
die() { echo "setup-deps: error: $*" >&2; exit 1; }

command -v dpkg-query >/dev/null || die "this script needs a Debian-based system (dpkg/apt)"

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null; then
  SUDO=(sudo)
else
  SUDO=()  # only an error if something actually has to be installed
fi
as_root() {
  if [ "$(id -u)" -ne 0 ] && [ ${#SUDO[@]} -eq 0 ]; then
    die "need root to run '$*' (run as root or install sudo)"
  fi
  "${SUDO[@]}" "$@"
}

NATIVE="$(dpkg --print-architecture)"

# installed PKG[:ARCH] -> 0 when installed for ARCH (default: native or all).
installed() {
  local name="${1%%:*}" arch=""
  [ "$name" != "$1" ] && arch="${1#*:}"
  dpkg-query -W -f='${db:Status-Status} ${Architecture}\n' "$name" 2>/dev/null |
    awk -v a="$arch" -v n="$NATIVE" '
      $1 == "installed" && ((a == "" && ($2 == n || $2 == "all")) || $2 == a) { f = 1 }
      END { exit !f }'
}

HOST_PKGS=(build-essential cmake ninja-build pkg-config libgtest-dev libbenchmark-dev
           libsentencepiece-dev)
HOST_PKGS+=(libcurl4-openssl-dev)  # llama-run/lamina-convert -hf (tools/hub; not liblamina.a)
HOST_PKGS+=(libeigen3-dev)  # lamina-convert --calib (GPTQ): Eigen, tools only
FULL_PKGS=(g++-aarch64-linux-gnu qemu-user python3-torch python3-numpy unicode-data
           libglib2.0-dev)
ARM_PKGS=(libgtest-dev:arm64 libbenchmark-dev:arm64)
# libFuzzer harnesses and the ThreadSanitizer test (tools/test.sh fuzz/tsan phases).
SANITIZER_PKGS=(clang-14 libclang-rt-14-dev)
# lamina-server: HTTP (cpp-httplib) and JSON (nlohmann); host build only.
SERVER_PKGS=(libcpp-httplib-dev nlohmann-json3-dev)

want=("${HOST_PKGS[@]}" "${SERVER_PKGS[@]}")
if [ "$HOST_ONLY" -eq 0 ]; then
  want+=("${FULL_PKGS[@]}")
  want+=("${SANITIZER_PKGS[@]}")
  if [ "$NATIVE" != arm64 ]; then
    want+=("${ARM_PKGS[@]}")
  fi
fi

NEED_UPDATE=0
if [ "$HOST_ONLY" -eq 0 ] && [ "$NATIVE" != arm64 ] &&
   ! dpkg --print-foreign-architectures | grep -qx arm64; then
  log "adding the arm64 architecture (dpkg --add-architecture arm64)"
  as_root dpkg --add-architecture arm64
  NEED_UPDATE=1
fi

missing=()
for p in "${want[@]}"; do
  installed "$p" || missing+=("$p")
done

UPDATED=0
apt_update() {
  if [ "$UPDATED" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -q
    UPDATED=1
  fi
}

if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt_update
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
  for p in "${missing[@]}"; do
    installed "$p" || die "package $p still not installed"
  done
fi

# arm64 libsentencepiece for the cross-built tools and tests (downloaded,
# unpacked, not installed).
if [ "$HOST_ONLY" -eq 0 ] && [ "$NATIVE" != arm64 ] && [ ! -e "$ARM_SP" ]; then
  [ "$NEED_UPDATE" -eq 1 ] && apt_update
  mkdir -p "$DEPS/debs"
  rm -f "$DEPS"/debs/*.deb
  log "downloading libsentencepiece0:arm64 libsentencepiece-dev:arm64 into .deps/"
  dl() { (cd "$DEPS/debs" && apt-get download -q -o APT::Sandbox::User=root libsentencepiece0:arm64 libsentencepiece-dev:arm64); }
  if ! dl; then
    apt_update  # stale or missing arm64 package lists
    dl || die "apt-get download of libsentencepiece0:arm64 failed"
  fi
  rm -rf "$DEPS/arm64.tmp"
  for deb in "$DEPS"/debs/*.deb; do
    dpkg -x "$deb" "$DEPS/arm64.tmp"
  done
  rm -rf "$DEPS/arm64"
  mv "$DEPS/arm64.tmp" "$DEPS/arm64"
  [ -e "$ARM_SP" ] || die "$ARM_SP missing after unpacking"
  log "arm64 libsentencepiece in ${ARM_SP#"$ROOT"/}"
fi

log "all dependencies present"
