//! distroless-pack-sbom: what an image's one binary is made of, from what
//! the binary itself records and, after `build`, from the build record
//! ([`PinnedInputs`]), as SPDX 2.3 or CycloneDX 1.6 JSON; and the build's
//! provenance as an in-toto Statement v1 with a SLSA Provenance v1
//! predicate.
//!
//! - [`describe`] turns an [`Input`] (the binary's bytes, its path in the
//!   image, the other files of the image, the image digest, the build
//!   record) into an [`Sbom`], the format-neutral list of components;
//!   [`from_image`] makes the input from an [`Image`]'s own layers (the
//!   entrypoint binary and every other file).
//! - [`spdx::document`], [`cyclonedx::document`] and
//!   [`provenance::statement`] write it; [`Document`] holds the bytes
//!   with their media and artifact types.
//!
//! Every document is reproducible: no wall-clock time (the `created` time
//! is the caller's, from `SOURCE_DATE_EPOCH` or 0), ids and the SPDX
//! namespace derived from the image digest and the contents, arrays sorted,
//! JSON written with sorted keys.
//!
//! A build info section that cannot be read is a warning in
//! [`Sbom::warnings`], never an error: the SBOM is made without it.

pub mod binary;
pub mod cyclonedx;
pub mod go;
mod layers;
pub mod provenance;
mod purl;
pub mod spdx;

use std::collections::BTreeMap;

use base64::Engine as _;
use distroless_pack_image::{Digest, Ecosystem, Image, PinnedInputs, Platform};

pub use binary::{Binary, Scan, Scanner};
pub use layers::{from_files, from_image, FileSource, ImageContents};
pub use provenance::BuildParameters;

/// This tool, as the documents name it.
pub const TOOL_NAME: &str = "distroless-pack";
/// Its version.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// SPDX JSON (IANA-registered media type).
pub const MEDIA_TYPE_SPDX: &str = "application/spdx+json";
/// CycloneDX JSON (IANA-registered media type).
pub const MEDIA_TYPE_CYCLONEDX: &str = "application/vnd.cyclonedx+json";
/// An in-toto Statement (JSON).
pub const MEDIA_TYPE_IN_TOTO: &str = "application/vnd.in-toto+json";

/// Why a document could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SbomError {
    /// The image cannot be read (a layer, the config).
    #[error("{0}")]
    Image(String),
    /// The image has no entrypoint binary in its layers.
    #[error("{0}")]
    NoBinary(String),
}

impl SbomError {
    pub fn kind(&self) -> distroless_pack_image::ErrorKind {
        distroless_pack_image::ErrorKind::Usage
    }
}

/// The formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Spdx,
    CycloneDx,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Spdx => "spdx",
            Format::CycloneDx => "cyclonedx",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Spdx => MEDIA_TYPE_SPDX,
            Format::CycloneDx => MEDIA_TYPE_CYCLONEDX,
        }
    }

    /// The SBOM for this format.
    pub fn write(self, sbom: &Sbom) -> Vec<u8> {
        match self {
            Format::Spdx => spdx::document(sbom),
            Format::CycloneDx => cyclonedx::document(sbom),
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "spdx" => Ok(Format::Spdx),
            "cyclonedx" => Ok(Format::CycloneDx),
            _ => Err(format!(
                "unknown SBOM format {s:?}: expected spdx or cyclonedx"
            )),
        }
    }
}

/// One document to attach to (or write beside) an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// `spdx`, `cyclonedx` or `provenance`.
    pub format: &'static str,
    /// The media type of the bytes (the layer's, in an OCI artifact).
    pub media_type: &'static str,
    /// The OCI artifact type (the artifact manifest's `artifactType`).
    pub artifact_type: &'static str,
    /// Annotations for the artifact manifest (the provenance's predicate
    /// type), sorted.
    pub annotations: BTreeMap<String, String>,
    pub bytes: Vec<u8>,
}

impl Document {
    pub fn sbom(format: Format, sbom: &Sbom) -> Document {
        Document {
            format: format.name(),
            media_type: format.media_type(),
            artifact_type: format.media_type(),
            annotations: BTreeMap::new(),
            bytes: format.write(sbom),
        }
    }

