#!/usr/bin/env bash
# Builds distroless-pack and a first image on a fresh Debian 12 machine with
# only Rust installed (the README's first command):
#   1. installs musl-tools, golang-go and make (scripts/install-deps.sh --minimal)
#   2. cargo build --release
#   3. `distroless-pack build images/c-hello`: compiles the C example
#      statically (musl-gcc via make), verifies and packs it into
#      out/hello.tar, one archive that `docker load` and `podman load` both
#      take, and out/hello-oci, an OCI image layout
# With DP_MIRROR=DIR (scripts/mirror.sh) every crate comes from DIR and only
# Debian packages from the network (docs/hermetic.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib/mirror-env.sh
. "$root/scripts/lib/mirror-env.sh"
dp_mirror_setup
[ -z "${DP_MIRROR:-}" ] || echo "==> crates from the mirror $DP_MIRROR (CARGO_HOME=$CARGO_HOME)"

echo "==> installing musl-tools, golang-go and make"
bash scripts/install-deps.sh --minimal

echo "==> cargo build --release"
cargo build --release

dp="$root/target/release/distroless-pack"
mkdir -p out
rm -rf out/hello-oci out/hello.tar

echo "==> distroless-pack build images/c-hello --runner host --tag hello:latest"
# The main job in one command: compile the C project statically (musl-gcc,
# make), verify the binary, pack it, and write both outputs.
"$dp" build images/c-hello --runner host --tag hello:latest \
  --output docker-archive:out/hello.tar \
  --output oci:out/hello-oci:latest

echo "==> distroless-pack inspect docker-archive:out/hello.tar"
"$dp" inspect docker-archive:out/hello.tar

cat <<'MSG'

Done. The image is in out/hello.tar (docker archive) and out/hello-oci (OCI layout):
  docker load -i out/hello.tar && docker run --rm hello:latest
  podman load -i out/hello.tar && podman run --rm --pull=never hello:latest
  skopeo inspect oci:out/hello-oci:latest
  target/release/distroless-pack run oci:out/hello-oci:latest   # no engine needed
It prints: hello from distroless-pack
MSG
