//! OCI image layout directories (`oci:DIR[:TAG]`).
//!
//! Writing never damages an existing layout: blobs go to temp files inside
//! the layout (`.distroless-pack-tmp-<pid>-*`, mode `0666 & ~umask`, removed
//! on SIGINT/SIGTERM, and by the next writer once their process is gone)
//! and are renamed into `blobs/sha256/` once their digest checks;
//! `index.json` is written last, through a temp file and a rename, so the
//! layout names the new image only once everything it needs is in place. An
//! interrupted run leaves at most an unreferenced blob. Other images in the
//! layout are kept; an entry with the same ref name is replaced.
//!
//! Referrers (artifacts attached to an image, `Image::referrers`) are
//! written as blobs of the layout (their manifests, the empty config, the
//! payloads) but are not listed in `index.json`: skopeo reads `oci:DIR`
//! without a tag only when `index.json` lists exactly one manifest, so an
//! extra entry per referrer would break it. Readers find them by their
//! `subject` (`store::find_referrers`), which also finds the ones `oras
//! attach --oci-layout` lists in `index.json`. See docs/design.md
//! ("Referrers in a layout").

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

use distroless_pack_image::{
    to_canonical_json, Artifact, Blob, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
};
use serde_json::{json, Value};

use crate::dest::temp_file_in;
use crate::store::{blob_path, read_layout_store, DirStore};
use crate::{ShipError, WriteOptions};

/// The `oci-layout` file's content.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Every blob an artifact needs in a layout, each once, in the order they
/// are safe to write: per image its layers, config and manifest, then (with
/// `referrers`) each referrer's config, payload and manifest, then the
/// index (if any), so a manifest is only written once what it names is.
pub(crate) fn all_blobs(artifact: &Artifact, referrers: bool) -> Vec<&Blob> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let index = match artifact {
        Artifact::Index(x) => Some(&x.index),
        Artifact::Image(_) => None,
    };
    for img in artifact.images() {
        for b in img.layers.iter().chain([&img.config, &img.manifest]) {
            if seen.insert(b.digest.clone()) {
                out.push(b);
            }
        }
        if !referrers {
            continue;
        }
        for r in &img.referrers {
            for b in r.blobs().chain([&r.manifest]) {
                if seen.insert(b.digest.clone()) {
                    out.push(b);
                }
            }
        }
    }
    out.extend(index.filter(|b| seen.insert(b.digest.clone())));
    out
}

/// The tag part of an image name (`hello:1.0` -> `1.0`), if it has one.
pub fn name_tag(name: &str) -> Option<&str> {
    let name = name.split('@').next().unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.rsplit_once(':').map(|(_, t)| t)
}

/// The name without its tag or digest (`reg:5000/x/hello:1.0` -> `reg:5000/x/hello`).
pub fn name_repository(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name_tag(name) {
        Some(t) => &name[..name.len() - t.len() - 1],
        None => name,
    }
}

/// The `index.json` entry for `artifact`, named `ref_name` (and `image_name`).
pub(crate) fn index_entry(artifact: &Artifact, ref_name: &str, image_name: Option<&str>) -> Value {
    let mut d = match artifact {
        Artifact::Image(i) => i.manifest_descriptor(),
        Artifact::Index(x) => x.index.descriptor_json(),
    };
    let mut ann = serde_json::Map::new();
    ann.insert(ANNOTATION_REF_NAME.into(), ref_name.into());
    if let Some(n) = image_name {
        ann.insert(ANNOTATION_IMAGE_NAME.into(), n.into());
    }
    d["annotations"] = Value::Object(ann);
    d
}

/// A fresh `index.json` holding `entries`.
pub(crate) fn index_json(entries: Vec<Value>) -> Vec<u8> {
    let v = json!({ "schemaVersion": 2, "mediaType": distroless_pack_image::MEDIA_TYPE_INDEX, "manifests": entries });
    to_canonical_json(&v).expect("JSON values serialise")
}

/// The ref name and full image name an output gets from its options:
/// the explicit tag, else the tag of `--tag`'s name, else `latest`.
pub(crate) fn naming(explicit_tag: Option<&str>, opts: &WriteOptions) -> (String, Option<String>) {
    let tag = explicit_tag
        .or_else(|| opts.name.as_deref().and_then(name_tag))
        .unwrap_or("latest")
        .to_string();
    let full = opts
        .name
        .as_deref()
        .map(|n| format!("{}:{tag}", name_repository(n)));
    (tag, full)
}

/// Copies `blob` into `dir/blobs/sha256/<hex>` through a temp file,
/// checking its digest and size; skips it when a file of that size is
/// already there.
pub(crate) fn write_blob(dir: &Path, blob: &Blob) -> Result<(), ShipError> {
    let dest = dir.join(blob_path(&blob.digest));
    if let Ok(m) = std::fs::metadata(&dest) {
        if m.is_file() && m.len() == blob.size {
            return Ok(());
        }
    }
    let blobs = dest.parent().expect("blob path has a parent");
    let (mut tmp, _live) = temp_file_in(dir, &dest)?;
    // The source is checked as it is copied: a blob whose bytes do not
    // match its digest never gets a name in the layout.
    let mut src = blob
        .open_verified()
        .map_err(ShipError::io("reading blob for", &dest))?;
    let mut w = io::BufWriter::new(tmp.as_file_mut());
    io::copy(&mut src, &mut w).map_err(ShipError::io("writing", &dest))?;
    w.flush().map_err(ShipError::io("writing", &dest))?;
    drop(w);
    tmp.as_file()
        .sync_all()
        .map_err(ShipError::io("writing", &dest))?;
    std::fs::create_dir_all(blobs).map_err(ShipError::io("creating", blobs))?;
    tmp.persist(&dest)
        .map_err(|e| ShipError::io("renaming into", &dest)(e.error))?;
    Ok(())
}