    pub fn provenance(sbom: &Sbom, params: &BuildParameters) -> Document {
        Document {
            format: "provenance",
            media_type: MEDIA_TYPE_IN_TOTO,
            artifact_type: provenance::ARTIFACT_TYPE,
            annotations: [(
                provenance::ANNOTATION_PREDICATE_TYPE.to_string(),
                provenance::PREDICATE_TYPE.to_string(),
            )]
            .into(),
            bytes: provenance::statement(sbom, params),
        }
    }
}

/// What a file of the image is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileRole {
    /// The entrypoint executable.
    Binary,
    CaBundle,
    Tzdata,
    IcuData,
    /// `/etc/passwd` and `/etc/group`.
    Passwd,
    Other,
}

impl FileRole {
    pub fn name(self) -> &'static str {
        match self {
            FileRole::Binary => "binary",
            FileRole::CaBundle => "ca-bundle",
            FileRole::Tzdata => "tzdata",
            FileRole::IcuData => "icu-data",
            FileRole::Passwd => "passwd",
            FileRole::Other => "other",
        }
    }

    /// The role of a file by where distroless-pack puts it.
    pub fn of_path(path: &str) -> FileRole {
        let p = path.trim_start_matches('.');
        if p == "/etc/ssl/certs/ca-certificates.crt" {
            FileRole::CaBundle
        } else if p.starts_with("/usr/share/zoneinfo/") || p == "/etc/localtime" {
            FileRole::Tzdata
        } else if p.starts_with("/usr/share/icu/") {
            FileRole::IcuData
        } else if p == "/etc/passwd" || p == "/etc/group" {
            FileRole::Passwd
        } else {
            FileRole::Other
        }
    }
}

/// A regular file of the image.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageFile {
    /// Absolute path in the image (`/etc/ssl/certs/ca-certificates.crt`).
    pub path: String,
    pub sha256: String,
    pub sha1: String,
    pub size: u64,
    pub role: FileRole,
}

/// The image the documents describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// `repository:tag` (or the binary's name when there is none).
    pub name: String,
    /// The image manifest's digest.
    pub digest: Digest,
    pub platform: Platform,
    /// An image; `false`: a bare executable (`sbom FILE`), which is then
    /// the described element itself (named by its own sha256).
    pub is_image: bool,
}

/// Everything [`describe`] reads.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub binary: &'a Binary,
    /// The binary's path in the image (`/app/hello`).
    pub binary_path: String,
    pub subject: Subject,
    /// The image's other regular files.
    pub files: Vec<ImageFile>,
    /// The build record (`build` only).
    pub built: Option<&'a PinnedInputs>,
    /// Seconds since the epoch (`SOURCE_DATE_EPOCH`, else 0).
    pub created: u64,
}

/// Where a component's entry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// The Go build info in the binary.
    GoBuildInfo,
    /// `cargo auditable`'s `.dep-v0` section in the binary.
    CargoAuditable,
    /// The `.comment` section of the binary.
    Comment,
    /// The build record (`build`).
    BuildRecord,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::GoBuildInfo => "go-buildinfo",
            Origin::CargoAuditable => "cargo-auditable",
            Origin::Comment => "elf-comment",
            Origin::BuildRecord => "build-record",
        }
    }
}

/// What a component is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ComponentKind {
    /// A package compiled in (a crate, a Go module, a NuGet package, a
    /// static library).
    Library,
    /// The language runtime or standard library compiled in (Go's
    /// `stdlib`, a .NET runtime pack).
    Runtime,
}

/// A hash algorithm the documents know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

/// One thing the binary is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub version: String,
    pub purl: Option<String>,
    pub kind: ComponentKind,
    /// Hex digests.
    pub hashes: BTreeMap<Hash, String>,
    /// An SPDX license expression.
    pub license: Option<String>,
    /// Where the entry came from (sorted, several when merged).
    pub origins: Vec<Origin>,
    /// Extra facts (`go:h1`, `go:replace`, `cargo:source`), sorted.
    pub properties: BTreeMap<String, String>,
}

