//! One image of a registry with its layers, for `sbom` of a registry
//! image: the manifest and config read as `inspect` reads them
//! (referrers.rs), the platform picked as for every other source, then each
//! layer streamed to a file in a temp folder, checked against its digest
//! and size as it arrives (a blob that does not match is an error, never a
//! layer).

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use distroless_pack_image::{
    choose_platform, first_of_type, Blob, BlobMismatch, Digest, Image, KeepAlive, Platform,
    VerifyingReader,
};
use serde_json::Value;

use super::reference::Reference;
use super::transport::{self, Session};
use super::{referrers, PushOptions, RegistryError};
use crate::dest::TempGuard;
use crate::store::Desc;

/// The folder the layers of one pull are downloaded to: removed when the
/// image's last layer blob is dropped; on SIGINT or SIGTERM the live temp
/// file registry removes its files.
struct Downloads {
    _files: Vec<TempGuard>,
    _dir: tempfile::TempDir,
}

/// The image `reference` names for `platform` (for an index: the one
/// `platform` names, else the only one, else this machine's), its layers
/// downloaded to a temp folder that lives as long as the image's layer
/// blobs.
pub fn pull_image(
    reference: &Reference,
    platform: Option<&Platform>,
    opts: &PushOptions,
) -> Result<Image, RegistryError> {
    let dir = tempfile::Builder::new()
        .prefix("distroless-pack-pull-")
        .tempdir()
        .map_err(|e| RegistryError::Invalid(format!("cannot make a temp folder: {e}")))?;
    let (session, manifest, config) = chosen_image(reference, platform, opts)?;
    let config = match config {
        Some(c) => c,
        None => referrers::config_of(&session, reference, &manifest, opts)?,
    };
    let what = format!("manifest {}", manifest.digest);
    let v: Value = serde_json::from_slice(&manifest.read_all().unwrap_or_default())
        .map_err(|e| RegistryError::Invalid(format!("{what}: {e}")))?;
    let (mut found, mut files) = (Vec::new(), Vec::new());
    for l in v
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Desc {
            media_type,
            digest,
            size,
        } = Desc::parse(l, &what).map_err(RegistryError::Invalid)?;
        let path = dir.path().join(digest.hex());
        files.push(TempGuard::new(path.clone()));
        download(&session, &reference.repository, &digest, size, &path, opts)?;
        found.push((media_type, digest, size, path));
    }
    let keep: KeepAlive = Arc::new(Downloads {
        _files: files,
        _dir: dir,
    });
    let layers = found
        .into_iter()
        .map(|(mt, digest, size, path)| {
            Blob::from_file(&mt, digest, size, path, 0, Some(keep.clone()))
        })
        .collect();
    Image::from_parts(manifest, config, layers)
        .map_err(|e| RegistryError::Invalid(format!("{reference}: {e}")))
}

/// The largest attached document [`attached_document`] downloads (it is
/// held in memory).
const DOCUMENT_LIMIT: u64 = 64 << 20;

/// The document of `artifact_type` attached to the image `reference` names
/// for `platform` (picked as [`pull_image`] picks): the payload of the
/// first referrer of that type, by the referrers API or the tag schema,
/// checked against its digest (`None` when none of that type is attached),
/// and the artifact types that are attached, sorted.
pub fn attached_document(
    reference: &Reference,
    platform: Option<&Platform>,
    artifact_type: &str,
    opts: &PushOptions,
) -> Result<(Option<Vec<u8>>, Vec<String>), RegistryError> {
    let (session, manifest, _) = chosen_image(reference, platform, opts)?;
    let list = referrers::list_on(&session, &reference.repository, &manifest.digest, opts)?;
    let (found, types) = first_of_type(&list.referrers, artifact_type, |r| &r.artifact_type);
    let Some(found) = found else {
        return Ok((None, types));
    };
    let what = format!("referrer {}", found.digest);
    let layer = found
        .layers
        .first()
        .ok_or_else(|| RegistryError::Invalid(format!("{what} has no payload")))?;
    let Desc { digest, size, .. } = Desc::parse(layer, &what).map_err(RegistryError::Invalid)?;
    if size > DOCUMENT_LIMIT {
        return Err(RegistryError::Invalid(format!(
            "{what}: its payload is {size} bytes, more than the {DOCUMENT_LIMIT} read"
        )));
    }
    let bytes = referrers::get_small_blob(&session, &reference.repository, &digest, opts)?;
    Ok((Some(bytes), types))
}

