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
    if ctx.config.offline() {
        if ctx.dir.join("vendor/modules.txt").is_file() {
            plan.env.push(("GOFLAGS".into(), "-mod=vendor".into()));
            plan.notes
                .push("offline: Go modules from vendor/ (-mod=vendor)".to_string());
        } else {
            plan.env.push(("GOPROXY".into(), "off".into()));
            plan.notes.push(
                "offline: Go modules from the module cache only (GOPROXY=off; no vendor/modules.txt)"
                    .to_string(),
            );
        }
    }
    cmd.push("-o");
    cmd.push(output.clone());
    cmd.push(package);
    plan.steps.push(cmd.into());
    let info = ctx.out_path(crate::inputs::GO_BUILDINFO_FILE);
    plan.epilogue.push(format!(
        "go version -m {} > {} 2>/dev/null || true",
        crate::shell::quote(&output),
        crate::shell::quote(&info)
    ));
    plan.versions.extend(crate::inputs::version_lines(
        &ctx.out_path(crate::inputs::TOOLCHAIN_FILE),
        &[("go", "go version")],
    ));
    Ok(plan)
}

/// The module an offline build could not get, from go's error output:
/// `M@V: module lookup disabled by GOPROXY=off`, or that error after
/// `go: downloading M V`, or `import lookup disabled by -mod=vendor`.
pub fn missing_dependency(log: &str) -> Option<(String, String)> {
    let mut downloading: Option<String> = None;
    let hint_proxy = "vendor it (`go mod vendor` with network access, then commit vendor/), or fill the module cache once (`go mod download`), then build again";
    for l in log.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("go: downloading ") {
            downloading = Some(rest.replace(' ', "@"));
            continue;
        }
        if l.contains("module lookup disabled by GOPROXY=off") {
            let before = l.split(": module lookup disabled").next().unwrap_or("");
            let named = before
                .rsplit(": ")
                .next()
                .filter(|m| m.contains('@'))
                .map(str::to_string);
            let module = named
                .or_else(|| downloading.clone())
                .unwrap_or_else(|| "a module".to_string());
            return Some((format!("the Go module {module}"), hint_proxy.to_string()));
        }
        if l.contains("missing go.sum entry for module providing package") {
            let pkg = l
                .split("providing package ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("?");
            return Some((
                format!("the Go package {pkg} (no go.sum entry)"),
                "run `go mod tidy` with network access and commit go.sum, or vendor it (`go mod vendor`)".to_string(),
            ));
        }
        if l.contains("lookup disabled by -mod=vendor") {
            let pkg = l
                .split("providing package ")
                .nth(1)
                .and_then(|r| r.split(':').next())
                .unwrap_or("?")
                .trim();
            return Some((
                format!("the Go package {pkg} (not in vendor/)"),
                "run `go mod vendor` with network access and commit vendor/, then build again"
                    .to_string(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BuildConfig, Platform};

    #[test]
    fn command_line() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("go.mod"),
            "module example.com/x/go-http\n\ngo 1.19\n",
        )
        .unwrap();
        std::fs::write(t.path().join("main.go"), "package main\n").unwrap();
        let cfg = BuildConfig::default();
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

    #[test]
    fn offline_missing_module_is_named() {
        let log = "go: downloading example.com/dp/greet v0.1.0\nmain.go:6:2: module lookup disabled by GOPROXY=off\n";
        let (dep, hint) = missing_dependency(log).unwrap();
        assert_eq!(dep, "the Go module example.com/dp/greet@v0.1.0");
        assert!(hint.contains("go mod vendor"), "{hint}");
        let log = "go: example.com/x@v1.2.3: module lookup disabled by GOPROXY=off\n";
        assert_eq!(
            missing_dependency(log).unwrap().0,
            "the Go module example.com/x@v1.2.3"
        );
        assert_eq!(missing_dependency("main.go:3: undefined: x"), None);
    }
}
