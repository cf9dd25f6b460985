//! OCI archives (`oci-archive:FILE`): an OCI image layout as one tar.
//!
//! Deterministic (entries sorted, mtime 0, uid/gid 0) and atomic (a temp
//! file beside the target, renamed). Reading indexes the tar once and leaves
//! every blob in place: layers become regions of the archive file.

use std::path::Path;

use distroless_pack_image::Artifact;

use crate::layout::{all_blobs, index_entry, index_json, naming, OCI_LAYOUT};
use crate::store::{blob_path, read_layout_store, TarStore};
use crate::tarw::{write_tar_file, Content};
use crate::ReadBack;
use crate::{ShipError, WriteOptions};

/// The files of a one-image layout, as tar entries.
/// With `referrers`, the images' referrers go in too (an OCI archive holds
/// them; a docker archive does not).
pub(crate) fn layout_entries<'a>(
    artifact: &'a Artifact,
    ref_name: &str,
    full: Option<&str>,
    referrers: bool,
) -> Vec<(String, Content<'a>)> {
    let mut entries = vec![
        ("blobs".to_string(), Content::Dir),
        ("blobs/sha256".to_string(), Content::Dir),
        (
            "oci-layout".to_string(),
            Content::Bytes(OCI_LAYOUT.to_vec()),
        ),
        (
            "index.json".to_string(),
            Content::Bytes(index_json(vec![index_entry(artifact, ref_name, full)])),
        ),
    ];
    for b in all_blobs(artifact, referrers) {
        entries.push((blob_path(&b.digest), Content::Blob(b)));
    }
    entries
}

/// Writes `artifact` (an image or an index) as an OCI archive at `path`.
pub fn write_oci_archive(
    artifact: &Artifact,
    path: &Path,
    opts: &WriteOptions,
) -> Result<(), ShipError> {
    write_oci_archive_tagged(artifact, path, None, opts)
}

/// Writes an OCI archive whose image is named `tag` (`oci-archive:FILE:TAG`;
/// `None`: the tag of the image name, else `latest`).
pub fn write_oci_archive_tagged(
    artifact: &Artifact,
    path: &Path,
    tag: Option<&str>,
    opts: &WriteOptions,
) -> Result<(), ShipError> {
    let (ref_name, full) = naming(tag, opts);
    write_tar_file(
        path,
        layout_entries(artifact, &ref_name, full.as_deref(), true),
    )
}

/// Reads the image (or index) in the OCI archive at `path`; `tag` picks one
/// when it holds several.
pub fn read_oci_archive(path: &Path, tag: Option<&str>) -> Result<ReadBack, ShipError> {
    let store = TarStore::open(path)?;
    read_layout_store(&store, tag)
}
