#!/usr/bin/env bash
# Installs every system package, toolchain target and tool that building the
# examples and running the test suite need, on Debian 12 with only Rust
# (rustup, cargo), gcc and python3/pip present.
#
#   scripts/install-deps.sh            everything the tests need
#   scripts/install-deps.sh --minimal  only what `scripts/example.sh` needs
#   scripts/install-deps.sh --debian   only the Debian packages of the full set
#
# Idempotent: each step checks first and does nothing when it is already done,
# so a second run takes about a second. Runs as root, or through sudo.
# The full log goes to $DP_DEPS_LOG (default target/install-deps.log).
# PyPI packages: the exact pins of scripts/python-requirements.txt. With
# DP_MIRROR=DIR (scripts/mirror.sh) they come from DIR and only Debian
# packages from the network. Rust targets are never downloaded (rustup's
# server is no registry; a prebuilt toolchain is not fetched): the ones
# installed are used, else Rust builds static glibc. See docs/hermetic.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
minimal=0
debian_only=0
for arg in "$@"; do
  case "$arg" in
    --minimal) minimal=1 ;;
    --debian) debian_only=1 ;;
    -h | --help)
      sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install-deps.sh: unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

# Debian packages. Every one of these was checked with `apt-cache policy` on
# Debian 12 (bookworm); see shared research notes / docs/architecture.md.
minimal_pkgs=(musl-tools golang-go make)
full_pkgs=(
  musl-tools golang-go
  skopeo umoci podman runc docker-registry oci-image-tool docker.io containerd
  apache2-utils qemu-user-static binfmt-support debootstrap bubblewrap
  pigz zstd hyperfine time openssl jq curl
  uidmap slirp4netns fuse-overlayfs iptables
  ca-certificates tzdata file binutils icu-devtools cmake make
  gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross
)
RUST_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
# shellcheck source=scripts/lib/mirror-env.sh
. "$root/scripts/lib/mirror-env.sh"
dp_mirror_setup

mkdir -p "$root/target"
log="${DP_DEPS_LOG:-$root/target/install-deps.log}"
: >"$log"
summary=()
warnings=0

note() { summary+=("$1"); }
warn() {
  summary+=("WARNING: $1")
  warnings=$((warnings + 1))
}
fail() {
  echo "install-deps.sh: $1" >&2
  echo "install-deps.sh: last lines of $log:" >&2
  tail -n 30 "$log" >&2 || true
  exit 1
}
# Runs a command with its output in the log.
logged() {
  echo "+ $*" >>"$log"
  "$@" >>"$log" 2>&1
}

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo -n)
  else
    fail "must run as root (or with sudo available) to install Debian packages"
  fi
fi
as_root() { logged "${sudo_cmd[@]}" "$@"; }

