//! What a binary records about itself: its hashes, the `.comment` lines
//! compilers leave (GCC, clang, rustc, `.NET: ilc VERSION`), the Go build
//! info and the `cargo auditable` dependency list (`.dep-v0`).

use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::go::BuildInfo;

/// The Rust packages `cargo auditable` recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RustPackage {
    pub name: String,
    pub version: String,
    /// `crates.io`, `git`, `local`, `registry` or another.
    pub source: String,
    /// Build-time only (a build script's or proc macro's dependency).
    pub build_only: bool,
    /// The root package (the binary's own crate).
    pub root: bool,
}

/// Facts read from the binary alone.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
    /// The `.comment` strings, in order.
    pub comments: Vec<String>,
    pub go: Option<BuildInfo>,
    /// `cargo auditable`'s packages (`None`: no `.dep-v0` section).
    pub rust: Option<Vec<RustPackage>>,
    /// The .NET runtime version (`.NET: ilc 10.0.12-servicing...+hash` ->
    /// `10.0.12`), and the full ilc string.
    pub dotnet: Option<(String, String)>,
    /// `rustc version 1.95.0 (...)` -> `1.95.0`.
    pub rustc: Option<String>,
    /// Problems reading the records (the SBOM is made without them).
    pub warnings: Vec<String>,
}

/// The `.dep-v0` section's size limit once decompressed (the
/// auditable-info default).
const AUDIT_JSON_LIMIT: usize = 8 * 1024 * 1024;

/// Reads everything the binary records; never fails: what cannot be read
/// becomes a warning.
pub fn facts(bytes: &[u8], what: &str) -> Facts {
    let mut f = Facts {
        sha256: hex::encode(Sha256::digest(bytes)),
        sha1: hex::encode(Sha1::digest(bytes)),
        size: bytes.len() as u64,
        ..Facts::default()
    };
    let elf = goblin::elf::Elf::parse(bytes).ok();
    let section = |name: &str| -> Option<&[u8]> {
        let e = elf.as_ref()?;
        let sh = e
            .section_headers
            .iter()
            .find(|s| e.shdr_strtab.get_at(s.sh_name) == Some(name))?;
        if sh.sh_type == goblin::elf::section_header::SHT_NOBITS {
            return None;
        }
        let start = usize::try_from(sh.sh_offset).ok()?;
        let end = start.checked_add(usize::try_from(sh.sh_size).ok()?)?;
        bytes.get(start..end)
    };
    if let Some(c) = section(".comment") {
        f.comments = c
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
    }
    for c in &f.comments {
        if let Some(ilc) = c.strip_prefix(".NET: ilc ") {
            let v = ilc.split(['+', '-']).next().unwrap_or(ilc).to_string();
            f.dotnet = Some((v, ilc.to_string()));
        } else if let Some(r) = c.strip_prefix("rustc version ") {
            f.rustc = r.split_whitespace().next().map(str::to_string);
        }
    }
    match crate::go::read(bytes) {
        Ok(info) => f.go = info,
        Err(e) => f.warnings.push(format!(
            "{what}: the Go build info cannot be read ({e}); the SBOM lists no Go modules"
        )),
    }
    if section(".dep-v0").is_some() {
        match auditable_info::audit_info_from_slice(bytes, AUDIT_JSON_LIMIT) {
            Ok(info) => {
                let mut list: Vec<RustPackage> = info
                    .packages
                    .iter()
                    .map(|p| RustPackage {
                        name: p.name.clone(),
                        version: p.version.to_string(),
                        source: String::from(p.source.clone()),
                        build_only: p.kind == auditable_serde::DependencyKind::Build,
                        root: p.root,
                    })
                    .collect();
                list.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
                f.rust = Some(list);
            }
            Err(e) => f.warnings.push(format!(
                "{what}: the cargo auditable section .dep-v0 cannot be read ({e}); the SBOM lists no crates from it"
            )),
        }
    }
    f
}

/// The toolchain the binary names, for the SBOM's description.
pub fn toolchain(f: &Facts) -> Option<String> {
    if let Some(g) = &f.go {
        return Some(format!("go {}", g.go_version));
    }
    if let Some((v, _)) = &f.dotnet {
        return Some(format!(".NET NativeAOT {v}"));
    }
    if let Some(r) = &f.rustc {
        return Some(format!("rustc {r}"));
    }
    f.comments
        .iter()
        .find(|c| c.starts_with("GCC: ") || c.contains("clang version"))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_runtime_version_from_the_nativeaot_comment() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dotnet");
        let bytes = std::fs::read(root.join("console-static/console-static")).unwrap();
        let f = facts(&bytes, "console-static");
        let (v, full) = f.dotnet.clone().unwrap();
        assert_eq!(v, "10.0.12");
        assert!(full.starts_with("10.0.12-servicing"), "{full}");
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        assert!(f.go.is_none() && f.rust.is_none());
        assert_eq!(toolchain(&f).as_deref(), Some(".NET NativeAOT 10.0.12"));
        assert_eq!(f.size, bytes.len() as u64);
    }

    #[test]
    fn a_corrupt_dep_v0_section_is_a_warning_not_a_failure() {
        // An ELF with a .dep-v0 section holding bytes that are not zlib.
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dotnet");
        let bytes = std::fs::read(root.join("console-static/console-static")).unwrap();
        let e = goblin::elf::Elf::parse(&bytes).unwrap();
        // Rename .comment to .dep-v0 in the section name table: same length
        // (8 bytes), so the file stays well formed.
        let strtab = &e.section_headers[e.header.e_shstrndx as usize];
        let off = strtab.sh_offset as usize;
        let len = strtab.sh_size as usize;
        let at = bytes[off..off + len]
            .windows(9)
            .position(|w| w == b".comment\0")
            .unwrap();
        let mut m = bytes.clone();
        m[off + at..off + at + 8].copy_from_slice(b".dep-v0\0");
        let f = facts(&m, "mutated");
        assert!(f.rust.is_none());
        assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
        assert!(f.warnings[0].contains(".dep-v0"), "{}", f.warnings[0]);
    }
}
