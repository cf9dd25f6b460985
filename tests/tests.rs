//! End-to-end tests: each drives the real `distroless-pack` binary against
//! real consumers (skopeo, umoci, docker, podman, a registry, toolchains).
//! A missing tool fails the test with the package to install; nothing is
//! skipped silently. `scripts/test.sh` installs everything and runs them.

mod support;
mod util;

mod build;
mod cache;
mod cli;
mod depcheck;
mod dotnet;
mod gzip_members;
mod inspect;
mod pack;
mod push;
mod referrers;
mod run;
mod sbom;
mod sinks;
mod verify;
mod zstd;