# --- Debian packages -------------------------------------------------------
if [ "$minimal" -eq 1 ]; then pkgs=("${minimal_pkgs[@]}"); else pkgs=("${full_pkgs[@]}"); fi
missing=()
for p in "${pkgs[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  note "apt: all ${#pkgs[@]} packages already installed"
else
  echo "install-deps.sh: installing ${#missing[@]} Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Without systemd, package scripts must not try to start dockerd/containerd:
  # the tests start their own daemons. Keep an existing policy-rc.d.
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 0755 $policy"
    added_policy=1
  fi
  as_root apt-get update || fail "apt-get update failed"
  if ! as_root apt-get install -y --no-install-recommends "${missing[@]}"; then
    [ "$added_policy" -eq 0 ] || as_root rm -f "$policy"
    fail "apt-get install failed"
  fi
  [ "$added_policy" -eq 0 ] || as_root rm -f "$policy"
  note "apt: installed ${missing[*]}"
fi

if [ "$minimal" -eq 1 ] || [ "$debian_only" -eq 1 ]; then
  printf 'install-deps.sh (%s): %s\n' "$([ "$minimal" -eq 1 ] && echo minimal || echo debian)" "${summary[@]}"
  exit 0
fi

# --- PyPI packages: zig (`zig cc` cross C builds), just, validators -----------
# The pins of scripts/python-requirements.txt, from PyPI or, with DP_MIRROR,
# from the mirror's wheels only.
pip_install() {
  logged python3 -m pip install --disable-pip-version-check --quiet "$@" ||
    logged python3 -m pip install --disable-pip-version-check --quiet --break-system-packages "$@"
}
# The pins not installed at exactly their version.
unmet="$(python3 "$dp_mirror_py" unmet "$dp_requirements")" || fail "cannot read $dp_requirements"
pip_wanted=()
[ -z "$unmet" ] || mapfile -t pip_wanted <<<"$unmet"
pip_from="PyPI"
[ -z "${DP_MIRROR:-}" ] || pip_from="the mirror $DP_MIRROR"
if [ "${#pip_wanted[@]}" -eq 0 ]; then
  note "pip: every pin of scripts/python-requirements.txt already installed"
elif pip_install "${dp_pip_source[@]}" -r "$dp_requirements"; then
  note "pip: installed ${pip_wanted[*]} from $pip_from"
else
  missing_dist="$(sed -n 's/.*No matching distribution found for \([^ ]*\).*/\1/p' "$log" | tail -n 1)"
  if [ -n "${DP_MIRROR:-}" ] && [ -n "$missing_dist" ]; then
    fail "wheel $missing_dist (a dependency of scripts/python-requirements.txt) is missing from the mirror $DP_MIRROR: re-run scripts/mirror.sh"
  fi
  fail "pip install -r scripts/python-requirements.txt failed (${pip_wanted[*]}) from $pip_from"
fi
zig_version="$(python3 -m ziglang version 2>/dev/null)" || fail "python3 -m ziglang does not run after installing ziglang"
note "zig: ziglang $zig_version (python3 -m ziglang cc)"

# --- Rust musl targets ------------------------------------------------------
# Not downloaded: `rustup target add` fetches a prebuilt standard library
# from rustup's own server, which is no package registry and no mirror can
# hold. A target already installed is used; without it, cargo projects build
# the gnu target with crt-static (static glibc), on every machine alike.
if command -v rustup >/dev/null 2>&1; then
  installed_targets="$(rustup target list --installed 2>/dev/null || true)"
  for t in "${RUST_TARGETS[@]}"; do
    if grep -qx "$t" <<<"$installed_targets"; then
      note "rust: target $t installed (used by musl builds)"
    else
      note "rust: target $t not installed (not downloaded): Rust examples build static glibc"
    fi
  done
fi

# --- tools built from crates.io (DP_CARGO_TOOLS, scripts/lib/mirror-env.sh) --
# cargo-auditable (the tests' binaries with a .dep-v0 section) and
# ferro-oci-server (a registry with the referrers API). Built from crates.io
# (or the mirror's local registry) at the exact version, with the crate's
# own Cargo.lock: a source build, no downloaded binary. Into ~/.cargo/bin
# (beside cargo, on PATH) even when DP_MIRROR moved CARGO_HOME.
cargo_root="${DP_CARGO_INSTALL_ROOT:-$HOME/.cargo}"
for tool in "${DP_CARGO_TOOLS[@]}"; do
  name="${tool%@*}"
  version="${tool#*@}"
  if command -v "$name" >/dev/null 2>&1 &&
    cargo install --list --root "$cargo_root" 2>/dev/null | grep "^$name v$version:" >/dev/null; then
    note "$name: $version already installed"
  elif logged cargo install --locked --root "$cargo_root" --version "$version" "$name"; then
    note "$name: installed $version"
  else
    fail "cargo install --locked --version $version $name failed"
  fi
done

# --- tools of this repository (DP_LOCAL_TOOLS, scripts/lib/mirror-env.sh) ---
# oci-client-discover: the ORAS project's Rust client, for the referrers
# tests. Built from its own Cargo.lock (crates.io or the mirror) in
# target/tools, and installed again on every run: cargo rebuilds only what
# changed, so an edited tool is never left stale (under a second when
# nothing did).
for dir in "${DP_LOCAL_TOOLS[@]}"; do
  name="${dir##*/}"
  if logged cargo install --locked --force --root "$cargo_root" --target-dir "$root/target/tools" --path "$root/$dir"; then
    note "$name: installed from $dir"
  else
    fail "cargo install --locked --path $dir failed"
  fi
done

# --- just (the justfile's runner; Debian 12 has no package) -------------------
# From the rust-just wheel above (no `cargo install`: every tool comes pinned
# from a registry the mirror holds).
if command -v just >/dev/null 2>&1; then
  note "just: $(just --version)"
else
  warn "just is installed (rust-just) but not on PATH (pip's scripts folder): run scripts/*.sh directly instead of just recipes"
fi

# --- sanity: the tools the tests call ----------------------------------------
for tool in musl-gcc go skopeo umoci podman runc docker-registry oci-image-tool \
  dockerd docker htpasswd qemu-aarch64-static update-binfmts debootstrap bwrap \
  pigz zstd hyperfine jq curl openssl icupkg pyspdxtools ntia-checker cargo-auditable ferro-oci-server \
  oci-client-discover gcc cmake aarch64-linux-gnu-gcc aarch64-linux-gnu-objcopy; do
  command -v "$tool" >/dev/null 2>&1 || fail "tool $tool is still missing after installing packages"
done

printf 'install-deps.sh: %s\n' "${summary[@]}"
echo "install-deps.sh: done ($warnings warnings); log: $log"
