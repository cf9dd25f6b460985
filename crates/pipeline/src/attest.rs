//! The documents of each platform image: its SBOM (SPDX and/or CycloneDX)
//! and its provenance, from the image's own layers and, after `build`, the
//! build record. [`documents`] is the one call; [`write_sbom_output`]
//! writes `--sbom-output`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use distroless_pack_image::{Blob, Digest, Image, PinnedInputs, Platform, Referrer, Subject};
use distroless_pack_sbom::{self as sbom, BuildParameters, Document};

use crate::settings::{Attest, ImageName};
use crate::PipelineError;

pub use distroless_pack_sbom::{Format, Sbom};

/// What `build` knew about one platform's binary.
#[derive(Clone, Copy, Debug)]
pub struct BuiltWith<'a> {
    pub inputs: &'a PinnedInputs,
    /// `cargo`, `go`, ...
    pub kind: &'a str,
    /// `host`, `docker:IMAGE`.
    pub runner: &'a str,
    /// The main build command.
    pub command: &'a str,
}

/// One image's documents.
#[derive(Clone, Debug)]
pub struct Attested {
    /// The image they describe (their OCI `subject`).
    pub digest: Digest,
    pub platform: Platform,
    pub documents: Vec<Document>,
    /// Build info that could not be read (the SBOM is made without it).
    pub warnings: Vec<String>,
}

/// The compiler target in a build command: cargo's `--target=T`, dotnet's
/// `-r RID`, or GOOS/GOARCH for go.
fn target_of(command: &str, kind: &str, platform: &Platform) -> Option<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if let Some(t) = w.strip_prefix("--target=") {
            return Some(t.to_string());
        }
        if (*w == "-r" || *w == "--runtime") && i + 1 < words.len() {
            return Some(words[i + 1].to_string());
        }
    }
    (kind == "go").then(|| format!("{}/{}", platform.os, platform.architecture))
}

/// An image's regular files where assemble read them, and its binary
/// when it was scanned already (while the layer was written).
#[derive(Clone, Copy, Debug)]
pub struct SourceFiles<'a> {
    pub files: &'a [(String, sbom::FileSource)],
    pub binary: Option<&'a Arc<sbom::Binary>>,
}

/// The documents for `image` (named `name`), as `settings` asks, of
/// `files` (`pack`, `build`); without them the image's layers are read.
pub fn documents(
    image: &Image,
    files: Option<SourceFiles<'_>>,
    name: &ImageName,
    built: Option<BuiltWith<'_>>,
    settings: &Attest,
) -> Result<Attested, PipelineError> {
    let mut out = Attested {
        digest: image.digest().clone(),
        platform: image.platform.clone(),
        documents: Vec::new(),
        warnings: Vec::new(),
    };
    if !settings.any() {
        return Ok(out);
    }
    let sbom_error = |source| PipelineError::Sbom {
        source: Box::new(source),
    };
    let contents = match files {
        Some(f) => sbom::from_files(&entrypoint(image)?, f.files, f.binary.cloned()),
        None => sbom::from_image(image),
    }
    .map_err(sbom_error)?;
    let s = sbom::describe(&contents.input(
        &name.full(),
        image,
        built.map(|b| b.inputs),
        settings.created,
    ));
    out.warnings = s.warnings.clone();
    for f in &settings.formats {
        out.documents.push(Document::sbom(*f, &s));
    }
    if settings.provenance {
        let image_settings = image_settings(image, &s)?;
        let params = match built {
            Some(b) => BuildParameters {
                command: "build".into(),
                kind: Some(b.kind.to_string()),
                runner: Some(b.runner.to_string()),
                build_command: Some(b.command.to_string()),
                target: target_of(b.command, b.kind, &image.platform),
                settings: image_settings,
            },
            None => BuildParameters {
                command: "pack".into(),
                settings: image_settings,
                ..Default::default()
            },
        };
        out.documents.push(Document::provenance(&s, &params));
    }
    Ok(out)
}

