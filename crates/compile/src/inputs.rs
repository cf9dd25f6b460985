//! What a build used: the third-party packages compiled into the binary,
//! the toolchain versions and the builder image ([`PinnedInputs`], whose
//! types live in `distroless_pack_image::inputs` so that the sbom stage
//! reads what this one writes).
//!
//! - Cargo: the packages of the binary's own graph are those cargo compiled
//!   (its `compiler-artifact` messages, which the build records anyway: the
//!   target's dependencies with the features chosen, nothing of other
//!   platforms or dev-dependencies); versions, sources and checksums come
//!   from `Cargo.lock`, read with the `cargo-lock` crate.
//! - Go: `go version -m BINARY` (the build info the linker embeds).
//! - .NET: the `package` libraries of `obj/project.assets.json`.
//!
//! Packages of the project itself (cargo path dependencies, the Go main
//! module) are not inputs and are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub use distroless_pack_image::inputs::{
    BuilderImage, Ecosystem, Package, PinnedInputs, SourceTree, StaticLibrary,
};

/// Name of the file the build script writes tool versions into (in OUT).
pub const TOOLCHAIN_FILE: &str = "distroless-pack-toolchain.txt";
/// Name of the file holding `go version -m` of the binary (in OUT).
pub const GO_BUILDINFO_FILE: &str = "distroless-pack-go-buildinfo.txt";

/// Shell lines that write `NAME<TAB>first line of COMMAND` for each tool
/// into `file`; a tool that does not answer is skipped.
pub fn version_lines(file: &str, tools: &[(&str, &str)]) -> Vec<String> {
    let mut lines = vec![format!(": > {}", crate::shell::quote(file))];
    for (name, cmd) in tools {
        lines.push(format!(
            "v=$({cmd} 2>/dev/null | head -n 1) && [ -n \"$v\" ] && printf '%s\\t%s\\n' {} \"$v\" >> {} || true",
            crate::shell::quote(name),
            crate::shell::quote(file)
        ));
    }
    lines
}

/// Reads the toolchain file the script wrote.
pub fn read_toolchain(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// `(name, version, source)` from a cargo package ID, in either format:
/// `registry+https://github.com/rust-lang/crates.io-index#itoa@1.0.11`
/// (cargo 1.77+) or `itoa 1.0.11 (registry+https://...)`.
pub fn parse_cargo_package_id(id: &str) -> Option<(String, String, String)> {
    if let Some((source, rest)) = id.rsplit_once('#') {
        // `source#name@version`, or `source#version` when the name is the
        // URL's last path element.
        let (name, version) = match rest.split_once('@') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => {
                let path = source.split(['?', '#']).next().unwrap_or(source);
                let name = path.trim_end_matches('/').rsplit('/').next()?.to_string();
                (name, rest.to_string())
            }
        };
        return Some((name, version, source.to_string()));
    }
    let mut parts = id.splitn(3, ' ');
    let name = parts.next()?.to_string();
    let version = parts.next()?.to_string();
    let source = parts
        .next()?
        .trim_start_matches('(')
        .trim_end_matches(')')
        .to_string();
    Some((name, version, source))
}

