#!/usr/bin/env bash
# Builds the static Rust hello: images/rust-hello/build.sh [OUTPUT] (default out/rust-hello).
# Uses the musl target when installed (rustup target add x86_64-unknown-linux-musl),
# else a crt-static glibc build (static-pie, no interpreter, no NEEDED).
# ARCH=arm64 needs the aarch64-unknown-linux-musl target (linked with rust-lld).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-out/rust-hello}"
mkdir -p "$(dirname "$out")"
case "${ARCH:-amd64}" in
  amd64 | x86_64) arch=x86_64 ;;
  arm64 | aarch64) arch=aarch64 ;;
  *) echo "unsupported ARCH=${ARCH} (amd64 or arm64)" >&2; exit 2 ;;
esac
installed="$(rustup target list --installed 2>/dev/null || true)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
if grep -qx "$arch-unknown-linux-musl" <<<"$installed"; then
  target="$arch-unknown-linux-musl"
  if [ "$arch" = aarch64 ]; then
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
  fi
  cargo build --quiet --release --manifest-path "$here/Cargo.toml" --target "$target"
elif [ "$arch" = x86_64 ]; then
  target=x86_64-unknown-linux-gnu
  echo "rust-hello: musl target not installed, building crt-static glibc instead" >&2
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --quiet --release --manifest-path "$here/Cargo.toml" --target "$target"
else
  echo "rust-hello: ARCH=arm64 needs: rustup target add aarch64-unknown-linux-musl" >&2
  exit 1
fi
cp "$CARGO_TARGET_DIR/$target/release/rust-hello" "$out"
echo "$out"