/// The image settings as the image applies them, for the provenance's
/// `externalParameters.settings`: the config's entrypoint, arguments,
/// environment, user, working directory, ports and labels, the manifest's
/// annotations, the opt-in files (by role) and the layer compression.
/// Read from the image rather than from the flags, so the record is what
/// was made (defaults included) whichever way it was asked for.
fn image_settings(
    image: &Image,
    sbom: &Sbom,
) -> Result<std::collections::BTreeMap<String, serde_json::Value>, PipelineError> {
    use serde_json::json;
    let bad = |e: distroless_pack_image::ImageError| PipelineError::Sbom {
        source: Box::new(sbom::SbomError::Image(format!("the image: {e}"))),
    };
    let config = image.config_json().map_err(bad)?;
    let manifest = image.manifest_json().map_err(bad)?;
    let mut out = std::collections::BTreeMap::new();
    if let Some(c) = config.config() {
        let mut put = |k: &str, v: serde_json::Value| {
            out.insert(k.to_string(), v);
        };
        if let Some(v) = c.entrypoint() {
            put("entrypoint", json!(v));
        }
        if let Some(v) = c.cmd() {
            put("cmd", json!(v));
        }
        if let Some(v) = c.env() {
            put("env", json!(v));
        }
        if let Some(v) = c.user() {
            put("user", json!(v));
        }
        if let Some(v) = c.working_dir() {
            put("workingDir", json!(v));
        }
        if let Some(v) = c.exposed_ports() {
            let mut ports = v.clone();
            ports.sort();
            put("exposedPorts", json!(ports));
        }
        if let Some(v) = c.labels() {
            let sorted: std::collections::BTreeMap<_, _> = v.iter().collect();
            put("labels", json!(sorted));
        }
    }
    if let Some(a) = manifest.annotations() {
        let sorted: std::collections::BTreeMap<_, _> = a.iter().collect();
        out.insert("annotations".into(), json!(sorted));
    }
    let mut extras: Vec<&str> = sbom
        .files
        .iter()
        .map(|f| f.role)
        .filter(|r| !matches!(r, sbom::FileRole::Binary | sbom::FileRole::Other))
        .map(sbom::FileRole::name)
        .collect();
    extras.sort();
    extras.dedup();
    out.insert("extras".into(), json!(extras));
    let mut compression: Vec<&str> = image
        .layers
        .iter()
        .map(|l| match l.media_type.as_str() {
            t if t.ends_with("+zstd") => "zstd",
            t if t.ends_with("+gzip") || t.ends_with(".tar.gzip") => "gzip",
            _ => "none",
        })
        .collect();
    compression.dedup();
    out.insert("compression".into(), json!(compression.join(",")));
    Ok(out)
}

/// The entrypoint of an image distroless-pack assembled (always absolute).
fn entrypoint(image: &Image) -> Result<String, PipelineError> {
    let config = image.config_json().map_err(|e| PipelineError::Sbom {
        source: Box::new(sbom::SbomError::Image(format!("the image config: {e}"))),
    })?;
    config
        .config()
        .as_ref()
        .and_then(|c| c.entrypoint().as_ref())
        .and_then(|e| e.first().cloned())
        .ok_or_else(|| PipelineError::Sbom {
            source: Box::new(sbom::SbomError::NoBinary(format!(
                "image {}: the config has no entrypoint",
                image.digest()
            ))),
        })
}

/// `attested`'s documents as OCI 1.1 artifacts whose subject is `image`,
/// each payload titled with the file name `oras pull` would give it.
pub fn referrers(image: &Image, attested: &Attested) -> Result<Vec<Referrer>, PipelineError> {
    attested
        .documents
        .iter()
        .map(|d| {
            let title = match d.format {
                "spdx" => "sbom.spdx.json",
                "cyclonedx" => "sbom.cdx.json",
                _ => "provenance.intoto.json",
            };
            let payload = Blob::from_bytes(d.media_type, d.bytes.clone());
            Ok(Referrer::for_subject(
                Subject::of(image),
                d.artifact_type,
                payload,
                Some(title),
                &d.annotations,
            )?)
        })
        .collect()
}

/// The file `--sbom-output FILE` gets for one document: FILE itself, with
/// `-OS-ARCH[-VARIANT]` before its extension when the artifact is an index,
/// and `.spdx` / `.cdx` before it when both formats are made.
pub fn sbom_output_path(
    file: &Path,
    platform: &Platform,
    index: bool,
    format: &str,
    both: bool,
) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sbom.json".into());
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (name[..i].to_string(), name[i..].to_string()),
        _ => (name.clone(), String::new()),
    };
    let mut stem = stem;
    if index {
        stem.push('-');
        stem.push_str(&platform.to_string().replace('/', "-"));
    }
    if both {
        stem.push_str(if format == "spdx" { ".spdx" } else { ".cdx" });
    }
    file.with_file_name(format!("{stem}{ext}"))
}