impl Component {
    /// Who distributes it, as far as its package URL tells: crates.io for
    /// a crate from there, the host and owner of a Go module path
    /// (`github.com/owner`), the Go project for `stdlib`, nuget.org for a
    /// NuGet package (Microsoft for `Microsoft.*` and `runtime.*`
    /// packages); `None` when nothing says.
    pub fn supplier(&self) -> Option<String> {
        if let Some(origin) = self.properties.get("static-library:origin") {
            // The toolchain's archives: musl's C library, GCC's runtime.
            let n = self.name.as_str();
            let path = self
                .properties
                .get("static-library:path")
                .map_or("", String::as_str);
            return match origin.as_str() {
                "toolchain" if n == "libc.a" && path.contains("musl") => Some("musl libc".into()),
                "toolchain" if n.starts_with("libgcc") || n == "libstdc++.a" => {
                    Some("GNU Project".into())
                }
                _ => None,
            };
        }
        let purl = self.purl.as_deref()?;
        if purl.starts_with("pkg:cargo/") {
            let src = self.properties.get("cargo:source").map(String::as_str);
            return match src {
                None | Some("crates.io") => Some("crates.io".into()),
                Some(s) if s.contains("github.com/rust-lang/crates.io-index") => {
                    Some("crates.io".into())
                }
                _ => None,
            };
        }
        if purl.starts_with("pkg:golang/") {
            if self.name == "stdlib" {
                return Some("The Go Authors".into());
            }
            let parts: Vec<&str> = self.name.split('/').collect();
            return Some(match parts.as_slice() {
                [host, owner, _, ..] => format!("{host}/{owner}"),
                [host, ..] => host.to_string(),
                [] => return None,
            });
        }
        if purl.starts_with("pkg:nuget/") {
            let n = self.name.to_ascii_lowercase();
            if n.starts_with("microsoft.") || n.starts_with("runtime.") || n.starts_with("system.")
            {
                return Some("Microsoft".into());
            }
            return Some("nuget.org".into());
        }
        None
    }

    fn key(&self) -> String {
        self.purl
            .clone()
            .unwrap_or_else(|| format!("{}@{}", self.name, self.version))
    }
}

/// The binary, as the SBOM's application package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Application {
    /// The file name.
    pub name: String,
    /// The main module's version when the binary records one, Go's
    /// `(devel)`, else `sha256:HEX` of the file.
    pub version: String,
    pub purl: Option<String>,
    /// The toolchain the binary names (`go go1.19.8`, `rustc 1.95.0`, ...).
    pub toolchain: Option<String>,
    pub file: ImageFile,
}

/// The format-neutral SBOM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sbom {
    pub subject: Subject,
    pub application: Application,
    /// Sorted by purl (else name@version).
    pub components: Vec<Component>,
    /// The other files of the image, sorted by path.
    pub files: Vec<ImageFile>,
    pub created: u64,
    /// The build record, for the provenance.
    pub built: Option<PinnedInputs>,
    /// Build info that could not be read (left out of the SBOM).
    pub warnings: Vec<String>,
}

