//! Reading an OCI image layout from where its files are: a directory or a tar
//! file (read in place: blobs become regions of the tar, nothing is
//! extracted). Both give the same [`Artifact`] with the same digests.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use distroless_pack_image::{
    Artifact, Blob, Digest, Image, Index, Referrer, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
    MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST,
};
use serde_json::Value;

use crate::ReadBack;
use crate::ShipError;

/// Manifests and configs larger than this are refused (they are JSON).
const MAX_JSON: u64 = 16 << 20;

/// Files of a layout, by their path inside it (`index.json`,
/// `blobs/sha256/<hex>`).
pub(crate) trait Store {
    /// The directory or tar file, for error messages.
    fn path(&self) -> &Path;
    /// Where the file at `rel` is: (file, offset, size), if present.
    fn locate(&self, rel: &str) -> Result<Option<(PathBuf, u64, u64)>, ShipError>;
    /// The `blobs/sha256/<hex>` files: (path inside the layout, size).
    fn blob_files(&self) -> Result<Vec<(String, u64)>, ShipError>;

    /// The whole file at `rel` (a small JSON file).
    fn read_small(&self, rel: &str) -> Result<Option<Vec<u8>>, ShipError> {
        let Some((file, offset, size)) = self.locate(rel)? else {
            return Ok(None);
        };
        if size > MAX_JSON {
            return Err(ShipError::invalid(
                self.path(),
                format!("{rel} is {size} bytes, too large for JSON"),
            ));
        }
        let mut out = Vec::with_capacity(size as usize);
        open_region(&file, offset, size)
            .and_then(|mut r| r.read_to_end(&mut out))
            .map_err(ShipError::io("reading", &file))?;
        Ok(Some(out))
    }

    /// A blob read into memory and checked against its descriptor.
    fn small_blob(&self, media_type: &str, digest: &Digest, size: u64) -> Result<Blob, ShipError> {
        let rel = blob_path(digest);
        let bytes = self
            .read_small(&rel)?
            .ok_or_else(|| ShipError::invalid(self.path(), format!("missing blob {rel}")))?;
        let blob = Blob::from_bytes(media_type, bytes);
        if blob.digest != *digest || blob.size != size {
            return Err(ShipError::invalid(
                self.path(),
                format!(
                    "{rel}: expected {digest} ({size} bytes), found {} ({} bytes)",
                    blob.digest, blob.size
                ),
            ));
        }
        Ok(blob)
    }

    /// A (layer) blob left where it is; its size is checked, its digest is
    /// trusted until it is read (every consumer re-hashes).
    fn file_blob(&self, media_type: &str, digest: &Digest, size: u64) -> Result<Blob, ShipError> {
        let rel = blob_path(digest);
        let (file, offset, found) = self
            .locate(&rel)?
            .ok_or_else(|| ShipError::invalid(self.path(), format!("missing blob {rel}")))?;
        if found != size {
            return Err(ShipError::invalid(
                self.path(),
                format!("{rel}: the manifest says {size} bytes, the file has {found}"),
            ));
        }
        Ok(Blob::from_file(
            media_type,
            digest.clone(),
            size,
            file,
            offset,
            None,
        ))
    }
}

/// A reader over `size` bytes at `offset` of `file`.
pub(crate) fn open_region(file: &Path, offset: u64, size: u64) -> std::io::Result<impl Read> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(file)?;
    f.seek(SeekFrom::Start(offset))?;
    Ok(f.take(size))
}

/// `blobs/sha256/<hex>`.
pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// An OCI layout directory.
pub(crate) struct DirStore(pub PathBuf);

