//! A blob: content-addressed bytes in memory or in a region of a file.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use crate::{Digest, ImageError};

/// Something that must outlive a blob stored in it (a temp file or temp
/// directory): dropped when the last blob pointing into it goes.
pub type KeepAlive = Arc<dyn std::any::Any + Send + Sync>;

/// Where a blob's bytes are.
#[derive(Clone)]
pub enum BlobData {
    /// Small blobs (manifests, configs) kept in memory.
    Bytes(Arc<[u8]>),
    /// `size` bytes at `offset` of a file: a layer written to a temp file, a
    /// blob in an OCI layout, or an entry inside an uncompressed tar.
    File {
        path: PathBuf,
        offset: u64,
        keep: Option<KeepAlive>,
    },
}

impl fmt::Debug for BlobData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobData::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            BlobData::File { path, offset, .. } => {
                write!(f, "File({}@{offset})", path.display())
            }
        }
    }
}

/// Content-addressed bytes with their media type.
#[derive(Clone, Debug)]
pub struct Blob {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub data: BlobData,
}

impl Blob {
    /// A blob held in memory; its digest is computed here.
    pub fn from_bytes(media_type: &str, bytes: Vec<u8>) -> Blob {
        let digest = Digest::sha256_of(&bytes);
        Blob {
            media_type: media_type.to_string(),
            digest,
            size: bytes.len() as u64,
            data: BlobData::Bytes(bytes.into()),
        }
    }

    /// A blob whose bytes are `size` bytes at `offset` of `path`, with a
    /// digest the caller already knows (computed while writing, or read
    /// from a manifest). Use [`Blob::verify`] when the file is untrusted.
    pub fn from_file(
        media_type: &str,
        digest: Digest,
        size: u64,
        path: PathBuf,
        offset: u64,
        keep: Option<KeepAlive>,
    ) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest,
            size,
            data: BlobData::File { path, offset, keep },
        }
    }

    /// A reader over exactly this blob's bytes.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match &self.data {
            BlobData::Bytes(b) => Ok(Box::new(io::Cursor::new(b.clone()))),
            BlobData::File { path, offset, .. } => {
                let mut f = File::open(path)?;
                f.seek(SeekFrom::Start(*offset))?;
                Ok(Box::new(f.take(self.size)))
            }
        }
    }

    /// All the bytes (for manifests and configs; layers should be streamed).
    pub fn read_all(&self) -> Result<Vec<u8>, ImageError> {
        if let BlobData::Bytes(b) = &self.data {
            return Ok(b.to_vec());
        }
        let mut out = Vec::with_capacity(self.size.min(1 << 20) as usize);
        self.open()
            .and_then(|mut r| r.read_to_end(&mut out))
            .map_err(|source| ImageError::Io {
                digest: self.digest.to_string(),
                source,
            })?;
        Ok(out)
    }

    /// Reads the blob and checks its size and digest.
    pub fn verify(&self) -> Result<(), ImageError> {
        let mut r = self.open().map_err(|source| ImageError::Io {
            digest: self.digest.to_string(),
            source,
        })?;
        let mut w = crate::DigestWriter::new(io::sink());
        let n = io::copy(&mut r, &mut w).map_err(|source| ImageError::Io {
            digest: self.digest.to_string(),
            source,
        })?;
        let (got, _) = w.finish();
        if n != self.size || got != self.digest {
            return Err(ImageError::Invalid {
                what: "blob",
                message: format!(
                    "expected {} ({} bytes), found {} ({} bytes)",
                    self.digest, self.size, got, n
                ),
            });
        }
        Ok(())
    }

    /// The OCI descriptor `{mediaType, digest, size}`.
    pub fn descriptor_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest.as_str(),
            "size": self.size,
        })
    }
}
