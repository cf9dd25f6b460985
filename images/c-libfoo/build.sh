#!/usr/bin/env bash
# Builds libfoo.a (foo.c, `int add(int,int)`) with ar and links it statically
# into a program printing "add(2,3) = 5":
#   images/c-libfoo/build.sh [OUTPUT]   (default out/c-libfoo)
# ARCH=arm64 cross-compiles with zig cc (pip install ziglang) instead of musl-gcc.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-out/c-libfoo}"
mkdir -p "$(dirname "$out")"
case "${ARCH:-amd64}" in
  amd64 | x86_64)
    command -v musl-gcc >/dev/null || { echo "musl-gcc not found: apt-get install -y musl-tools" >&2; exit 1; }
    cc=(musl-gcc) ;;
  arm64 | aarch64) cc=(python3 -m ziglang cc -target aarch64-linux-musl) ;;
  *) echo "unsupported ARCH=${ARCH} (amd64 or arm64)" >&2; exit 2 ;;
esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"${cc[@]}" -O2 -c -o "$work/foo.o" "$here/foo.c"
ar rcs "$work/libfoo.a" "$work/foo.o"
"${cc[@]}" -static -O2 -s -o "$out" "$here/main.c" -L"$work" -lfoo
echo "$out"