/// The SBOM of one image.
pub fn describe(input: &Input) -> Sbom {
    let name = input
        .binary_path
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("app")
        .to_string();
    let facts = input.binary.facts(&input.binary_path);
    let mut by_key: BTreeMap<String, Component> = BTreeMap::new();
    let mut add = |c: Component| match by_key.get_mut(&c.key()) {
        Some(have) => {
            for (h, v) in c.hashes {
                have.hashes.entry(h).or_insert(v);
            }
            if have.license.is_none() {
                have.license = c.license;
            }
            for o in c.origins {
                if !have.origins.contains(&o) {
                    have.origins.push(o);
                }
            }
            have.origins.sort();
            for (k, v) in c.properties {
                have.properties.entry(k).or_insert(v);
            }
        }
        None => {
            by_key.insert(c.key(), c);
        }
    };

    if let Some(b) = input.built {
        for p in &b.packages {
            add(from_package(p, ComponentKind::Library));
        }
        for p in &b.runtime_packs {
            add(from_package(p, ComponentKind::Runtime));
        }
        for l in &b.static_libraries {
            let mut hashes = BTreeMap::new();
            if let Some(h) = l.sha256.strip_prefix("sha256:") {
                hashes.insert(Hash::Sha256, h.to_string());
            }
            add(Component {
                name: l.name.clone(),
                // A static library records no version: the file's digest
                // names the one linked.
                version: l.sha256.clone(),
                purl: None,
                kind: ComponentKind::Library,
                hashes,
                license: None,
                origins: vec![Origin::BuildRecord],
                properties: [
                    ("static-library:path".to_string(), l.path.clone()),
                    (
                        "static-library:origin".to_string(),
                        if l.in_project { "project" } else { "toolchain" }.to_string(),
                    ),
                ]
                .into(),
            });
        }
    }

    let mut app_version = String::new();
    let mut go_devel = false;
    let mut app_purl = None;
    if let Some(g) = &facts.go {
        if let Some(m) = &g.main {
            if m.version != "(devel)" && !m.version.is_empty() {
                app_version = m.version.clone();
            } else {
                go_devel = true;
            }
            app_purl = Some(purl::golang(
                &m.path,
                (!app_version.is_empty()).then_some(app_version.as_str()),
            ));
        }
        for d in &g.deps {
            let mut c = go_module(d);
            c.origins = vec![Origin::GoBuildInfo];
            add(c);
        }
        let v = g.go_version.trim_start_matches("go");
        add(Component {
            name: "stdlib".into(),
            version: g.go_version.clone(),
            purl: Some(purl::golang("stdlib", Some(v))),
            kind: ComponentKind::Runtime,
            hashes: BTreeMap::new(),
            license: Some("BSD-3-Clause".into()),
            origins: vec![Origin::GoBuildInfo],
            properties: BTreeMap::new(),
        });
    }
    if let Some(list) = &facts.rust {
        for p in list {
            if p.build_only {
                continue;
            }
            if p.root {
                app_version = p.version.clone();
                app_purl = Some(purl::simple("cargo", &p.name, &p.version));
                continue;
            }
            add(Component {
                name: p.name.clone(),
                version: p.version.clone(),
                purl: Some(purl::simple("cargo", &p.name, &p.version)),
                kind: ComponentKind::Library,
                hashes: BTreeMap::new(),
                license: None,
                origins: vec![Origin::CargoAuditable],
                properties: [("cargo:source".to_string(), p.source.clone())].into(),
            });
        }
    }
    if let Some((v, full)) = &facts.dotnet {
        add(Component {
            name: "Microsoft.DotNet.ILCompiler".into(),
            version: v.clone(),
            purl: Some(purl::simple("nuget", "Microsoft.DotNet.ILCompiler", v)),
            kind: ComponentKind::Runtime,
            hashes: BTreeMap::new(),
            license: None,
            origins: vec![Origin::Comment],
            properties: [("dotnet:ilc".to_string(), full.clone())].into(),
        });
    }

    let mut components: Vec<Component> = by_key.into_values().collect();
    components.sort_by_key(|c| c.key());
    let mut files = input.files.clone();
    files.sort();
    let file = ImageFile {
        path: input.binary_path.clone(),
        sha256: facts.sha256.clone(),
        sha1: facts.sha1.clone(),
        size: facts.size,
        role: FileRole::Binary,
    };
    if app_version.is_empty() {
        // No recorded version: the Go toolchain's own word for it, else
        // the file's digest (what identifies this build of it).
        app_version = if go_devel {
            "(devel)".to_string()
        } else {
            format!("sha256:{}", facts.sha256)
        };
    }
    // The binary's own word for Go, .NET and Rust; for C the build's `cc`
    // (the .comment lines also name whatever compiled the C library's
    // objects), else the first compiler .comment names.
    let own = facts.go.is_some() || facts.dotnet.is_some() || facts.rustc.is_some();
    let recorded = input.built.and_then(|b| b.toolchain.get("cc").cloned());
    let toolchain = match (own, recorded) {
        (false, Some(cc)) => Some(cc),
        _ => binary::toolchain(&facts),
    };
    Sbom {
        subject: input.subject.clone(),
        application: Application {
            name,
            version: app_version,
            purl: app_purl,
            toolchain,
            file,
        },
        components,
        files,
        created: input.created,
        built: input.built.cloned(),
        warnings: facts.warnings,
    }
}

