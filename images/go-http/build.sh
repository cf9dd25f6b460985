#!/usr/bin/env bash
# Builds the static Go HTTP server: images/go-http/build.sh [OUTPUT] (default out/go-http).
# ARCH=arm64 (or GOARCH=arm64) cross-compiles. Never -buildmode=pie (it adds an interpreter).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-out/go-http}"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
command -v go >/dev/null || { echo "go not found: apt-get install -y golang-go" >&2; exit 1; }
case "${ARCH:-${GOARCH:-amd64}}" in
  amd64 | x86_64) goarch=amd64 ;;
  arm64 | aarch64) goarch=arm64 ;;
  *) echo "unsupported ARCH=${ARCH:-$GOARCH} (amd64 or arm64)" >&2; exit 2 ;;
esac
cd "$here"
CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" \
  go build -trimpath -ldflags='-s -w' -o "$out" .
echo "$out"
