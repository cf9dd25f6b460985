#!/usr/bin/env bash
# Builds distroless-pack and a first image on a fresh Debian 12 machine with
# only Rust installed (the README's first command):
#   1. installs musl-tools and golang-go (scripts/install-deps.sh --minimal)
#   2. cargo build --release
#   3. builds images/c-hello (a musl-static C program) into out/hello
#   4. packs it: out/hello.tar, one archive that `docker load` and
#      `podman load` both take, and out/hello-oci, an OCI image layout
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "==> installing musl-tools and golang-go"
bash scripts/install-deps.sh --minimal

echo "==> cargo build --release"
cargo build --release

dp="$root/target/release/distroless-pack"
mkdir -p out
rm -rf out/hello-oci out/hello.tar

echo "==> building images/c-hello"
bash images/c-hello/build.sh out/hello

echo "==> distroless-pack pack out/hello --tag hello:latest"
"$dp" pack out/hello --tag hello:latest \
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
