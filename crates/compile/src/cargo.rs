//! Cargo projects: `--target <arch>-unknown-linux-musl` when that target is
//! installed (always in the builder image), else, on the host and for the
//! host's own architecture, the gnu target with `-C target-feature=+crt-static`
//! (a static-pie glibc binary: the verifier's glibc warnings apply).

use std::path::PathBuf;

use crate::error::BuildError;
use crate::runner::which;
use crate::shell::Cmd;
use crate::{Ctx, Locate, Plan, Step, Tool};

/// The musl target triple for a platform architecture.
pub fn musl_target(arch: &str) -> &'static str {
    match arch {
        "arm64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

/// The gnu target triple for a platform architecture.
pub fn gnu_target(arch: &str) -> &'static str {
    match arch {
        "arm64" => "aarch64-unknown-linux-gnu",
        _ => "x86_64-unknown-linux-gnu",
    }
}

/// Whether the host's rustc has the standard library for `target`.
pub fn target_installed(target: &str) -> bool {
    let Ok(out) = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
    else {
        return false;
    };
    if !out.status.success() {
        return false;
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    sysroot
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

fn linker_var(target: &str) -> String {
    format!(
        "CARGO_TARGET_{}_LINKER",
        target.to_uppercase().replace('-', "_")
    )
}

/// The plan for a Cargo project.
pub fn plan(ctx: &Ctx) -> Result<Plan, BuildError> {
    let cfg = ctx.config.cargo.clone().unwrap_or_default();
    let musl = musl_target(ctx.arch());
    let messages = ctx.out_path("cargo-messages.json");
    let mut plan = Plan::new(Locate::CargoMessages(messages.clone()));
    plan.tools.push(Tool::new(
        "cargo",
        "install Rust with rustup (https://rustup.rs)",
    ));

    let target = if ctx.container || target_installed(musl) {
        musl.to_string()
    } else if ctx.native() && which("cargo").is_some() {
        let gnu = gnu_target(ctx.arch());
        plan.prelude.push(
            "export RUSTFLAGS=\"${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static\""
                .to_string(),
        );
        plan.notes.push(format!(
            "the Rust target {musl} is not installed: building {gnu} with -C target-feature=+crt-static (static glibc; run `rustup target add {musl}` for a musl binary)"
        ));
        gnu.to_string()
    } else if which("cargo").is_none() {
        return Err(BuildError::ToolMissing {
            tool: "cargo".into(),
            hint: "install Rust with rustup (https://rustup.rs) or use --runner container".into(),
        });
    } else {
        return Err(BuildError::ToolMissing {
            tool: format!("the Rust target {musl}"),
            hint: format!("rustup target add {musl}"),
        });
    };
    if target == musl && !ctx.native() {
        // Cross: rustc's self-contained musl objects with its own lld.
        let var = linker_var(musl);
        plan.prelude
            .push(format!(": \"${{{var}:=rust-lld}}\"; export {var}"));
    }

    let mut cmd = Cmd::new(["cargo", "build", "--locked"]);
    // `--locked` only when there is a lock file to honour.
    if !ctx.dir.join("Cargo.lock").is_file() {
        cmd.0.pop();
        if ctx.config.offline() {
            plan.notes.push(
                "offline build without a Cargo.lock: cargo resolves from what is cached (commit a Cargo.lock to pin the versions)".to_string(),
            );
        }
    }
    if ctx.config.offline() {
        cmd.push("--offline");
    }
    let profile = cfg.profile.unwrap_or_else(|| "release".to_string());
    cmd.push(format!("--profile={profile}"));
    cmd.push(format!("--target={target}"));
    cmd.push("--message-format=json-render-diagnostics");
    if let Some(p) = cfg.package {
        cmd.push(format!("--package={p}"));
    }
    if let Some(b) = &ctx.config.binary {
        cmd.push(format!("--bin={b}"));
    }
    if let Some(f) = cfg.features.filter(|f| !f.is_empty()) {
        cmd.push(format!("--features={}", f.join(",")));
    }
    if cfg.no_default_features == Some(true) {
        cmd.push("--no-default-features");
    }
    plan.steps.push(Step {
        cmd,
        stdout: Some(messages),
    });
    // The licenses of the graph (cargo metadata's `license`), for the SBOM;
    // everything is fetched by now, so it needs no network.
    plan.epilogue.push(format!(
        "cargo metadata --format-version=1 --offline{} > {} 2>/dev/null || true",
        if ctx.dir.join("Cargo.lock").is_file() {
            " --locked"
        } else {
            ""
        },
        crate::shell::quote(&ctx.out_path(crate::inputs::CARGO_METADATA_FILE))
    ));
    plan.versions.extend(crate::inputs::version_lines(
        &ctx.out_path(crate::inputs::TOOLCHAIN_FILE),
        &[("rustc", "rustc --version"), ("cargo", "cargo --version")],
    ));
    Ok(plan)
}

/// The crate an offline build could not get, from cargo's error output:
/// `no matching package named `X` found` or `failed to download `X vY``.
pub fn missing_dependency(log: &str) -> Option<(String, String)> {
    let between = |l: &str, start: &str| -> Option<String> {
        let rest = l.split(start).nth(1)?;
        let rest = rest.strip_prefix('`')?;
        Some(rest.split('`').next()?.to_string())
    };
    let krate = log.lines().find_map(|l| {
        let l = l.trim();
        if l.contains("no matching package named") {
            between(l, "no matching package named ")
        } else if l.contains("failed to download") {
            between(l, "failed to download ")
        } else if l.contains("failed to get") && l.contains("as a dependency") {
            between(l, "failed to get ")
        } else {
            None
        }
    })?;
    Some((
        format!("the crate `{krate}`"),
        "fetch it once with network access (`cargo fetch` fills CARGO_HOME), or vendor it into the project (`cargo vendor`, with the [source] replacement it prints in .cargo/config.toml), then build again".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BuildConfig, Platform};

    #[test]
    fn container_plan_uses_musl() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("Cargo.toml"), "").unwrap();
        let cfg = BuildConfig {
            binary: Some("hello".into()),
            ..BuildConfig::default()
        };
        let p = Platform::linux("amd64");
        let ctx = Ctx {
            dir: t.path(),
            config: &cfg,
            platform: &p,
            src: "/src".into(),
            out: "/out".into(),
            container: true,
        };
        let plan = plan(&ctx).unwrap();
        assert_eq!(
            plan.command_line(),
            "cargo build --profile=release --target=x86_64-unknown-linux-musl --message-format=json-render-diagnostics --bin=hello"
        );
        assert!(plan.script(None).contains("> /out/cargo-messages.json"));
    }

    #[test]
    fn offline_missing_crate_is_named() {
        let log =
            "error: no matching package named `itoa` found\nlocation searched: crates.io index\n";
        let (dep, hint) = missing_dependency(log).unwrap();
        assert_eq!(dep, "the crate `itoa`");
        assert!(hint.contains("cargo vendor"), "{hint}");
        let log = "error: failed to download `itoa v1.0.11`\n\nCaused by:\n  attempting to make an HTTP request, but --offline was specified\n";
        assert_eq!(
            missing_dependency(log).unwrap().0,
            "the crate `itoa v1.0.11`"
        );
        assert_eq!(missing_dependency("error[E0425]: cannot find value"), None);
    }
}
