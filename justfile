# distroless-pack: every workflow in one place; CI runs `scripts/test.sh`
# through .ci/run, the same script as `just test`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Build the workspace (debug).
build:
    cargo build --workspace --all-targets

# Install what the example needs, build the tool and pack images/c-hello into out/.
example:
    bash scripts/example.sh

# Install every test dependency and run the whole test suite (args go to cargo test).
test *ARGS:
    bash scripts/test.sh {{ARGS}}

# The unit tests of every crate (and the binary's), nothing installed, no engine started.
unit *ARGS:
    cargo test --workspace --lib --bins {{ARGS}}
    cargo test -p distroless-pack-ship --test formats {{ARGS}}

# Format check and clippy with warnings as errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    for p in fuzz tools/oci-client-discover; do cargo fmt --manifest-path $p/Cargo.toml -- --check && cargo clippy --locked --manifest-path $p/Cargo.toml --target-dir target/side/$(echo $p | tr / -) -- -D warnings; done

# Format the code.
fmt:
    cargo fmt --all

# Install every system package and tool the tests use.
deps:
    bash scripts/install-deps.sh

# Write the offline mirror (every crate and wheel) into OUT: `just mirror ../shared/offline`.
mirror OUT:
    bash scripts/mirror.sh {{OUT}}

# Prove the mirror is enough: the tool, example.sh and a part of the suite with the network cut.
offline-check MIRROR:
    bash scripts/offline-check.sh {{MIRROR}}

# Start, stop or query the test services: `just services start docker`.
services *ARGS:
    bash scripts/services.sh {{ARGS}}

# Benchmark pack (gzip, zstd, cached) against docker/podman build+save, umoci and tar|pigz on a ~100 MB static binary; exits 1 on a missed target.
bench-pack:
    bash scripts/bench-pack.sh

# Benchmark push against skopeo copy to a local registry.
bench-push:
    bash scripts/bench-push.sh

# Time to first answer of the real NativeAOT web app, WorkingDir /app vs / (docs/benchmarks.md).
bench-dotnet-startup:
    bash scripts/bench-dotnet-startup.sh

# The .NET NativeAOT end-to-end check, for a machine with docker and internet access (see docs/dotnet.md).
e2e-dotnet:
    bash scripts/e2e-dotnet.sh
