//! The SBOM's input from an image's own layers: the entrypoint binary (the
//! config's `Entrypoint[0]`, else `Cmd[0]`) and every other regular file,
//! each hashed as the image holds it. Later layers win; whiteouts remove.

use std::collections::BTreeMap;
use std::io::Read;

use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use distroless_pack_image::{Image, PinnedInputs};

use crate::{FileRole, ImageFile, Input, SbomError, Subject};

/// What an image holds, for [`crate::describe`].
#[derive(Clone, Debug)]
pub struct ImageContents {
    pub binary: Vec<u8>,
    pub binary_path: String,
    pub files: Vec<ImageFile>,
}

impl ImageContents {
    /// The input for `image`, named `name`.
    pub fn input<'a>(
        &'a self,
        name: &str,
        image: &Image,
        built: Option<&'a PinnedInputs>,
        created: u64,
    ) -> Input<'a> {
        Input {
            binary: &self.binary,
            binary_path: self.binary_path.clone(),
            subject: Subject {
                name: name.to_string(),
                digest: image.digest().clone(),
                platform: image.platform.clone(),
                is_image: true,
            },
            files: self.files.clone(),
            built,
            created,
        }
    }
}

enum Entry {
    File(Vec<u8>),
    Link(String),
}

/// Reads the image's layers.
pub fn from_image(image: &Image) -> Result<ImageContents, SbomError> {
    let config = image
        .config_json()
        .map_err(|e| SbomError::Image(format!("the image config: {e}")))?;
    let cfg = config.config().clone().unwrap_or_default();
    let exe = cfg
        .entrypoint()
        .as_ref()
        .and_then(|e| e.first().cloned())
        .or_else(|| cfg.cmd().as_ref().and_then(|c| c.first().cloned()))
        .ok_or_else(|| {
            SbomError::NoBinary(format!(
                "image {}: the config has no entrypoint or cmd",
                image.digest()
            ))
        })?;
    let exe = if exe.starts_with('/') {
        exe
    } else {
        let wd = cfg.working_dir().clone().unwrap_or_else(|| "/".to_string());
        format!("{}/{}", wd.trim_end_matches('/'), exe)
    };

    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let what = |e: &dyn std::fmt::Display| {
            SbomError::Image(format!("layer {i} ({}): {e}", layer.digest))
        };
        let raw = layer.open().map_err(|e| what(&e))?;
        // Every member: our gzip layers are one gzip member per chunk.
        let reader: Box<dyn Read> = if layer.media_type.ends_with("gzip") {
            Box::new(flate2::read::MultiGzDecoder::new(raw))
        } else if layer.media_type.ends_with("zstd") {
            Box::new(zstd::stream::read::Decoder::new(raw).map_err(|e| what(&e))?)
        } else if layer.media_type.ends_with(".tar") || layer.media_type.ends_with("tar") {
            raw
        } else {
            return Err(what(&format!(
                "layers of type {} cannot be read",
                layer.media_type
            )));
        };
        let mut ar = tar::Archive::new(reader);
        for entry in ar.entries().map_err(|e| what(&e))? {
            let mut entry = entry.map_err(|e| what(&e))?;
            let path = entry.path().map_err(|e| what(&e))?;
            let path = format!(
                "/{}",
                path.to_string_lossy()
                    .trim_start_matches("./")
                    .trim_start_matches('/')
            );
            let (dir, base) = path.rsplit_once('/').unwrap_or(("", &path));
            if let Some(gone) = base.strip_prefix(".wh.") {
                let target = format!("{dir}/{gone}");
                entries.retain(|p, _| p != &target && !p.starts_with(&format!("{target}/")));
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_file() {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(|e| what(&e))?;
                entries.insert(path, Entry::File(bytes));
            } else if kind.is_symlink() {
                if let Ok(Some(t)) = entry.link_name() {
                    entries.insert(path, Entry::Link(t.to_string_lossy().into_owned()));
                }
            }
        }
    }

    // The entrypoint may be a symlink (resolved a few times, as exec would).
    let mut path = exe.clone();
    for _ in 0..8 {
        match entries.get(&path) {
            Some(Entry::Link(t)) => {
                path = if t.starts_with('/') {
                    t.clone()
                } else {
                    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    format!("{dir}/{t}")
                };
            }
            _ => break,
        }
    }
    let binary = match entries.remove(&path) {
        Some(Entry::File(b)) => b,
        _ => {
            return Err(SbomError::NoBinary(format!(
                "image {}: the entrypoint {exe} is not a file in its layers",
                image.digest()
            )))
        }
    };
    let files = entries
        .into_iter()
        .filter_map(|(p, e)| match e {
            Entry::File(b) => Some(ImageFile {
                role: FileRole::of_path(&p),
                sha256: hex::encode(Sha256::digest(&b)),
                sha1: hex::encode(Sha1::digest(&b)),
                size: b.len() as u64,
                path: p,
            }),
            Entry::Link(_) => None,
        })
        .collect();
    Ok(ImageContents {
        binary,
        binary_path: exe,
        files,
    })
}