fn go_module(d: &go::Module) -> Component {
    let mut properties = BTreeMap::new();
    let mut hashes = BTreeMap::new();
    let sum = d
        .replace
        .as_ref()
        .map_or(d.sum.as_ref(), |r| r.sum.as_ref());
    if let Some(s) = sum {
        properties.insert("go:h1".to_string(), s.clone());
        if let Some(h) = h1_hex(s) {
            hashes.insert(Hash::Sha256, h);
        }
    }
    if let Some(r) = &d.replace {
        let to = if r.version.is_empty() {
            r.path.clone()
        } else {
            format!("{}@{}", r.path, r.version)
        };
        properties.insert("go:replace".to_string(), to);
    }
    Component {
        name: d.path.clone(),
        version: d.version.clone(),
        purl: Some(purl::golang(&d.path, Some(&d.version))),
        kind: ComponentKind::Library,
        hashes,
        license: None,
        origins: Vec::new(),
        properties,
    }
}

/// `h1:BASE64` (the SHA-256 of the module's dirhash, as ko records it) as
/// hex.
fn h1_hex(sum: &str) -> Option<String> {
    let b64 = sum.strip_prefix("h1:")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (raw.len() == 32).then(|| hex::encode(raw))
}

fn from_package(p: &distroless_pack_image::Package, kind: ComponentKind) -> Component {
    let mut hashes = BTreeMap::new();
    let mut properties = BTreeMap::new();
    if let Some(c) = &p.checksum {
        if let Some(h) = c.strip_prefix("sha256:") {
            hashes.insert(Hash::Sha256, h.to_string());
        } else if let Some(b) = c.strip_prefix("sha512-") {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b) {
                hashes.insert(Hash::Sha512, hex::encode(raw));
            }
        } else if c.starts_with("h1:") {
            properties.insert("go:h1".to_string(), c.clone());
            if let Some(h) = h1_hex(c) {
                hashes.insert(Hash::Sha256, h);
            }
        }
    }
    if let Some(s) = &p.source {
        let key = match p.ecosystem {
            Ecosystem::Golang => "go:replace",
            Ecosystem::Cargo => "cargo:source",
            Ecosystem::Nuget => "nuget:source",
        };
        properties.insert(key.to_string(), s.clone());
    }
    let purl = match p.ecosystem {
        Ecosystem::Golang => purl::golang(&p.name, Some(&p.version)),
        e => purl::simple(e.purl_type(), &p.name, &p.version),
    };
    Component {
        name: p.name.clone(),
        version: p.version.clone(),
        purl: Some(purl),
        kind,
        hashes,
        license: p.license.as_deref().map(spdx::normalize_license),
        origins: vec![Origin::BuildRecord],
        properties,
    }
}

/// Reads every document of an [`Image`]: the SBOM input from its layers.
pub fn describe_image(
    image: &Image,
    name: &str,
    built: Option<&PinnedInputs>,
    created: u64,
) -> Result<Sbom, SbomError> {
    let contents = from_image(image)?;
    Ok(describe(&contents.input(name, image, built, created)))
}

/// `created` as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// A short, stable id for an element: hex of the sha256 of `what`.
pub(crate) fn short_id(what: &str) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(what.as_bytes())[..8])
}

