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
/// Name of the file holding `cargo metadata` of the project (in OUT).
pub const CARGO_METADATA_FILE: &str = "distroless-pack-cargo-metadata.json";
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

/// `(name, version)` -> the `license` field of `cargo metadata`'s packages.
pub fn cargo_licenses(metadata: &str) -> BTreeMap<(String, String), String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(metadata) else {
        return BTreeMap::new();
    };
    v["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                (
                    p["name"].as_str()?.to_string(),
                    p["version"].as_str()?.to_string(),
                ),
                p["license"].as_str().filter(|l| !l.is_empty())?.to_string(),
            ))
        })
        .collect()
}

/// Sets each package's license from `licenses` (by name and version).
pub fn apply_licenses(packages: &mut [Package], licenses: &BTreeMap<(String, String), String>) {
    for p in packages {
        if let Some(l) = licenses.get(&(p.name.clone(), p.version.clone())) {
            p.license = Some(l.clone());
        }
    }
}

/// Name of the file holding the license lines of the nuspecs in the NuGet
/// global packages folder (in OUT), as `grep -H` prints them.
pub const NUSPEC_LICENSES_FILE: &str = "distroless-pack-nuspec-licenses.txt";

/// The shell line that collects the license lines of every nuspec in the
/// global packages folder (`$NUGET_PACKAGES`, else `~/.nuget/packages`),
/// which the build may see at a path the host cannot read.
pub fn nuspec_licenses_line(file: &str) -> String {
    format!(
        "grep -H '<license type=\"expression\"' \"${{NUGET_PACKAGES:-$HOME/.nuget/packages}}\"/*/*/*.nuspec > {} 2>/dev/null || true",
        crate::shell::quote(file)
    )
}

/// `(name, version)` (lowercase, as the packages folder names them) -> the
/// license expression, from the lines [`nuspec_licenses_line`] wrote
/// (`.../ID/VERSION/ID.nuspec:    <license type="expression">MIT</license>`).
pub fn nuget_licenses(lines: &str) -> BTreeMap<(String, String), String> {
    lines
        .lines()
        .filter_map(|l| {
            let (path, rest) = l.split_once(".nuspec:")?;
            let mut parts = path.rsplit('/');
            let _file = parts.next()?;
            let version = parts.next()?.to_lowercase();
            let id = parts.next()?.to_lowercase();
            Some(((id, version), nuspec_license(rest)?))
        })
        .collect()
}

/// Sets each NuGet package's license from [`nuget_licenses`] (ids and
/// versions compared without case).
pub fn apply_nuget_licenses(
    packages: &mut [Package],
    licenses: &BTreeMap<(String, String), String>,
) {
    for p in packages {
        if let Some(l) = licenses.get(&(p.name.to_lowercase(), p.version.to_lowercase())) {
            p.license = Some(l.clone());
        }
    }
}

