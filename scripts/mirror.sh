#!/usr/bin/env bash
# Writes the offline mirror: one folder with every crate and wheel that
# building distroless-pack and running its whole suite fetch from a registry
# other than Debian's apt (docs/hermetic.md).
#
#   scripts/mirror.sh OUT        make or refresh the mirror in OUT
#
#   OUT/crates/    a cargo local registry: NAME-VERSION.crate (compressed, as
#                  crates.io serves them) and index/ (crates.io's index lines
#                  of exactly those versions), for every Cargo.lock of the
#                  repo (git ls-files) and every cargo project without one
#   OUT/wheels/    the wheels of scripts/python-requirements.txt and their
#                  dependencies, for CPython $DP_MIRROR_PYTHON (3.11) on
#                  linux x86_64
#   OUT/MANIFEST   kind, name, version, sha256, size and path of each file,
#                  and the total size
#
# Needs crates.io and PyPI (the only run that does); use the result with
# DP_MIRROR=OUT scripts/test.sh (or example.sh, install-deps.sh,
# offline-check.sh). A second run only fetches what changed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/mirror-env.sh
. "$root/scripts/lib/mirror-env.sh"

case "${1:-}" in
  -h | --help)
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  "" | -*)
    echo "usage: scripts/mirror.sh OUT (try --help)" >&2
    exit 2
    ;;
esac
[ "$#" -eq 1 ] || {
  echo "usage: scripts/mirror.sh OUT (one folder; try --help)" >&2
  exit 2
}
out="$1"
if [ -e "$out" ] && [ ! -d "$out" ]; then
  echo "mirror.sh: $out exists and is not a folder" >&2
  exit 2
fi
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/MANIFEST" ]; then
  echo "mirror.sh: $out is not empty and holds no MANIFEST: not overwriting a folder that is not a mirror" >&2
  exit 2
fi
mkdir -p "$out/crates"
out="$(cd "$out" && pwd)"
started=$(date +%s)
export DP_MIRROR_WHO=mirror.sh
py_version="${DP_MIRROR_PYTHON:-3.11}"

# The mirror is made from the registries themselves: never from another
# mirror (ours or a DP_MIRROR given to this shell).
unset DP_MIRROR
fetch_home="${CARGO_HOME:-$HOME/.cargo}"
if [ -f "$fetch_home/.dp-mirror-home" ]; then
  fetch_home="$HOME/.cargo"
fi
export CARGO_HOME="$fetch_home"

work="$(mktemp -d "${TMPDIR:-/tmp}/dp-mirror.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- crates ------------------------------------------------------------------
mapfile -t locks < <(dp_cargo_locks)
mapfile -t lockless < <(dp_cargo_lockless)
lock_paths=()
for lock in "${locks[@]}"; do
  echo "mirror.sh: cargo fetch --locked ($lock)" >&2
  (cd "$root" && cargo fetch --locked --quiet --manifest-path "$(dirname "$lock")/Cargo.toml") || {
    echo "mirror.sh: cargo fetch failed for $lock" >&2
    exit 1
  }
  lock_paths+=("$root/$lock")
done
# A project without a lock file (a test fixture) gets the lock cargo resolves
# today, made in a copy so the checkout stays as it is. Building it from the
# mirror later resolves to the same versions: they are the only ones there.
n=0
for manifest in "${lockless[@]}"; do
  [ -n "$manifest" ] || continue
  n=$((n + 1))
  dir="$(dirname "$manifest")"
  copy="$work/project-$n"
  mkdir -p "$copy"
  (cd "$root/$dir" && tar --exclude=./target -cf - .) | tar -C "$copy" -xf -
  echo "mirror.sh: cargo generate-lockfile ($manifest has no Cargo.lock)" >&2
  if ! (cd "$copy" && cargo generate-lockfile --quiet && cargo fetch --locked --quiet) 2>"$work/err-$n"; then
    # A fixture that is broken on purpose (the tests check cargo's error)
    # needs no crates; say so loudly rather than fail.
    echo "mirror.sh: WARNING: skipping $manifest: cargo cannot resolve it:" >&2
    sed 's/^/  /' "$work/err-$n" >&2
    continue
  fi
  mkdir -p "$work/locks/$dir"
  cp "$copy/Cargo.lock" "$work/locks/$dir/Cargo.lock"
  lock_paths+=("$work/locks/$dir/Cargo.lock")
