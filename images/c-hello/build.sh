#!/usr/bin/env bash
# Builds the static C hello: images/c-hello/build.sh [OUTPUT] (default out/c-hello).
# ARCH=arm64 cross-compiles with zig cc (pip install ziglang) instead of musl-gcc.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-out/c-hello}"
mkdir -p "$(dirname "$out")"
case "${ARCH:-amd64}" in
  amd64 | x86_64)
    command -v musl-gcc >/dev/null || { echo "musl-gcc not found: apt-get install -y musl-tools" >&2; exit 1; }
    musl-gcc -static -O2 -s -o "$out" "$here/hello.c"
    ;;
  arm64 | aarch64)
    python3 -m ziglang cc -target aarch64-linux-musl -static -O2 -s -o "$out" "$here/hello.c"
    ;;
  *) echo "unsupported ARCH=${ARCH} (amd64 or arm64)" >&2; exit 2 ;;
esac
echo "$out"