/// The `<license type="expression">EXPR</license>` of a nuspec.
pub fn nuspec_license(nuspec: &str) -> Option<String> {
    let start = nuspec.find("<license")?;
    let rest = &nuspec[start..];
    let open_end = rest.find('>')?;
    let open = &rest[..open_end];
    if !open.contains("type=\"expression\"") || open.ends_with('/') {
        return None;
    }
    let body = &rest[open_end + 1..];
    let text = body[..body.find("</license>")?].trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The runtime packs of a restore (`downloadDependencies` of each target
/// framework in project.assets.json: the runtime and ILCompiler packs a
/// self-contained or NativeAOT publish takes), sorted.
pub fn runtime_packs(assets: &str) -> Vec<Package> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(assets) else {
        return Vec::new();
    };
    let mut out: Vec<Package> = v["project"]["frameworks"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, fw)| fw["downloadDependencies"].as_array().into_iter().flatten())
        .filter_map(|d| {
            let version = d["version"].as_str()?;
            // `[8.0.11]` or `[8.0.11, 8.0.11]`: an exact version.
            let version = version
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .next()?
                .trim();
            Some(Package {
                ecosystem: Ecosystem::Nuget,
                name: d["name"].as_str()?.to_string(),
                version: version.to_string(),
                source: None,
                checksum: None,
                license: None,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The SDK version of a restore, from the SDK's own path in
/// project.assets.json (`.../sdk/VERSION/...`).
pub fn dotnet_sdk_version(assets: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(assets).ok()?;
    v["project"]["frameworks"]
        .as_object()?
        .values()
        .find_map(|fw| {
            let p = fw["runtimeIdentifierGraphPath"].as_str()?;
            let after = p.split("/sdk/").nth(1)?;
            Some(after.split('/').next()?.to_string())
        })
}

/// Name of the file listing the static libraries of a C build (in OUT).
pub const STATIC_LIBRARIES_FILE: &str = "distroless-pack-static-libraries.txt";

/// Shell lines (run after a C build, where it ran) that list
/// `PATH<TAB>SHA256` of the static libraries the link takes in: the C
/// library and compiler runtime archives a `-static` link always uses
/// (`$CC -print-file-name=libc.a`, `libgcc.a`, `libgcc_eh.a`; for C++
/// also `$CXX`'s `libstdc++.a`), when the compiler names a file, and the
/// `lib*.a` archives in the project tree (built or vendored by the
/// project: what its Makefile or CMake links).
pub fn static_library_lines(file: &str, src: &str, cxx: bool) -> Vec<String> {
    let f = crate::shell::quote(file);
    // musl-gcc is a wrapper adding `-specs DIR/musl-gcc.specs`; its C
    // library is DIR/libc.a (`-print-file-name` would name glibc's).
    let mut runtime = String::from(
        "for l in libc.a libgcc.a libgcc_eh.a; do case \"$l:$CC\" in libc.a:*musl-gcc*) w=$(command -v musl-gcc) && s=$(sed -n 's/.*-specs \"*\\([^\" ]*\\)\"*.*/\\1/p' \"$w\" | head -n 1) && p=\"${s%/*}/libc.a\" ;; *) p=$($CC -print-file-name=$l 2>/dev/null) ;; esac; [ -f \"$p\" ] && printf '%s\\t%s\\n' \"$p\" \"$(sha256sum \"$p\" | cut -d' ' -f1)\"; done",
    );
    if cxx {
        runtime.push_str("; if [ -n \"${CXX:-}\" ]; then p=$($CXX -print-file-name=libstdc++.a 2>/dev/null) && [ -f \"$p\" ] && printf '%s\\t%s\\n' \"$p\" \"$(sha256sum \"$p\" | cut -d' ' -f1)\"; fi");
    }
    vec![
        format!("{{ {runtime}; }} > {f} 2>/dev/null || true"),
        format!(
            "find {} -name .git -prune -o -type f -name 'lib*.a' -print 2>/dev/null | while read -r p; do printf '%s\\t%s\\n' \"$p\" \"$(sha256sum \"$p\" | cut -d' ' -f1)\"; done >> {f} 2>/dev/null || true",
            crate::shell::quote(src)
        ),
    ]
}

/// The static libraries [`static_library_lines`] listed, sorted; `src` is
/// the project directory as the build saw it.
pub fn static_libraries(text: &str, src: &str) -> Vec<StaticLibrary> {
    let src = format!("{}/", src.trim_end_matches('/'));
    let mut out: Vec<StaticLibrary> = text
        .lines()
        .filter_map(|l| {
            let (path, hash) = l.split_once('\t')?;
            let hash = hash.trim();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            Some(StaticLibrary {
                name: path.rsplit('/').next()?.to_string(),
                path: path.to_string(),
                sha256: format!("sha256:{hash}"),
                in_project: path.starts_with(&src),
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Folders left out of the source tree digest when the project is not a
/// git checkout: build outputs and tool state, not sources.
const NOT_SOURCE: &[&str] = &[".git", "target", "obj", "bin", "build", "node_modules"];

/// The project's source tree: a digest over its files and, in a git
/// checkout, the commit. The files are those git lists (tracked, and
/// untracked that are not ignored) in a checkout, else every file but
/// those under [`NOT_SOURCE`] folders; the digest is the sha256 of the
/// sorted lines `SHA256-OF-CONTENT  MODE  PATH` (mode 755 or 644, symlinks
/// as their target), so it depends on the contents and names only.
/// Compiled files (ELF executables and objects, `ar` archives) are not
/// sources: an in-tree build (`make` writing `./app` and `*.o` beside the
/// sources) must not change the digest of the next build of the same
/// sources, and the static libraries linked are recorded on their own.
pub fn source_tree(dir: &Path) -> Option<SourceTree> {
    use sha2::{Digest as _, Sha256};
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let in_git = git(&["rev-parse", "--show-prefix"]);
    let commit = in_git
        .as_ref()
        .and_then(|_| git(&["rev-parse", "HEAD"]))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let mut files: Vec<String> = match &in_git {
        Some(_) => git(&[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            ".",
        ])?
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect(),
        None => {
            let mut list = Vec::new();
            walk(dir, dir, &mut list);
            list
        }
    };
    files.sort();
    files.dedup();
    let mut lines = String::new();
    for f in &files {
        let path = dir.join(f);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue; // listed by git but deleted
        };
        let (content, mode) = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).ok()?;
            (target.to_string_lossy().into_owned().into_bytes(), "120000")
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let exec = meta.permissions().mode() & 0o111 != 0;
            let content = std::fs::read(&path).ok()?;
            if is_compiled(&content) {
                continue;
            }
            (content, if exec { "755" } else { "644" })
        } else {
            continue;
        };
        lines.push_str(&format!(
            "{}  {mode}  {f}\n",
            hex::encode(Sha256::digest(&content))
        ));
    }
    let dirty = commit.is_some()
        && git(&["status", "--porcelain", "--untracked-files=normal", "."])
            .is_some_and(|s| !s.trim().is_empty());
    Some(SourceTree {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(lines.as_bytes()))),
        git_commit: commit,
        git_dirty: dirty,
    })
}

/// An ELF file (executable, shared or object) or an `ar` archive.
fn is_compiled(content: &[u8]) -> bool {
    content.starts_with(b"\x7fELF") || content.starts_with(b"!<arch>\n")
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        if ft.is_dir() {
            if !NOT_SOURCE.contains(&name.as_str()) {
                walk(root, &path, out);
            }
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
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
    #[test]
    fn cargo_metadata_licenses_are_applied_by_name_and_version() {
        let meta = r#"{"packages":[{"name":"itoa","version":"1.0.11","license":"MIT OR Apache-2.0"},{"name":"app","version":"0.1.0","license":null}]}"#;
        let l = cargo_licenses(meta);
        assert_eq!(l.len(), 1);
        let mut p = vec![Package {
            ecosystem: Ecosystem::Cargo,
            name: "itoa".into(),
            version: "1.0.11".into(),
            source: None,
            checksum: None,
            license: None,
        }];
        apply_licenses(&mut p, &l);
        assert_eq!(p[0].license.as_deref(), Some("MIT OR Apache-2.0"));
        assert!(cargo_licenses("not json").is_empty());
    }

    #[test]
    fn nuget_license_from_the_nuspec_in_the_packages_folder() {
        let assets = r#"{"version":3,"packageFolders":{"/root/.nuget/packages/":{}},
          "libraries":{"Newtonsoft.Json/13.0.3":{"sha512":"x","type":"package","path":"newtonsoft.json/13.0.3"},
                       "NoSpec/1.0.0":{"type":"package","path":"nospec/1.0.0"}},
          "project":{"frameworks":{"net8.0":{
            "downloadDependencies":[{"name":"Microsoft.NETCore.App.Runtime.linux-x64","version":"[8.0.11]"},
                                    {"name":"runtime.linux-x64.Microsoft.DotNet.ILCompiler","version":"[8.0.11]"}],
            "runtimeIdentifierGraphPath":"/usr/share/dotnet/sdk/8.0.404/PortableRuntimeIdentifierGraph.json"}}}}"#;
        let lines = "/cache/nuget/newtonsoft.json/13.0.3/newtonsoft.json.nuspec:    <license type=\"expression\">MIT</license>\n/cache/nuget/x/1.0.0/x.nuspec:    <license type=\"file\">LICENSE</license>\n";
        let l = nuget_licenses(lines);
        assert_eq!(l.len(), 1, "{l:?}");
        let mut p = nuget_packages(assets);
        apply_nuget_licenses(&mut p, &l);
        assert_eq!(p[0].name, "Newtonsoft.Json");
        assert_eq!(p[0].license.as_deref(), Some("MIT"));
        assert_eq!(p[1].license, None);
        let packs = runtime_packs(assets);
        assert_eq!(packs.len(), 2);
        assert_eq!(packs[0].name, "Microsoft.NETCore.App.Runtime.linux-x64");
        assert_eq!(packs[0].version, "8.0.11");
        assert_eq!(dotnet_sdk_version(assets).as_deref(), Some("8.0.404"));
        assert_eq!(
            nuspec_license("<license type=\"file\">LICENSE.txt</license>"),
            None
        );
    }

    #[test]
    fn static_libraries_listed_by_the_build_script_are_read() {
        let h = "49f1f14873335454500d59611f1cf4a4b0f786f9ac11f4312a78e4cf2566695b";
        let text =
            format!("/usr/lib/musl/lib/libc.a\t{h}\n/src/libfoo.a\t{h}\n/src/bad.a\tnot-a-hash\n");
        let l = static_libraries(&text, "/src");
        assert_eq!(l.len(), 2, "{l:?}");
        assert_eq!(l[0].name, "libc.a");
        assert_eq!(l[1].name, "libfoo.a");
        assert_eq!(l[0].sha256, format!("sha256:{h}"));
        assert!(!l[0].in_project && l[1].in_project);
        let lines = static_library_lines("/out/x.txt", "/src", true);
        assert!(lines[0].contains("$CC -print-file-name=$l") && lines[0].contains("libstdc++.a"));
        assert!(lines[1].starts_with("find /src "));
    }

    #[test]
    fn source_tree_digest_follows_contents_and_leaves_build_outputs_out() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("main.c"), "int main(){}\n").unwrap();
        let a = source_tree(t.path()).unwrap();
        std::fs::create_dir_all(t.path().join("target")).unwrap();
        std::fs::write(t.path().join("target/out.o"), "x").unwrap();
        assert_eq!(source_tree(t.path()).unwrap().digest, a.digest);
        // an in-tree build's executable, object and archive are not sources
        std::fs::write(t.path().join("app"), b"\x7fELF\x02\x01\x01rest").unwrap();
        std::fs::write(t.path().join("main.o"), b"\x7fELF\x02\x01\x01obj").unwrap();
        std::fs::write(t.path().join("libx.a"), b"!<arch>\nmembers").unwrap();
        assert_eq!(source_tree(t.path()).unwrap().digest, a.digest);
        std::fs::write(t.path().join("main.c"), "int main(){return 1;}\n").unwrap();
        assert_ne!(source_tree(t.path()).unwrap().digest, a.digest);
        assert!(a.digest.starts_with("sha256:") && a.git_commit.is_none());
    }
}
