//! The files in a layer, read by streaming the blob through gunzip and tar
//! (nothing is extracted or held in memory), for `inspect`.

use std::io::Read;

use distroless_pack_image::Blob;
use serde::Serialize;

use crate::ShipError;

/// One entry of a layer's tar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerEntry {
    /// Path as in the image, starting with `/`.
    pub path: String,
    /// `file`, `dir`, `symlink`, `hardlink`, `char`, `block`, `fifo` or `other`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Permission bits (e.g. 0o755).
    pub mode: u32,
    pub size: u64,
    pub uid: u64,
    pub gid: u64,
    /// Modification time in seconds since the epoch.
    pub mtime: u64,
    /// Target of a symlink or hard link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

fn kind(t: tar::EntryType) -> &'static str {
    use tar::EntryType::*;
    match t {
        Regular | Continuous => "file",
        Directory => "dir",
        Symlink => "symlink",
        Link => "hardlink",
        Char => "char",
        Block => "block",
        Fifo => "fifo",
        _ => "other",
    }
}

/// Lists the entries of a layer blob (gzip- or zstd-compressed, or a plain tar,
/// told apart by the first bytes).
pub fn list_layer(blob: &Blob) -> Result<Vec<LayerEntry>, ShipError> {
    let label = std::path::PathBuf::from(format!("layer {}", blob.digest));
    let mut raw = blob
        .open_verified()
        .map_err(ShipError::io("reading", &label))?;
    let listed = list_entries(&mut raw, &label);
    // Read to the end and check the digest whatever happened: a corrupt
    // blob is reported as that, not as the gzip or tar error it causes.
    match raw.finish() {
        Ok(()) => listed,
        Err(e) => match distroless_pack_image::BlobMismatch::in_io(&e) {
            Some(m) => Err(ShipError::BlobMismatch(m.clone())),
            None => listed.and(Err(ShipError::io("reading", &label)(e))),
        },
    }
}

fn list_entries(r: &mut dyn Read, label: &std::path::Path) -> Result<Vec<LayerEntry>, ShipError> {
    let bad =
        |e: std::io::Error| ShipError::invalid(label, format!("cannot read it as a tar: {e}"));
    let input = distroless_pack_image::uncompressed(std::io::BufReader::new(r))
        .map_err(ShipError::io("reading", label))?;
    let mut archive = tar::Archive::new(input);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let h = entry.header();
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let trimmed = raw
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/');
        let path = format!("/{trimmed}");
        out.push(LayerEntry {
            path,
            kind: kind(h.entry_type()),
            mode: h.mode().map_err(bad)? & 0o7777,
            size: entry.size(),
            uid: h.uid().unwrap_or(0),
            gid: h.gid().unwrap_or(0),
            mtime: h.mtime().unwrap_or(0),
            link: entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
        });
    }
    Ok(out)
}