done
# The crate-built tools (DP_CARGO_TOOLS; scripts/install-deps.sh: `cargo
# install --locked`) build from the Cargo.lock inside their own .crate:
# fetch each crate, then that lock.
for tool in "${DP_CARGO_TOOLS[@]}"; do
  name="${tool%@*}"
  version="${tool#*@}"
  tdir="$work/tools/$name"
  mkdir -p "$tdir/src"
  printf '[package]\nname = "dp-fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' \
    "$name" "$name" "$version" >"$tdir/Cargo.toml"
  : >"$tdir/src/lib.rs"
  echo "mirror.sh: cargo fetch $name-$version (its own lock)" >&2
  (cd "$tdir" && cargo fetch --quiet) || {
    echo "mirror.sh: cargo fetch failed for $name-$version" >&2
    exit 1
  }
  crate_file="$(find "$fetch_home/registry/cache" -name "$name-$version.crate" -print -quit)"
  [ -n "$crate_file" ] || {
    echo "mirror.sh: $name-$version.crate not in $fetch_home/registry/cache" >&2
    exit 1
  }
  tar -xzf "$crate_file" -C "$tdir"
  [ -f "$tdir/$name-$version/Cargo.lock" ] || {
    echo "mirror.sh: $name-$version.crate has no Cargo.lock: \`cargo install --locked\` could not use it" >&2
    exit 1
  }
  (cd "$tdir/$name-$version" && cargo fetch --locked --quiet) || {
    echo "mirror.sh: cargo fetch --locked failed for $name-$version" >&2
    exit 1
  }
  # the tool's own crate: its entry alone from the fetch project's lock (the
  # rest of that lock is a fresh resolution of the tool as a library, which
  # `cargo install --locked` never uses)
  python3 - "$tdir/Cargo.lock" "$name" "$version" >"$tdir/self.lock" <<'PY'
import sys, tomllib
lock, name, version = sys.argv[1:]
with open(lock, "rb") as f:
    pkg = next(p for p in tomllib.load(f)["package"] if p["name"] == name and p["version"] == version)
print("version = 3\n\n[[package]]")
for key in ("name", "version", "source", "checksum"):
    print(f'{key} = "{pkg[key]}"')
PY
  lock_paths+=("$tdir/$name-$version/Cargo.lock" "$tdir/self.lock")
done
echo "mirror.sh: writing the local registry $out/crates" >&2
python3 "$dp_mirror_py" crates "$out/crates" "$fetch_home" "${lock_paths[@]}"

# --- wheels ------------------------------------------------------------------
# pip takes only the exact tags given: every manylinux level a Debian 12
# (glibc 2.36) machine runs, and the legacy names (manylinux2014 implies
# 2010 and 1).
platforms=(--platform linux_x86_64 --platform manylinux2014_x86_64)
for minor in $(seq 5 36); do
  platforms+=(--platform "manylinux_2_${minor}_x86_64")
done
echo "mirror.sh: pip download -r scripts/python-requirements.txt (CPython $py_version, linux x86_64)" >&2
rm -rf "$out/wheels.new"
if ! python3 -m pip download --disable-pip-version-check --quiet \
  --only-binary=:all: --implementation cp --python-version "$py_version" "${platforms[@]}" \
  -r "$dp_requirements" -d "$out/wheels.new"; then
  rm -rf "$out/wheels.new"
  echo "mirror.sh: pip download failed (see above)" >&2
  exit 1
fi
rm -rf "$out/wheels"
mv "$out/wheels.new" "$out/wheels"

# --- manifest ------------------------------------------------------------------
python3 "$dp_mirror_py" manifest "$out"
echo "mirror.sh: done in $(($(date +%s) - started))s: $out ($(du -sh "$out" | cut -f1) on disk)" >&2
grep '^# ' "$out/MANIFEST" | sed 's/^# /  /' >&2
