//! Attaching documents to an image that is already written (`attach`):
//! where the image is ([`Location`]: a file format or a registry) and
//! adding referrers to a layout or an OCI archive in place.
//!
//! The image itself is never rewritten: its manifest, config, layers and
//! `index.json` entry keep their bytes; only the referrers' blobs are added.

use std::path::Path;

use distroless_pack_image::{first_of_type, Blob, Digest, Image, Referrer};

use crate::layout::write_blob;
use crate::registry::Reference;
use crate::store::{Store, TarStore};
use crate::tarw::{write_tar_file, Content};
use crate::{ShipError, Sink, Source};

/// Where an image is: a file format, or a registry.
#[derive(Clone, Debug)]
pub enum Location {
    File(Source),
    Registry(Reference),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(s) => write!(f, "{s}"),
            Location::Registry(r) => write!(f, "{r}"),
        }
    }
}

/// The payload of `image`'s first referrer of `artifact_type`, read
/// through [`Blob::open_verified`] (a blob that is not its digest is an
/// error), or `None` when none of that type is attached; and the artifact
/// types that are attached, sorted (`sbom --attached`; for a registry,
/// [`crate::registry::pull::attached_document`]).
pub fn attached_document(
    image: &Image,
    artifact_type: &str,
) -> Result<(Option<Vec<u8>>, Vec<String>), ShipError> {
    let (found, types) = first_of_type(&image.referrers, artifact_type, |r| &r.artifact_type);
    let Some(r) = found else {
        return Ok((None, types));
    };
    let layer = r.layers.first().ok_or_else(|| {
        ShipError::invalid(
            Path::new(&r.manifest.location()),
            format!("referrer {} has no payload", r.manifest.digest),
        )
    })?;
    let mut bytes = Vec::new();
    layer
        .open_verified()
        .and_then(|mut rd| std::io::Read::read_to_end(&mut rd, &mut bytes))
        .map_err(ShipError::io("reading", Path::new(&layer.location())))?;
    Ok((Some(bytes), types))
}

/// Parses an image location: `oci:`, `oci-archive:`, `docker-archive:` (or
/// an existing path, as [`crate::parse_source`] takes it), else a registry
/// reference: `docker://REF` (skopeo's form), or `REGISTRY/REPO[:TAG][@DIGEST]`
/// whose first part is a host (`localhost:5000/x`, `ghcr.io/acme/app`).
pub fn parse_location(s: &str) -> Result<Location, ShipError> {
    if let Some(r) = s.strip_prefix("docker://") {
        return registry_ref(s, r);
    }
    let prefixed = ["oci:", "oci-archive:", "docker-archive:"]
        .iter()
        .any(|p| s.starts_with(p));
    if prefixed || Path::new(s).exists() || !names_a_registry(s) {
        return crate::parse_source(s).map(Location::File);
    }
    registry_ref(s, s)
}

/// Whether a bare `s` starts with a registry host (`localhost`, or a first
/// part with a `.` or a `:`), so a mistyped path is never sent to Docker
/// Hub; `docker://` names any registry, Docker Hub's short names too.
fn names_a_registry(s: &str) -> bool {
    match s.split_once('/') {
        Some((host, rest)) => {
            !rest.is_empty()
                && host != "."
                && host != ".."
                && (host.contains('.') || host.contains(':') || host == "localhost")
        }
        None => false,
    }
}

fn registry_ref(spec: &str, r: &str) -> Result<Location, ShipError> {
    Reference::parse(r)
        .map(Location::Registry)
        .map_err(|e| ShipError::BadSink {
            spec: spec.to_string(),
            message: format!(
                "{}; expected oci:DIR[:TAG], oci-archive:FILE[:TAG], an existing path, or a registry reference (docker://REGISTRY/REPO[:TAG] or REGISTRY/REPO[:TAG])",
                e.reason
            ),
        })
}

/// Adds `referrers` (made for images of the artifact at `source`) to the
/// layout or OCI archive `source` names, leaving the image untouched. A
/// docker archive cannot hold them.
pub fn attach_to_file(source: &Source, referrers: &[Referrer]) -> Result<(), ShipError> {
    match source {
        Sink::OciLayout { dir, .. } => attach_to_layout(dir, referrers),
        Sink::OciArchive { path, .. } => attach_to_archive(path, referrers),
        Sink::DockerArchive { .. } => Err(ShipError::BadSink {
            spec: source.to_string(),
            message: "a docker archive cannot hold referrers (docker load has no place for them); use an oci: layout, an oci-archive: or a registry".into(),
        }),
    }
}

fn referrer_blobs(referrers: &[Referrer]) -> Vec<&Blob> {
    // payloads and config first, each manifest once what it names is in
    referrers
        .iter()
        .flat_map(|r| r.blobs().chain([&r.manifest]))
        .collect()
}

