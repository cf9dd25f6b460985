//! `distroless-pack attach SOURCE --artifact-type TYPE FILE[:MEDIATYPE]`:
//! attaches a document to an image as an OCI 1.1 artifact (a referrer
//! whose `subject` is the image manifest), in a layout, an OCI archive or
//! a registry, as `oras attach` does (see docs/commands/attach.md).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use distroless_pack_image::{valid_media_type, Blob, Platform, Referrer, Subject};
use distroless_pack_pipeline::{Event, Observer};
use distroless_pack_ship::registry::{referrers, RegistryError};
use distroless_pack_ship::Location;
use serde_json::json;

use crate::args::RegistryArgs;
use crate::exit::{self, WithCode};
use crate::progress::Progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, or a registry
    /// reference (`docker://REGISTRY/REPO[:TAG|@DIGEST]` or
    /// `REGISTRY/REPO[:TAG|@DIGEST]`).
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// The file to attach, with its media type after a colon (default: the
    /// artifact type), e.g. `sbom.json:application/spdx+json`.
    #[arg(value_name = "FILE[:MEDIATYPE]")]
    pub file: String,

    /// What the artifact is (its `artifactType`), e.g.
    /// `application/spdx+json` or `application/vnd.in-toto+json`.
    #[arg(long, value_name = "TYPE")]
    pub artifact_type: String,

    /// For an index: attach to this platform's image only (default: to
    /// every platform's image, one artifact each).
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<Platform>,

    /// An annotation of the artifact manifest (repeatable). None is added
    /// by default: no time, so the same inputs give the same digest.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Print a JSON list (per artifact: subject, platform, digest,
    /// artifactType, size, where a registry keeps it) instead of digests.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `FILE[:MEDIATYPE]`: the media type is what follows the last `:` when
/// it looks like one (so a path may hold a colon).
fn split_file(spec: &str, default: &str) -> (PathBuf, String) {
    if let Some((path, mt)) = spec.rsplit_once(':') {
        if mt.contains('/') && !path.is_empty() {
            return (PathBuf::from(path), mt.to_string());
        }
    }
    (PathBuf::from(spec), default.to_string())
}

fn annotations(list: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in list {
        let Some((k, v)) = a.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(anyhow::anyhow!("--annotation {a:?}: expected KEY=VALUE"))
                .code(exit::USAGE);
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn payload(path: &Path, media_type: &str) -> anyhow::Result<Blob> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
        .code(exit::USAGE)?;
    Ok(Blob::from_bytes(media_type, bytes))
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    if !valid_media_type(&args.artifact_type) {
        return Err(anyhow::anyhow!(
            "--artifact-type {:?} is not a media type (type/subtype, e.g. application/spdx+json)",
            args.artifact_type
        ))
        .code(exit::USAGE);
    }
    let (file, media_type) = split_file(&args.file, &args.artifact_type);
    if !valid_media_type(&media_type) {
        return Err(anyhow::anyhow!(
            "{}: media type {media_type:?} is not a media type (type/subtype)",
            args.file
        ))
        .code(exit::USAGE);
    }
    let annotations = annotations(&args.annotations)?;
    let blob = payload(&file, &media_type)?;
    let title = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let location =
        distroless_pack_ship::parse_location(&args.source).map_err(|e| exit::fail(&e, e.kind()))?;
    let make = |subject: Subject| {
        Referrer::for_subject(
            subject,
            &args.artifact_type,
            blob.clone(),
            title.as_deref(),
            &annotations,
        )
        .map_err(|e| exit::fail(format!("{}: {e}", args.file), e.kind()))
    };
    // (platform, referrer, where the registry keeps it)
    let mut made: Vec<(Platform, Referrer, Option<referrers::ReferrerReport>)> = Vec::new();
    match &location {
        Location::File(source) => {
            let artifact =
                distroless_pack_ship::read(source).map_err(|e| exit::reading(source, e))?;
            let images: Vec<_> = match &args.platform {
                Some(p) => vec![artifact
                    .select(Some(p))
                    .ok_or_else(|| {
                        let have: Vec<String> = artifact
                            .images()
                            .iter()
                            .map(|i| i.platform.to_string())
                            .collect();
                        anyhow::anyhow!("{source}: no {p} image; it has {}", have.join(", "))
                    })
                    .code(exit::USAGE)?],
                None => artifact.images().iter().collect(),
            };
            for img in images {
                made.push((img.platform.clone(), make(Subject::of(img))?, None));
            }
            let list: Vec<Referrer> = made.iter().map(|(_, r, _)| r.clone()).collect();
            distroless_pack_ship::attach_to_file(source, &list)
                .map_err(|e| exit::fail(&e, e.kind()))?;
        }
        Location::Registry(reference) => {
            let opts = args.registry.push_options()?;
            let registry_fail =
                |e: RegistryError| exit::fail(format!("attaching to {reference}: {e}"), e.kind());
            let subjects = referrers::subjects(reference, args.platform.as_ref(), &opts)
                .map_err(registry_fail)?;
            let mut list = Vec::new();
            for (subject, platform) in subjects {
                list.push((platform, make(subject)?));
            }
            let progress = Progress::new(args.json);
            let only: Vec<Referrer> = list.iter().map(|(_, r)| r.clone()).collect();
            let reports = referrers::push_referrers_to(reference, &only, &opts, &|ev| {
                progress.event(Event::Push(ev))
            })
            .map_err(registry_fail)?;
            drop(progress);
            for ((platform, r), report) in list.into_iter().zip(reports) {
                made.push((platform, r, Some(report)));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc: Vec<_> = made
            .iter()
            .map(|(p, r, report)| {
                let mut v = json!({
                    "subject": r.subject.digest.as_str(),
                    "platform": p.to_string(),
                    "digest": r.digest().as_str(),
                    "artifactType": r.artifact_type,
                    "size": r.manifest.size,
                });
                if let Some(rep) = report {
                    v["via"] = serde_json::to_value(rep.via).expect("serialises");
                    if let Some(t) = &rep.tag {
                        v["tag"] = t.clone().into();
                    }
                }
                v
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON values serialise")
        )
        .code(exit::OUTPUT)?;
    } else {
        for (_, r, _) in &made {
            writeln!(out, "{}", r.digest()).code(exit::OUTPUT)?;
        }
    }
    out.flush().code(exit::OUTPUT)?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_spec_takes_its_media_type_after_the_last_colon() {
        assert_eq!(
            split_file("sbom.json:application/spdx+json", "x/y"),
            (PathBuf::from("sbom.json"), "application/spdx+json".into())
        );
        assert_eq!(
            split_file("sbom.json", "x/y"),
            (PathBuf::from("sbom.json"), "x/y".into())
        );
        assert_eq!(
            split_file("a:b.json", "x/y"),
            (PathBuf::from("a:b.json"), "x/y".into())
        );
    }
}
