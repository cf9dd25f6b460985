//! OCI image layout directories (`oci:DIR[:TAG]`).
//!
//! Writing never damages an existing layout: blobs go to temp files inside
//! the layout (`.distroless-pack-tmp-<pid>-*`, mode `0666 & ~umask`, removed
//! on SIGINT/SIGTERM, and by the next writer once their process is gone)
//! and are renamed into `blobs/sha256/` once complete (and, for a blob read
//! from an input, once its digest checks); a layer made in this run is
//! hard-linked or kernel-copied instead of copied ([`write_blob`]);
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

pub use crate::blobcopy::Placed;
use std::path::Path;

use distroless_pack_image::{
    to_canonical_json, Artifact, Blob, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME,
};
use serde_json::{json, Value};

use crate::blobcopy;
use crate::dest::temp_file_in;
use crate::store::{blob_path, read_layout_store, DirStore};
use crate::ReadBack;
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

/// Puts `blob` at `dir/blobs/sha256/<hex>`; skips it when a file of that
/// size is already there. A blob made in this run (`Blob::is_made_here`)
/// is hard-linked when it is a whole file on the layout's filesystem,
/// else copied inside the kernel, else through a buffer, and not hashed
/// again; any other blob is checked against its digest as it is copied,
/// so a blob whose bytes do not match never gets a name in the layout.
/// Either way it appears under its name by a link or a rename of a
/// complete file. Blobs are not fsynced: `index.json` (written last,
/// fsynced, renamed) is the commit point; see docs/design.md.
pub fn write_blob(dir: &Path, blob: &Blob) -> Result<Placed, ShipError> {
    let dest = dir.join(blob_path(&blob.digest));
    if let Ok(m) = std::fs::metadata(&dest) {
        if m.is_file() && m.len() == blob.size {
            return Ok(Placed::Present);
        }
    }
    let blobs = dest.parent().expect("blob path has a parent");
    std::fs::create_dir_all(blobs).map_err(ShipError::io("creating", blobs))?;
    let region = blob.file_region().filter(|_| blob.is_made_here());
    if let Some((path, 0)) = region {
        let whole = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == blob.size);
        if whole && try_link(dir, path, &dest)? {
            return Ok(Placed::Linked);
        }
    }
    let (mut tmp, _live) = temp_file_in(dir, &dest)?;
    let mut how = Placed::Copied;
    if let Some((path, offset)) = region {
        let src = std::fs::File::open(path).map_err(ShipError::io("reading blob for", &dest))?;
        if blobcopy::kernel_copy(&src, offset, blob.size, tmp.as_file())
            .map_err(ShipError::io("writing", &dest))?
        {
            how = Placed::KernelCopied;
        }
    }
    if how == Placed::Copied {
        let mut src = blob
            .open_for_copy()
            .map_err(ShipError::io("reading blob for", &dest))?;
        let n = blobcopy::buffered_copy(&mut src, tmp.as_file_mut())
            .map_err(ShipError::io("writing", &dest))?;
        if n != blob.size {
            // Only a made-here blob is read unchecked; its file cannot
            // have shrunk, but a short copy must never get the name.
            return Err(ShipError::io("reading blob for", &dest)(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} bytes read, {} expected", n, blob.size),
            )));
        }
    }
    tmp.persist(&dest)
        .map_err(|e| ShipError::io("renaming into", &dest)(e.error))?;
    Ok(how)
}