/// A pull session, and the manifest of the image `reference` names for
/// `platform` ([`pick`]) with its config when the listing already read it.
/// Only the chosen image's config is fetched: an index entry names its
/// platform, and a lone manifest's config was read to learn it.
fn chosen_image(
    reference: &Reference,
    platform: Option<&Platform>,
    opts: &PushOptions,
) -> Result<(Session, Blob, Option<Blob>), RegistryError> {
    let session = referrers::session_for(reference, opts, false)?;
    let top = referrers::required_manifest(
        &session,
        reference,
        &referrers::manifest_at(reference),
        opts,
    )?;
    let images = referrers::listed_images(&session, reference, &top, opts)?;
    let (manifest, config) = pick(images, platform, reference)?;
    Ok((session, manifest, config))
}

/// The manifest and config of the image `platform` picks, by the rule
/// files use (`choose_platform`, as `Artifact::image_for`).
fn pick<C>(
    mut images: Vec<(Blob, C, Platform)>,
    platform: Option<&Platform>,
    reference: &Reference,
) -> Result<(Blob, C), RegistryError> {
    let platforms: Vec<&Platform> = images.iter().map(|(_, _, p)| p).collect();
    match choose_platform(&platforms, platform) {
        Ok(i) => {
            let (m, c, _) = images.swap_remove(i);
            Ok((m, c))
        }
        Err(none) => Err(RegistryError::Invalid(match none.wanted {
            Some(w) => format!(
                "{reference}: no {w} image; it has {}",
                none.available.join(", ")
            ),
            None => format!(
                "{reference} is an index of {}: give --platform (this machine is {})",
                none.available.join(", "),
                Platform::host()
            ),
        })),
    }
}

/// `GET` of one blob into `path`, checked against `digest` and `size`.
fn download(
    session: &Session,
    repo: &str,
    digest: &Digest,
    size: u64,
    path: &Path,
    opts: &PushOptions,
) -> Result<(), RegistryError> {
    let url = session.url(&format!("/v2/{repo}/blobs/{digest}"));
    let what = format!("GET blob {digest}");
    let resp = session.send(&what, opts.attempts, &|c| {
        Ok(c.get(&url).timeout(session.timeout_for(size)))
    })?;
    if !resp.status().is_success() {
        return Err(session.http_error(&what, resp));
    }
    let mut body = VerifyingReader::new(resp, digest.clone(), size, what.clone());
    let disk = |error| RegistryError::Io {
        digest: digest.to_string(),
        error,
    };
    let mut file = File::create(path).map_err(disk)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(match BlobMismatch::in_io(&e) {
                    Some(m) => RegistryError::WrongBlob {
                        registry: session.registry.clone(),
                        what,
                        sent: match &m.actual {
                            Some(d) if m.actual_size == size => {
                                format!("bytes of digest {d}, not the blob {digest}")
                            }
                            Some(d) => format!(
                                "{} bytes of digest {d}, not the {size} bytes of the blob {digest}",
                                m.actual_size
                            ),
                            None => format!("more than the {size} bytes of the blob {digest}"),
                        },
                    },
                    None => RegistryError::Network {
                        registry: session.registry.clone(),
                        what,
                        message: transport::error_chain(&e),
                    },
                })
            }
        };
        file.write_all(&buf[..n]).map_err(disk)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(arches: &[&str]) -> Vec<(Blob, Blob, Platform)> {
        arches
            .iter()
            .map(|a| {
                (
                    Blob::from_bytes("m", format!("manifest {a}").into_bytes()),
                    Blob::from_bytes("c", format!("config {a}").into_bytes()),
                    Platform::linux(a),
                )
            })
            .collect()
    }

    fn picked(arches: &[&str], platform: Option<&str>) -> Result<String, String> {
        let reference = Reference::parse("127.0.0.1:5000/app:1").unwrap();
        let platform = platform.map(Platform::linux);
        pick(images(arches), platform.as_ref(), &reference)
            .map(|(m, _)| String::from_utf8(m.read_all().unwrap()).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_platform_is_picked_as_for_a_file_the_asked_else_the_only_else_the_host() {
        let host = Platform::host().architecture;
        assert_eq!(picked(&["riscv64"], None).unwrap(), "manifest riscv64");
        assert_eq!(
            picked(&["amd64", "arm64"], Some("arm64")).unwrap(),
            "manifest arm64"
        );
        assert_eq!(
            picked(&["riscv64", &host], None).unwrap(),
            format!("manifest {host}")
        );
        let e = picked(&["riscv64", "s390x"], None).unwrap_err();
        assert!(
            e.contains("is an index of linux/riscv64, linux/s390x: give --platform"),
            "{e}"
        );
        let e = picked(&["amd64"], Some("arm64")).unwrap_err();
        assert!(
            e.contains("no linux/arm64 image; it has linux/amd64"),
            "{e}"
        );
    }
}