/// Writes `bytes` to `dest` through a temp file in `dir` and a rename.
pub(crate) fn write_atomic(dir: &Path, dest: &Path, bytes: &[u8]) -> Result<(), ShipError> {
    let (mut tmp, _live) = temp_file_in(dir, dest)?;
    tmp.write_all(bytes)
        .map_err(ShipError::io("writing", dest))?;
    tmp.as_file()
        .sync_all()
        .map_err(ShipError::io("writing", dest))?;
    tmp.persist(dest)
        .map_err(|e| ShipError::io("renaming into", dest)(e.error))?;
    Ok(())
}

/// Checks `dir` can take a layout: it is missing, empty, or a layout.
/// Returns whether it already is a layout.
fn check_destination(dir: &Path) -> Result<bool, ShipError> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ShipError::io("reading", dir)(e)),
        Ok(m) if !m.is_dir() => Err(ShipError::invalid(
            dir,
            "exists and is not a directory; an oci: output needs a directory",
        )),
        Ok(_) => {
            if dir.join("oci-layout").is_file() {
                return Ok(true);
            }
            let mut it = std::fs::read_dir(dir).map_err(ShipError::io("reading", dir))?;
            if it.next().is_some() {
                return Err(ShipError::NotALayout {
                    path: dir.to_path_buf(),
                });
            }
            Ok(false)
        }
    }
}

/// Writes `artifact` into the layout at `dir` under the ref name `tag`
/// (default: the tag of `opts.name`, else `latest`), keeping other images.
pub fn write_layout(
    artifact: &Artifact,
    dir: &Path,
    tag: Option<&str>,
    opts: &WriteOptions,
) -> Result<(), ShipError> {
    if dir.exists() && !dir.is_dir() {
        // Let check_destination word the error before anything is created.
        check_destination(dir)?;
    }
    std::fs::create_dir_all(dir).map_err(ShipError::io("creating", dir))?;
    // Two writers adding tags to one layout at once would each rewrite
    // index.json from what they read and lose the other's tag: hold an
    // exclusive lock on the directory from reading the index to renaming
    // the new one (released when `_lock` drops).
    let _lock = std::fs::File::open(dir)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(ShipError::io("locking", dir))?;
    // Temp files of runs that were killed (SIGKILL: no handler ran). Every
    // writer holds the lock, so only dead ones can have left them.
    crate::dest::clean_stale(dir);
    // Checked again under the lock: another writer may have made it a layout.
    let exists = check_destination(dir)?;
    // Parse the existing index first: a broken one is an error, not something to overwrite.
    let mut entries: Vec<Value> = Vec::new();
    if exists {
        if let Ok(bytes) = std::fs::read(dir.join("index.json")) {
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
                ShipError::invalid(&dir.join("index.json"), format!("invalid JSON: {e}"))
            })?;
            entries = v
                .get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
        }
    }
    if !exists {
        write_atomic(dir, &dir.join("oci-layout"), OCI_LAYOUT)?;
    }
    for blob in all_blobs(artifact, true) {
        write_blob(dir, blob)?;
    }
    let (ref_name, full) = naming(tag, opts);
    entries.retain(|e| {
        e.get("annotations")
            .and_then(|a| a.get(ANNOTATION_REF_NAME))
            .and_then(Value::as_str)
            != Some(ref_name.as_str())
    });
    entries.push(index_entry(artifact, &ref_name, full.as_deref()));
    write_atomic(dir, &dir.join("index.json"), &index_json(entries))?;
    Ok(())
}

/// Reads the image tagged `tag` from the layout at `dir`; with no tag, the
/// only image in it (an error lists the tags when there are several).
pub fn read_layout(dir: &Path, tag: Option<&str>) -> Result<Artifact, ShipError> {
    if !dir.is_dir() {
        return Err(ShipError::invalid(
            dir,
            "no such directory (an oci: source is an OCI layout directory)",
        ));
    }
    read_layout_store(&DirStore(dir.to_path_buf()), tag)
}

/// The ref names of the images in the layout at `dir`.
pub fn layout_tags(dir: &Path) -> Result<Vec<String>, ShipError> {
    let p = dir.join("index.json");
    let bytes = std::fs::read(&p).map_err(ShipError::io("reading", &p))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ShipError::invalid(&p, format!("invalid JSON: {e}")))?;
    Ok(v.get("manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(crate::store::entry_name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_repository_and_tag() {
        assert_eq!(name_tag("hello:1.0"), Some("1.0"));
        assert_eq!(name_tag("hello"), None);
        assert_eq!(name_tag("localhost:5000/x/hello"), None);
        assert_eq!(name_tag("localhost:5000/x/hello:v2"), Some("v2"));
        assert_eq!(
            name_repository("localhost:5000/x/hello:v2"),
            "localhost:5000/x/hello"
        );
        assert_eq!(name_repository("hello@sha256:abc"), "hello");
    }
}