/// Hard-links the whole file at `from` to `dest` through a temp name in
/// `dir` (renamed over whatever is at `dest`), mode `0666 & ~umask` like
/// every file of the layout. `false` when the link cannot be made (another
/// filesystem, a filesystem without hard links, an unlinked file that is
/// not an O_TMPFILE): nothing was changed, copy instead.
fn try_link(dir: &Path, from: &Path, dest: &Path) -> Result<bool, ShipError> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = dir.join(format!(
        "{}{}-link-{}",
        crate::dest::TMP_PREFIX,
        std::process::id(),
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("blob")
    ));
    let _live = crate::dest::TempGuard::new(tmp.clone());
    let _ = std::fs::remove_file(&tmp);
    if blobcopy::link_whole_file(from, &tmp).is_err() {
        return Ok(false);
    }
    let done = std::fs::set_permissions(
        &tmp,
        std::fs::Permissions::from_mode(0o666 & !blobcopy::umask()),
    )
    .and_then(|()| std::fs::rename(&tmp, dest));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(ShipError::io("renaming into", dest)(e));
    }
    Ok(true)
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
pub fn read_layout(dir: &Path, tag: Option<&str>) -> Result<ReadBack, ShipError> {
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
    use distroless_pack_image::Digest;
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    fn bytes(n: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    /// A made-here layer blob in `file` at `offset`.
    fn made(file: &Path, offset: u64, content: &[u8]) -> Blob {
        Blob::from_file(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Digest::sha256_of(content),
            content.len() as u64,
            file.to_path_buf(),
            offset,
            None,
        )
        .made_here()
    }

    /// A directory on tmpfs (/dev/shm), another filesystem than the
    /// worktree's and the temp dir's.
    fn other_fs() -> tempfile::TempDir {
        assert!(
            Path::new("/dev/shm").is_dir(),
            "/dev/shm (tmpfs) is needed to test writing a layout on another filesystem"
        );
        tempfile::tempdir_in("/dev/shm").unwrap()
    }

    fn same_fs() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_fresh_layer_file_is_hard_linked_into_the_layout_not_copied() {
        let d = same_fs();
        let content = bytes(3 << 20);
        let src = d.path().join("layer");
        std::fs::write(&src, &content).unwrap();
        let blob = made(&src, 0, &content);
        let layout = d.path().join("oci");
        assert_eq!(write_blob(&layout, &blob).unwrap(), Placed::Linked);
        let dest = layout.join(blob_path(&blob.digest));
        let m = std::fs::metadata(&dest).unwrap();
        assert_eq!(m.ino(), std::fs::metadata(&src).unwrap().ino());
        assert_eq!(m.mode() & 0o777, 0o666 & !blobcopy::umask());
        assert_eq!(std::fs::read(&dest).unwrap(), content);
        // Already there: nothing to do.
        assert_eq!(write_blob(&layout, &blob).unwrap(), Placed::Present);
        let names: Vec<_> = std::fs::read_dir(&layout)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["blobs".to_string()], "no temp name left");
    }

    #[test]
    fn an_unnamed_tmpfile_layer_gets_its_name_by_a_link_through_proc() {
        use std::os::fd::AsRawFd;
        let d = same_fs();
        let content = bytes(1 << 20);
        let mut f = tempfile::tempfile_in(d.path()).unwrap();
        f.write_all(&content).unwrap();
        let proc = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
        let blob = made(&proc, 0, &content);
        let layout = d.path().join("oci");
        assert_eq!(write_blob(&layout, &blob).unwrap(), Placed::Linked);
        drop(f);
        assert_eq!(
            std::fs::read(layout.join(blob_path(&blob.digest))).unwrap(),
            content
        );
    }

    #[test]
    fn a_cached_layer_is_a_region_copied_in_the_kernel_never_a_link_of_the_entry() {
        let d = same_fs();
        let content = bytes(2 << 20);
        let entry = d.path().join("entry");
        let mut whole = content.clone();
        whole.extend_from_slice(b"{\"record\":1}trailer-and-magic");
        std::fs::write(&entry, &whole).unwrap();
        let blob = made(&entry, 0, &content);
        let layout = d.path().join("oci");
        assert_eq!(write_blob(&layout, &blob).unwrap(), Placed::KernelCopied);
        let dest = layout.join(blob_path(&blob.digest));
        assert_eq!(std::fs::read(&dest).unwrap(), content);
        assert_ne!(
            std::fs::metadata(&dest).unwrap().ino(),
            std::fs::metadata(&entry).unwrap().ino()
        );
        // Changing the layout's copy leaves the entry alone.
        std::fs::write(&dest, b"changed").unwrap();
        assert_eq!(std::fs::read(&entry).unwrap(), whole);
        // A region not at the start (a blob inside a tar) too.
        let inner = &content[1000..5000];
        let b2 = made(&entry, 1000, inner);
        assert_eq!(write_blob(&layout, &b2).unwrap(), Placed::KernelCopied);
        assert_eq!(
            std::fs::read(layout.join(blob_path(&b2.digest))).unwrap(),
            inner
        );
    }

    #[test]
    fn a_layout_on_another_filesystem_falls_back_to_a_copy_with_the_same_bytes() {
        let d = same_fs();
        let content = bytes(3 << 20);
        let src = d.path().join("layer");
        std::fs::write(&src, &content).unwrap();
        let mut with_trailer = content.clone();
        with_trailer.extend_from_slice(b"trailer");
        let entry = d.path().join("entry");
        std::fs::write(&entry, &with_trailer).unwrap();
        let shm = other_fs();
        let (a, b) = (shm.path().join("a"), shm.path().join("b"));
        let fresh = made(&src, 0, &content);
        let cached = made(&entry, 0, &content);
        let how_a = write_blob(&a, &fresh).unwrap();
        let how_b = write_blob(&b, &cached).unwrap();
        // tmpfs cannot link a file of ext4, nor (since Linux 5.19) take a
        // copy_file_range from it.
        assert_eq!(how_a, Placed::Copied);
        assert_eq!(how_b, Placed::Copied);
        let (pa, pb) = (
            a.join(blob_path(&fresh.digest)),
            b.join(blob_path(&cached.digest)),
        );
        assert_eq!(std::fs::read(&pa).unwrap(), content);
        assert_eq!(std::fs::read(&pb).unwrap(), content);
        assert_eq!(
            std::fs::metadata(&pa).unwrap().mode() & 0o777,
            0o666 & !blobcopy::umask()
        );
    }

    #[test]
    fn a_blob_read_from_elsewhere_is_still_checked_and_never_named() {
        let d = same_fs();
        let content = bytes(64 << 10);
        let src = d.path().join("blob");
        std::fs::write(&src, &content).unwrap();
        let mut claimed = content.clone();
        claimed[10] ^= 1;
        // Not made here: a blob of a layout or archive we read.
        let blob = Blob::from_file(
            "x",
            Digest::sha256_of(&claimed),
            content.len() as u64,
            src.clone(),
            0,
            None,
        );
        let layout = d.path().join("oci");
        let e = write_blob(&layout, &blob).unwrap_err();
        assert!(e.to_string().contains("does not match its digest"), "{e}");
        assert!(!layout.join(blob_path(&blob.digest)).exists());
    }

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
