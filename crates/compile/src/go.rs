//! Go modules: `CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'`,
//! GOARCH from the platform, and never `-buildmode=pie` (it adds an
//! interpreter): `-buildmode=exe` is passed explicitly.

use std::path::Path;

use crate::error::BuildError;
use crate::shell::Cmd;
use crate::{Ctx, Locate, Plan, Tool};

/// GOARCH for a platform architecture.
pub fn goarch(arch: &str) -> &str {
    match arch {
        "amd64" => "amd64",
        "arm64" => "arm64",
        other => other,
    }
}

/// The `module` path from go.mod.
pub fn module_path(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("go.mod")).ok()?;
    text.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("module")
            .map(|m| m.trim().trim_matches('"').to_string())
            .filter(|m| !m.is_empty())
    })
}

fn has_go_files(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".go") && !n.ends_with("_test.go")
        })
}

/// The main package: configured, else `.`, else the one `cmd/*`.
pub fn main_package(dir: &Path, configured: Option<&str>) -> Result<String, BuildError> {
    if let Some(p) = configured {
        return Ok(p.to_string());
    }
    if has_go_files(dir) {
        return Ok(".".to_string());
    }
    let mut cmds: Vec<String> = std::fs::read_dir(dir.join("cmd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir() && has_go_files(&e.path()))
        .map(|e| format!("./cmd/{}", e.file_name().to_string_lossy()))
        .collect();
    cmds.sort();
    match cmds.len() {
        0 => Err(BuildError::Invalid(format!(
            "{}: no Go files at the top and no cmd/* package: set `go.package` in distroless-pack.toml",
            dir.display()
        ))),
        1 => Ok(cmds.remove(0)),
        _ => Err(BuildError::Ambiguous {
            what: "the Go main package".into(),
            candidates: cmds,
            key: "go.package".into(),
            flag: "--go-package".into(),
        }),
    }
}

/// The plan for a Go module.
pub fn plan(ctx: &Ctx) -> Result<Plan, BuildError> {
    let cfg = ctx.config.go.clone().unwrap_or_default();
    let package = main_package(ctx.dir, cfg.package.as_deref())?;
    let name = match &ctx.config.binary {
        Some(b) => b.clone(),
        None => {
            let from_pkg = package
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(".");
            if from_pkg != "." && !from_pkg.is_empty() {
                from_pkg.to_string()
            } else {
                module_path(ctx.dir)
                    .and_then(|m| m.rsplit('/').next().map(str::to_string))
                    .or_else(|| {
                        ctx.dir
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                    })
                    .unwrap_or_else(|| "app".to_string())
            }
        }
    };
    let output = ctx.out_path(&name);
    let mut plan = Plan::new(Locate::Exact(output.clone()));
    plan.tools
        .push(Tool::new("go", "apt-get install -y golang-go"));
    plan.env = vec![
        ("CGO_ENABLED".into(), "0".into()),
        ("GOOS".into(), "linux".into()),
        ("GOARCH".into(), goarch(ctx.arch()).into()),
        ("GOTOOLCHAIN".into(), "local".into()),
    ];
    let ldflags = cfg.ldflags.unwrap_or_else(|| "-s -w".to_string());
    let mut cmd = Cmd::new([
        "go",
        "build",
        "-trimpath",
        "-buildmode=exe",
        "-buildvcs=false",
    ]);
    cmd.push(format!("-ldflags={ldflags}"));
    if let Some(tags) = cfg.tags.filter(|t| !t.is_empty()) {
        cmd.push(format!("-tags={}", tags.join(",")));
    }
    cmd.push("-o");
    cmd.push(output);
    cmd.push(package);
    plan.steps.push(cmd.into());
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Platform};

    #[test]
    fn command_line() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("go.mod"),
            "module example.com/x/go-http\n\ngo 1.19\n",
        )
        .unwrap();
        std::fs::write(t.path().join("main.go"), "package main\n").unwrap();
        let cfg = Config::default();
        let p = Platform::linux("arm64");
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
            "go build -trimpath -buildmode=exe -buildvcs=false -ldflags=-s -w -o /out/go-http ."
        );
        assert!(plan.env.contains(&("GOARCH".into(), "arm64".into())));
        assert!(plan.env.contains(&("CGO_ENABLED".into(), "0".into())));
        assert_eq!(plan.locate, Locate::Exact("/out/go-http".into()));
        assert!(plan.script(None).contains("'-ldflags=-s -w'"));
    }
}
