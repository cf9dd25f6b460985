#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine with only Rust:
#   scripts/test.sh                  everything (what .ci/run and `just test` run)
#   scripts/test.sh -- FILTER        only tests whose path contains FILTER
# Installs every dependency (scripts/install-deps.sh), registers qemu-aarch64
# with binfmt_misc, starts the test dockerd (scripts/services.sh), lints
# (rustfmt, clippy -D warnings), builds, runs
# `cargo test --workspace --all-targets` and the doc tests, then stops the
# dockerd it started. Exits non-zero on any failure. The last line is
# "tests: N passed, N failed, N skipped", summed over every test binary.
# With DP_MIRROR=DIR (scripts/mirror.sh; .ci/run sets it to ../shared/offline
# when that folder exists) every crate and wheel comes from DIR, for the
# tests' own cargo runs too, and only Debian packages from the network
# (docs/hermetic.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib/mirror-env.sh
. "$root/scripts/lib/mirror-env.sh"
dp_mirror_setup
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
started=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }

if [ -n "${DP_MIRROR:-}" ]; then
  step "crates and wheels from the mirror $DP_MIRROR (CARGO_HOME=$CARGO_HOME)"
fi

step "installing dependencies"
bash scripts/install-deps.sh

step "enabling arm64 binaries (qemu-user-static through binfmt_misc)"
bash scripts/services.sh binfmt

step "starting the test dockerd"
started_docker=0
if bash scripts/services.sh status docker; then
  echo "test dockerd already running: it is left running at the end"
else
  bash scripts/services.sh start docker
  started_docker=1
fi
bash scripts/services.sh start podman
cleanup() {
  if [ "$started_docker" -eq 1 ]; then
    bash scripts/services.sh stop docker || true
  fi
  bash scripts/services.sh stop rootless-podman || true
}
trap cleanup EXIT

step "lint: cargo fmt --check, cargo clippy -D warnings (as \`just lint\`)"
# Lint findings fail the run. A toolchain without the rustfmt or clippy
# component (both are in rustup's default profile) cannot lint: that is said
# loudly, and the tests still run.
# The cargo projects outside the workspace, each with its own lock file:
# the fuzz targets and the test tools (checked on stable; their own target
# folders under target/).
side_projects=(fuzz tools/oci-client-discover)
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all -- --check
  for p in "${side_projects[@]}"; do
    cargo fmt --manifest-path "$p/Cargo.toml" -- --check
  done
else
  echo "WARNING: rustfmt is not installed (rustup component add rustfmt): formatting not checked" >&2
fi
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --workspace --all-targets -- -D warnings
  for p in "${side_projects[@]}"; do
    cargo clippy --locked --manifest-path "$p/Cargo.toml" --target-dir "target/side/${p//\//-}" -- -D warnings
  done
else
  echo "WARNING: clippy is not installed (rustup component add clippy): lints not checked" >&2
fi

step "building"
cargo build --workspace --all-targets

log="$root/target/test.log"
status=0
if [ "$#" -gt 0 ]; then
  step "cargo test --workspace --all-targets $*"
  cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
else
  step "cargo test --workspace --doc"
  cargo test --workspace --doc 2>&1 | tee "$log" || status=$?
  step "cargo test --workspace --all-targets"
  cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee -a "$log" || status=$?
fi

# One closing line for the whole run: the sum of every "test result:" line.
read -r passed failed ignored < <(
  sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' "$log" |
    awk '{p+=$1; f+=$2; i+=$3} END {print p+0, f+0, i+0}'
)
# Stop the dockerd now (not in the EXIT trap) so the summary stays the last line.
cleanup
started_docker=0
elapsed=$(($(date +%s) - started))
echo
echo "test.sh: finished in ${elapsed}s; log: $log"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # A build error or a crashed test binary reports no failed count: count it.
  failed=1
fi
echo "tests: $passed passed, $failed failed, $ignored skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
