# The tools the tests run that are built from crates.io, NAME@VERSION, each
# with the Cargo.lock packaged in its crate: scripts/install-deps.sh builds
# them with `cargo install --locked`, and the mirror (scripts/mirror.sh)
# holds their crates.
#   cargo-auditable   the tests build binaries with its .dep-v0 section
#   ferro-oci-server  a registry that serves the OCI 1.1 referrers API
#                     (tests/referrers.rs; docker-registry 2.8 has none)
DP_CARGO_TOOLS=(cargo-auditable@0.7.7 ferro-oci-server@1.0.0)
# The tools of this repository the tests run, each a cargo project with its
# own Cargo.lock (so the mirror holds its crates, as it does every tracked
# lock's): scripts/install-deps.sh builds them with `cargo install --locked
# --path`.
#   tools/oci-client-discover  lists referrers with the ORAS project's Rust
#                              client (tests/referrers.rs)
DP_LOCAL_TOOLS=(tools/oci-client-discover)
# Sourced by scripts/install-deps.sh, example.sh, test.sh, mirror.sh and
# offline-check.sh (not run on its own). Needs $root (the repository).
#
# dp_cargo_locks       the Cargo.lock files of the repo, one a line
# dp_cargo_lockless    the cargo projects of the repo without a Cargo.lock
# dp_mirror_setup      when DP_MIRROR=DIR is set: check DIR, then point cargo
#                      (CARGO_HOME=target/dp-mirror, whose config.toml
#                      replaces crates.io with DIR/crates) and pip
#                      (dp_pip_source) at it, and turn Go module downloads off
#
# See docs/hermetic.md.

dp_requirements="$root/scripts/python-requirements.txt"
dp_mirror_py="$root/scripts/lib/mirror.py"

# Tracked files matching the git pathspecs (every file when not a git clone).
dp_tracked() {
  if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$root" ls-files -- "$@"
  else
    local pat
    for pat in "$@"; do
      (cd "$root" && find . -path ./target -prune -o -name "${pat#\*}" -type f -print | sed 's|^\./||')
    done
  fi
}

dp_cargo_locks() {
  dp_tracked '*Cargo.lock' | sort -u
}

# Every cargo project (workspace root) whose root has no Cargo.lock: a test
# fixture, an example without a lock. mirror.sh resolves a lock for each.
dp_cargo_lockless() {
  local toml ws
  dp_tracked '*Cargo.toml' | while read -r toml; do
    ws="$(cd "$root" && cargo locate-project --workspace --message-format plain \
      --manifest-path "$toml" 2>/dev/null)" || ws="$root/$toml"
    ws="${ws#"$root"/}"
    [ -f "$root/$(dirname "$ws")/Cargo.lock" ] || echo "$ws"
  done | sort -u
}

# Sets CARGO_HOME, GOPROXY and dp_pip_source for DP_MIRROR, or does nothing
# when DP_MIRROR is unset. A mirror that lacks a crate of one of the repo's
# lock files, or a pinned wheel, fails here, before anything is built.
dp_pip_source=()
dp_mirror_setup() {
  [ -n "${DP_MIRROR:-}" ] || return 0
  local who="${0##*/}"
  if [ ! -d "$DP_MIRROR" ]; then
    echo "$who: DP_MIRROR=$DP_MIRROR is not a directory (make the mirror with scripts/mirror.sh DIR)" >&2
    exit 2
  fi
  DP_MIRROR="$(cd "$DP_MIRROR" && pwd)"
  export DP_MIRROR
  if [ ! -f "$DP_MIRROR/MANIFEST" ] || [ ! -d "$DP_MIRROR/crates/index" ] || [ ! -d "$DP_MIRROR/wheels" ]; then
    echo "$who: DP_MIRROR=$DP_MIRROR is not a mirror made by scripts/mirror.sh (no MANIFEST, crates/index or wheels/)" >&2
    exit 2
  fi
  local locks=()
  mapfile -t locks < <(dp_cargo_locks)
  local ok=1
  (cd "$root" && DP_MIRROR_WHO="$who" python3 "$dp_mirror_py" check-crates "$DP_MIRROR" "${locks[@]}") || ok=0
  DP_MIRROR_WHO="$who" python3 "$dp_mirror_py" check-wheels "$DP_MIRROR" "$dp_requirements" || ok=0
  [ "$ok" -eq 1 ] || exit 1

  # Cargo reads source replacement from config files only (no environment
  # variable sets a [source] table), and nested cargo runs (the tests build
  # Rust projects in temporary folders) find no project config: so a
  # CARGO_HOME of our own, inherited by every child, holds it. ~/.cargo is
  # left alone; the toolchain comes from RUSTUP_HOME as before.
  local home="$root/target/dp-mirror"
  mkdir -p "$home"
  cat >"$home/config.toml.tmp.$$" <<EOF
# Written by scripts/lib/mirror-env.sh for DP_MIRROR=$DP_MIRROR: every crate
# comes from the mirror (a cargo local registry), none from the network.
[source.crates-io]
replace-with = "dp-mirror"

[source.dp-mirror]
local-registry = "$DP_MIRROR/crates"
EOF
  mv -f "$home/config.toml.tmp.$$" "$home/config.toml"
  : >"$home/.dp-mirror-home"
  export CARGO_HOME="$home"
  # Go: the projects have no module dependencies; any attempt to fetch one
  # fails at once instead of reaching for a module proxy.
  export GOPROXY=off GOTOOLCHAIN=local
  # pip: wheels from the mirror only (--isolated: no PIP_* variables or
  # config files add an index or a find-links folder).
  dp_pip_source=(--isolated --no-index --find-links "$DP_MIRROR/wheels")
}
