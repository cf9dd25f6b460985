#!/usr/bin/env bash
# Proves the offline mirror is enough: with the network cut, distroless-pack
# builds from an empty CARGO_HOME and a representative part of the suite
# passes, taking every crate and wheel from the mirror (docs/hermetic.md).
#
#   DP_MIRROR=DIR scripts/offline-check.sh     (or: scripts/offline-check.sh DIR)
#
# 1. With the network: the Debian packages (scripts/install-deps.sh --debian),
#    the only thing fetched.
# 2. In a new network namespace (unshare --net) that has only loopback:
#    install-deps.sh (wheels from the mirror), a private dockerd and podman
#    configuration started in there (scripts/services.sh with their own
#    DISTROLESS_PACK_TEST_DIR, a new /tmp/dp-offline-check.* or
#    $DP_OFFLINE_TEST_DIR: no engine from outside is used), example.sh
#    (cargo build --release from an empty CARGO_HOME, then
#    `distroless-pack build images/c-hello`), `distroless-pack build` of a
#    Rust project with a crates.io dependency, every crate's unit tests, and
#    the integration tests matching $DP_OFFLINE_TESTS (default below) but not
#    $DP_OFFLINE_SKIP, both built in release on top of example.sh's build.
# Root is needed (unshare --net, dockerd). Log: target/offline-check.log.
# The last line is "tests: N passed, N failed, N skipped".
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

# Integration tests, by name filter (cargo test: a test runs when its path
# contains any filter and no skip): the modules for verify, pack, the sinks,
# build (C, Go, Rust, cmake, .NET plans), run and referrers (the registry
# with the referrers API is ferro-oci-server, built from the mirror), plus
# any test anywhere about offline builds or pinned inputs.
default_tests="verify:: pack:: inspect:: sinks:: build:: run:: referrers:: offline pinned"
# The container runner's tests (container_runner_*, container_offline_*) make their builder rootfs with debootstrap
# from Debian's archive at test time: reachable on the machines (Debian's
# archive is), not from inside a namespace without network.
default_skip="container_runner container_offline"
read -r -a test_filters <<<"${DP_OFFLINE_TESTS:-$default_tests}"
read -r -a test_skips <<<"${DP_OFFLINE_SKIP:-$default_skip}"

step() { printf '\n==> %s\n' "$*"; }

if [ "${1:-}" = "--inside" ]; then
  inside=1
  shift
else
  inside=0
  case "${1:-}" in
    -h | --help)
      sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "offline-check.sh: unknown option $1 (try --help)" >&2
      exit 2
      ;;
    ?*) export DP_MIRROR="$1" ;;
  esac
fi
if [ -z "${DP_MIRROR:-}" ]; then
  echo "offline-check.sh: give the mirror: DP_MIRROR=DIR scripts/offline-check.sh (make it with scripts/mirror.sh DIR)" >&2
  exit 2
fi
# shellcheck source=scripts/lib/mirror-env.sh
. "$root/scripts/lib/mirror-env.sh"

if [ "$inside" -eq 0 ]; then
  [ "$(id -u)" -eq 0 ] || {
    echo "offline-check.sh: needs root (unshare --net, dockerd)" >&2
    exit 2
  }
  command -v unshare >/dev/null && command -v ip >/dev/null || {
    echo "offline-check.sh: needs unshare (util-linux) and ip (iproute2)" >&2
    exit 2
  }
  dp_mirror_setup
  mkdir -p target
  log="$root/target/offline-check.log"
  started=$(date +%s)
  {
    step "with the network: Debian packages only (scripts/install-deps.sh --debian)"
    bash scripts/install-deps.sh --debian
  } 2>&1 | tee "$log"
  status=0
  step "cutting the network: unshare --net" | tee -a "$log"
  DP_OFFLINE_STARTED="$started" unshare --net -- bash "${BASH_SOURCE[0]}" --inside 2>&1 | tee -a "$log" ||
    status=$?
  [ "$status" -eq 0 ] || echo "offline-check.sh: FAILED (exit $status); log: $log" >&2
  exit "$status"
fi

# --- inside the namespace ------------------------------------------------------
ip link set lo up
links="$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')"
echo "network interfaces: $links(routes: $(ip route show | wc -l))"
[ "$links" = "lo " ] || {
  echo "offline-check.sh: expected only loopback in the namespace, found: $links" >&2
  exit 1
}
if getent hosts index.crates.io >/dev/null 2>&1 || getent hosts pypi.org >/dev/null 2>&1; then
  echo "offline-check.sh: a registry host name resolves inside the namespace: not offline" >&2
  exit 1
fi
echo "index.crates.io and pypi.org do not resolve: offline"

# Engines of our own, started in here; none from outside (the caller's
# DOCKER_HOST, podman configuration or the test dockerd's socket).
unset DOCKER_HOST CONTAINERS_CONF CONTAINERS_STORAGE_CONF REGISTRY_AUTH_FILE
# A fresh folder of our own, removed after a passing run (kept for the logs
# after a failing one); a DP_OFFLINE_TEST_DIR given is used and kept.
if [ -n "${DP_OFFLINE_TEST_DIR:-}" ]; then
  export DISTROLESS_PACK_TEST_DIR="$DP_OFFLINE_TEST_DIR"
  own_test_dir=0
