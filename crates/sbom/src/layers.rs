//! The SBOM's input from an image's own layers: the entrypoint binary (the
//! config's `Entrypoint[0]`, else `Cmd[0]`) and every other regular file,
//! each hashed as the image holds it. Later layers win; whiteouts remove.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use distroless_pack_image::{Image, PinnedInputs};

use crate::binary::{Binary, Scan, Scanner};
use crate::{FileRole, ImageFile, Input, SbomError, Subject};

/// What an image holds, for [`crate::describe`].
#[derive(Debug)]
pub struct ImageContents {
    pub binary: Arc<Binary>,
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

/// A regular file of an image, as [`from_files`] reads it: from the host
/// (the file the layer was written from) or bytes made for the image.
#[derive(Clone, Debug)]
pub enum FileSource {
    Host(PathBuf),
    Bytes(Arc<[u8]>),
}

/// The contents of an image whose layers were just written from these
/// files (`pack`, `build`): the same bytes, read from where the layers
/// took them, so no layer is inflated again. `entrypoint` is the
/// binary's path in the image; `files` are every regular file of the
/// image, the binary included, by absolute path. `scanned` is the
/// entrypoint's file already scanned (while its layer was written).
pub fn from_files(
    entrypoint: &str,
    files: &[(String, FileSource)],
    scanned: Option<Arc<Binary>>,
) -> Result<ImageContents, SbomError> {
    let mut binary = None;
    let mut listed = Vec::new();
    for (path, source) in files {
        let read = |e: std::io::Error| SbomError::Image(format!("{path}: {e}"));
        if path == entrypoint {
            binary = Some(match (source, scanned.clone()) {
                (FileSource::Host(_), Some(b)) => b,
                (FileSource::Host(p), None) => Arc::new(Binary::open(p).map_err(read)?),
                (FileSource::Bytes(b), _) => Arc::new(Binary::from_bytes(b.to_vec())),
            });
            continue;
        }
        let mut s = Scanner::new();
        match source {
            FileSource::Host(p) => {
                let mut f = std::fs::File::open(p).map_err(read)?;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = f.read(&mut buf).map_err(read)?;
                    if n == 0 {
                        break;
                    }
                    s.update(&buf[..n]);
                }
            }
            FileSource::Bytes(b) => s.update(b),
        }
        listed.push(image_file(path.clone(), s.finish()));
    }
    let binary = binary.ok_or_else(|| {
        SbomError::NoBinary(format!(
            "the entrypoint {entrypoint} is not a file of the image"
        ))
    })?;
    Ok(ImageContents {
        binary,
        binary_path: entrypoint.to_string(),
        files: listed,
    })
}

fn image_file(path: String, scan: Scan) -> ImageFile {
    ImageFile {
        role: FileRole::of_path(&path),
        sha256: scan.sha256,
        sha1: scan.sha1,
        size: scan.size,
        path,
    }
}

enum Entry {
    /// A regular file: its scan and, for the entrypoint, its bytes
    /// spooled to an unnamed temp file (so that memory stays flat).
    File(Scan, Option<std::fs::File>),
    Link(String),
}

/// Streams one regular tar entry through a [`Scanner`], spooling it to an
/// unnamed temp file when `keep`.
fn read_entry(entry: &mut impl Read, keep: bool) -> std::io::Result<(Scan, Option<std::fs::File>)> {
    let mut s = Scanner::new();
    let mut spool = if keep {
        Some(tempfile::tempfile()?)
    } else {
        None
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        // Fill the buffer (the tar reader hands out small reads).
        let mut n = 0;
        while n < buf.len() {
            let m = entry.read(&mut buf[n..])?;
            if m == 0 {
                break;
            }
            n += m;
        }
        if n == 0 {
            break;
        }
        if let Some(f) = spool.as_mut() {
            f.write_all(&buf[..n])?;
        }
        s.update(&buf[..n]);
        if n < buf.len() {
            break;
        }
    }
    Ok((s.finish(), spool))
}

/// Every regular file and symlink the layers leave (later layers win,
/// whiteouts remove), each file scanned as it streams by; the file at
/// `keep` is also spooled to an unnamed temp file.
fn read_layers(image: &Image, keep: &str) -> Result<BTreeMap<String, Entry>, SbomError> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let what = |e: &dyn std::fmt::Display| {
            SbomError::Image(format!("layer {i} ({}): {e}", layer.digest))
        };
        let raw = layer.open().map_err(|e| what(&e))?;
        let reader = distroless_pack_image::uncompressed(std::io::BufReader::new(raw))
            .map_err(|e| what(&e))?;
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
                let (scan, spool) = read_entry(&mut entry, path == keep).map_err(|e| what(&e))?;
                entries.insert(path, Entry::File(scan, spool));
            } else if kind.is_symlink() {
                if let Ok(Some(t)) = entry.link_name() {
                    entries.insert(path, Entry::Link(t.to_string_lossy().into_owned()));
                }
            }
        }
    }
    Ok(entries)
}

/// Reads the image's layers, streaming: each file is hashed as it goes by,
/// and only the entrypoint is kept, in a temp file. When the entrypoint is
/// a symlink, the file it leads to is known only once every layer is read:
/// the layers are then read once more for that file.
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

    let mut entries = read_layers(image, &exe)?;

    // The entrypoint may be a symlink (resolved a few times, as exec would).
    let mut path = exe.clone();
    for _ in 0..8 {
        match entries.get(&path) {
            Some(Entry::Link(t)) => {
                path = if t.starts_with('/') {
                    distroless_pack_image::clean_path(t)
                } else {
                    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    distroless_pack_image::clean_path(&format!("{dir}/{t}"))
                };
            }
            _ => break,
        }
    }
    let not_a_file = || {
        SbomError::NoBinary(format!(
            "image {}: the entrypoint {exe} is not a file in its layers",
            image.digest()
        ))
    };
    let binary = match entries.remove(&path) {
        Some(Entry::File(scan, Some(file))) => Binary::from_scanned(file, scan),
        Some(Entry::File(..)) => match read_layers(image, &path)?.remove(&path) {
            Some(Entry::File(scan, Some(file))) => Binary::from_scanned(file, scan),
            _ => return Err(not_a_file()),
        },
        _ => return Err(not_a_file()),
    };
    let binary = Arc::new(binary);
    let files = entries
        .into_iter()
        .filter_map(|(p, e)| match e {
            Entry::File(scan, _) => Some(image_file(p, scan)),
            Entry::Link(_) => None,
        })
        .collect();
    Ok(ImageContents {
        binary,
        binary_path: exe,
        files,
    })
}