/// The third-party crates cargo compiled, from its JSON messages, with the
/// checksums of `Cargo.lock` (when there is one).
pub fn cargo_packages(messages: &str, lock: Option<&Path>) -> Vec<Package> {
    let mut seen = BTreeSet::new();
    for line in messages.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(id) = v["package_id"].as_str() else {
            continue;
        };
        if let Some((name, version, source)) = parse_cargo_package_id(id) {
            // The project's own packages are not inputs.
            if !source.starts_with("path+") {
                seen.insert((name, version, source));
            }
        }
    }
    let locked: BTreeMap<(String, String), (Option<String>, Option<String>)> = lock
        .and_then(|l| cargo_lock::Lockfile::load(l).ok())
        .map(|l| {
            l.packages
                .into_iter()
                .map(|p| {
                    (
                        (p.name.as_str().to_string(), p.version.to_string()),
                        (
                            p.source.map(|s| s.to_string()),
                            p.checksum.map(|c| format!("sha256:{c}")),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    seen.into_iter()
        .map(|(name, version, source)| {
            let (lsource, checksum) = locked
                .get(&(name.clone(), version.clone()))
                .cloned()
                .unwrap_or((None, None));
            Package {
                ecosystem: Ecosystem::Cargo,
                name,
                version,
                source: lsource.or(Some(source)),
                checksum,
                license: None,
            }
        })
        .collect()
}

/// The dependency modules in `go version -m` output (`dep` lines, with a
/// following `=>` line as the replacement).
pub fn go_packages(buildinfo: &str) -> Vec<Package> {
    let mut out: Vec<Package> = Vec::new();
    for line in buildinfo.lines() {
        let f: Vec<&str> = line.trim().split('\t').map(str::trim).collect();
        match f.first().copied() {
            Some("dep") if f.len() >= 3 => out.push(Package {
                ecosystem: Ecosystem::Golang,
                name: f[1].to_string(),
                version: f[2].to_string(),
                source: None,
                checksum: f.get(3).filter(|s| !s.is_empty()).map(|s| s.to_string()),
                license: None,
            }),
            Some("=>") if f.len() >= 2 => {
                if let Some(last) = out.last_mut() {
                    let repl = match f.get(2).filter(|v| !v.is_empty() && **v != "(devel)") {
                        Some(v) => format!("{}@{v}", f[1]),
                        None => f[1].to_string(),
                    };
                    last.source = Some(repl);
                    last.checksum = f.get(3).filter(|s| !s.is_empty()).map(|s| s.to_string());
                }
            }
            _ => {}
        }
    }
    out.sort();
    out
}

/// The go toolchain version from `go version -m` (`PATH: go1.19.8`).
pub fn go_version(buildinfo: &str) -> Option<String> {
    let first = buildinfo.lines().next()?;
    let v = first.rsplit(": ").next()?.trim();
    v.starts_with("go").then(|| v.to_string())
}

/// The NuGet packages of a restore (`obj/project.assets.json`).
pub fn nuget_packages(assets: &str) -> Vec<Package> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(assets) else {
        return Vec::new();
    };
    let mut out: Vec<Package> = v["libraries"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, lib)| lib["type"] == "package")
        .filter_map(|(key, lib)| {
            let (name, version) = key.split_once('/')?;
            Some(Package {
                ecosystem: Ecosystem::Nuget,
                name: name.to_string(),
                version: version.to_string(),
                source: None,
                checksum: lib["sha512"].as_str().map(|s| format!("sha512-{s}")),
                license: None,
            })
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_package_ids_in_both_formats() {
        assert_eq!(
            parse_cargo_package_id(
                "registry+https://github.com/rust-lang/crates.io-index#itoa@1.0.11"
            ),
            Some((
                "itoa".into(),
                "1.0.11".into(),
                "registry+https://github.com/rust-lang/crates.io-index".into()
            ))
        );
        assert_eq!(
            parse_cargo_package_id("path+file:///src/app#0.1.0").map(|p| p.0),
            Some("app".into())
        );
        assert_eq!(
            parse_cargo_package_id(
                "itoa 1.0.11 (registry+https://github.com/rust-lang/crates.io-index)"
            )
            .map(|p| (p.0, p.1)),
            Some(("itoa".into(), "1.0.11".into()))
        );
    }

    #[test]
    fn cargo_packages_leave_out_the_project_and_take_checksums_from_the_lock() {
        let t = tempfile::tempdir().unwrap();
        let lock = t.path().join("Cargo.lock");
        std::fs::write(
            &lock,
            "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"itoa\"]\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0.11\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"49f1f14873335454500d59611f1cf4a4b0f786f9ac11f4312a78e4cf2566695b\"\n\n[[package]]\nname = \"unused\"\nversion = \"2.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
        )
        .unwrap();
        let messages = [
            r#"{"reason":"compiler-artifact","package_id":"registry+https://github.com/rust-lang/crates.io-index#itoa@1.0.11","target":{"kind":["lib"]}}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///src/app#0.1.0","target":{"kind":["bin"]}}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        let p = cargo_packages(&messages, Some(&lock));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].name, "itoa");
        assert_eq!(p[0].version, "1.0.11");
        assert_eq!(
            p[0].checksum.as_deref(),
            Some("sha256:49f1f14873335454500d59611f1cf4a4b0f786f9ac11f4312a78e4cf2566695b")
        );
    }

    #[test]
    fn go_buildinfo_deps_and_replacements() {
        let info = "/out/app: go1.19.8\n\tpath\texample.com/app\n\tmod\texample.com/app\t(devel)\t\n\tdep\texample.com/a\tv0.1.0\th1:abc=\n\tdep\texample.com/b\tv1.2.0\t\n\t=>\t../b\t(devel)\t\n\tbuild\t-compiler=gc\n";
        let p = go_packages(info);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("example.com/a", "v0.1.0")
        );
        assert_eq!(p[0].checksum.as_deref(), Some("h1:abc="));
        assert_eq!(p[1].source.as_deref(), Some("../b"));
        assert_eq!(go_version(info).as_deref(), Some("go1.19.8"));
    }

    #[test]
    fn nuget_assets_list_packages_only() {
        let assets = r#"{"version":3,"libraries":{
          "Microsoft.DotNet.ILCompiler/8.0.11":{"sha512":"abc==","type":"package"},
          "Lib/1.0.0":{"type":"project","path":"../Lib/Lib.csproj"}}}"#;
        let p = nuget_packages(assets);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "Microsoft.DotNet.ILCompiler");
        assert_eq!(p[0].version, "8.0.11");
        assert_eq!(p[0].checksum.as_deref(), Some("sha512-abc=="));
    }

    #[test]
    fn toolchain_file_lines() {
        let t = read_toolchain("rustc\trustc 1.95.0\ncargo\t\n");
        assert_eq!(t.len(), 1);
        assert_eq!(t["rustc"], "rustc 1.95.0");
    }
}