else
  DISTROLESS_PACK_TEST_DIR="$(mktemp -d /tmp/dp-offline-check.XXXXXX)"
  export DISTROLESS_PACK_TEST_DIR
  own_test_dir=1
fi
export DP_DEPS_LOG="$root/target/offline-check-deps.log"

step "an empty CARGO_HOME (target/dp-mirror: only the config that replaces crates.io with the mirror)"
rm -rf target/dp-mirror
dp_mirror_setup
echo "CARGO_HOME=$CARGO_HOME: $(ls -A "$CARGO_HOME" | tr '\n' ' ')"
cat "$CARGO_HOME/config.toml"

# The crate-built tools (DP_CARGO_TOOLS: cargo-auditable, ferro-oci-server;
# DP_LOCAL_TOOLS: oci-client-discover)
# into a root of our own, first on PATH, so they are built here from the
# mirror even when the machine has them already.
export DP_CARGO_INSTALL_ROOT="$DISTROLESS_PACK_TEST_DIR/cargo-tools"
export PATH="$DP_CARGO_INSTALL_ROOT/bin:$PATH"

step "scripts/install-deps.sh (wheels and crate-built tools from the mirror; Debian packages already there)"
bash scripts/install-deps.sh
for tool in "${DP_CARGO_TOOLS[@]%@*}" "${DP_LOCAL_TOOLS[@]##*/}"; do
  [ -x "$DP_CARGO_INSTALL_ROOT/bin/$tool" ] || {
    echo "offline-check.sh: $tool was not built into $DP_CARGO_INSTALL_ROOT from the mirror" >&2
    exit 1
  }
done

step "engines, started inside the namespace ($DISTROLESS_PACK_TEST_DIR)"
bash scripts/services.sh binfmt
bash scripts/services.sh start docker
bash scripts/services.sh start podman
eval "$(bash scripts/services.sh env)"
cleanup() {
  bash scripts/services.sh stop docker || true
}
trap cleanup EXIT

step "scripts/example.sh (cargo build --release from the empty CARGO_HOME, distroless-pack build images/c-hello)"
bash scripts/example.sh
target/release/distroless-pack run oci:out/hello-oci:latest

step "distroless-pack build: a Rust project with a crates.io dependency (hex, from the mirror)"
dep_dir="$(mktemp -d /tmp/dp-offline-rust-dep.XXXXXX)"
mkdir -p "$dep_dir/src"
cat >"$dep_dir/Cargo.toml" <<'EOF'
[package]
name = "rust-dep"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
hex = "=0.4.3"

[workspace]
EOF
cat >"$dep_dir/src/main.rs" <<'EOF'
fn main() {
    println!("hex from the mirror: {}", hex::encode("dp"));
}
EOF
target/release/distroless-pack build "$dep_dir" --runner host --tag rust-dep:1 \
  --output "oci:$dep_dir/oci:1"
got="$(target/release/distroless-pack run "oci:$dep_dir/oci:1")"
echo "$got"
[ "$got" = "hex from the mirror: 6470" ] || {
  echo "offline-check.sh: the Rust project with a dependency printed '$got'" >&2
  exit 1
}
grep -A2 'name = "hex"' "$dep_dir/Cargo.lock"
rm -rf "$dep_dir"

log="$root/target/offline-check-tests.log"
: >"$log"
status=0
# The tests build in release, on top of example.sh's `cargo build --release`
# (a debug build would compile every crate a second time); the mirror is
# the same for either profile.
step "cargo test --release --workspace --lib --bins (every crate's unit tests)"
cargo test --release --workspace --lib --bins --no-fail-fast 2>&1 | tee -a "$log" || status=$?

skip_args=()
for s in "${test_skips[@]}"; do skip_args+=(--skip "$s"); done
step "cargo test --release --test integration -- ${test_filters[*]} ${skip_args[*]}"
cargo test --release --test integration --no-fail-fast -- "${test_filters[@]}" "${skip_args[@]}" 2>&1 |
  tee -a "$log" || status=$?

read -r passed failed ignored < <(
  sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' "$log" |
    awk '{p+=$1; f+=$2; i+=$3} END {print p+0, f+0, i+0}'
)
cleanup
trap - EXIT
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi
if [ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$own_test_dir" -eq 1 ]; then
  # dockerd leaves a mount or two (exec/netns/default) behind.
  while read -r _ mnt _; do
    case "$mnt" in "$DISTROLESS_PACK_TEST_DIR"/*) umount -l "$mnt" || true ;; esac
  done < <(tac /proc/mounts)
  rm -rf "$DISTROLESS_PACK_TEST_DIR" ||
    echo "offline-check.sh: WARNING: could not remove $DISTROLESS_PACK_TEST_DIR" >&2
fi
echo
echo "offline-check.sh: finished in $(($(date +%s) - ${DP_OFFLINE_STARTED:-$(date +%s)}))s with no network; log: target/offline-check.log"
echo "tests: $passed passed, $failed failed, $ignored skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
