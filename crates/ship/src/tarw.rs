//! Deterministic tar output shared by the archive formats: entries sorted by
//! path, mtime 0, uid/gid 0, modes 0644/0755, no PAX headers; written to a
//! temp file beside the target and renamed.

use std::io::{self, Write};
use std::path::Path;

use distroless_pack_image::Blob;

use crate::dest::Destination;
use crate::ShipError;

/// What one tar entry holds.
pub(crate) enum Content<'a> {
    Dir,
    Bytes(Vec<u8>),
    Blob(&'a Blob),
}

/// Writes `entries` (sorted here) as a tar stream to `w`. `label` names the
/// destination in errors.
pub(crate) fn write_tar<W: Write>(
    w: W,
    mut entries: Vec<(String, Content<'_>)>,
    label: &Path,
) -> Result<W, ShipError> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|a, b| a.0 == b.0);
    let mut tar = tar::Builder::new(w);
    let res: io::Result<()> = (|| {
        for (path, content) in &entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            match content {
                Content::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    tar.append_data(&mut h, format!("{path}/"), io::empty())?;
                }
                Content::Bytes(b) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(b.len() as u64);
                    tar.append_data(&mut h, path, &b[..])?;
                }
                Content::Blob(blob) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(blob.size);
                    // Checked while copied (an archive never holds a blob
                    // that does not match its digest), unless this run
                    // made it and hashed it as it wrote it.
                    let mut r = blob.open_for_copy()?;
                    tar.append_data(&mut h, path, &mut r)?;
                }
            }
        }
        Ok(())
    })();
    res.map_err(ShipError::io("writing", label))?;
    tar.into_inner().map_err(ShipError::io("writing", label))
}

/// Writes a tar of `entries` to `dest` through a [`Destination`]: a
/// temp file beside it renamed over it once complete (following a symlink
/// to its target), or a stream for a FIFO or character device.
pub(crate) fn write_tar_file(
    dest: &Path,
    entries: Vec<(String, Content<'_>)>,
) -> Result<(), ShipError> {
    if dest.is_dir() {
        return Err(ShipError::invalid(
            dest,
            "is a directory; an archive output needs a file path",
        ));
    }
    let out = Destination::open(dest)?;
    let dest = crate::dest::shown(dest);
    let w = write_tar(io::BufWriter::with_capacity(1 << 20, out), entries, dest)?;
    let out = w
        .into_inner()
        .map_err(|e| ShipError::io("writing", dest)(e.into_error()))?;
    out.commit()
}