/// Writes the SBOMs of every image to `--sbom-output` (each to a temp file
/// in the same directory, then renamed). Returns the files written.
pub fn write_sbom_output(
    file: &Path,
    attested: &[Attested],
) -> Result<Vec<PathBuf>, PipelineError> {
    let index = attested.len() > 1;
    let mut written = Vec::new();
    for a in attested {
        let sboms: Vec<&Document> = a
            .documents
            .iter()
            .filter(|d| d.format != "provenance")
            .collect();
        let both = sboms.len() > 1;
        for d in sboms {
            let path = sbom_output_path(file, &a.platform, index, d.format, both);
            write_file(&path, &d.bytes)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Writes `bytes` to `path` as every file output is written (ship's
/// `Destination`: a temp file in the same directory renamed at the end, so
/// nothing is half-written; a FIFO or `/dev/stdout` in place).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PipelineError> {
    distroless_pack_ship::write_bytes(path, bytes).map_err(|e| sbom_output_error(path, e))
}

/// Refuses, before anything is built or written, a `--sbom-output` that
/// cannot be written: the files it would get for `platforms` (a directory
/// that does not exist, a directory in the file's place).
pub fn check_sbom_output(attest: &Attest, platforms: &[Platform]) -> Result<(), PipelineError> {
    let Some(file) = &attest.sbom_output else {
        return Ok(());
    };
    let both = attest.formats.len() > 1;
    for p in platforms {
        for f in &attest.formats {
            let path = sbom_output_path(file, p, platforms.len() > 1, f.name(), both);
            distroless_pack_ship::check_destination(&path)
                .map_err(|e| sbom_output_error(&path, e))?;
        }
    }
    Ok(())
}

fn sbom_output_error(path: &Path, e: distroless_pack_ship::ShipError) -> PipelineError {
    PipelineError::SbomOutput {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// The SBOM of one image read back from a source (`distroless-pack sbom
/// SOURCE`): the entrypoint binary and the files of its layers.
pub fn image_sbom(image: &Image, name: &str, created: u64) -> Result<Sbom, PipelineError> {
    sbom::describe_image(image, name, None, created).map_err(|source| PipelineError::Sbom {
        source: Box::new(source),
    })
}

/// The SBOM of a bare binary (`distroless-pack sbom FILE`): the subject is
/// the file itself (its sha256 as the digest, its ELF platform).
pub fn binary_sbom(path: &Path, created: u64) -> Result<Sbom, PipelineError> {
    let platform = distroless_pack_verify::header_platform(path)?;
    let binary = sbom::Binary::open(path)
        .map_err(|e| PipelineError::Usage(format!("{}: {e}", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into());
    let digest = format!("sha256:{}", binary.scan().sha256)
        .parse::<Digest>()
        .map_err(|e| PipelineError::Usage(format!("{}: {e}", path.display())))?;
    let input = sbom::Input {
        binary: &binary,
        binary_path: format!("/{name}"),
        subject: sbom::Subject {
            name: name.clone(),
            digest,
            platform,
            is_image: false,
        },
        files: Vec::new(),
        built: None,
        created,
    };
    Ok(sbom::describe(&input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbom_output_names_per_platform_and_format() {
        let amd = Platform::linux("amd64");
        let f = Path::new("out/app.sbom.json");
        assert_eq!(sbom_output_path(f, &amd, false, "spdx", false), f);
        assert_eq!(
            sbom_output_path(f, &amd, true, "spdx", false),
            Path::new("out/app.sbom-linux-amd64.json")
        );
        assert_eq!(
            sbom_output_path(f, &amd, true, "cyclonedx", true),
            Path::new("out/app.sbom-linux-amd64.cdx.json")
        );
        assert_eq!(
            sbom_output_path(Path::new("sbom"), &amd, false, "spdx", true),
            Path::new("sbom.spdx")
        );
    }

    #[test]
    fn build_targets_from_the_build_command() {
        let p = Platform::linux("arm64");
        assert_eq!(
            target_of(
                "cargo build --target=aarch64-unknown-linux-musl",
                "cargo",
                &p
            )
            .as_deref(),
            Some("aarch64-unknown-linux-musl")
        );
        assert_eq!(
            target_of(
                "dotnet publish -c Release -r linux-musl-arm64",
                "dotnet",
                &p
            )
            .as_deref(),
            Some("linux-musl-arm64")
        );
        assert_eq!(
            target_of("go build -o x .", "go", &p).as_deref(),
            Some("linux/arm64")
        );
        assert_eq!(target_of("make -B", "c", &p), None);
    }
}