impl Store for DirStore {
    fn path(&self) -> &Path {
        &self.0
    }
    fn locate(&self, rel: &str) -> Result<Option<(PathBuf, u64, u64)>, ShipError> {
        let p = self.0.join(rel);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(Some((p, 0, m.len()))),
            Ok(_) => Err(ShipError::invalid(
                &self.0,
                format!("{rel} is not a regular file"),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ShipError::io("reading", &p)(e)),
        }
    }
    fn blob_files(&self) -> Result<Vec<(String, u64)>, ShipError> {
        let dir = self.0.join("blobs/sha256");
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ShipError::io("reading", &dir)(e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(ShipError::io("reading", &dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            // temp files of a writer have a leading '.'
            if name.starts_with('.') {
                continue;
            }
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    out.push((format!("blobs/sha256/{name}"), m.len()));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A tar file, indexed once: path -> (offset of the data, size).
pub(crate) struct TarStore {
    path: PathBuf,
    entries: HashMap<String, (u64, u64)>,
}

/// A tar entry's path as the index keys it: cleaned, without the leading
/// slash.
fn normalise(p: &str) -> String {
    distroless_pack_image::clean_path(p)[1..].to_string()
}

impl TarStore {
    pub(crate) fn open(path: &Path) -> Result<TarStore, ShipError> {
        let file = File::open(path).map_err(ShipError::io("opening", path))?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(ShipError::invalid(
                path,
                "is a directory, expected a tar file",
            ));
        }
        let bad = |e: std::io::Error| {
            ShipError::invalid(path, format!("not a readable tar archive: {e}"))
        };
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        for entry in archive.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
            let ty = entry.header().entry_type();
            if ty.is_file() {
                entries.insert(name, (entry.raw_file_position(), entry.size()));
            } else if ty.is_symlink() || ty.is_hard_link() {
                if let Some(target) = entry.link_name_bytes() {
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let resolved = if ty.is_symlink() && !target.starts_with('/') {
                        let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                        normalise(&format!("{dir}/{target}"))
                    } else {
                        normalise(&target)
                    };
                    links.push((name, resolved));
                }
            }
        }
        if entries.is_empty() {
            return Err(ShipError::invalid(
                path,
                "not a tar archive holding an image (no files in it)",
            ));
        }
        for (name, target) in links {
            if let Some(&t) = entries.get(&target) {
                entries.entry(name).or_insert(t);
            }
        }
        Ok(TarStore {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Every file: (path inside the tar, offset of its data, size).
    pub(crate) fn files(&self) -> Vec<(String, u64, u64)> {
        let mut v: Vec<(String, u64, u64)> = self
            .entries
            .iter()
            .map(|(k, &(o, s))| (k.clone(), o, s))
            .collect();
        v.sort();
        v
    }

    pub(crate) fn has(&self, rel: &str) -> bool {
        self.entries.contains_key(rel)
    }
}

impl Store for TarStore {
    fn path(&self) -> &Path {
        &self.path
    }
    fn locate(&self, rel: &str) -> Result<Option<(PathBuf, u64, u64)>, ShipError> {
        Ok(self
            .entries
            .get(&normalise(rel))
            .map(|&(o, s)| (self.path.clone(), o, s)))
    }
    fn blob_files(&self) -> Result<Vec<(String, u64)>, ShipError> {
        let mut out: Vec<(String, u64)> = self
            .entries
            .iter()
            .filter(|(k, _)| k.starts_with("blobs/sha256/"))
            .map(|(k, &(_, size))| (k.clone(), size))
            .collect();
        out.sort();
        Ok(out)
    }
}

/// A descriptor's fields.
pub(crate) struct Desc {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

impl Desc {
    /// The `mediaType` (empty if missing), `digest` and `size` of the
    /// descriptor `v`; an error says which is wrong, after `what`.
    pub(crate) fn parse(v: &Value, what: &str) -> Result<Desc, String> {
        let bad = |m: &str| format!("{what}: {m}");
        let media_type = v
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let digest = v
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("descriptor without digest"))?
            .parse::<Digest>()
            .map_err(|e| bad(&e.to_string()))?;
        let size = v
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("descriptor without size"))?;
        Ok(Desc {
            media_type,
            digest,
            size,
        })
    }
}

/// [`Desc::parse`] of a descriptor in `store`, whose path errors name.
pub(crate) fn parse_desc(store: &dyn Store, v: &Value, what: &str) -> Result<Desc, ShipError> {
    Desc::parse(v, what).map_err(|m| ShipError::invalid(store.path(), m))
}

fn parse_json(store: &dyn Store, bytes: &[u8], what: &str) -> Result<Value, ShipError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ShipError::invalid(store.path(), format!("invalid JSON in {what}: {e}")))
}

/// The name an `index.json` entry goes by: its ref name, else its full
/// image name, else its digest.
pub(crate) fn entry_name(v: &Value) -> String {
    let ann = |k: &str| {
        v.pointer(&format!("/annotations/{}", k.replace('/', "~1")))
            .and_then(Value::as_str)
    };
    ann(ANNOTATION_REF_NAME)
        .or_else(|| ann(ANNOTATION_IMAGE_NAME))
        .or_else(|| v.get("digest").and_then(Value::as_str))
        .unwrap_or("?")
        .to_string()
}

fn entry_matches(v: &Value, tag: &str) -> bool {
    let ann = |k: &str| {
        v.get("annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
    };
    ann(ANNOTATION_REF_NAME) == Some(tag)
        || ann(ANNOTATION_IMAGE_NAME).is_some_and(|n| {
            n == tag || n.ends_with(&format!(":{tag}")) && ann(ANNOTATION_REF_NAME).is_none()
        })
        || v.get("digest").and_then(Value::as_str) == Some(tag)
}

/// Reads the image named `tag` (or the only one) from a layout, with the
/// full name its entry records.
pub(crate) fn read_layout_store(
    store: &dyn Store,
    tag: Option<&str>,
) -> Result<ReadBack, ShipError> {
    let marker = store.read_small("oci-layout")?.ok_or_else(|| {
        ShipError::invalid(store.path(), "not an OCI image layout (no oci-layout file)")
    })?;
    let marker = parse_json(store, &marker, "oci-layout")?;
    if marker
        .get("imageLayoutVersion")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(ShipError::invalid(
            store.path(),
            "oci-layout has no imageLayoutVersion",
        ));
    }
    let index = store
        .read_small("index.json")?
        .ok_or_else(|| ShipError::invalid(store.path(), "OCI layout without index.json"))?;
    let index = parse_json(store, &index, "index.json")?;
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| ShipError::invalid(store.path(), "index.json has no manifests list"))?;
    let available: Vec<String> = manifests.iter().map(entry_name).collect();
    let entry = match tag {
        Some(tag) => manifests
            .iter()
            .find(|m| entry_matches(m, tag))
            .ok_or_else(|| ShipError::TagNotFound {
                path: store.path().to_path_buf(),
                tag: tag.to_string(),
                available: available.clone(),
            })?,
        // Artifacts listed in index.json (as `oras attach --oci-layout`
        // lists them) are not images to pick.
        None => match manifests
            .iter()
            .filter(|m| m.get("artifactType").is_none())
            .collect::<Vec<_>>()
            .as_slice()
        {
            [one] => one,
            [] => {
                return Err(ShipError::invalid(
                    store.path(),
                    "the layout holds no image (index.json lists no manifests)",
                ))
            }
            _ => {
                return Err(ShipError::Ambiguous {
                    path: store.path().to_path_buf(),
                    available,
                })
            }
        },
    };
    let desc = parse_desc(store, entry, "index.json")?;
    let mut artifact = read_artifact(store, &desc)?;
    find_referrers(store, &mut artifact)?;
    let name = entry
        .get("annotations")
        .and_then(|a| a.get(ANNOTATION_IMAGE_NAME))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(ReadBack { artifact, name })
}

/// The largest manifest a referrer scan reads (distribution-spec's limit
/// for manifests a registry must accept).
const MAX_MANIFEST: u64 = 4 << 20;

/// Attaches to each image of `artifact` the referrers the layout holds for
/// it: every blob that is an image manifest whose `subject` is the image's
/// manifest (written by distroless-pack, which lists none in `index.json`,
/// or by `oras attach --oci-layout`, which lists them there; both are
/// blobs). A blob that is not JSON is skipped after its first byte.
pub(crate) fn find_referrers(store: &dyn Store, artifact: &mut Artifact) -> Result<(), ShipError> {
    let subjects: Vec<Digest> = artifact
        .images()
        .iter()
        .map(|i| i.digest().clone())
        .collect();
    for (rel, size) in store.blob_files()? {
        if !(2..=MAX_MANIFEST).contains(&size) {
            continue;
        }
        let Some(hex) = rel.strip_prefix("blobs/sha256/") else {
            continue;
        };
        let Ok(digest) = format!("sha256:{hex}").parse::<Digest>() else {
            continue;
        };
        if subjects.contains(&digest) {
            continue;
        }
        let Some((file, offset, _)) = store.locate(&rel)? else {
            continue;
        };
        let mut first = [0u8; 1];
        let starts_json = open_region(&file, offset, size)
            .and_then(|mut r| r.read_exact(&mut first))
            .is_ok()
            && first[0] == b'{';
        if !starts_json {
            continue;
        }
        let Some(bytes) = store.read_small(&rel)? else {
            continue;
        };
        let Some(img) = artifact
            .images_mut()
            .iter_mut()
            .find(|i| distroless_pack_image::refers_to(&bytes, i.digest()))
        else {
            continue;
        };
        let manifest = Blob::from_bytes(MEDIA_TYPE_MANIFEST, bytes);
        if manifest.digest != digest {
            return Err(ShipError::invalid(
                store.path(),
                format!("{rel}: the file hashes to {}", manifest.digest),
            ));
        }
        let referrer = Referrer::from_manifest(manifest, |mt, d, size| {
            store
                .file_blob(mt, d, size)
                .map_err(|e| distroless_pack_image::ImageError::Invalid {
                    what: "referrer",
                    message: e.to_string(),
                })
        })
        .map_err(|e| ShipError::invalid(store.path(), format!("referrer {digest}: {e}")))?;
        img.attach(referrer)
            .map_err(ShipError::image(store.path()))?;
    }
    Ok(())
}

fn is_index(mt: &str) -> bool {
    mt == MEDIA_TYPE_INDEX || mt == MEDIA_TYPE_DOCKER_LIST
}

/// The image or index a descriptor names.
pub(crate) fn read_artifact(store: &dyn Store, desc: &Desc) -> Result<Artifact, ShipError> {
    if is_index(&desc.media_type) {
        let blob = store.small_blob(&desc.media_type, &desc.digest, desc.size)?;
        let v = parse_json(
            store,
            &blob.read_all().map_err(ShipError::image(store.path()))?,
            "image index",
        )?;
        let mut images = Vec::new();
        for m in v
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let d = parse_desc(store, m, "image index")?;
            if is_index(&d.media_type) {
                return Err(ShipError::invalid(
                    store.path(),
                    format!("nested index {} is not supported", d.digest),
                ));
            }
            images.push(read_image(store, &d)?);
        }
        Ok(Artifact::Index(Index {
            index: blob,
            images,
        }))
    } else {
        read_image(store, desc).map(Artifact::Image)
    }
}

/// One image from its manifest descriptor.
pub(crate) fn read_image(store: &dyn Store, desc: &Desc) -> Result<Image, ShipError> {
    let mt = if desc.media_type.is_empty() {
        MEDIA_TYPE_MANIFEST
    } else {
        desc.media_type.as_str()
    };
    if mt != MEDIA_TYPE_MANIFEST && mt != MEDIA_TYPE_DOCKER_MANIFEST {
        return Err(ShipError::invalid(
            store.path(),
            format!("{} has media type {mt}, not an image manifest", desc.digest),
        ));
    }
    let manifest = store.small_blob(mt, &desc.digest, desc.size)?;
    let v = parse_json(
        store,
        &manifest
            .read_all()
            .map_err(ShipError::image(store.path()))?,
        "image manifest",
    )?;
    let what = format!("manifest {}", desc.digest);
    let c = parse_desc(store, v.get("config").unwrap_or(&Value::Null), &what)?;
    let config = store.small_blob(&c.media_type, &c.digest, c.size)?;
    let mut layers = Vec::new();
    for l in v
        .get("layers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let l = parse_desc(store, l, &what)?;
        layers.push(store.file_blob(&l.media_type, &l.digest, l.size)?);
    }
    Image::from_parts(manifest, config, layers).map_err(ShipError::image(store.path()))
}