fn attach_to_layout(dir: &Path, referrers: &[Referrer]) -> Result<(), ShipError> {
    // The same lock a layout writer holds: no writer sees half of it.
    let _lock = std::fs::File::open(dir)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(ShipError::io("locking", dir))?;
    for b in referrer_blobs(referrers) {
        write_blob(dir, b)?;
    }
    Ok(())
}

fn attach_to_archive(path: &Path, referrers: &[Referrer]) -> Result<(), ShipError> {
    let store = TarStore::open(path)?;
    let mut owned: Vec<(String, Blob)> = Vec::new();
    let mut small: Vec<(String, Vec<u8>)> = Vec::new();
    for (rel, offset, size) in store.files() {
        let digest = rel
            .strip_prefix("blobs/sha256/")
            .and_then(|h| format!("sha256:{h}").parse::<Digest>().ok());
        match digest {
            // copied from the old archive, checked against its name
            Some(d) => owned.push((
                rel.clone(),
                Blob::from_file("", d, size, path.to_path_buf(), offset, None),
            )),
            None => {
                let bytes = store.read_small(&rel)?.unwrap_or_default();
                small.push((rel, bytes));
            }
        }
    }
    let mut entries: Vec<(String, Content)> = vec![
        ("blobs".to_string(), Content::Dir),
        ("blobs/sha256".to_string(), Content::Dir),
    ];
    entries.extend(small.into_iter().map(|(r, b)| (r, Content::Bytes(b))));
    entries.extend(owned.iter().map(|(r, b)| (r.clone(), Content::Blob(b))));
    for b in referrer_blobs(referrers) {
        entries.push((crate::store::blob_path(&b.digest), Content::Blob(b)));
    }
    write_tar_file(path, entries)
}

/// The note for outputs that drop referrers: when `artifact` has some and
/// every output is a docker archive or `--load` (neither can hold them),
/// one line saying so; `None` when some output keeps them (or there are
/// none to keep).
pub fn dropped_referrers_note(
    artifact: &distroless_pack_image::Artifact,
    outputs: &[crate::Output],
) -> Option<String> {
    use crate::Output;
    let n = artifact.referrers().count();
    let drops = |o: &Output| {
        matches!(
            o,
            Output::Load(_) | Output::File(Sink::DockerArchive { .. })
        )
    };
    if n == 0 || outputs.is_empty() || !outputs.iter().all(drops) {
        return None;
    }
    let kinds: Vec<String> = {
        let mut k: Vec<String> = artifact
            .referrers()
            .map(|r| r.artifact_type.clone())
            .collect();
        k.sort();
        k.dedup();
        k
    };
    Some(format!(
        "the image has {n} attached artifact(s) ({}) that docker-archive and --load cannot hold; they are not written (--sbom-output FILE writes the SBOM beside, an oci:, oci-archive: or --push output keeps them)",
        kinds.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Output;
    use distroless_pack_image::{spec::ImageConfiguration, Artifact, Image};
    use std::collections::BTreeMap;

    fn image_with_sbom() -> Artifact {
        let config: ImageConfiguration = serde_json::from_value(serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap();
        let mut img = Image::new(&config, vec![], &BTreeMap::new()).unwrap();
        let p = Blob::from_bytes("application/spdx+json", b"{}".to_vec());
        let r = Referrer::new(&img, "application/spdx+json", p, &BTreeMap::new()).unwrap();
        img.attach(r).unwrap();
        Artifact::Image(img)
    }

    #[test]
    fn only_docker_archive_and_load_outputs_get_the_dropped_referrers_note() {
        let a = image_with_sbom();
        let docker = Output::File("docker-archive:a.tar".parse().unwrap());
        let oci = Output::File("oci:out".parse().unwrap());
        let note = dropped_referrers_note(&a, &[docker.clone(), Output::Load(None)]).unwrap();
        assert!(
            note.contains("1 attached artifact(s) (application/spdx+json)"),
            "{note}"
        );
        assert!(dropped_referrers_note(&a, &[docker.clone(), oci]).is_none());
        let Artifact::Image(mut plain) = a else {
            unreachable!()
        };
        plain.referrers.clear();
        assert!(dropped_referrers_note(&Artifact::Image(plain), &[docker]).is_none());
    }

    #[test]
    fn locations_tell_files_from_registry_references() {
        assert!(matches!(
            parse_location("oci:x:1").unwrap(),
            Location::File(_)
        ));
        assert!(matches!(
            parse_location("docker://localhost:5000/a/b:1").unwrap(),
            Location::Registry(_)
        ));
        assert!(matches!(
            parse_location("localhost:5000/a/b:1").unwrap(),
            Location::Registry(_)
        ));
        assert!(matches!(parse_location("/").unwrap(), Location::File(_)));
        // a missing path is a file error, never a request to Docker Hub
        assert!(parse_location("out/missing").is_err());
        assert!(parse_location("./out/missing:1").is_err());
        assert!(parse_location("docker://").is_err());
    }
}