/// Canonical JSON: sorted keys, no whitespace (as every manifest of ours).
pub(crate) fn to_bytes(v: &serde_json::Value) -> Vec<u8> {
    distroless_pack_image::to_canonical_json(v).expect("a JSON value serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn h1_sums_are_sha256_hex() {
        let h = h1_hex("h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").unwrap();
        assert_eq!(
            h,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(h1_hex("h1:short"), None);
    }

    #[test]
    fn file_roles_by_path() {
        assert_eq!(
            FileRole::of_path("/etc/ssl/certs/ca-certificates.crt"),
            FileRole::CaBundle
        );
        assert_eq!(
            FileRole::of_path("/usr/share/zoneinfo/UTC"),
            FileRole::Tzdata
        );
        assert_eq!(
            FileRole::of_path("/usr/share/icu/icudt74l.dat"),
            FileRole::IcuData
        );
        assert_eq!(FileRole::of_path("/etc/group"), FileRole::Passwd);
        assert_eq!(FileRole::of_path("/app/x"), FileRole::Other);
    }
    fn sample() -> (Binary, PinnedInputs) {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dotnet");
        let bin = Binary::open(&root.join("console-static/console-static")).unwrap();
        let built = PinnedInputs {
            toolchain: [("dotnet".to_string(), "10.0.401".to_string())].into(),
            packages: vec![distroless_pack_image::Package {
                ecosystem: Ecosystem::Nuget,
                name: "Newtonsoft.Json".into(),
                version: "13.0.3".into(),
                source: None,
                checksum: Some("sha512-AAAA".into()),
                license: Some("MIT".into()),
            }],
            source: Some(distroless_pack_image::SourceTree {
                digest: format!("sha256:{}", "ab".repeat(32)),
                git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
                git_dirty: false,
            }),
            ..Default::default()
        };
        (bin, built)
    }

    fn input<'a>(bin: &'a Binary, built: &'a PinnedInputs) -> Input<'a> {
        Input {
            binary: bin,
            binary_path: "/app/console-static".into(),
            subject: Subject {
                name: "ghcr.io/acme/console:1".into(),
                digest: Digest::sha256_of(b"manifest"),
                platform: Platform::linux("amd64"),
                is_image: true,
            },
            files: vec![ImageFile {
                path: "/etc/passwd".into(),
                sha256: "00".repeat(32),
                sha1: "00".repeat(20),
                size: 1,
                role: FileRole::Passwd,
            }],
            built: Some(built),
            created: 0,
        }
    }

    #[test]
    fn documents_are_byte_identical_across_runs_and_name_the_image_digest() {
        let (bin, built) = sample();
        let a = describe(&input(&bin, &built));
        let b = describe(&input(&bin, &built));
        for f in [Format::Spdx, Format::CycloneDx] {
            assert_eq!(f.write(&a), f.write(&b));
        }
        let spdx: serde_json::Value = serde_json::from_slice(&Format::Spdx.write(&a)).unwrap();
        let ns = spdx["documentNamespace"].as_str().unwrap();
        assert!(
            ns.contains(&format!("sha256-{}", a.subject.digest.hex())),
            "{ns}"
        );
        let cdx: serde_json::Value = serde_json::from_slice(&Format::CycloneDx.write(&a)).unwrap();
        assert!(cdx["serialNumber"]
            .as_str()
            .unwrap()
            .starts_with("urn:uuid:"));
        let nuget = cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["purl"] == "pkg:nuget/Newtonsoft.Json@13.0.3")
            .unwrap();
        assert_eq!(nuget["licenses"][0]["expression"], "MIT");
        assert_eq!(nuget["hashes"][0]["alg"], "SHA-512");
        // The runtime the binary itself records, merged with nothing.
        assert!(a
            .components
            .iter()
            .any(|c| c.purl.as_deref() == Some("pkg:nuget/Microsoft.DotNet.ILCompiler@10.0.12")));
    }

    #[test]
    fn provenance_is_an_in_toto_statement_with_a_slsa_v1_predicate() {
        let (bin, built) = sample();
        let s = describe(&input(&bin, &built));
        let params = BuildParameters {
            command: "build".into(),
            kind: Some("dotnet".into()),
            runner: Some("host".into()),
            build_command: Some("dotnet publish -r linux-x64".into()),
            target: Some("linux-x64".into()),
            settings: Default::default(),
        };
        let d = Document::provenance(&s, &params);
        assert_eq!(d.bytes, Document::provenance(&s, &params).bytes);
        assert_eq!(d.media_type, MEDIA_TYPE_IN_TOTO);
        let v: serde_json::Value = serde_json::from_slice(&d.bytes).unwrap();
        assert_eq!(v["_type"], provenance::STATEMENT_TYPE);
        assert_eq!(v["predicateType"], provenance::PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["digest"]["sha256"], s.subject.digest.hex());
        let def = &v["predicate"]["buildDefinition"];
        assert_eq!(def["buildType"], provenance::BUILD_TYPE_BUILD);
        assert_eq!(def["externalParameters"]["target"], "linux-x64");
        let deps = def["resolvedDependencies"].as_array().unwrap();
        let source = deps.iter().find(|d| d["name"] == "source").unwrap();
        assert_eq!(
            source["digest"]["gitCommit"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert!(deps
            .iter()
            .any(|d| d["uri"] == "pkg:generic/dotnet@10.0.401"));
        assert_eq!(
            v["predicate"]["runDetails"]["builder"]["id"],
            format!("pkg:cargo/distroless-pack@{TOOL_VERSION}")
        );
        assert!(!String::from_utf8_lossy(&d.bytes).contains("startedOn"));
    }
}
